#!/bin/bash
# Build the fork and the unpatched upstream build of the same source, then
# compare their speed side by side (scripts/bench-overhead.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare.sh --with-upstream
exec meson devenv -C build -w . /usr/bin/python3 scripts/bench-overhead.py "$@"
