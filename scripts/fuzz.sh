#!/bin/bash
# Fuzz the direct-segment core (tests/fuzz/fuzz-dseg-core.c) with clang's
# libFuzzer, under ASan and UBSan.
#
#   scripts/fuzz.sh [--runs N | --seconds S] [--seed N] [--corpus]
#
# Default: 1000000 inputs of up to 512 bytes, seed 1 and no corpus, which
# is what the suite's 'fuzz' test runs: the same inputs on every machine.
# --seconds runs for a time instead; --corpus keeps and grows
# build/fuzz/corpus across runs.  A failing input is written to build/fuzz/crash-*, and the
# script prints the command that replays it.  Needs Debian's clang
# (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=1000000 seconds= seed=1 corpus=
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; seconds=; shift 2 ;;
    --seconds) seconds=$2; runs=; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --corpus) corpus=build/fuzz/corpus; shift ;;
    *) echo "fuzz.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
command -v clang >/dev/null ||
    { echo "fuzz.sh: clang is missing; run scripts/setup.sh" >&2; exit 1; }

out=build/fuzz
bin=$out/fuzz-dseg-core
mkdir -p "$out"
clang -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -Wall -Wextra -Werror \
    -I tests/unit/include -I target/i386 \
    tests/fuzz/fuzz-dseg-core.c target/i386/dseg-core.c -o "$bin"

args=(-seed="$seed" -max_len=512 -artifact_prefix="$out/" -print_final_stats=1)
if [ -n "$runs" ]; then
    args+=(-runs="$runs")
else
    args+=(-max_total_time="$seconds")
fi
[ -z "$corpus" ] || { mkdir -p "$corpus"; args+=("$corpus"); }
rc=0
"$bin" "${args[@]}" 2>&1 |
    sed -e '/^#[0-9]/d' -e '/Recommended dictionary/,/End of recommended/d' ||
    rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
    for c in "$out"/crash-* "$out"/leak-* "$out"/timeout-*; do
        [ -e "$c" ] && echo "fuzz.sh: replay with: $bin $c" >&2
    done
fi
exit "$rc"
