#!/usr/bin/env python3
"""The overhead benchmark (scripts/bench-overhead.py), reduced: its
comparison of the modelled TLB hierarchy on bare-metal GUPS.

Runs the benchmark's own code with GUPS over 4 MiB (1024 pages) and
20,000 updates, two rounds of each comparison, without upstream: the
fork with direct segments off and on, then the model's comparison of
fork+dseg (the model off), fork+dseg+model (the dseg-tlb plugin, default
preset) and fork+dseg+cache (QEMU's cache plugin).  Checks that each
series ran what it names and no more: the model on in every run of the
model series and in no other, with counters that add up and repeat
exactly; the cache plugin's report in every run of the cache series and
in no other; every ratio, with its bound, computed from its own series;
the same checksum everywhere.  Times are not checked.

Stated before the run, for the model (default preset: Skylake, L1 data
TLB 64 entries, L2 1536): the window (the update loop) makes a load and
a store per update and fetches at least one block per update; the
1024 pages of the table miss the L1 most of the time but fit in the L2,
so the model translates each of them once (the loop's first touch; the
table was written before through another mapping) and a handful of
others, all by a native walk, and every L1 miss is an L2 hit or a
translation.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import math

from qemu_dseg import config, testing
from qemu_dseg.experiment import compare

SIZE_MB = 4
PAGES = SIZE_MB << 8
ITERS = 20000
MODEL_TITLE = f'gups {SIZE_MB} MiB, model'


class BenchOverheadTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.text, cls.res = cls.run_bench([
            '--workloads', 'gups', '--no-upstream',
            '--size-mb', str(SIZE_MB), '--iters', str(ITERS),
            '--min-rounds', '2', '--max-rounds', '2',
            '--plugin-max-rounds', '2'])
        cls.model = cls.res['workloads'][MODEL_TITLE]

    def test_comparisons(self):
        wls = self.res['workloads']
        self.assertEqual(list(wls), [f'gups {SIZE_MB} MiB', MODEL_TITLE])
        self.assertEqual(sorted(wls[f'gups {SIZE_MB} MiB']['runs']),
                         ['fork', 'fork+dseg'])
        self.assertEqual(sorted(self.model['runs']),
                         ['fork+dseg', 'fork+dseg+cache', 'fork+dseg+model'])
        for title, wl in wls.items():
            self.assertEqual((wl['rounds'], wl['stopped']), (2, 'cap'), title)
            for name, runs in wl['runs'].items():
                self.assertEqual(len(runs), 2, f'{title} {name}')
        # One checksum, in every run of both comparisons.
        self.assertEqual(wls[f'gups {SIZE_MB} MiB']['result'],
                         self.model['result'])
        self.assertRegex(self.model['result'], r'^0x[0-9a-f]+$')

    def test_emulators(self):
        emus = self.res['emulators']
        qemu = config.QEMU
        self.assertEqual(emus['fork+dseg+model']['args'],
                         ['-plugin', config.plugin('dseg-tlb', qemu)])
        self.assertEqual(emus['fork+dseg+cache']['args'],
                         ['-plugin', config.plugin('cache', qemu),
                          '-d', 'plugin'])
        for name in ('fork', 'fork+dseg'):
            self.assertEqual(emus[name]['args'], [], name)
        self.assertEqual({e['binary'] for e in emus.values()}, {qemu})

    def test_model_only_in_model_series(self):
        for name, runs in self.model['runs'].items():
            for r in runs:
                self.assertEqual(r['model'] is not None,
                                 name == 'fork+dseg+model', name)
                self.assertEqual(r['cache'] is not None,
                                 name == 'fork+dseg+cache', name)
        for r in self.res['workloads'][f'gups {SIZE_MB} MiB']['runs'][
                'fork+dseg']:
            self.assertEqual((r['model'], r['cache']), (None, None))

    def test_model_counters(self):
        runs = self.model['runs']['fork+dseg+model']
        first = runs[0]['model']
        self.assertEqual(first['preset'], 'skylake')
        self.assertEqual(len(first['counters']), 1)
        c = first['counters'][0]
        paths = {p['path']: p for p in c['paths']}
        translated = sum(p['misses'] for p in c['paths'])
        self.assertGreaterEqual(c['accesses'], 2 * ITERS)
        self.assertLess(c['accesses'], 2 * ITERS + 1000)
        self.assertGreaterEqual(c['fetches'], ITERS)
        # Most updates miss the 64-entry L1 data TLB...
        self.assertGreater(c['l1d-misses'], ITERS // 2)
        # ...and hit the L2, which holds the whole table.
        self.assertEqual(c['l1d-misses'] + c['l1i-misses'],
                         c['l2-hits'] + translated + c['unmapped'])
        self.assertEqual(paths['native-walk']['misses'], translated)
        self.assertGreaterEqual(translated, PAGES)
        self.assertLess(translated, PAGES + 16)
        self.assertEqual((c['unmapped'], c['unmodelled']), (0, 0))
        # A fixed access stream: the same counters in every run.
        for r in runs[1:]:
            self.assertEqual(r['model']['counters'], first['counters'])
        self.assertIn('model (skylake), timed part: ', self.text)
        self.assertIn('the same in every run', self.text)

    def test_cache_report(self):
        for r in self.model['runs']['fork+dseg+cache']:
            c = r['cache']
            # The whole run: the table's set-up, the loop, the firmware.
            self.assertGreater(c['data_accesses'], 2 * ITERS)
            self.assertLessEqual(c['data_misses'], c['data_accesses'])
            self.assertGreater(c['insn_accesses'], 0)
        self.assertIn('cache plugin, whole run: ', self.text)

    def test_ratios(self):
        runs = self.model['runs']
        got = [(r['label'], r['a'], r['b'], r['bound'])
               for r in self.model['ratios']]
        self.assertEqual(got, [
            ('model on / off (fork+dseg)', 'fork+dseg+model', 'fork+dseg',
             2.0),
            ('cache plugin / off (fork+dseg)', 'fork+dseg+cache',
             'fork+dseg', None),
            ('model / cache plugin', 'fork+dseg+model', 'fork+dseg+cache',
             1.0)])
        for r in self.model['ratios']:
            for metric in ('wall', 'vcpu'):
                iv = r[metric]
                a = [m[f'{metric}_s'] for m in runs[r['a']]]
                b = [m[f'{metric}_s'] for m in runs[r['b']]]
                self.assertAlmostEqual(
                    iv['ratio'], math.sqrt(a[0] / b[0] * a[1] / b[1]),
                    places=9)
                self.assertLessEqual(iv['low'], iv['ratio'])
                self.assertGreaterEqual(iv['high'], iv['ratio'])
                self.assertEqual(iv['verdict'] is None, r['bound'] is None)
            # Printed by vCPU time, with its verdict.
            self.assertIn('  ' + compare.format_ratio(r, 'vcpu') + '\n',
                          self.text)
        self.assertRegex(self.text, r'model on / off \(fork\+dseg\) .* '
                         r'target <= 2: (met|missed|undecided)\n')
        self.assertRegex(self.text, r'model / cache plugin .* '
                         r'target <= 1: (met|missed|undecided)\n')


if __name__ == '__main__':
    testing.main()
