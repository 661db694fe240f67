#!/usr/bin/env python3
"""Nested paging under a host with paging off.

The guest (tests/guest/svm_nopg.c) leaves long mode for 32-bit protected
mode with CR0.PG = 0, which VMRUN does not refuse with NP_ENABLE = 1, and
runs a 64-bit VM that loads one word of each of PAGES pages.  The nested
dimension then translates nothing: the window's 2D-walk fills read no
nested entry, and each costs exactly its guest entries.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import sys

from qemu_dseg import guests, testing

PAGES = 64                  # tests/guest/svm_nopg.c


class SvmNopgTest(testing.TestCase):

    def test_nested_dimension_reads_nothing(self):
        windows = {}

        def at_checkpoint(name):
            windows[name] = vm.counter_window()[0]['counters']

        with self.machine(guests.args('svm_nopg', cpu='max,+dseg'),
                          name='svm_nopg') as vm:
            vm.launch()
            status = vm.serve_checkpoints(at_checkpoint, 60)
            console = vm.console()
        self.assert_guest_passed(status, console)
        w = windows['nopg']['walk-2d']
        print(f'# nopg window: walk-2d {w}', file=sys.stderr)
        self.assertGreaterEqual(w['fills'], PAGES, w)
        self.assertEqual(w['nested-refs'], 0, w)
        self.assertEqual(w['arch-refs'], w['guest-refs'], w)


if __name__ == '__main__':
    testing.main()
