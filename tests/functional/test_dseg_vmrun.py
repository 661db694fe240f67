#!/usr/bin/env python3
"""Direct segments across VMRUN and #VMEXIT, and DSEG MSRs in guest mode.

The guest (tests/guest/dseg_vmrun.c) checks the two copies of the guest
segment, VMRUN's consistency checks of the guest copy and the MSR rules
of guest mode, and reports TAP.  This test also checks query-dseg at a
checkpoint taken inside the VM (guest mode: the current copy is the VM's,
the host's copy is saved) and at one in host mode, and, in the trace of
the dseg_vmrun and dseg_vmexit events, that a VMRUN failing any of its
other consistency checks switched nothing.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import re

from qemu_dseg import model, testing

# The segments dseg_vmrun.c programs (see its *_BASE and *_LIMIT).
HOST_BASE, HOST_LIMIT = 0x1000000000, 0x1000200000
GUEST_BASE, GUEST_LIMIT = 0x2000000000, 0x2000100000
VMM = {'base': 0x80000000, 'limit': 0x80100000, 'offset': 0}
ZERO = {'base': 0, 'limit': 0, 'offset': 0}

# The guest copies of dseg_vmrun.c's check_late_checks(), LATE_BASE(i).
LATE_BASES = [0x5000000000 + (i << 32) for i in range(8)]
LATE_CONTROL = 0x5000000000 + (8 << 32)

_SWITCH = re.compile(r'dseg_(vmrun|vmexit) guest copy base (0x[0-9a-f]+)')


def segment(base, limit, target):
    return {'base': base, 'limit': limit,
            'offset': (target - base) & model.MASK64}


class DsegVmrunTest(testing.TestCase):

    def test_copies_and_guest_mode(self):
        trace = os.path.join(self.logs, 'trace.log')
        status, console, windows = self.run_guest_windows(
            'dseg_vmrun', extra_args=['-trace', 'dseg_vm*',
                                      '-D', trace])
        self.assert_guest_passed(status, console)
        self.assertIn(f'late-check bases {LATE_BASES[0]:#x}..'
                      f'{LATE_BASES[-1]:#x}, control {LATE_CONTROL:#x}',
                      console)
        with open(trace, encoding='utf-8') as f:
            switches = [(event, int(base, 16))
                        for event, base in _SWITCH.findall(f.read())]
        # The control VMRUN switched to its copy and its #VMEXIT wrote it.
        self.assertEqual([f'{e} {b:#x}' for e, b in switches
                          if b == LATE_CONTROL],
                         [f'vmrun {LATE_CONTROL:#x}',
                          f'vmexit {LATE_CONTROL:#x}'])
        # The VMRUNs that failed a consistency check switched nothing.
        self.assertEqual([f'{e} {b:#x}' for e, b in switches
                          if b in LATE_BASES], [])
        m = re.search(r'host target (0x[0-9a-f]+), guest target '
                      r'(0x[0-9a-f]+)', console)
        self.assertIsNotNone(m)
        host = segment(HOST_BASE, HOST_LIMIT, int(m.group(1), 16))
        guest = segment(GUEST_BASE, GUEST_LIMIT, int(m.group(2), 16))

        inside = windows['guest-mode']
        self.assertTrue(inside['guest-mode'])
        self.assertEqual(inside['guest-segment'], guest)
        self.assertEqual(inside['host-guest-segment'], host)
        self.assertEqual(inside['vmm-segment'], VMM)

        outside = windows['host-mode']
        self.assertFalse(outside['guest-mode'])
        self.assertEqual(outside['guest-segment'], host)
        self.assertEqual(outside['host-guest-segment'], ZERO)
        self.assertEqual(outside['vmm-segment'], VMM)

    def test_feature_off(self):
        # The guest pages, enters long mode and runs a VM with nested
        # paging before its checkpoint, but without the feature nothing
        # is counted.
        status, console, windows = self.run_guest_windows(
            'dseg_vmrun', cpu='max', append='dseg=0')
        self.assert_guest_passed(status, console)
        info = windows['feature-off']
        self.assertFalse(info['enabled'])
        model.assert_counters(info['counters'], {}, 'feature off')


if __name__ == '__main__':
    testing.main()
