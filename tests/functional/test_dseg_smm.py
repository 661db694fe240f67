#!/usr/bin/env python3
"""Direct segments and system management mode.

The guest (tests/guest/dseg_smm.c) raises SMIs natively and in a VM, with
a handler that enters long mode, and checks with tagged memory that
neither segment translates in SMM and that both do again after RSM, with
the DSEG MSRs unchanged.  It reports TAP.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg import testing


class DsegSmmTest(testing.TestCase):

    def test_no_segment_in_smm(self):
        status, console = self.run_guest('dseg_smm', cpu='max,+dseg')
        self.assert_guest_passed(status, console)


if __name__ == '__main__':
    testing.main()
