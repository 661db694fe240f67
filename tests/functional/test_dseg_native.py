#!/usr/bin/env python3
"""The guest segment in host mode (native walk and native direct).

The guest (tests/guest/dseg_native.c) checks translation at the segment's
edges, permissions and TLB invalidation and reports TAP.  Its counter
windows let this test check the exact per-path counters of
docs/specs/direct-segments.rst: N page-walk fills cost L references each
(L = 4 or 5 for 4 KiB pages, one less per larger page size), N
native-direct fills cost none.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg import guests, model, testing
from qemu_dseg.model import ANY, PAGE_1G, PAGE_2M, PAGE_4K

PAGES = 16


class DsegNativeTest(testing.TestCase):

    def run_native(self, image, levels):
        status, console, windows = self.run_guest_windows(
            image, append=f'pages={PAGES}')
        self.assert_guest_passed(status, console)
        self.assertIn(f'{levels}-level paging', console)
        return windows

    def check_walk_window(self, windows, name, levels, page_size):
        c = windows[name]['counters']
        refs = PAGES * model.walk_len(levels, page_size)
        # The guest's own code, stack and data are in the guest segment.
        direct = c['native-direct']['fills']
        self.assertGreater(direct, 0, name)
        model.assert_counters(c, {
            'native-walk': {'fills': PAGES, 'guest-refs': refs,
                            'arch-refs': refs},
            'native-direct': {'fills': direct},
            'guest-segment-hits': direct}, name)

    def check_direct_window(self, windows):
        c = windows['native-direct']['counters']
        self.assertGreater(c['native-walk']['fills'], 0)
        model.assert_counters(c, {
            'native-walk': ANY,
            'native-direct': {'fills': PAGES},
            'guest-segment-hits': PAGES}, 'native-direct')

    def check_windows(self, windows, levels):
        for name, size in (('native-walk-4k', PAGE_4K),
                           ('native-walk-2m', PAGE_2M),
                           ('native-walk-1g', PAGE_1G)):
            self.check_walk_window(windows, name, levels, size)
        self.check_direct_window(windows)

    def test_4level(self):
        self.check_windows(self.run_native('dseg_native', 4), 4)

    def test_5level(self):
        self.check_windows(self.run_native('dseg_native-la57', 5), 5)

    def test_info_dseg_rows_are_query_dseg(self):
        # At each checkpoint (the vCPU halted, its counters still), the
        # path rows of 'info dseg' print what query-dseg returns, path by
        # path: the HMP command names each path's counters right.
        seen = set()

        def at_checkpoint(cp):
            text = vm.cmd('human-monitor-command', command_line='info dseg')
            counters = vm.cmd('query-dseg')[0]['counters']
            rows = {line.split()[0]: [int(n) for n in line.split()[1:5]]
                    for line in text.splitlines()
                    if line.split() and line.split()[0] in model.PATHS}
            self.assertEqual(set(rows), set(model.PATHS), text)
            for path in model.PATHS:
                self.assertEqual(rows[path],
                                 [counters[path][f] for f in model.REF_FIELDS],
                                 f'{cp} {path}')
                if counters[path]['fills']:
                    seen.add(path)

        with self.machine(guests.args('dseg_native', f'pages={PAGES}',
                                      cpu='max,+dseg'),
                          name='dseg_native') as vm:
            vm.launch()
            vm.serve_checkpoints(at_checkpoint, 60)
        self.assertEqual(seen, {'native-walk', 'native-direct'})


if __name__ == '__main__':
    testing.main()
