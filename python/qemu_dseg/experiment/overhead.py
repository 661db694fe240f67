"""The fork's overhead against the unpatched upstream build, side by side.

Runs the same workloads, interleaved, on three emulators built from the
same Debian source with the same configuration:

  upstream   build/qemu-upstream (no qemu-dseg code, no patches)
  fork       build/qemu with -cpu max (direct segments off)
  fork+dseg  build/qemu with -cpu max,+dseg (feature on, segments unused)

The bare-metal workloads are the experiment's own runs (base native mode,
QEMU's dynamic TLB, the loop timed alone); the Linux workload boots
Debian's kernel to its init and powers off, timed whole.  It prints the
fastest time of each emulator (noise only adds time), the median beside
it, and the fastest-run ratios to upstream.  A benchmark, not a test: it
asserts only that every build computes the same results.  The results,
with the Debian packages the Linux runs used, go to a JSON file.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import json
import os
import statistics
import sys
import time

from .. import assets, config
from ..machine import Machine
from ..model import MODE_BY_NAME
from .runner import Emulator, rotation, run_once

SIZE_MB = 64
BARE_METAL = {'gups': 2 << 20, 'chase': 2 << 20, 'scan': 8}
LINUX_INIT = f"""#!/bin/sh
{assets.INIT_PRELUDE}
echo "bench: $(uname -r) up"
{assets.EPILOGUE}"""


def emulators(build):
    qemu = os.path.join(build, 'qemu', 'qemu-system-x86_64')
    return [
        Emulator('upstream', 'upstream', os.path.join(
            build, 'qemu-upstream', 'qemu-system-x86_64'), 'max',
            counters=False),
        Emulator('fork', 'fork', qemu, 'max'),
        Emulator('fork+dseg', 'fork+dseg', qemu, 'max,+dseg'),
    ]


def bare_metal_run(kind, iters, guests_dir, log_dir):
    """A workload: EMU -> (seconds, result that must agree)."""
    mode = MODE_BY_NAME['base-native']

    def run(emu):
        r = run_once(emu, mode, kind, SIZE_MB, iters, 1, guests_dir,
                     log_dir)
        return r['wall_s'], r['checksum']
    return run


def linux_boot_run(image, log_dir):
    """Boot IMAGE to its init's line and power off, timed whole."""
    def run(emu):
        args = ['-M', 'q35', '-cpu', emu.cpu, '-m', '1G',
                '-kernel', image.kernel, '-initrd', image.initrd,
                '-append', 'console=ttyS0 panic=-1 quiet']
        start = time.monotonic()
        with Machine(args, name=f'linux-{emu.name}', binary=emu.qemu,
                     log_dir=log_dir, qmp=False) as vm:
            vm.launch()
            line = vm.wait_console(r'bench: \S+ up', 600).group(0)
            vm.wait_exit(600)
        return time.monotonic() - start, line
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="The fork's speed against upstream QEMU, side by side.")
    ap.add_argument('--build', default=config.BUILD,
                    help='meson build directory (default: build)')
    ap.add_argument('--runs', type=int, default=7,
                    help='runs per emulator and workload (default: 7)')
    ap.add_argument('--out', help='directory for results.json (default: '
                    'BUILD/bench-overhead)')
    opts = ap.parse_args(argv)
    if opts.runs < 1:
        ap.error('--runs must be at least 1')
    out = opts.out or os.path.join(opts.build, 'bench-overhead')
    logs = os.path.join(out, 'logs')
    emus = emulators(opts.build)
    for emu in emus:
        if not os.access(emu.qemu, os.X_OK):
            sys.exit(f'bench: {emu.name} emulator {emu.qemu} is not built')
    guests_dir = os.path.join(opts.build, 'tests', 'guest')
    image = assets.linux_guest(LINUX_INIT, modules=())
    workloads = {f'{k} {SIZE_MB} MiB': bare_metal_run(k, n, guests_dir, logs)
                 for k, n in BARE_METAL.items()}
    workloads['linux boot'] = linux_boot_run(image, logs)

    print('fastest (median) time of each emulator, and fastest-run ratios '
          'to upstream')
    print(f'{"workload":<14}' + ''.join(f'{e.name:>18}' for e in emus)
          + f'{"fork/up":>10}{"dseg/up":>10}')
    ratios, results = [], {}
    for wname, run in workloads.items():
        times = {e.name: [] for e in emus}
        agree = set()
        for i in range(opts.runs):
            for emu in rotation(emus, i):
                elapsed, result = run(emu)
                times[emu.name].append(elapsed)
                agree.add(result)
            print(f'  {wname}: run {i + 1}/{opts.runs}', end='\r',
                  file=sys.stderr, flush=True)
        if len(agree) != 1:
            sys.exit(f'bench: {wname} gave different results: {agree}')
        best = {n: min(t) for n, t in times.items()}
        med = {n: statistics.median(t) for n, t in times.items()}
        fork = best['fork'] / best['upstream']
        dseg = best['fork+dseg'] / best['upstream']
        ratios.append(fork)
        results[wname] = {'times_s': times, 'fork_ratio': fork,
                          'dseg_ratio': dseg, 'result': agree.pop()}
        print(f'{wname:<14}' + ''.join(f'{best[e.name]:>9.2f}s '
                                        f'({med[e.name]:5.2f})'
                                        for e in emus)
              + f'{fork:>10.3f}{dseg:>10.3f}')
    geo = statistics.geometric_mean(ratios)
    print(f'{opts.runs} runs each; geometric mean of fork/upstream '
          f'{geo:.3f} ({(geo - 1) * 100:+.1f}%)')
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, 'results.json')
    with open(path, 'w') as f:
        json.dump({'runs': opts.runs,
                   'emulators': {e.name: {'binary': e.qemu, 'cpu': e.cpu,
                                          'version': e.version()}
                                 for e in emus},
                   'packages': image.records(), 'workloads': results,
                   'fork_ratio_geometric_mean': geo}, f, indent=1)
    print(f'results: {path}')
