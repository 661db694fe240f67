#!/usr/bin/env python3
"""Overhead of qemu-dseg against the unpatched upstream build.

Runs the same workloads, alternating, on three emulators built from the
same Debian source with the same configuration:

  upstream   build/qemu-upstream (no qemu-dseg code, no patches)
  fork       build/qemu with -cpu max (direct segments off)
  fork+dseg  build/qemu with -cpu max,+dseg (feature on, segments unused)

and prints the fastest wall time of each and the ratios to upstream (the
fastest run is the least disturbed: noise only adds time, and QEMU's
dynamic TLB sizing makes single runs of TLB-heavy workloads vary by tens
of percent), with the median beside it.  A benchmark, not a test: it
asserts only that every build computes the same results.  Build both first (scripts/bench-overhead.sh does).

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests', 'functional'))
import harness  # noqa: E402
import linux_assets  # noqa: E402

LINUX_INIT = f"""#!/bin/sh
{linux_assets.INIT_PRELUDE}
echo "bench: $(uname -r) up"
{linux_assets.EPILOGUE}"""


def workloads(build):
    image = os.path.join(build, 'tests', 'guest', 'workload.bin')
    guest = ['-M', 'q35', '-m', '512M', '-kernel', image,
             *harness.DEBUG_EXIT_ARGS]
    kernel, initrd = linux_assets.linux_guest(LINUX_INIT, modules=())
    return {
        'gups 64 MiB': (guest + ['-append', 'kind=gups size_mb=64'],
                        r'checksum \S+'),
        'chase 64 MiB': (guest + ['-append', 'kind=chase size_mb=64'],
                         r'checksum \S+'),
        'scan 64 MiB': (guest + ['-append', 'kind=scan size_mb=64 iters=8'],
                        r'checksum \S+'),
        'linux boot': (['-M', 'q35', '-m', '1G', '-kernel', kernel,
                        '-initrd', initrd, '-append',
                        'console=ttyS0 panic=-1 quiet'], r'bench: \S+ up'),
    }


def run(qemu, cpu, args, marker):
    """Wall time of one run and the line that proves it computed."""
    cmd = [qemu, '-nodefaults', '-display', 'none', '-no-reboot',
           '-serial', 'stdio', '-cpu', cpu, *args]
    start = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         stdin=subprocess.DEVNULL).stdout
    elapsed = time.monotonic() - start
    m = re.search(marker, out)
    if not m:
        sys.exit(f'bench: {" ".join(cmd)} printed no {marker!r}:\n{out}')
    return elapsed, m.group(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--build', default=os.path.join(REPO, 'build'),
                    help='meson build directory (default: build)')
    ap.add_argument('--runs', type=int, default=7,
                    help='runs per emulator and workload (default: 7)')
    opts = ap.parse_args()

    emulators = [
        ('upstream', os.path.join(opts.build, 'qemu-upstream',
                                  'qemu-system-x86_64'), 'max'),
        ('fork', os.path.join(opts.build, 'qemu', 'qemu-system-x86_64'),
         'max'),
        ('fork+dseg', os.path.join(opts.build, 'qemu',
                                   'qemu-system-x86_64'), 'max,+dseg'),
    ]
    for name, qemu, _ in emulators:
        if not os.access(qemu, os.X_OK):
            sys.exit(f'bench: {name} emulator {qemu} is not built')

    print('fastest (median) wall time of each emulator, and fastest-run '
          'ratios to upstream')
    print(f'{"workload":<14}' + ''.join(f'{n:>18}' for n, _, _ in emulators)
          + f'{"fork/up":>10}{"dseg/up":>10}')
    ratios = []
    for wname, (args, marker) in workloads(opts.build).items():
        times = {n: [] for n, _, _ in emulators}
        results = set()
        for i in range(opts.runs):
            # Rotate the order so that no emulator always runs first.
            for name, qemu, cpu in emulators[i % 3:] + emulators[:i % 3]:
                elapsed, result = run(qemu, cpu, args, marker)
                times[name].append(elapsed)
                results.add(result)
            print(f'  {wname}: run {i + 1}/{opts.runs}', end='\r',
                  file=sys.stderr, flush=True)
        if len(results) != 1:
            sys.exit(f'bench: {wname} gave different results: {results}')
        best = {n: min(t) for n, t in times.items()}
        med = {n: statistics.median(t) for n, t in times.items()}
        fork, dseg = best['fork'] / best['upstream'], \
            best['fork+dseg'] / best['upstream']
        ratios.append(fork)
        print(f'{wname:<14}' + ''.join(f'{best[n]:>9.2f}s ({med[n]:5.2f})'
                                        for n, _, _ in emulators)
              + f'{fork:>10.3f}{dseg:>10.3f}')
    geo = statistics.geometric_mean(ratios)
    print(f'{opts.runs} runs each; geometric mean of fork/upstream '
          f'{geo:.3f} ({(geo - 1) * 100:+.1f}%)')


if __name__ == '__main__':
    main()
