#!/usr/bin/python3
"""Overhead of qemu-dseg against the unpatched upstream build, and of the
modelled TLB hierarchy against the model off and QEMU's cache plugin.

The command line of qemu_dseg.experiment.overhead: the experiment's own
runs of the fork and of upstream, interleaved, then those of the fork
with and without its plugins.  scripts/bench-overhead.sh builds both and
runs it with PYTHONPATH set (meson devenv).

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg.experiment.overhead import main

if __name__ == '__main__':
    main()
