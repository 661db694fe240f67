#!/bin/bash
# qemu-dseg main job, with all set-up, on a fresh Debian 12 machine: build
# the fork and its test guests, then run the translation experiment under
# Linux: Debian's kernel and real programs (GUPS, a pointer chase,
# Graph500's BFS, an NPB-style CG, memcached, redis) in
# every translation mode, with tables on stdout, build/experiment/
# results.json and build/experiment/modes.png.  Arguments go to
# scripts/dseg-experiment.py (see docs/devel/dseg-experiment.rst);
# bare-metal (or --bare-metal) first runs the bare-metal experiment
# instead, which also builds the unpatched upstream QEMU as its baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --bare-metal ] || [ "${1:-}" = bare-metal ]; then
    scripts/prepare.sh --with-upstream
else
    scripts/prepare.sh --build
fi
exec meson devenv -C build -w . /usr/bin/python3 scripts/dseg-experiment.py "$@"
