"""The translation experiment: one workload under every translation mode.

  runner  emulators, one timed run of tests/guest/experiment.c, and the
          runs of a whole invocation with their JSON-ready results
  stats   derived counter figures, times of repeats, ratios
  output  the tables for people
  chart   the PNG chart

scripts/dseg-experiment.py is its command line, and
docs/devel/dseg-experiment.rst explains every column.

SPDX-License-Identifier: GPL-2.0-or-later
"""
