#!/usr/bin/env python3
"""SVM intercepts as AMD specifies them, where upstream QEMU 10.0 differs.

The guest (tests/guest/svm_intercept.c) runs one-instruction VM functions
with chosen intercepts and checks each #VMEXIT's exit code and RIP: INT3
raises #BP, which the exception intercept catches whether or not the
INTn intercept is set; INTn, INT 3 (CD 03) included, is the INTn
intercept's.  It reports TAP.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg import testing


class SvmInterceptTest(testing.TestCase):

    def test_intercepts(self):
        status, console = self.run_guest('svm_intercept', cpu='max')
        self.assert_guest_passed(status, console)


if __name__ == '__main__':
    testing.main()
