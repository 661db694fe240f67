#!/usr/bin/python3
"""qemu-dseg translation experiment: one workload under every translation mode.

Two subcommands.  linux, the default: Debian's unmodified kernel boots
once per translation mode of docs/specs/direct-segments.rst (base
native, native direct, base virtualised, guest direct, VMM direct, dual
direct) on the fork with a fixed-size softmmu TLB (-accel
tcg,tlb-size=N), directly or under the thin test hypervisor, and real
programs (GUPS, a pointer chase, memcached, redis) each run in an exact
counter window.  bare-metal (old spelling --bare-metal): the bare-metal
guest tests/guest/experiment.c runs once per mode, and the base modes
also with the feature off and QEMU's dynamic TLB, on the fork and on
the unpatched upstream build of the same source, for the fork's
overhead.  For each mode it reports TLB fills, page-table references per
fill (and per operation), the share of fills per path, escape-filter
hits and the time of the measured part; linux also, unless
--no-tlb-model, what the fork's model of a CPU's TLBs and walk caches
counts (L1 misses, walk references and cycles per operation, the
segments' share of its misses).

Outputs: a table on stdout, the results as JSON and a chart (PNG).  The
command line of the package qemu_dseg.experiment; run it through
scripts/demo.sh or `meson devenv -C build`, which set PYTHONPATH.
docs/devel/dseg-experiment.rst explains every column.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg.experiment.cli import main

if __name__ == '__main__':
    main()
