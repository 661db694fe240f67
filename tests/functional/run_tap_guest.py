#!/usr/bin/env python3
"""A test guest whose own TAP output is its whole test.

   run_tap_guest.py NAME [--cpu CPU] [--memory SIZE] [--smp N]
                         [--append ARGS]

runs the test guest NAME (tests/guest/NAME.c, which says what it checks)
once with those QEMU options, the defaults of qemu_dseg.guests.args()
for the others, and passes if the guest met its TAP plan with every check
ok and exited with status 0.  Meson runs it for each guest that has 'tap'
options in `guests` of tests/guest/meson.build, under the guest's name;
its logs are those a tests/functional/test_NAME.py would have.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import sys

from qemu_dseg import testing


class TapGuestTest(testing.TestCase):
    """Runs GUEST with OPTIONS (keyword arguments of run_guest())."""

    guest = None
    options = {}

    def test_guest_passed(self):
        status, console = self.run_guest(self.guest, **self.options)
        self.assert_guest_passed(status, console)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('name', help='the test guest')
    parser.add_argument('--cpu', help='-cpu')
    parser.add_argument('--memory', help='-m')
    parser.add_argument('--smp', help='-smp')
    parser.add_argument('--append', help="the guest's command line")
    args = parser.parse_args()
    options = {key: getattr(args, key) for key in ('cpu', 'memory', 'append')
               if getattr(args, key) is not None}
    if args.smp is not None:
        options['extra_args'] = ['-smp', args.smp]
    TapGuestTest.guest = args.name
    TapGuestTest.options = options
    TapGuestTest.log_group = f'test_{args.name}'
    testing.main(argv=sys.argv[:1])


if __name__ == '__main__':
    main()
