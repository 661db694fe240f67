"""Sweeps: a grid of experiment runs, run here in parallel or as a Slurm
job array, resumed where they stopped, and merged into one result.

  spec    the description (a TOML file or command-line lists), its runs,
          and the key of each run's inputs
  runner  one run in its directory; the local executor
  slurm   the Slurm executor: the runs as one job array
  merge   one JSON, one table and a chart per axis over the whole grid
  cli     the command line (scripts/dseg-sweep.py)

docs/devel/dseg-sweep.rst describes it.

SPDX-License-Identifier: GPL-2.0-or-later
"""
