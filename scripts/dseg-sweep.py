#!/usr/bin/python3
"""qemu-dseg sweeps: a grid of experiment runs, merged into one result.

The command line of the package qemu_dseg.sweep; run it through
`meson devenv -C build`, which sets PYTHONPATH.  docs/devel/dseg-sweep.rst
describes it.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import sys

from qemu_dseg.sweep.cli import main

if __name__ == '__main__':
    sys.exit(main())
