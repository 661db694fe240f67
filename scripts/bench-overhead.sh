#!/bin/bash
# Build the fork and the unpatched upstream build of the same source (and,
# for --fixed-tlb, upstream with only the tlb-size patch), then compare
# their speed side by side, and the fork's with its TLB-model plugin and
# with QEMU's cache plugin against none (scripts/bench-overhead.py; see
# docs/devel/dseg-experiment.rst, "The overhead benchmark").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare.sh --with-upstream
case " $* " in
*" --fixed-tlb "* | *" --fixed-tlb="*) scripts/build-qemu.sh --upstream-tlb build ;;
esac
exec meson devenv -C build -w . /usr/bin/python3 scripts/bench-overhead.py "$@"
