#!/bin/bash
# qemu-dseg main job, with all set-up, on a fresh Debian 12 machine: build
# the fork and its test guests, build the unpatched upstream QEMU of the
# same source as the baseline, then run the translation experiment: the
# bundled workload under every translation mode, with a table on stdout,
# build/experiment/results.json and build/experiment/modes.png.  Arguments
# go to scripts/dseg-experiment.py (see docs/devel/dseg-experiment.rst).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare.sh --with-upstream
exec meson devenv -C build -w . /usr/bin/python3 scripts/dseg-experiment.py "$@"
