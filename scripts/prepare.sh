#!/bin/bash
# Shared set-up of the project's commands: install the dependencies
# (scripts/setup.sh) and configure the meson build directory `build`.
# With --build, also build the fork and its test guests; with
# --with-upstream, those and the unpatched upstream QEMU of the same source
# (the baseline that the bare-metal experiment and the overhead benchmark
# compare against).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -e build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build >/dev/null
else
    meson setup build >/dev/null
fi
case "${1:-}" in
--build)
    ninja -C build >/dev/null
    ;;
--with-upstream)
    ninja -C build >/dev/null
    scripts/build-qemu.sh --upstream build
    ;;
esac
