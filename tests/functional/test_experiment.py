#!/usr/bin/env python3
"""The translation experiment (scripts/dseg-experiment.py), reduced.

Runs the experiment's own code on a small table with few iterations, for
each workload under all six translation modes, and checks what the full
experiment relies on: that every fill of every path costs exactly what
docs/specs/direct-segments.rst gives for 4 KiB pages everywhere (4 for a
native walk, 0 native direct, 24 for a 2D walk, 4 guest direct, 4 VMM
direct with the guest page tables inside the segment, 0 dual direct),
that each mode's fills take its intended path, that the checksums agree
across modes and with an independent model of the workloads written here,
and that a fixed-size TLB makes the counters repeatable.  Wall times are
not checked.

GUPS runs once more with the TLB model (--tlb-model, which the bare-metal
experiment leaves off by default): its configuration is named, and in
every mode the L1 misses are the L2 hits, the misses of the paths and the
unmapped ones, the cycles are l2-cycles per L1 miss plus ref-cycles per
reference, a native-direct or dual-direct miss reads nothing, and the
guest segment (native, guest and dual direct) and the VMM segment (dual
direct) translate at least 99% of the misses.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import io
import json
import math
import os

from qemu_dseg import config, testing
from qemu_dseg.experiment import cli
from qemu_dseg.model import MASK64

SIZE_MB = 4
ITERS = {'gups': 20000, 'chase': 20000, 'scan': 2}
PRESET = 'zen'             # the model of the GUPS run: not the default
SEED = 7
TLB_SIZE = 256

# arch-refs of one fill on each path, 4-level tables with 4 KiB pages.
ARCH_PER_FILL = {'native-walk': 4, 'native-direct': 0, 'walk-2d': 24,
                 'guest-direct': 4, 'vmm-direct': 4, 'dual-direct': 0}
# guest-refs of one fill: the guest (or native) walk, if there is one.
GUEST_PER_FILL = {'native-walk': 4, 'native-direct': 0, 'walk-2d': 4,
                  'guest-direct': 0, 'vmm-direct': 4, 'dual-direct': 0}
# The path each mode's table fills must take.
INTENDED = {'base-native': 'native-walk', 'native-direct': 'native-direct',
            'base-virtualised': 'walk-2d', 'guest-direct': 'guest-direct',
            'vmm-direct': 'vmm-direct', 'dual-direct': 'dual-direct'}


# --- an independent model of tests/guest/lib/workload.c ----------------------

def _xorshift64star(state):
    state ^= state >> 12
    state ^= (state << 25) & MASK64
    state ^= state >> 27
    return state, (state * 0x2545f4914f6cdd1d) & MASK64


def model_checksum(kind, words, iters, seed):
    """The checksum the guest must print for this workload."""
    if kind == 'gups':
        t = list(range(words))
        for _ in range(iters):
            seed, r = _xorshift64star(seed)
            t[r % words] ^= r
        return sum(v * (i | 1) for i, v in enumerate(t)) & MASK64
    if kind == 'chase':
        slots = words // 8
        t = list(range(slots))
        for i in range(slots - 1, 0, -1):
            seed, r = _xorshift64star(seed)
            j = r % i
            t[i], t[j] = t[j], t[i]
        pos = total = 0
        for _ in range(iters):
            pos = t[pos]
            total += pos
        return total & MASK64
    return iters * sum(i ^ seed for i in range(words)) & MASK64


class ExperimentTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.outdir = cls.logs
        cls.results = {}
        cls.text = {}
        for kind, iters in ITERS.items():
            out = os.path.join(cls.outdir, kind)
            # gups twice, to see that a fixed TLB repeats its fills exactly.
            args = ['--bare-metal', '--workload', kind, '--size-mb', str(SIZE_MB),
                    '--iters', str(iters), '--seed', str(SEED),
                    '--tlb-size', str(TLB_SIZE),
                    '--runs', '2' if kind == 'gups' else '1',
                    '--no-upstream', '--qemu', config.QEMU,
                    '--guests', config.GUESTS, '--out', out]
            if kind != 'gups':
                args.append('--no-chart')
            text = io.StringIO()
            cli.main(args, out=text)
            cls.text[kind] = text.getvalue()
            with open(os.path.join(out, 'results.json')) as f:
                cls.results[kind] = json.load(f)
        out = os.path.join(cls.outdir, 'gups-model')
        text = io.StringIO()
        cli.main(['bare-metal', '--workload', 'gups', '--size-mb',
                  str(SIZE_MB), '--iters', str(ITERS['gups']), '--seed',
                  str(SEED), '--tlb-size', str(TLB_SIZE), '--runs', '1',
                  '--no-upstream', '--tlb-model', PRESET,
                  '--qemu', config.QEMU, '--guests', config.GUESTS,
                  '--out', out, '--no-chart'], out=text)
        cls.model_text = text.getvalue()
        with open(os.path.join(out, 'results.json')) as f:
            cls.model_res = json.load(f)

    def workload(self, kind):
        res = self.results[kind]
        self.assertEqual(len(res['workloads']), 1)
        return res['workloads'][0]

    def test_refs_per_fill_exact(self):
        for kind in ITERS:
            for row in self.workload(kind)['modes']:
                where = f"{kind} {row['mode']}"
                c = row['counters']
                for path, per_fill in ARCH_PER_FILL.items():
                    fills = c[path]['fills']
                    self.assertEqual(c[path]['arch-refs'], fills * per_fill,
                                     f'{where}: {path} arch-refs')
                    self.assertEqual(c[path]['guest-refs'],
                                     fills * GUEST_PER_FILL[path],
                                     f'{where}: {path} guest-refs')
                    # QEMU's nested TLB can only save references.
                    self.assertLessEqual(
                        c[path]['nested-refs'],
                        c[path]['arch-refs'] - c[path]['guest-refs'],
                        f'{where}: {path} nested-refs')
                intended = INTENDED[row['mode']]
                self.assertEqual(row['intended_path'], intended, where)
                self.assertEqual(
                    row['paths'][intended]['arch_per_fill'],
                    ARCH_PER_FILL[intended], where)

    def test_intended_path_dominates(self):
        for kind in ITERS:
            for row in self.workload(kind)['modes']:
                where = f"{kind} {row['mode']}"
                intended = INTENDED[row['mode']]
                self.assertEqual(row['dominant_path'], intended, where)
                # Only a handful of code and stack fills take another path.
                other = row['fills'] - row['paths'][intended]['fills']
                self.assertLess(other, 64, where)
                self.assertGreater(row['paths'][intended]['fills'], 500,
                                   where)

    def test_table_exceeds_tlb(self):
        # gups over 1024 pages with 256 entries misses about 3 times in 4.
        wl = self.workload('gups')
        for row in wl['modes']:
            self.assertGreater(row['paths'][row['intended_path']]['fills'],
                               ITERS['gups'] // 2, row['mode'])
        # scan fills each page once per pass (the base native walk path
        # also has the guest's own fills).
        pages = SIZE_MB << 8
        for row in self.workload('scan')['modes']:
            fills = row['paths'][row['intended_path']]['fills']
            self.assertGreaterEqual(fills, ITERS['scan'] * pages, row['mode'])
            self.assertLess(fills, ITERS['scan'] * pages + 64, row['mode'])

    def test_segment_and_filter_events(self):
        for kind in ITERS:
            for row in self.workload(kind)['modes']:
                where = f"{kind} {row['mode']}"
                c = row['counters']
                direct = sum(c[p]['fills'] for p in
                             ('native-direct', 'guest-direct',
                              'dual-direct'))
                self.assertEqual(c['guest-segment-hits'], direct, where)
                self.assertEqual(row['filter_hits'], 0, where)
                self.assertEqual(c['filter-probes'], c['vmm-segment-hits'],
                                 where)
                # One nested step per guest entry read and one for the
                # final gPA, all inside the VMM segment in these modes
                # (the guest's page tables included): 4 + 1 for a
                # VMM-direct fill, 1 for a dual-direct one.
                steps = (5 * c['vmm-direct']['fills']
                         + c['dual-direct']['fills'])
                self.assertEqual(c['vmm-segment-hits'], steps, where)
                if row['mode'] in ('vmm-direct', 'dual-direct'):
                    self.assertGreater(steps, 0, where)

    def test_checksums(self):
        for kind, iters in ITERS.items():
            wl = self.workload(kind)
            # The script asserts that all runs agree; check the value too.
            want = model_checksum(kind, (SIZE_MB << 20) // 8, iters, SEED)
            self.assertEqual(int(wl['checksum'], 16), want, kind)
            self.assertEqual(len(wl['modes']), 6, kind)

    def test_fixed_tlb_repeats(self):
        for row in self.workload('gups')['modes']:
            self.assertEqual(len(row['wall_s']), 2, row['mode'])
            self.assertTrue(row['counters_identical_in_repeats'],
                            row['mode'])

    def test_ratios(self):
        # gups ran two rounds: every ratio of the targets, on
        # both times, with an interval and a verdict.
        rounds = self.workload('gups')['rounds']
        self.assertEqual((rounds['rounds'], rounds['stopped']), (2, 'cap'))
        got = {(r['a'], r['b']): r for r in rounds['ratios']}
        self.assertEqual(set(got), {
            ('vmm-direct', 'base-native'), ('dual-direct', 'native-direct'),
            ('dual-direct', 'base-native'), ('guest-direct', 'base-native'),
            ('native-direct', 'base-native'),
            ('base-virtualised', 'base-native')})
        rows = {r['mode']: r for r in self.workload('gups')['modes']}
        for (a, b), r in got.items():
            for metric in ('wall', 'vcpu'):
                iv = r[metric]
                want = math.sqrt(
                    rows[a][f'{metric}_s'][0] / rows[b][f'{metric}_s'][0]
                    * rows[a][f'{metric}_s'][1] / rows[b][f'{metric}_s'][1])
                self.assertAlmostEqual(iv['ratio'], want, places=9)
                self.assertLessEqual(iv['low'], iv['ratio'])
                self.assertGreaterEqual(iv['high'], iv['ratio'])
                self.assertEqual(iv['rounds'], 2)
                self.assertEqual(iv['verdict'] is None, r['bound'] is None)
        self.assertIn('VMM direct / base native', self.text['gups'])

    def test_output(self):
        text = self.text['gups']
        self.assertIn(f'TLB: {TLB_SIZE} entries per MMU index, '
                      f'direct-mapped, + 8-entry victim', text)
        for label in ('base native', 'native direct', 'base virtualised',
                      'guest direct', 'VMM direct', 'dual direct'):
            self.assertIn(f'\n{label} ', text)
        self.assertEqual(text.count('] gups '), 12)
        with open(os.path.join(self.outdir, 'gups', 'modes.png'),
                  'rb') as f:
            self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')

    def test_model(self):
        cfg = self.model_res['config']['tlb_model']
        self.assertEqual(cfg['preset'], PRESET)
        self.assertIn(f"TLB model: preset {cfg['preset']}", self.model_text)
        self.assertIn('Modelled TLBs (', self.model_text)
        for kind in ITERS:
            self.assertIsNone(self.results[kind]['config']['tlb_model'])
            for row in self.workload(kind)['modes']:
                self.assertIsNone(row['model'], row['mode'])
        wl = self.model_res['workloads'][0]
        for row in wl['modes']:
            m = row['model']
            c = m['counters']
            paths = c['paths']
            l1 = c['l1d-misses'] + c['l1i-misses']
            misses = sum(p['misses'] for p in paths.values())
            refs = sum(p['refs'] for p in paths.values())
            with self.subTest(mode=row['mode']):
                self.assertGreater(l1, ITERS['gups'] // 2)
                self.assertEqual(l1, c['l2-hits'] + misses + c['unmapped'])
                self.assertEqual(c['cycles'], cfg['l2_cycles'] * l1 +
                                 cfg['ref_cycles'] * refs)
                self.assertEqual((m['l1_misses'], m['misses'], m['refs']),
                                 (l1, misses, refs))
                self.assertEqual(paths['native-direct']['refs'], 0)
                self.assertEqual(paths['dual-direct']['refs'], 0)
                if row['mode'] in ('native-direct', 'guest-direct',
                                   'dual-direct'):
                    self.assertGreaterEqual(m['guest_segment_share'], 0.99)
                if row['mode'] == 'dual-direct':
                    self.assertGreaterEqual(m['vmm_segment_share'], 0.99)


if __name__ == '__main__':
    testing.main()
