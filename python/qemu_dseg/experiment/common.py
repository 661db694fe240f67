"""What the experiment's parts share: the TLB, the emulators, the ratios.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import subprocess

from ..model import MODE_BY_NAME, MODES, PAGE_4K
from . import compare

MIB = 1 << 20
DEFAULT_TLB_SIZE = 256
VICTIM_TLB_ENTRIES = 8
# -accel tcg,tlb-size: entries per MMU index, a power of two in this range.
TLB_SIZE_MIN, TLB_SIZE_MAX = 64, 65536
# The modes that need no direct segments, which upstream QEMU runs too.
BASE_MODES = tuple(m.name for m in MODES if not m.segments)
# The ratios between modes that the experiment reports (A / B), with the
# targets of issue 11 where it sets one: VMM direct near native, dual
# direct better than native.
MODE_RATIOS = (
    ('vmm-direct', 'base-native', 1.02),
    ('dual-direct', 'native-direct', 1.02),
    ('dual-direct', 'base-native', 1.0),
    ('guest-direct', 'base-native', 1.05),
    ('native-direct', 'base-native', None),
    ('base-virtualised', 'base-native', None),
)
# The target of the fork's overhead with the feature off (issue 11).
FORK_BOUND = 1.01


def mode_ratios(names, part=None, bounds=True):
    """The compare.Ratio of every pair of MODE_RATIOS whose modes are
    both in NAMES, with PART (compare.Ratio), and with its bound unless
    not BOUNDS."""
    return [compare.Ratio(f'{MODE_BY_NAME[a].label} / '
                          f'{MODE_BY_NAME[b].label}', a, b,
                          bound if bounds else None, part=part)
            for a, b, bound in MODE_RATIOS if a in names and b in names]


def tlb_size_type(dynamic=False):
    """An argparse type of a softmmu TLB size (-accel tcg,tlb-size): a
    power of two from TLB_SIZE_MIN to TLB_SIZE_MAX, and with DYNAMIC also
    0, QEMU's dynamic TLB."""
    rule = f'a power of two from {TLB_SIZE_MIN} to {TLB_SIZE_MAX}'

    def tlb_size(text):
        n = int(text)
        if dynamic and n == 0:
            return n
        if n < TLB_SIZE_MIN or n > TLB_SIZE_MAX or n & (n - 1):
            raise argparse.ArgumentTypeError(
                f"must be {'0 or ' if dynamic else ''}{rule}")
        return n
    return tlb_size


def tlb_geometry(tlb_size):
    """The softmmu TLB geometry that -accel tcg,tlb-size=TLB_SIZE gives."""
    if not tlb_size:
        return (f"TLB: QEMU's dynamic sizing (tlb-size=0: resized with use), "
                f"+ {VICTIM_TLB_ENTRIES}-entry victim")
    return (f'TLB: {tlb_size} entries per MMU index, direct-mapped, '
            f'+ {VICTIM_TLB_ENTRIES}-entry victim (reach '
            f'{tlb_size * PAGE_4K // 1024} KiB of 4 KiB pages)')


def qemu_version(qemu):
    """The first line of QEMU's --version."""
    out = subprocess.run([qemu, '--version'], capture_output=True,
                         text=True, check=True).stdout
    return out.splitlines()[0]


class Emulator:
    """One emulator configuration that runs the experiment guest."""

    def __init__(self, name, label, qemu, cpu, tlb_size=None, counters=True,
                 plugin_args=()):
        self.name = name
        self.label = label
        self.qemu = qemu
        self.cpu = cpu
        self.tlb_size = tlb_size    # None: no -accel option at all
        self.counters = counters    # has query-dseg
        self.plugin_args = list(plugin_args)   # -plugin and its options

    def accel_args(self):
        """Its accelerator options."""
        if self.tlb_size is None:
            return []
        return ['-accel', f'tcg,tlb-size={self.tlb_size}']

    def args(self):
        """Its accelerator options, then its plugin's (if any)."""
        return self.accel_args() + self.plugin_args

    def version(self):
        """The first line of its --version."""
        return qemu_version(self.qemu)
