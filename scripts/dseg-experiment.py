#!/usr/bin/python3
"""qemu-dseg translation experiment: one workload under every translation mode.

Runs the bare-metal guest tests/guest/experiment.c once per translation
mode of docs/specs/direct-segments.rst (base native, native direct, base
virtualised, guest direct, VMM direct, dual direct) on the fork with
direct segments on and a fixed-size softmmu TLB (-accel tcg,tlb-size=N),
and the base modes also with the feature off and QEMU's dynamic TLB, on
the fork and on the unpatched upstream build of the same source, for the
fork's overhead.  For each mode it reports TLB fills, page-table
references per fill, the share of fills per path, escape-filter hits and
the time of the workload loop.

Outputs: a table on stdout, the results as JSON and a chart (PNG).  The
command line of the package qemu_dseg.experiment; run it through
scripts/demo.sh or `meson devenv -C build`, which set PYTHONPATH.
docs/devel/dseg-experiment.rst explains every column.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg.experiment.cli import main

if __name__ == '__main__':
    main()
