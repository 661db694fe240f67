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

import unittest

import dseg_model
from dseg_model import PAGE_1G, PAGE_2M, PAGE_4K
import harness

PAGES = 16


class DsegNativeTest(unittest.TestCase):

    def run_native(self, image, levels):
        status, console, windows = harness.run_guest_windows(
            image, append=f'pages={PAGES}')
        harness.assert_guest_passed(self, status, console)
        self.assertIn(f'{levels}-level paging', console)
        return windows

    def assert_quiet(self, counters, paths, window):
        for path in paths:
            self.assertEqual(counters[path], dict.fromkeys(
                ('fills', 'guest-refs', 'nested-refs', 'arch-refs'), 0),
                f'{window}: {path}')
        for event in ('vmm-segment-hits', 'filter-probes', 'filter-hits'):
            self.assertEqual(counters[event], 0, f'{window}: {event}')

    def check_walk_window(self, windows, name, levels, page_size):
        c = windows[name]['counters']
        refs = PAGES * dseg_model.walk_len(levels, page_size)
        self.assertEqual(c['native-walk'], {
            'fills': PAGES, 'guest-refs': refs, 'nested-refs': 0,
            'arch-refs': refs}, name)
        # The guest's own code, stack and data are in the guest segment.
        direct = c['native-direct']
        self.assertGreater(direct['fills'], 0, name)
        self.assertEqual(direct['arch-refs'] + direct['guest-refs'] +
                         direct['nested-refs'], 0, name)
        self.assertEqual(c['guest-segment-hits'], direct['fills'], name)
        self.assert_quiet(c, dseg_model.PATHS[2:], name)

    def check_direct_window(self, windows):
        c = windows['native-direct']['counters']
        self.assertEqual(c['native-direct'], {
            'fills': PAGES, 'guest-refs': 0, 'nested-refs': 0,
            'arch-refs': 0})
        self.assertEqual(c['guest-segment-hits'], PAGES)
        self.assertGreater(c['native-walk']['fills'], 0)
        self.assert_quiet(c, dseg_model.PATHS[2:], 'native-direct')

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


if __name__ == '__main__':
    harness.main()
