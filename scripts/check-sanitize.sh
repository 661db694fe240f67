#!/bin/bash
# Run the unit tests and the bare-metal functional tests (suite 'quick') on
# the fork built with AddressSanitizer and UndefinedBehaviorSanitizer, in
# the build directory build-sanitize (meson -Dsanitize=true).  Fails if a
# test fails or if any sanitizer wrote a report; prints the reports.
# Extra arguments go to `meson test` (e.g. a test name); --no-setup, first,
# skips scripts/setup.sh (the suite's 'sanitize' test, run by check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
if [ "${1:-}" = --no-setup ]; then
    shift
else
    scripts/setup.sh
fi
dir=build-sanitize
if [ -e "$dir/meson-private/coredata.dat" ]; then
    meson setup --reconfigure -Dsanitize=true "$dir" >/dev/null
else
    meson setup -Dsanitize=true "$dir" >/dev/null
fi
rm -rf "$dir/sanitizers"
mkdir -p "$dir/sanitizers"
rc=0
# A sanitized QEMU runs about three times slower.
meson test -C "$dir" --suite quick --timeout-multiplier 4 \
    --print-errorlogs "$@" || rc=$?

# Each sanitized process that had something to say left a file; ASan's
# warning about QEMU's coroutines (makecontext/swapcontext) is not a
# report, an error is.
reports=$(grep -lE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \
          "$dir"/sanitizers/* 2>/dev/null | sort || true)
for r in $reports; do
    printf '=== %s\n' "$r"
    cat "$r"
done
n=$(printf '%s' "$reports" | grep -c . || true)
runs=$(find "$dir/sanitizers" -type f | wc -l)
echo "sanitizers: $n report(s) from $runs sanitized processes that" \
     "wrote a log, in $dir/sanitizers ($((SECONDS - start)) s)"
[ "$n" -eq 0 ] || rc=1
exit $rc
