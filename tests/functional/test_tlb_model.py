#!/usr/bin/env python3
"""The modelled TLB hierarchy in host mode, against predictions.

The guest (tests/guest/tlb_model.c) runs six windows, each a CR3 write
and then PASSES passes over the pages of one region, reading one word
per page.  On the Skylake preset (L1 data TLB: 16 sets of 4 ways of
4 KiB entries; L2: 128 sets of 12 ways) with a 32-entry page walk cache,
and L the paging depth (4 or 5), the model must count, stated before
the run:

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

with PASSES * pages accesses, no instruction-TLB miss (code is in global
pages), no other path, and cycles = 7 per L1 miss + 20 per reference
(the default costs).

SPDX-License-Identifier: GPL-2.0-or-later
"""

import sys

from qemu_dseg import config, guests, testing

PASSES = 3                  # tests/guest/tlb_model.c
L2_CYCLES, REF_CYCLES = 7, 20


def predictions(levels):
    """{opening mark: (pages, L1 data misses, L2 hits, walks, refs)}."""
    return {
        0: (32, 32, 0, 32, levels + 31),
        2: (32, 32, 0, 32, levels + 31),
        4: (32, 32, 0, 32, levels + 31),
        6: (32, 0, 0, 0, 0),
        8: (32, 1, 0, 1, levels),
        10: (68, 68 + 2 * 20, 2 * 20, 68, levels + 67),
    }


class TlbModelTest(testing.TestCase):

    def run_windows(self, name):
        windows = {}
        args = guests.args(name, cpu='max', extra_args=[
            '-device', 'isa-dseg-window',
            '-plugin', f'{config.TLB_PLUGIN},preset=skylake,pwc=32'])
        with self.machine(args, name=name) as vm:
            vm.launch()
            self.assertEqual(vm.cmd('query-dseg-model')['preset'],
                             'skylake')
            for _ in range(len(predictions(4))):
                w = vm.serve_window(60)
                windows[w.marks[0]] = w.info[0]['model']
            status = vm.wait_guest_exit(60)
            console = vm.console()
        self.assert_guest_passed(status, console)
        return windows

    def check(self, name, levels):
        windows = self.run_windows(name)
        for mark, model in sorted(windows.items()):
            print(f'# window {mark}: {model}', file=sys.stderr)
        self.assertEqual(sorted(windows), sorted(predictions(levels)))
        for mark, (pages, l1d, l2, walks, refs) in predictions(levels).items():
            m = windows[mark]
            paths = {p['path']: (p['misses'], p['refs']) for p in m['paths']}
            want_paths = {p: (0, 0) for p in paths}
            want_paths['native-walk'] = (walks, refs)
            got = (m['accesses'], m['l1d-misses'], m['l2-hits'],
                   m['l1i-misses'], m['unmapped'], m['unmodelled'], paths,
                   m['cycles'])
            want = (PASSES * pages, l1d, l2, 0, 0, 0, want_paths,
                    L2_CYCLES * l1d + REF_CYCLES * refs)
            self.assertEqual(got, want, f'window {mark}')

    def test_4level(self):
        self.check('tlb_model', 4)

    def test_5level(self):
        self.check('tlb_model-la57', 5)


if __name__ == '__main__':
    testing.main()
