#!/bin/bash
# Run the whole qemu-dseg test suite on a fresh Debian 12 machine: install
# the dependencies, build the fork and the test guests, run unit and
# functional tests.  Extra arguments go to `meson test` (e.g. a test name).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
scripts/prepare.sh
rc=0
meson test -C build --print-errorlogs "$@" || rc=$?

# One closing line that any reader of the log can take in at a glance.
/usr/bin/python3 - build/meson-logs/testlog.json "$((SECONDS - start))" <<'PY'
import json, sys
results = [json.loads(line)['result'] for line in open(sys.argv[1])]
passed = sum(r in ('OK', 'EXPECTEDFAIL') for r in results)
skipped = sum(r == 'SKIP' for r in results)
failed = len(results) - passed - skipped
print(f'suite time: {sys.argv[2]} s')
print(f'suite: {passed} passed, {failed} failed, {skipped} skipped')
PY
exit $rc
