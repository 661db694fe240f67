"""Where the package finds what it runs, and where it keeps what it makes.

Each location is an environment variable that meson sets for the tests
and for `meson devenv`; the defaults suit a build in ./build of this
checkout.

  QEMU_DSEG_BUILD    the meson build directory
  QEMU_DSEG_QEMU     the fork's qemu-system-x86_64
  QEMU_DSEG_SRC      the patched QEMU source tree it was built from
  QEMU_DSEG_GUESTS   the directory of the test guest images and programs
  QEMU_DSEG_CACHE    the download cache (Debian packages, built images)
  QEMU_DSEG_LOG_DIR  where functional tests keep their logs

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _env(name, default):
    return os.environ.get(name) or default


BUILD = _env('QEMU_DSEG_BUILD', os.path.join(REPO, 'build'))

QEMU = _env('QEMU_DSEG_QEMU', os.path.join(BUILD, 'qemu',
                                           'qemu-system-x86_64'))


def plugin(name, qemu=QEMU):
    """The TCG plugin libNAME.so built beside the emulator QEMU (its
    build's contrib/plugins/): the fork's own and QEMU's."""
    return os.path.join(os.path.dirname(qemu), 'contrib', 'plugins',
                        f'lib{name}.so')


# The modelled TLB hierarchy's plugin, built beside the fork.
TLB_PLUGIN = plugin('dseg-tlb')
QEMU_SRC = _env('QEMU_DSEG_SRC', os.path.join(BUILD, 'qemu-src'))
GUESTS = _env('QEMU_DSEG_GUESTS', os.path.join(BUILD, 'tests', 'guest'))
CACHE = _env('QEMU_DSEG_CACHE', os.path.expanduser('~/.cache/qemu-dseg'))
LOG_DIR = _env('QEMU_DSEG_LOG_DIR', os.path.join(BUILD, 'tests',
                                                 'functional'))
