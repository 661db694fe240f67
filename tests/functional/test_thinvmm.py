#!/usr/bin/env python3
"""Unmodified Linux under emulated nested paging: the thinvmm hypervisor.

tests/guest/thinvmm/ is a thin bare-metal hypervisor.  QEMU starts it as
a multiboot kernel and passes Debian's unmodified cloud bzImage and a
busybox initramfs (python/qemu_dseg/assets/) as its two multiboot modules; it boots
them as its SVM guest through the Linux boot protocol with nested paging,
everything passed through (serial port, timers, APIC, ACPI tables, PCI),
and 4 GiB of guest RAM: 15 MiB below 16 MiB and the rest above 4 GiB,
backed at non-zero offsets in host memory (QEMU's -m 6G leaves 4 GiB of
host RAM above 4 GiB).  The layout line and Linux's e820 map are checked,
and at least 99% of the guest's RAM is under the VMM segment in mode=vmm.

Each run executes the same deterministic workload in the guest (a large
file in tmpfs written from a seeded busybox seq, copied, and md5sum'd),
which must give the same digest natively (Linux booted directly by the
fork), in mode=base (NPT only) and in mode=vmm (NPT plus one VMM segment
over guest RAM).  A tiny static program in the initramfs,
tests/guest/linux/vmmcall.S, executes VMMCALL (intercepted, at any CPL) to let the hypervisor stop at a test checkpoint,
where this test reads query-dseg and resets the counters: window
"vmmcall-1" is the boot, window "vmmcall-2" the workload.

Checks on the counters (the hypervisor's own fills are native walks, so
every guest-mode path belongs to the Linux guest):

* mode=vmm: at least 95% of the guest's fills are vmm-direct, in the boot
  and in the workload window; no nested step inside the segment went to
  the nested walk (filter-hits = 0 and filter-probes = vmm-segment-hits),
  so no walk-2d fill has a final gPA inside the segment; in the workload
  window the guest's page tables are all inside the segment, so a
  vmm-direct fill costs exactly its guest walk (arch-refs = guest-refs).
* mode=base: no vmm-direct fill; every nested page of thinvmm's NPT is a
  4 KiB page of a 4-level table (m = 4), so by the reference model
  arch-refs = (m+1) * guest-refs + m * fills, at most (n+1)(m+1)-1 per fill
  with n = 5 when the guest uses LA57 (29) and 4 otherwise (24).
* bad_pages=N: the faulty host pages keep the hypervisor's sentinel to the
  end (pmemsave), the spare pages that replace them were written by the
  guest (they no longer hold the bytes loaded from the bzImage), and the
  escape filter reported pages (filter-hits > 0); with 2 vCPUs, also with
  the high RAM in 2 MiB nested pages (npt_page=2m), the workload's
  output is the same as natively and at least 90% of each vCPU's fills
  in the workload window are vmm-direct.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import re
import struct
import time

from qemu_dseg import assets, boot, guests, model, testing
from qemu_dseg.machine import Machine

SEED = 1234567
STEP = 7
COUNT = 2500000             # numbers written by seq: ~20 MB of text
GUEST_PATHS = model.GUEST_MODE_PATHS
BAD_SENTINEL = 0xbadbadbadbad0000
NBAD = 4
LINUX_CMDLINE = 'nokaslr'    # not quiet
HOST_MB = 6144              # q35: 2 GiB below 4 GiB, 4 GiB above
GUEST_MIB = 4096            # thinvmm's default: all of the host's high RAM
LOW_RAM = (0x100000, 0xf00000)     # then 1 MiB of firmware area

INIT = f"""#!/bin/sh
{assets.INIT_PRELUDE}
echo QEMU-DSEG-INIT-OK
hv=0
grep -q thinvmm=1 /proc/cmdline && hv=1
echo "cpuinfo-la57: $(grep -c -w la57 /proc/cpuinfo)"
echo "cpuinfo-svm: $(grep -c -w svm /proc/cpuinfo)"
echo "cpus: $(nproc)"
# Only vCPU 0 can stop at a checkpoint: VMMCALL from there.
vmmcall() {{ taskset 1 /bin/vmmcall "$@"; }}
[ $hv = 1 ] && vmmcall 1
if [ -n "$thinvmm_probe" ]; then
    echo "PROBE $thinvmm_probe"
    busybox devmem $thinvmm_probe 32
    echo "PROBE-RETURNED"
fi
# With a second vCPU, the same workload on it at the same time.
if [ $(nproc) -gt 1 ]; then
    taskset 2 sh -c 'busybox seq {SEED} {STEP} {SEED + STEP * (COUNT - 1)} \
        > /tmp/big1; md5sum < /tmp/big1 > /tmp/md5.1; rm /tmp/big1' &
fi
busybox seq {SEED} {STEP} {SEED + STEP * (COUNT - 1)} > /tmp/big
dd if=/tmp/big of=/tmp/copy bs=64k 2>/dev/null
wait
echo "WORKLOAD-MD5 $(md5sum < /tmp/big) $(md5sum < /tmp/copy)"
[ -f /tmp/md5.1 ] && echo "WORKLOAD-MD5-CPU1 $(cat /tmp/md5.1)"
rm /tmp/copy
[ $hv = 1 ] && vmmcall 2
echo QEMU-DSEG-INIT-DONE
[ $hv = 1 ] && vmmcall 0 0
{assets.EPILOGUE}"""

def guest_fills(c):
    return sum(c[p]['fills'] for p in GUEST_PATHS)


def workload_md5(console):
    m = re.search(r'^WORKLOAD-MD5 ([0-9a-f]{32})\s+-? ?([0-9a-f]{32})',
                  console, re.M)
    return m and (m.group(1), m.group(2))


def counters_line(name, c):
    parts = []
    for p in ('native-walk',) + GUEST_PATHS:
        g = c[p]
        if g['fills']:
            parts.append(f"{p} {g['fills']} fills arch {g['arch-refs']} "
                         f"({g['arch-refs'] / g['fills']:.2f}/fill)")
    ev = ', '.join(f'{k} {c[k]}' for k in ('vmm-segment-hits',
                                          'filter-probes', 'filter-hits'))
    return f'# {name}: ' + '; '.join(parts) + f'; {ev}'


class ThinVmmTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(guests.path('vmmcall'), 'rb') as f:
            cls.linux = testing.linux_image(
                cls.logs, INIT, extra_files={'/bin/vmmcall': f.read()},
                modules=[])
        args = boot.linux_args(cls.linux, memory_mb=1024,
                               cmdline=LINUX_CMDLINE, quiet=False)
        t0 = time.monotonic()
        with Machine(args, name='native', log_dir=cls.logs, qmp=False) as vm:
            vm.launch()
            vm.wait_console(r'^QEMU-DSEG-INIT-DONE', timeout=300)
            vm.wait_exit(60)
            cls.native_console = vm.console()
        cls.native_md5 = workload_md5(cls.native_console)
        print(f'# native Linux: {time.monotonic() - t0:.1f} s, '
              f'md5 {cls.native_md5}')

    def run_thinvmm(self, mode, append='', at_checkpoint=None,
                    linux_extra='', cpus=1):
        """Boot Linux under thinvmm in MODE (a mode's name), with
        thinvmm's options APPEND besides the mode's, on CPUS vCPUs;
        return (status, console, windows, seconds): windows maps each
        checkpoint to the query-dseg entry of vCPU 0; self.vcpu_windows
        maps it to those of every vCPU."""
        args = boot.linux_args(
            self.linux, model.MODE_BY_NAME[mode], memory_mb=HOST_MB,
            vcpus=cpus, quiet=False, thinvmm=append,
            cmdline=f'{LINUX_CMDLINE} thinvmm=1 {linux_extra}'.strip())
        windows = {}
        all_cpus = {}

        def cp(name):
            if at_checkpoint:
                at_checkpoint(vm, name)
            all_cpus[name] = vm.counter_window()
            windows[name] = all_cpus[name][0]

        t0 = time.monotonic()
        with self.machine(args, name='thinvmm') as vm:
            vm.launch()
            status = vm.serve_checkpoints(cp, timeout=600)
            self.vcpu_windows = all_cpus
            return status, vm.console(), windows, time.monotonic() - t0

    def check_common(self, status, console, windows, cpus=1):
        tail = '\n--- console ---\n' + console[-3000:]
        self.assertEqual(status, 0, 'thinvmm exit status' + tail)
        self.assertIn('QEMU-DSEG-INIT-OK', console)
        self.assertIsNotNone(self.native_md5, 'native run printed no md5' +
                             self.native_console[-2000:])
        md5 = workload_md5(console)
        self.assertEqual(md5, self.native_md5, 'workload digest' + tail)
        self.assertEqual(md5[0], md5[1])
        self.assertEqual(sorted(windows), ['vmmcall-1', 'vmmcall-2'])
        self.assertNotIn('THINVMM-EXIT', console)
        # Only CPUID and the guest's VMMCALLs exit; no MSR or other exit.
        exits = re.findall(r'^THINVMM-VMMCALL \d+ exits: cpuid (\d+) msr '
                           r'(\d+) vmmcall (\d+) other (\d+)', console, re.M)
        self.assertEqual(len(exits), 3, tail)
        self.assertEqual([e[1:] for e in exits[-1:]], [('0', '3', '0')])
        print(f'# exits: cpuid {exits[-1][0]}, msr 0, vmmcall 3, other 0')
        # SVM hidden; firmware tables and devices reached directly; the
        # guest sees only its own RAM.
        self.assertRegex(console, r'(?m)^cpuinfo-svm: 0$')
        if cpus == 1:
            self.assertIn('ACPI: RSDP 0x00000000000F', console)
        else:
            # thinvmm's own RSDP, in its firmware area, for the mailbox.
            self.assertIn('ACPI: RSDP 0x0000000000F02000', console)
        self.assertRegex(console, r'IOAPIC\[0\]: .* address 0xfec00000')
        self.assertRegex(console, r'ttyS0 at I/O 0x3f8 \(irq = 4')
        usable = re.findall(r'BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]'
                            r' usable', console)
        high_end = 4 << 30 | (GUEST_MIB << 20) - (LOW_RAM[1] - LOW_RAM[0])
        self.assertEqual([(int(a, 16), int(e, 16) + 1) for a, e in usable], [
            (0, 0x9fc00), LOW_RAM, (4 << 30, high_end)])
        layout = re.search(r'THINVMM-LAYOUT guest RAM (\d+) KiB.* high '
                           r'\[(0x[0-9a-f]+), (0x[0-9a-f]+)\) .*VMM '
                           r'segment (.*), ([\d.]+)% of guest RAM', console)
        self.assertIsNotNone(layout, tail)
        self.assertEqual(int(layout.group(1)), (0x9fc00 >> 10) +
                         (GUEST_MIB << 10))
        self.assertEqual(int(layout.group(3), 16), high_end)
        if 'over high RAM' in layout.group(4):
            self.assertGreaterEqual(float(layout.group(5)), 99.0)
        print(f'# layout: {layout.group(0)}')
        for name, w in windows.items():
            print(counters_line(name, w['counters']))

    def test_mode_vmm(self):
        status, console, windows, secs = self.run_thinvmm('vmm-direct')
        print(f'# mode=vmm: {secs:.1f} s')
        self.check_common(status, console, windows)
        for name, w in windows.items():
            c = w['counters']
            fills = guest_fills(c)
            vd = c['vmm-direct']['fills']
            self.assertGreater(fills, 0)
            print(f'# {name}: vmm-direct {vd} of {fills} guest fills '
                  f'({100.0 * vd / fills:.2f}%)')
            self.assertGreaterEqual(vd, 0.95 * fills, name)
            self.assertEqual(c['filter-hits'], 0, name)
            self.assertEqual(c['filter-probes'], c['vmm-segment-hits'], name)
            self.assertEqual(c['guest-direct']['fills'], 0, name)
            self.assertEqual(c['dual-direct']['fills'], 0, name)
        work = windows['vmmcall-2']['counters']['vmm-direct']
        self.assertEqual(work['arch-refs'], work['guest-refs'])

    def test_mode_base(self):
        self.check_base('', 5)

    def test_mode_base_no5lvl(self):
        self.check_base('no5lvl', 4)

    def check_base(self, linux_extra, want_n):
        status, console, windows, secs = self.run_thinvmm(
            'base-virtualised', linux_extra=linux_extra)
        print(f'# mode=base {linux_extra}'.rstrip() + f': {secs:.1f} s')
        self.check_common(status, console, windows)
        la57 = re.search(r'^cpuinfo-la57: (\d+)', console, re.M)
        n = 5 if la57 and int(la57.group(1)) > 0 else 4
        self.assertEqual(n, want_n)
        m = 4
        for name, w in windows.items():
            c = w['counters']
            self.assertEqual(c['vmm-direct']['fills'], 0, name)
            self.assertEqual(c['vmm-segment-hits'], 0, name)
            w2d = c['walk-2d']
            self.assertGreater(w2d['fills'], 0, name)
            self.assertEqual(w2d['arch-refs'],
                             (m + 1) * w2d['guest-refs'] + m * w2d['fills'],
                             name)
            self.assertLessEqual(w2d['guest-refs'], n * w2d['fills'], name)
            self.assertLessEqual(w2d['guest-refs'] + w2d['nested-refs'],
                                 w2d['arch-refs'], name)
            print(f"# {name}: n = {n}, m = {m}: 2D arch-refs/fill "
                  f"{w2d['arch-refs'] / w2d['fills']:.2f} "
                  f"(max {(n + 1) * (m + 1) - 1})")

    def test_hypervisor_memory_hidden(self):
        # gPA 0x30000000 lies between the guest's low RAM (up to 16 MiB)
        # and the device space (from 2 GiB): host RAM that belongs to the
        # hypervisor, not in the guest's NPT, so a read can only end in
        # #NPF.
        status, console, windows, secs = self.run_thinvmm(
            'vmm-direct', linux_extra='thinvmm_probe=0x30000000')
        tail = '\n--- console ---\n' + console[-3000:]
        self.assertIn('PROBE 0x30000000', console, tail)
        self.assertNotIn('PROBE-RETURNED', console, tail)
        self.assertEqual(status, 0x70, tail)
        self.assertRegex(console, r'THINVMM-EXIT NPF on vCPU 0\n# #VMEXIT NPF \(0x400\) '
                         r'exitinfo1 0x[0-9a-f]+ exitinfo2 0x30000000 ', tail)

    def test_smp_bad_pages(self):
        # Two vCPUs under one VMM segment with faulty pages, the high RAM
        # in 2 MiB nested pages (those that hold a faulty page split):
        # Linux brings up its AP through the ACPI wake-up mailbox, both
        # vCPUs run the workload at once, almost all of each one's fills
        # are vmm-direct, and no guest write reaches a faulty page.
        status, console, windows, secs = self.run_thinvmm(
            'vmm-direct', f'bad_pages={NBAD} npt_page=2m', cpus=2)
        print(f'# mode=vmm bad_pages={NBAD} npt_page=2m, 2 vCPUs: '
              f'{secs:.1f} s')
        self.check_common(status, console, windows, cpus=2)
        tail = '\n--- console ---\n' + console[-3000:]
        self.assertRegex(console, r'THINVMM-LAYOUT .* in 2 MiB nested '
                         r'pages;', tail)
        self.assertRegex(console, r'(?m)^cpus: 2\r?$', tail)
        self.assertRegex(console, r'THINVMM: vCPU 1 woken at 0x[0-9a-f]+',
                         tail)
        self.assertIn('2 vCPUs', console)
        m = re.search(r'^WORKLOAD-MD5-CPU1 ([0-9a-f]{32})', console, re.M)
        self.assertIsNotNone(m, tail)
        self.assertEqual(m.group(1), self.native_md5[0])
        self.assertIn('bad pages intact', console)
        self.assertNotIn('bad pages WRITTEN', console)
        work = self.vcpu_windows['vmmcall-2']
        self.assertEqual(len(work), 2)
        for cpu, w in enumerate(work):
            c = w['counters']
            fills = guest_fills(c)
            vd = c['vmm-direct']['fills']
            print(f'# workload, vCPU {cpu}: vmm-direct {vd} of {fills} guest '
                  f"fills ({100.0 * vd / fills:.2f}%), filter-hits "
                  f"{c['filter-hits']}")
            self.assertGreater(fills, 10000, cpu)
            # The rest are the kernel's fills of memory that the segment
            # does not cover (the first MiB, low RAM below 15 MiB) or
            # that the filter escapes, which vary with what both vCPUs'
            # kernels do in the window: vCPU 0 once had 5.1% (walk-2d
            # 4662 of 91131).
            self.assertGreaterEqual(vd, 0.90 * fills, cpu)
        self.assertGreater(sum(w['counters']['filter-hits'] for ws in
                               self.vcpu_windows.values() for w in ws), 0)

    def test_bad_pages(self):
        with open(self.linux.kernel, 'rb') as f:
            bzimage = f.read()
        setup_size = ((bzimage[0x1f1] or 4) + 1) * 512
        seen = {}
        bad = []

        def at_checkpoint(vm, name):
            if name != 'vmmcall-2':
                return
            # The hypervisor announced the bad pages before Linux started.
            bad[:] = [tuple(int(x, 16) for x in t) for t in re.findall(
                r'THINVMM-BAD gpa=(0x[0-9a-f]+) bad-hpa=(0x[0-9a-f]+) '
                r'spare-hpa=(0x[0-9a-f]+)', vm.console())]
            for gpa, bad_hpa, spare_hpa in bad:
                seen[gpa] = (vm.read_phys(bad_hpa, 4096),
                             vm.read_phys(spare_hpa, 4096))

        status, console, windows, secs = self.run_thinvmm(
            'vmm-direct', f'bad_pages={NBAD}', at_checkpoint)
        print(f'# mode=vmm bad_pages={NBAD}: {secs:.1f} s')
        self.check_common(status, console, windows)
        self.assertEqual(len(bad), NBAD)
        kernel_gpa = int(re.search(r'kernel at gPA (0x[0-9a-f]+)',
                                   console).group(1), 16)
        self.assertEqual(sorted(seen), sorted(g for g, _, _ in bad))
        sentinel = b''.join(struct.pack('<Q', BAD_SENTINEL | w)
                            for w in range(512))
        for gpa, bad_hpa, spare_hpa in bad:
            bad_bytes, spare_bytes = seen[gpa]
            off = setup_size + gpa - kernel_gpa
            loaded = bzimage[off:off + 4096]
            self.assertEqual(len(loaded), 4096)
            self.assertEqual(bad_bytes, sentinel,
                             f'faulty page 0x{bad_hpa:x} was written')
            self.assertNotEqual(spare_bytes, loaded,
                                f'spare page 0x{spare_hpa:x} never written')
            self.assertNotEqual(spare_bytes, sentinel)
        self.assertIn('bad pages intact', console)
        self.assertNotIn('bad pages WRITTEN', console)
        hits = sum(w['counters']['filter-hits'] for w in windows.values())
        self.assertGreater(hits, 0)
        for name, w in windows.items():
            c = w['counters']
            fills = guest_fills(c)
            print(f"# {name}: filter-hits {c['filter-hits']}, vmm-direct "
                  f"{c['vmm-direct']['fills']} of {fills} guest fills")


if __name__ == '__main__':
    testing.main()
