#!/usr/bin/env python3
"""A window mark is exact for the vCPU that writes it.

The guest (tests/guest/dseg_window.c) closes two windows of the same
code, the second with a fixed interrupt pending that becomes deliverable
right after the OUT of the closing mark.  The delivery belongs to the
next window, so both windows count exactly the same.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import sys

from qemu_dseg import guests, testing

ROUNDS = 2                  # tests/guest/dseg_window.c


class DsegWindowTest(testing.TestCase):

    def test_mark_with_interrupt_pending(self):
        windows = []
        with self.machine(guests.args('dseg_window', cpu='max,+dseg',
                                      extra_args=['-device',
                                                  'isa-dseg-window']),
                          name='dseg_window') as vm:
            vm.launch()
            for _ in range(ROUNDS):
                w = vm.serve_window(60)
                windows.append((w.marks, w.info[0]['counters']))
            status = vm.wait_guest_exit(60)
            console = vm.console()
        self.assert_guest_passed(status, console)
        for marks, counters in windows:
            print(f'# window {marks}: {counters}', file=sys.stderr)
        (marks0, quiet), (marks1, pending) = windows
        self.assertEqual((marks0, marks1), ([0, 1], [2, 3]))
        self.assertGreater(quiet['native-walk']['fills'], 0, quiet)
        self.assertEqual(pending, quiet)


if __name__ == '__main__':
    testing.main()
