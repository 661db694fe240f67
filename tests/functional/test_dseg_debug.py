#!/usr/bin/env python3
"""The debugger's view of memory applies the direct segments.

The guest (tests/guest/dseg_debug.c) reads tagged pages through the CPU,
natively with a guest segment and in a VM with a VMM segment, a guest
copy, a non-identity nested mapping and then an escaped page, and stops
at a checkpoint after each.  There this test reads the same linear
addresses with Debian's gdb through QEMU's gdbstub and with the monitor
(HMP x and gva2gpa), and checks that they read the words the CPU read.
At checkpoint "a20" it turns A20 off (port 0x92) while the guest waits,
and checks that gva2gpa applies the A20 mask as a fill would.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import re
import subprocess

from qemu_dseg import guests, testing

# Tagged memory (tests/guest/lib/paging.h): each word holds MEM_TAG | its
# own physical address.
MEM_TAG = 0x7a67000000000000

# Where the CPU's load at each linear page came from, by checkpoint:
# the name of the page whose words it read.
# None: the load faults, and the debugger finds nothing mapped.
EXPECTED = {
    'native': {'P': 'Q'},
    'noncanonical': {'N': None},
    'guest-mode': {'P': 'Q', 'R': 'S', 'T': 'U'},
    'escaped': {'P': 'P', 'R': 'S', 'T': 'U'},
    'high-gpa': {'P': 'Q', 'R': 'S', 'T': 'U'},
}
N_VA = 1 << 47              # tests/guest/dseg_debug.c
A20 = 1 << 20
PORT92_A20 = 0x02           # port 0x92 (fast A20 gate): bit 1 enables A20
# MAXPHYADDR 52, for gPAs above 2^48.
CPU = 'max,+dseg,phys-bits=52'

_PAGES = re.compile(r'# P (0x[0-9a-f]+) Q (0x[0-9a-f]+) R (0x[0-9a-f]+) '
                    r'S (0x[0-9a-f]+) T (0x[0-9a-f]+) U (0x[0-9a-f]+)')


def gdb_read64(socket_path, addr):
    """The 64-bit word at linear ADDR as gdb reads it through the gdbstub,
    in hex, or gdb's error."""
    out = subprocess.run(
        ['gdb', '-batch', '-nx', '-ex', 'set architecture i386:x86-64',
         '-ex', f'target remote {socket_path}',
         '-ex', f'x/1gx {addr:#x}', '-ex', 'detach'],
        capture_output=True, text=True, timeout=60, check=False)
    m = re.search(rf'^{addr:#x}:\s+(0x[0-9a-f]+)$', out.stdout, re.M)
    if m:
        return m.group(1)
    errors = [line for line in out.stderr.splitlines() if 'memory' in line]
    return 'gdb: ' + (errors[0] if errors else out.stdout + out.stderr)


class DsegDebugTest(testing.TestCase):

    maxDiff = None

    def test_debugger_view(self):
        got, want = {}, {}

        def monitor(command):
            return vm.cmd('human-monitor-command', command_line=command)

        def at_checkpoint(name):
            pages = {k: int(v, 16) for k, v in zip(
                'PQRSTU', _PAGES.search(vm.console()).groups())}
            pages['N'] = N_VA
            if name == 'a20':
                # The guest segment maps P to Q + 1 MiB.
                addr = pages['P'] + 8
                port92 = int(monitor('i /b 0x92').split('=')[-1], 16)
                got['a20'] = {}
                for a20 in (False, True):
                    value = port92 & ~PORT92_A20 | (PORT92_A20 if a20 else 0)
                    monitor(f'o /b 0x92 {value:#x}')
                    got['a20'][a20] = monitor(f'gva2gpa {addr:#x}').strip()
                want['a20'] = {False: f'gpa: {pages["Q"] + 8:#x}',
                               True: f'gpa: {(pages["Q"] | A20) + 8:#x}'}
                return
            for linear, source in EXPECTED[name].items():
                addr = pages[linear] + 8
                key = f'{name}: {linear} + 8'
                hmp = vm.cmd('human-monitor-command',
                             command_line=f'x /1gx {addr:#x}')
                gpa = vm.cmd('human-monitor-command',
                             command_line=f'gva2gpa {addr:#x}')
                got[key] = {'gdb x': gdb_read64(sock, addr),
                            'HMP x': hmp.split()[-1],
                            'HMP gva2gpa': gpa.strip()}
                if source is None:
                    want[key] = {'gdb x': 'gdb: Cannot access memory at '
                                 f'address {addr:#x}',
                                 'HMP x': 'memory', 'HMP gva2gpa': 'Unmapped'}
                    continue
                word = hex(MEM_TAG | (pages[source] + 8))
                want[key] = {'gdb x': word, 'HMP x': word,
                             'HMP gva2gpa': f'gpa: {pages[source] + 8:#x}'}

        with self.machine(guests.args('dseg_debug', cpu=CPU),
                          name='dseg_debug') as vm:
            sock = vm.gdbstub()
            vm.launch()
            status = vm.serve_checkpoints(at_checkpoint, 60)
            console = vm.console()
        self.assert_guest_passed(status, console)
        self.assertEqual(len(want), sum(map(len, EXPECTED.values())) + 1)
        self.assertEqual(got, want)


if __name__ == '__main__':
    testing.main()
