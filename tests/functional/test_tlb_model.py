#!/usr/bin/env python3
"""The modelled TLB hierarchy against predictions stated before the run.

Both guests run windows, each a CR3 write (unless said otherwise) and
then PASSES passes over the pages of one region, reading one word per
page, with the code and stack in global pages; L is the paging depth (4
or 5, the same in both dimensions).  The geometry is the Skylake preset
(L1 data TLB: 16 sets of 4 ways of 4 KiB entries; L2: 128 sets of 12
ways) with a 32-entry page walk cache and a 64-entry nested TLB, or
with neither.

Host mode (tests/guest/tlb_model.c):

  A  32 non-global pages, cold       32 walks of L + 31 references (the
                                     first walk reads every level, the
                                     others their leaf, the upper
                                     levels being in the walk cache)
  A  again: the CR3 write dropped    the same
     them, and the walk cache
  B  32 global pages, cold           32 walks, L + 31 references
  B  again: they survive the write   no miss
  B  after INVLPG of one page        1 walk of L references (INVLPG
                                     drops the walk cache too)
  C  68 non-global pages             68 walks, L + 67 references; the
                                     next passes miss the L1 at the 20
                                     pages of the four sets that hold 5
                                     of them (LRU), all in the L2

Nested paging and the segments (tests/guest/tlb_model_2d.c; region A
of 32 pages, the guest tables in a 2 MiB region of their own, A's data
in another, all on 4 KiB nested pages).  With the walk caches:

  0  VMRUN flushed the ASID         2-D walks.  A's lower three guest
                                     tables are its own, its upper L - 3
                                     the image mapping's, whose nested
                                     translations the VM's first fetch
                                     left in the nested TLB.  The first
                                     walk reads one upper entry that the
                                     walk cache lacks (at L = 4 the root
                                     entry; at L = 5 the root entry is
                                     the image's, cached, and the next
                                     one is new), then for each lower
                                     level its entry and its table's
                                     nested leaf (the upper nested levels
                                     are cached), then the data's nested
                                     PDE and leaf: 9; the others read
                                     their guest leaf and the data's
                                     nested leaf: 9 + 62 = 71 in all
  2  a VMRUN that flushes nothing    no miss: the ASID kept A's entries
                                     across #VMEXIT and VMRUN
  4  A again                         the nested TLB holds every table
                                     and data page: L + 31, as native
  6  guest segment (VMCB), no CR3    guest-direct, no reference: the
     write                           VMRUN that loaded the segment
                                     dropped the VM's entries in its
                                     range, those of window 4
  8  the same in another VMRUN,      guest-direct again: the world
     no CR3 write                    switches dropped what the guest
                                     segment had translated
 10  VMM segment (its WRMSR          vmm-direct: the first walk reads
     invalidated everything, and     the L - 3 upper entries, and the
     the CR3 write drops the guest   lower three with their tables'
     walk cache)                     nested leaves: L + 3; the others
                                     their guest leaf: L + 34 in all
 12  A again                         vmm-direct, L + 31
 14  both segments                   dual-direct, no reference

and in the host, over region H (32 non-global pages) with no CR3 write:

 16  guest segment over H            native-direct, no reference
 18  the segment off: its WRMSR      32 native walks; the first reads
     dropped what it translated      the entries that the walk cache
                                     lacks, which are 4 (at L = 5 the
                                     root entry is the host's image's),
                                     the others their leaf: 4 + 31
 20  the segment over a range        no miss: a guest-segment WRMSR
     beside H                        drops only what the segment made
                                     and what maps its new range
 22  the segment over H again        native-direct: the WRMSRs dropped
                                     the walked entries of H

With no walk cache and no nested TLB every walk costs what the
architecture says: a 2-D walk L^2 + 2L (24 at L = 4, 35 at L = 5), a
guest-direct miss L, a VMM-direct one L^2 + L.

Every window has PASSES x pages accesses and no instruction-TLB miss,
no other path counts, and cycles = 7 per L1 miss + 20 per reference
(the default costs).

A replay: the nested guest runs again with every operation on its model
traced (dseg_tlb_* trace events), and qemu_dseg.tlbreplay, written
apart from the C model, replays the trace: every lookup, walk-cache read
and nested-TLB lookup must have the outcome the fork recorded.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import subprocess
import sys

from qemu_dseg import config, guests, testing, tlbreplay

PASSES = 3                  # tests/guest/tlb_model*.c
L2_CYCLES, REF_CYCLES = 7, 20
CACHES = 'pwc=32,ntlb=64'
NO_CACHES = 'pwc=0,ntlb=0'


def native_predictions(levels):
    """{opening mark: (pages, L1 misses, L2 hits, {path: (misses, refs)})}."""
    return {
        0: (32, 32, 0, {'native-walk': (32, levels + 31)}),
        2: (32, 32, 0, {'native-walk': (32, levels + 31)}),
        4: (32, 32, 0, {'native-walk': (32, levels + 31)}),
        6: (32, 0, 0, {}),
        8: (32, 1, 0, {'native-walk': (1, levels)}),
        10: (68, 68 + 2 * 20, 2 * 20, {'native-walk': (68, levels + 67)}),
    }


def nested_predictions(levels, caches):
    n = 32
    if caches:
        refs = {'cold': 9 + 62, 'warm': levels + 31,
                'guest-direct': 0, 'vmm-cold': levels + 34,
                'vmm-warm': levels + 31, 'native': 4 + 31}
    else:
        walk = levels * levels + 2 * levels
        refs = {'cold': n * walk, 'warm': n * walk,
                'guest-direct': n * levels,
                'vmm-cold': n * (levels * levels + levels),
                'vmm-warm': n * (levels * levels + levels),
                'native': n * levels}
    return {
        0: (n, n, 0, {'walk-2d': (n, refs['cold'])}),
        2: (n, 0, 0, {}),
        4: (n, n, 0, {'walk-2d': (n, refs['warm'])}),
        6: (n, n, 0, {'guest-direct': (n, refs['guest-direct'])}),
        8: (n, n, 0, {'guest-direct': (n, refs['guest-direct'])}),
        10: (n, n, 0, {'vmm-direct': (n, refs['vmm-cold'])}),
        12: (n, n, 0, {'vmm-direct': (n, refs['vmm-warm'])}),
        14: (n, n, 0, {'dual-direct': (n, 0)}),
        16: (n, n, 0, {'native-direct': (n, 0)}),
        18: (n, n, 0, {'native-walk': (n, refs['native'])}),
        20: (n, 0, 0, {}),
        22: (n, n, 0, {'native-direct': (n, 0)}),
    }


# An L1 data TLB that a window's 32 pages miss at every access (LRU).
SMALL_L1 = 'l1d=8:4k'
# What segments alone translate fills the L1 alone.
L1_ONLY_PATHS = ('native-direct', 'dual-direct')


def small_l1_predictions(predictions):
    """PREDICTIONS with the L1 data TLB of SMALL_L1: every access misses
    it and the L2 answers all but the misses that translate.  Those are
    the same, as every window's pages fit the L2, except where segments
    alone translated, which are not in the L2: there every access
    translates again, at no reference."""
    small = {}
    for mark, (pages, _, _, paths) in predictions.items():
        paths = {p: (PASSES * pages, refs) if p in L1_ONLY_PATHS
                 else (misses, refs)
                 for p, (misses, refs) in paths.items()}
        translated = sum(misses for misses, _ in paths.values())
        small[mark] = (pages, PASSES * pages, PASSES * pages - translated,
                       paths)
    return small


class TlbModelTest(testing.TestCase):

    def run_windows(self, name, cpu, options, count, extra_args=()):
        windows = {}
        args = guests.args(name, cpu=cpu, extra_args=[
            '-device', 'isa-dseg-window',
            '-plugin', f'{config.TLB_PLUGIN},preset=skylake,{options}',
            *extra_args])
        with self.machine(args, name=name) as vm:
            vm.launch()
            model = vm.cmd('query-dseg-model')
            self.assertEqual(model['preset'], 'skylake')
            self.geometry = model['geometry']
            for _ in range(count):
                w = vm.serve_window(60)
                windows[w.marks[0]] = w.info[0]['model']
            status = vm.wait_guest_exit(60)
            console = vm.console()
        self.assert_guest_passed(status, console)
        return windows

    def check(self, name, predictions, cpu='max', options=CACHES):
        windows = self.run_windows(name, cpu, options, len(predictions))
        for mark, model in sorted(windows.items()):
            print(f'# {options} window {mark}: {model}', file=sys.stderr)
        self.assertEqual(sorted(windows), sorted(predictions))
        for mark, (pages, l1d, l2, paths) in predictions.items():
            m = windows[mark]
            got_paths = {p['path']: (p['misses'], p['refs'])
                         for p in m['paths']}
            want_paths = {p: paths.get(p, (0, 0)) for p in got_paths}
            refs = sum(r for _, r in paths.values())
            got = (m['accesses'], m['l1d-misses'], m['l2-hits'],
                   m['l1i-misses'], m['unmapped'], m['unmodelled'],
                   got_paths, m['cycles'])
            want = (PASSES * pages, l1d, l2, 0, 0, 0, want_paths,
                    L2_CYCLES * l1d + REF_CYCLES * refs)
            self.assertEqual(got, want, f'{name} {options}: window {mark}')

    def test_native_4level(self):
        self.check('tlb_model', native_predictions(4))

    def test_native_5level(self):
        self.check('tlb_model-la57', native_predictions(5))

    def test_nested_4level(self):
        self.check('tlb_model_2d', nested_predictions(4, True),
                   cpu='max,+dseg')

    def test_nested_5level(self):
        self.check('tlb_model_2d-la57', nested_predictions(5, True),
                   cpu='max,+dseg')

    def test_nested_no_walk_caches_4level(self):
        self.check('tlb_model_2d', nested_predictions(4, False),
                   cpu='max,+dseg', options=NO_CACHES)

    def test_nested_small_l1(self):
        """The L2 keeps what walks made and what the guest segment made
        with a nested step (windows 6 and 8: 32 guest-direct misses, then
        L2 hits), not what segments alone made."""
        self.check('tlb_model_2d', small_l1_predictions(
            nested_predictions(4, True)), cpu='max,+dseg',
            options=f'{CACHES},{SMALL_L1}')

    def replay(self, name, cpu, count):
        trace = os.path.join(self.logs, f'{name}.trace')
        self.run_windows(name, cpu, CACHES, count,
                         ['-trace', 'dseg_tlb_*', '-D', trace])
        with open(trace) as f:
            r = tlbreplay.replay(self.geometry, f)
        print(f'# {name}: replayed {r.operations} operations: '
              f'{r.outcomes}, invalidations {r.flushes}', file=sys.stderr)
        self.assertEqual((r.mismatch_count, r.mismatches), (0, []))
        return r

    def test_trace_replays(self):
        native = self.replay('tlb_model', 'max', len(native_predictions(4)))
        nested = self.replay('tlb_model_2d', 'max,+dseg',
                             len(nested_predictions(4, True)))
        # The traces exercised every outcome and invalidation they can.
        for outcome in [('lookup', tlbreplay.HIT_L1),
                        ('lookup', tlbreplay.HIT_L2),
                        ('lookup', tlbreplay.MISS), ('pwc', True),
                        ('pwc', False), ('ntlb', True), ('ntlb', False)]:
            self.assertGreater(nested.outcomes.get(outcome, 0), 0, outcome)
        self.assertEqual(sorted(nested.flushes),
                         ['all', 'asid', 'direct', 'nonglobal', 'segment'])
        self.assertIn('page', native.flushes)

    def test_bad_options(self):
        """A wrong option stops QEMU at start with a message."""
        for option, message in [
                ('preset=nehalem', "dseg-tlb: preset 'nehalem' is not one "
                                   "of sandy-bridge, skylake, zen"),
                ('l2=64x3:4k', "dseg-tlb: l2=64x3:4k: an array's ways must "
                               "divide its entries"),
                ('l1d=0', 'the L1 TLBs need an array each'),
                ('ref-cycles=-1', "dseg-tlb: ref-cycles: '-1' is not a "
                                  "number of cycles"),
                ('pwc', 'dseg-tlb: pwc=on: '),
                ('colour=red', 'the parts of a geometry are l1d, l1i, l2, '
                               'l2i, pwc and ntlb')]:
            r = subprocess.run(
                [config.QEMU, '-M', 'q35', '-display', 'none', '-S',
                 '-nic', 'none', '-vga', 'none',
                 '-plugin', f'{config.TLB_PLUGIN},{option}'],
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=60, check=False)
            self.assertNotEqual(r.returncode, 0, option)
            self.assertIn(message, r.stderr, option)

    def test_query_model_without_plugin(self):
        with self.machine(['-M', 'q35', '-S']) as vm:
            vm.launch()
            r = vm.qmp('query-dseg-model')
            self.assertIn('the modelled TLB hierarchy is off',
                          r['error']['desc'])
            self.assertNotIn('model', vm.cmd('query-dseg')[0])

    def test_nested_no_walk_caches_5level(self):
        self.check('tlb_model_2d-la57', nested_predictions(5, False),
                   cpu='max,+dseg', options=NO_CACHES)


if __name__ == '__main__':
    testing.main()
