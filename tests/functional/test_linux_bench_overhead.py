#!/usr/bin/env python3
"""The overhead benchmark's Linux boot (scripts/bench-overhead.py), reduced.

Runs the benchmark's own code on its Linux workload, two rounds and
without upstream: Debian's kernel booted to its init's line on the fork
with direct segments off and on and under thinvmm in VMM direct.  Checks
that every boot reached the same kernel's line and that no plugin was
loaded.  Times are not checked.  The model's comparison (the plugin
series) is the same code for every workload; test_bench_overhead runs
it on GUPS, and test_linux_experiment checks the model's counters of a
booted kernel in every mode.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg import testing


class LinuxBenchOverheadTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.text, cls.res = cls.run_bench([
            '--workloads', 'linux', '--plugin-workloads', '--no-upstream',
            '--min-rounds', '2', '--max-rounds', '2'])

    def test_boots(self):
        wls = self.res['workloads']
        self.assertEqual(list(wls), ['linux boot'])
        wl = wls['linux boot']
        self.assertEqual(sorted(wl['runs']),
                         ['fork', 'fork+dseg', 'thinvmm vmm'])
        self.assertRegex(wl['result'], r'^bench: \S+ up$')
        for runs in wl['runs'].values():
            self.assertEqual(len(runs), 2)
            for r in runs:
                self.assertIsNone(r['model'])
                self.assertIsNone(r['cache'])
        self.assertIsNotNone(self.res['packages'])

    def test_ratios_printed(self):
        self.assertRegex(self.text, r'\n  fork\+dseg / fork .* n=2')
        self.assertNotIn('model', self.text)


if __name__ == '__main__':
    testing.main()
