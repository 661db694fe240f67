"""The bare-metal test guests of tests/guest: images, arguments, TAP.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import re

from . import config

# Port and width of the isa-debug-exit device the test guests write to.
DEBUG_EXIT_ARGS = ['-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04']
# Guest status that lib/libguest.h reports for an unexpected exception.
GUEST_EXIT_FAULT = 0x7f


def path(name, guests=None):
    """Path of the guest image or program NAME (NAME.bin for a guest
    built from tests/guest/NAME.c)."""
    p = os.path.join(guests or config.GUESTS, name)
    if not os.path.exists(p):
        raise FileNotFoundError(f'{p} is not built (meson builds it: '
                                f'scripts/check.sh or ninja -C build)')
    return p


def image(name, guests=None):
    """Path of the test guest built from tests/guest/NAME.c."""
    return path(name + '.bin', guests)


def args(name, append='', extra_args=(), machine='q35', cpu='max',
         memory='256M', guests=None):
    """QEMU arguments that run test guest NAME."""
    a = ['-M', machine, '-cpu', cpu, '-m', memory,
         '-kernel', image(name, guests), *DEBUG_EXIT_ARGS, *extra_args]
    if append:
        a += ['-append', append]
    return a


_TAP_PLAN = re.compile(r'^1\.\.(\d+)$', re.M)
_TAP_RESULT = re.compile(r'^(not )?ok (\d+)(?: - (.*))?$', re.M)


def tap(console):
    """The TAP output of a guest: (plan or None, [(passed, number, text)])."""
    plans = _TAP_PLAN.findall(console)
    results = [(not m.group(1), int(m.group(2)), m.group(3) or '')
               for m in _TAP_RESULT.finditer(console)]
    return (int(plans[0]) if len(plans) == 1 else None), results
