#!/usr/bin/env python3
"""Nested-page-fault conformance of reserved and must-be-zero bits.

The guest (tests/guest/svm_npf.c) sets a reserved or must-be-zero bit in
a nested entry at every level of the nested tables, on the walk of a guest
page table's gPA and of the final gPA, and checks EXITINFO1 and EXITINFO2
of the #NPF that each read, write and instruction fetch gives, and the
native #PF error code of a reserved bit.  It reports TAP, one check per
case; its console is the conformance table.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg import testing


class SvmNpfTest(testing.TestCase):

    def test_reserved_bits(self):
        status, console = self.run_guest('svm_npf', cpu='max')
        self.assert_guest_passed(status, console)


if __name__ == '__main__':
    testing.main()
