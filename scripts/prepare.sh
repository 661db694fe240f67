#!/bin/bash
# Shared set-up of the project's commands: install the dependencies
# (scripts/setup.sh) and configure the meson build directory `build`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -e build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build >/dev/null
else
    meson setup build >/dev/null
fi
