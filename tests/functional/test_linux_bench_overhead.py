#!/usr/bin/env python3
"""The overhead benchmark's Linux boot (scripts/bench-overhead.py), reduced.

Runs the benchmark's own code on its Linux workload, two rounds of each
comparison and without upstream: Debian's kernel booted to its init's
line on the fork with direct segments off and on and under thinvmm in
VMM direct, then the model's comparison of fork+dseg (the model off),
fork+dseg+model (the dseg-tlb plugin, default preset) and
fork+dseg+cache (QEMU's cache plugin).  Checks that every boot reached
the same kernel's line, that the model was on in every boot of the
model series and in no other, with counters of a booted kernel that add
up (every L1 miss an L2 hit or a translation, translations by native
walks only), and that every boot of the cache series ended with the
cache plugin's report.  Times are not checked.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import contextlib
import io
import json
import os

from qemu_dseg import config, testing
from qemu_dseg.experiment import overhead


class LinuxBenchOverheadTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        out = os.path.join(cls.logs, 'bench')
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            overhead.main([
                '--workloads', 'linux', '--no-upstream',
                '--min-rounds', '2', '--max-rounds', '2',
                '--plugin-max-rounds', '2',
                '--qemu', config.QEMU, '--guests', config.GUESTS,
                '--out', out])
        cls.text = text.getvalue()
        print(''.join(f'# {line}\n' for line in cls.text.splitlines()))
        with open(os.path.join(out, 'results.json')) as f:
            cls.res = json.load(f)
        cls.model = cls.res['workloads']['linux boot, model']

    def test_boots(self):
        wls = self.res['workloads']
        self.assertEqual(list(wls), ['linux boot', 'linux boot, model'])
        self.assertEqual(sorted(wls['linux boot']['runs']),
                         ['fork', 'fork+dseg', 'thinvmm vmm'])
        self.assertEqual(sorted(self.model['runs']),
                         ['fork+dseg', 'fork+dseg+cache', 'fork+dseg+model'])
        for wl in wls.values():
            self.assertRegex(wl['result'], r'^bench: \S+ up$')
            self.assertEqual(wl['result'], wls['linux boot']['result'])
            for runs in wl['runs'].values():
                self.assertEqual(len(runs), 2)
        self.assertIsNotNone(self.res['packages'])

    def test_plugins_only_in_their_series(self):
        for wl in self.res['workloads'].values():
            for name, runs in wl['runs'].items():
                for r in runs:
                    self.assertEqual(r['model'] is not None,
                                     name == 'fork+dseg+model', name)
                    self.assertEqual(r['cache'] is not None,
                                     name == 'fork+dseg+cache', name)

    def test_model_counters(self):
        for r in self.model['runs']['fork+dseg+model']:
            m = r['model']
            self.assertEqual(m['preset'], 'skylake')
            c = m['counters'][0]
            translated = sum(p['misses'] for p in c['paths'])
            native = next(p for p in c['paths']
                          if p['path'] == 'native-walk')
            # A kernel in long mode: millions of accesses and fetches,
            # misses in both L1 TLBs, and walks that read memory.
            self.assertGreater(c['accesses'], 10 ** 6)
            self.assertGreater(c['fetches'], 10 ** 6)
            self.assertGreater(c['l1d-misses'], 1000)
            self.assertGreater(c['l1i-misses'], 100)
            self.assertEqual(c['l1d-misses'] + c['l1i-misses'],
                             c['l2-hits'] + translated + c['unmapped'])
            self.assertEqual(native['misses'], translated)
            self.assertGreater(native['refs'], translated)
            self.assertGreater(c['cycles'], 0)
        self.assertIn('model (skylake), timed part: ', self.text)

    def test_cache_report(self):
        for r in self.model['runs']['fork+dseg+cache']:
            c = r['cache']
            self.assertGreater(c['data_accesses'], 10 ** 6)
            self.assertGreater(c['insn_accesses'], 10 ** 6)
            self.assertLessEqual(c['data_misses'], c['data_accesses'])

    def test_ratios_printed(self):
        self.assertRegex(self.text, r'\n  model on / off \(fork\+dseg\) .* '
                         r'target <= 2: (met|missed|undecided)\n')
        self.assertRegex(self.text, r'\n  cache plugin / off \(fork\+dseg\) '
                         r'.* n=2\n')
        self.assertRegex(self.text, r'\n  model / cache plugin .* '
                         r'target <= 1: (met|missed|undecided)\n')


if __name__ == '__main__':
    testing.main()
