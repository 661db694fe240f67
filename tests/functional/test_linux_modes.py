#!/usr/bin/env python3
"""All six translation modes under Linux: a user-space GUPS, one window.

The same static program, tests/guest/linux/gups.c, runs under Debian's
unmodified cloud kernel in each translation mode: directly on the fork
(base native, native direct) and under the thin test hypervisor
(tests/guest/thinvmm/: base virtualised and guest direct with nested
paging only, VMM direct and dual direct with a VMM segment over the
guest's RAM; guest_dseg=1 passes the guest segment through).  In the
direct modes of the guest dimension its table is a primary region of the
guest module contrib/linux/dseg; otherwise anonymous memory on 4 KiB
pages.  The program marks its update loop as a counter window on the
isa-dseg-window device; the test reads the counters of exactly that
window.  Linux runs with 4-level paging (no5lvl); every nested page of
thinvmm is 4 KiB (m = 4).

Checks, per mode: the checksum is the same in every mode; at least 99%
of the window's fills took the mode's path; the arch-refs of that path
are what the spec's reference model gives from its fills and guest-refs
(native-walk and vmm-direct: arch = guest; walk-2d: arch = 5 guest + 4
fills; guest-direct: 4 per fill; native-direct and dual-direct: 0), and
the architectural references per fill round to the table's 4 KiB value
(4, 0, 24, 4, 4, 0).

SPDX-License-Identifier: GPL-2.0-or-later
"""

import re

from qemu_dseg import assets, boot, guests, model, testing
from qemu_dseg.machine import Machine

TABLE_MIB = 256
ITERS = 1 << 18
SEED = 1
POOL_BASE, POOL_SIZE = 0x140000000, 320 << 20   # RAM above 4 GiB
LINUX_CMDLINE = 'no5lvl nokaslr'
HOST_MB = 6144              # q35: 2 GiB below 4 GiB, 4 GiB above
# A softmmu TLB of fixed size: GUPS's fills do not depend on how far a
# dynamic TLB grew while the table was written.
TLB_SIZE = 256
M = 4                       # thinvmm's nested walks: 4 KiB pages, 4 levels

INIT = f"""#!/bin/sh
{assets.INIT_PRELUDE}
table=
if grep -q {boot.REGION_FLAG} /proc/cmdline; then
    insmod /lib/modules/dseg.ko pool_base={POOL_BASE:#x} \\
        pool_size={POOL_SIZE:#x} || echo INSMOD-FAILED
    table=--region
fi
/bin/gups $table --window {TABLE_MIB} {ITERS} {SEED}
{assets.EPILOGUE}"""

_GUPS = re.compile(r'^GUPS mib (\d+) iters (\d+) seed (\d+) table (\w+) '
                   r'checksum (0x[0-9a-f]+)$', re.M)


class LinuxModesTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        files = testing.read_files({
            '/lib/modules/dseg.ko': assets.dseg_module(),
            '/bin/gups': guests.path('gups')})
        cls.linux = testing.linux_image(cls.logs, INIT, extra_files=files,
                                        modules=())
        cls.results = {mode.name: cls.run_mode(mode) for mode in model.MODES}

    @classmethod
    def run_mode(cls, mode):
        """Boot, serve the two window marks; return (counters of the
        window on vCPU 0, console)."""
        args = boot.linux_args(
            cls.linux, mode, memory_mb=HOST_MB, tlb_size=TLB_SIZE,
            cmdline=LINUX_CMDLINE, pool=(POOL_BASE, POOL_SIZE),
            extra_args=['-device', 'isa-dseg-window'])
        with Machine(args, name=mode.name, log_dir=cls.logs) as vm:
            vm.launch()
            marks, info, _, _ = vm.serve_window(300)
            counters = info[0]['counters']
            vm.wait_console(_GUPS.pattern + '|GUPS-FAIL.*|INSMOD-FAILED',
                            120)
            vm.wait_exit(60)
            console = vm.console()
        if marks != [1, 2]:
            raise AssertionError(f'{mode.name}: window marks {marks}')
        return counters, console

    def test_checksums_agree(self):
        found = {}
        for mode, (_, console) in self.results.items():
            m = _GUPS.search(console)
            self.assertIsNotNone(m, f'{mode}:\n{console[-2000:]}')
            self.assertEqual(m.group(4), 'region' if model.MODE_BY_NAME[
                mode].guest_segment else 'anon', mode)
            found[mode] = m.group(5)
        self.assertEqual(len(set(found.values())), 1, found)

    def test_paths_and_references(self):
        for mode, (c, _) in self.results.items():
            with self.subTest(mode=mode):
                self.check_mode(mode, c)

    def check_mode(self, mode, c):
        path = model.MODE_BY_NAME[mode].path
        p = c[path]
        fills = sum(c[q]['fills'] for q in model.PATHS)
        share = p['fills'] / fills
        per_fill = p['arch-refs'] / p['fills']
        print(f'# {mode}: {fills} fills, {p["fills"]} on {path} '
              f'({100 * share:.2f}%), arch/fill {per_fill:.2f}')
        self.assertGreaterEqual(p['fills'], ITERS // 2, c)
        self.assertGreaterEqual(share, 0.99, c)
        guest = p['guest-refs']
        arch = {
            'native-walk': guest,
            'native-direct': 0,
            'walk-2d': (M + 1) * guest + M * p['fills'],
            'guest-direct': M * p['fills'],
            'vmm-direct': guest,
            'dual-direct': 0,
        }[path]
        self.assertEqual(p['arch-refs'], arch, c)
        # The table's fills: 4-level guest walks to 4 KiB pages.
        table = {'native-walk': 4, 'native-direct': 0,
                 'walk-2d': model.arch_refs_nested(4, M, M),
                 'guest-direct': M, 'vmm-direct': 4, 'dual-direct': 0}[path]
        self.assertEqual(round(per_fill), table, c)


if __name__ == '__main__':
    testing.main()
