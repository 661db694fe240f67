#!/bin/bash
# qemu-dseg main job, with all set-up, on a fresh Debian 12 machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -e build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build >/dev/null
else
    meson setup build >/dev/null
fi
ninja -C build >/dev/null
exec /usr/bin/python3 scripts/qemu-dseg-demo.py "$@"
