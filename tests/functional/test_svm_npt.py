#!/usr/bin/env python3
"""SVM nested paging under the fork, without direct segments.

A bare-metal hypervisor (tests/guest/svm_npt.c) runs a 64-bit VM under
non-identity nested page tables with 4-level and 5-level guest and nested
paging, and checks the VM's writes in host memory and its #NPF and #PF
exits.  The guest reports TAP; every check must pass.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg import testing


class SvmNptTest(testing.TestCase):

    def run_npt(self, image, guest_levels, nested_levels):
        status, console = self.run_guest(
            image, append=f'guest_levels={guest_levels}', memory='512M',
            timeout=60)
        self.assert_guest_passed(status, console)
        self.assertIn(f'host and nested paging: {nested_levels} levels, '
                      f'guest paging: {guest_levels} levels', console)
        self.assertIn(f'hello from the nested guest ({guest_levels}-level '
                      f'paging)', console)

    def test_guest4_nested4(self):
        self.run_npt('svm_npt', 4, 4)

    def test_guest5_nested4(self):
        self.run_npt('svm_npt', 5, 4)

    def test_guest4_nested5(self):
        self.run_npt('svm_npt-la57', 4, 5)

    def test_guest5_nested5(self):
        self.run_npt('svm_npt-la57', 5, 5)


if __name__ == '__main__':
    testing.main()
