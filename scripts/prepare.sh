#!/bin/bash
# Shared set-up of the project's commands: install the dependencies
# (scripts/setup.sh) and configure the meson build directory `build`.
# With --with-upstream, also build the fork, its test guests and the
# unpatched upstream QEMU of the same source (the baseline that the main
# job and the overhead benchmark compare against).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -e build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build >/dev/null
else
    meson setup build >/dev/null
fi
if [ "${1:-}" = --with-upstream ]; then
    ninja -C build >/dev/null
    scripts/build-qemu.sh --upstream build
fi
