"""The translation experiment: one workload under every translation mode.

  cli        the command line: subcommands linux (the default) and
             bare-metal
  linux      the Linux experiment: one boot of Debian's kernel per mode,
             one counter window per workload, and its results
  workloads  the Linux experiment's workloads, with their guest-side
             scripts in guest/ (package data)
  baremetal  the bare-metal experiment: timed runs of
             tests/guest/experiment.c, rounds, and their results
  overhead   the overhead benchmark: the fork against upstream QEMU
  common     what they share: the TLB size and geometry, the emulators,
             the ratios between modes
  tlbmodel   the fork's modelled TLB hierarchy (the dseg-tlb plugin): its
             options, its configuration, the figures of its counters
  compare    interleaved rounds, ratios with intervals, the stop rule
  stats      derived counter figures, times of repeats, ratios
  output     the tables for people, of both experiments
  chart      the PNG chart

scripts/dseg-experiment.py is its command line, and
docs/devel/dseg-experiment.rst explains every column.

SPDX-License-Identifier: GPL-2.0-or-later
"""
