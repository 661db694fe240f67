"""A boot of Linux on the fork in a translation mode: QEMU's arguments.

The one builder of a Linux boot, for the experiment, the overhead
benchmark and the Linux tests.  In the native modes the fork boots the
kernel directly; in the virtualised modes it boots the thin test
hypervisor (tests/guest/thinvmm/), which boots the kernel and its
initramfs (its two multiboot modules) as its guest.  The mode's facts
(model.Mode) give thinvmm's options: mode=vmm puts a VMM segment over the
guest's RAM (mode=base: nested paging only), guest_dseg=1 passes the
guest segment through.  In the modes with a guest segment the kernel
also gets the pool of the guest module contrib/linux/dseg, when the boot
has one: RAM kept from Linux (memmap=) and REGION_FLAG, on which /init
loads the module.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from . import guests
from .model import MODE_BY_NAME

# Linux's command line in every boot: the console on the serial port,
# and on a panic a reboot, which ends QEMU.
CMDLINE = 'console=ttyS0 panic=-1'
# On the kernel's command line when /init is to load the guest module.
REGION_FLAG = 'dseg_region=1'
# RAM below 4 GiB that q35 gives when -m is 2.75 GiB or more: thinvmm
# keeps it, and more RAM goes above 4 GiB.
Q35_LOW_RAM_MB = 2048
NATIVE = MODE_BY_NAME['base-native']
# The guest's address on QEMU's user network (its first DHCP address),
# which host forwards reach; /init sets it on eth0.
GUEST_IP = '10.0.2.15'
# The IOMMU with which thinvmm translates its guest's DMA through the
# nested page tables (tests/guest/thinvmm/iommu.c): 4-level tables, no
# interrupt remapping.
THINVMM_IOMMU = 'intel-iommu,aw-bits=48,intremap=off'


def kernel_cmdline(mode=NATIVE, extra='', quiet=True, pool=None):
    """Linux's command line in MODE: CMDLINE, quiet, EXTRA, and with a
    guest segment the POOL (base, size in bytes) and REGION_FLAG."""
    words = [CMDLINE, 'quiet' if quiet else '', extra]
    if pool and mode.guest_segment:
        base, size = pool
        words += [f'memmap={size >> 20}M${base:#x}', REGION_FLAG]
    return ' '.join(w for w in words if w)


def thinvmm_options(mode, guest_mb=None, extra=''):
    """thinvmm's options (before its '--') for the virtualised MODE,
    with GUEST_MB MiB of guest RAM (default: all of the high RAM) and
    EXTRA options."""
    words = ['mode=' + ('vmm' if mode.vmm_segment else 'base')]
    if mode.guest_segment:
        words.append('guest_dseg=1')
    if guest_mb:
        words.append(f'guest_mb={guest_mb}')
    if extra:
        words.append(extra)
    return ' '.join(words)


def nic_args(mode, forwards):
    """QEMU's arguments of the guest's NIC in MODE: a virtio-net device
    (its driver is the module virtio_net) on QEMU's user network,
    isolated from the host's (restrict=on) but for FORWARDS, {host port:
    guest port}, from 127.0.0.1 to GUEST_IP.  The device does its DMA
    through the platform's IOMMU, if any (VIRTIO_F_ACCESS_PLATFORM), the
    same in every mode; in the virtualised modes the machine has the
    IOMMU that thinvmm keeps for itself (THINVMM_IOMMU), before the
    device as QEMU requires."""
    fwd = ''.join(f',hostfwd=tcp:127.0.0.1:{h}-{GUEST_IP}:{g}'
                  for h, g in forwards.items())
    args = ['-device', THINVMM_IOMMU] if mode.virtualised else []
    return args + ['-netdev', f'user,id=net0,restrict=on{fwd}',
                   '-device', 'virtio-net-pci,netdev=net0,'
                   'disable-legacy=on,iommu_platform=on,romfile=']


def linux_args(image, mode=NATIVE, *, memory_mb, cpu='max,+dseg',
               vcpus=None, tlb_size=None, multi_thread=False, cmdline='',
               quiet=True, pool=None, guest_mb=None, thinvmm='',
               guests_dir=None, extra_args=()):
    """QEMU's arguments that boot IMAGE (an assets.LinuxImage) in MODE.

    MEMORY_MB: QEMU's RAM (-m); CPU: -cpu; VCPUS: -smp; TLB_SIZE: a fixed
    softmmu TLB (-accel tcg,tlb-size; None: QEMU's default), with
    MULTI_THREAD also thread=multi; CMDLINE, QUIET and POOL: Linux's
    command line (kernel_cmdline()); GUEST_MB and THINVMM: thinvmm's
    options in a virtualised mode (thinvmm_options()); GUESTS_DIR: where
    thinvmm is built; EXTRA_ARGS: more QEMU arguments.
    """
    args = ['-M', 'q35', '-cpu', cpu, '-m', f'{memory_mb}M']
    if vcpus is not None:
        args += ['-smp', str(vcpus)]
    if tlb_size is not None:
        accel = ['tcg'] + (['thread=multi'] if multi_thread else [])
        args += ['-accel', ','.join(accel + [f'tlb-size={tlb_size}'])]
    args += extra_args
    linux = kernel_cmdline(mode, cmdline, quiet, pool)
    if not mode.virtualised:
        return args + ['-kernel', image.kernel, '-initrd', image.initrd,
                       '-append', linux]
    return args + ['-kernel', guests.image('thinvmm', guests_dir),
                   '-initrd', f'{image.kernel},{image.initrd}',
                   *guests.DEBUG_EXIT_ARGS, '-append',
                   f'{thinvmm_options(mode, guest_mb, thinvmm)} -- {linux}']
