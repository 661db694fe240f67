"""The fork's overhead against the unpatched upstream build, side by side.

Runs the same workloads, interleaved round by round (compare.py), on
emulators built from the same Debian source with the same configuration:

  upstream       build/qemu-upstream (no qemu-dseg code, no patches)
  fork           build/qemu with -cpu max (direct segments off)
  fork+dseg      build/qemu with -cpu max,+dseg (feature on, segments unused)

The bare-metal workloads are the experiment's own runs (base native mode,
the loop timed alone).  All series use QEMU's dynamic TLB, or with
--fixed-tlb N a fixed TLB of N entries, and then the upstream series is
build/qemu-upstream-tlb: upstream with only the tlb-size patch.  The Linux workload boots
Debian's kernel to its init's first line; there a fourth series, the same
kernel under thinvmm in VMM direct on the fork (`thinvmm vmm`), gives the
cost of booting in VMM direct against booting directly on the fork.

Every ratio is the geometric mean of its per-round ratios with a 95%
confidence interval; rounds go on until every interval of a workload is
within +-TARGET, or the cap.  A benchmark, not a test: it asserts only
that every build computes the same results.  The results, with the Debian
packages the Linux runs used, go to a JSON file.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import dataclasses
import json
import os
import sys
import time

from .. import assets, boot, config
from ..machine import Machine
from ..model import MODE_BY_NAME
from . import compare
from .baremetal import WORKLOADS, run_once
from .common import FORK_BOUND, Emulator, tlb_size_type
from .compare import Measurement, Ratio
from .workloads import guest_script

# Linux: guest RAM of every boot, and how long the vCPU is left to go
# idle after init's line before its CPU time is read.
LINUX_MB = 1024
IDLE_S = 0.3


def emulators(build, tlb_size=None):
    """The three series' emulators; with TLB_SIZE, a fixed TLB."""
    qemu = os.path.join(build, 'qemu', 'qemu-system-x86_64')
    upstream = 'qemu-upstream-tlb' if tlb_size else 'qemu-upstream'
    return [
        Emulator('upstream', 'upstream', os.path.join(
            build, upstream, 'qemu-system-x86_64'), 'max',
            tlb_size=tlb_size, counters=False),
        Emulator('fork', 'fork', qemu, 'max', tlb_size=tlb_size),
        Emulator('fork+dseg', 'fork+dseg', qemu, 'max,+dseg',
                 tlb_size=tlb_size),
    ]


def bare_metal_run(kind, emus, guests_dir, log_dir):
    """A bare-metal workload of the experiment at its default size and
    iterations: series name -> its Measurement."""
    mode = MODE_BY_NAME['base-native']
    wl = WORKLOADS[kind]

    def run(name):
        r = run_once(emus[name], mode, kind, wl.size_mb, wl.iters, 1,
                     guests_dir, log_dir)
        return Measurement(r.wall_s, r.vcpu_s, r.checksum)
    return run


def linux_args(emu, image, guests_dir, thinvmm):
    """QEMU's arguments to boot IMAGE on EMU, directly or under thinvmm in
    VMM direct; either way the kernel gets LINUX_MB MiB (thinvmm adds its
    14 MiB of low RAM)."""
    mode = MODE_BY_NAME['vmm-direct' if thinvmm else 'base-native']
    low_mb = boot.Q35_LOW_RAM_MB if thinvmm else 0
    return boot.linux_args(
        image, mode, memory_mb=low_mb + LINUX_MB, cpu=emu.cpu,
        tlb_size=emu.tlb_size, guest_mb=LINUX_MB, guests_dir=guests_dir)


def linux_boot_run(image, emus, guests_dir, log_dir):
    """Boot IMAGE to its init's line: wall time to the line, vCPU time once
    init sleeps.  Series 'thinvmm vmm' boots it under thinvmm."""
    def run(name):
        thinvmm = name == 'thinvmm vmm'
        emu = emus['fork+dseg' if thinvmm else name]
        start = time.monotonic()
        with Machine(linux_args(emu, image, guests_dir, thinvmm),
                     name=f'linux-{name.replace(" ", "-")}', binary=emu.qemu,
                     log_dir=log_dir) as vm:
            vm.launch()
            line = vm.wait_console(r'bench: \S+ up', 600, 0.01).group(0)
            wall = time.monotonic() - start
            time.sleep(IDLE_S)
            vcpu = vm.vcpu_cpu_s()
        return Measurement(wall, vcpu, line)
    return run


def ratios_of(series):
    """The ratios that a workload with SERIES reports."""
    ratios = [Ratio('fork / upstream (dseg off)', 'fork', 'upstream',
                    FORK_BOUND),
              Ratio('fork+dseg / upstream (dseg on, unused)', 'fork+dseg',
                    'upstream')]
    if 'thinvmm vmm' in series:
        ratios.append(Ratio('thinvmm VMM direct / direct on fork+dseg',
                            'thinvmm vmm', 'fork+dseg'))
    return ratios


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="The fork's speed against upstream QEMU, side by side, "
                    "with 95%% confidence intervals.")
    ap.add_argument('--build', default=config.BUILD,
                    help='meson build directory (default: build)')
    ap.add_argument('--qemu', help='the fork to measure (default: '
                    'BUILD/qemu/qemu-system-x86_64)')
    ap.add_argument('--min-rounds', type=int, default=5,
                    help='rounds before the stop rule applies (default: 5)')
    ap.add_argument('--max-rounds', type=int, default=30,
                    help='the cap on rounds per workload (default: 30)')
    ap.add_argument('--target', type=float, default=1.0,
                    help='stop once every interval is within +-TARGET '
                         'percent (default: 1)')
    ap.add_argument('--metric', choices=('vcpu', 'wall'), default='vcpu',
                    help='the time that ratios and the stop rule use '
                         '(default: vcpu, the CPU time of the vCPU thread)')
    ap.add_argument('--workloads', nargs='+',
                    choices=[*WORKLOADS, 'linux'],
                    default=[*WORKLOADS, 'linux'],
                    help='what to run (default: all)')
    ap.add_argument('--fixed-tlb', type=tlb_size_type(), metavar='N',
                    help='run every series with -accel tcg,tlb-size=N, '
                         'against upstream with only the tlb-size patch '
                         '(scripts/build-qemu.sh --upstream-tlb); default: '
                         "QEMU's dynamic TLB")
    ap.add_argument('--out', help='directory for results.json (default: '
                    'BUILD/bench-overhead)')
    opts = ap.parse_args(argv)
    if not 2 <= opts.min_rounds <= opts.max_rounds:
        ap.error('need 2 <= --min-rounds <= --max-rounds')
    if opts.target <= 0:
        ap.error('--target must be positive')
    out = opts.out or os.path.join(opts.build, 'bench-overhead')
    logs = os.path.join(out, 'logs')
    emus = {e.name: e for e in emulators(opts.build, opts.fixed_tlb)}
    if opts.qemu:
        for name in ('fork', 'fork+dseg'):
            emus[name].qemu = opts.qemu
    for emu in emus.values():
        if not os.access(emu.qemu, os.X_OK):
            sys.exit(f'bench: {emu.name} emulator {emu.qemu} is not built')
    guests_dir = os.path.join(opts.build, 'tests', 'guest')
    image = None
    workloads = {}
    for w in opts.workloads:
        if w == 'linux':
            image = assets.linux_guest(guest_script(
                'bench-init.sh', prelude=assets.INIT_PRELUDE), modules=())
            workloads['linux boot'] = (
                [*emus, 'thinvmm vmm'],
                linux_boot_run(image, emus, guests_dir, logs))
        else:
            workloads[f'{w} {WORKLOADS[w].size_mb} MiB'] = (
                list(emus), bare_metal_run(w, emus, guests_dir, logs))

    print(f"fork: {emus['fork'].version()}")
    print(f"upstream: {emus['upstream'].version()}")
    print('TLB: ' + (f'fixed, {opts.fixed_tlb} entries per MMU index'
                     if opts.fixed_tlb else "QEMU's dynamic sizing"))
    results = {}
    for wname, (series, run) in workloads.items():
        res = compare.run_rounds(
            series, run, ratios_of(series), opts.min_rounds,
            opts.max_rounds, opts.target / 100, f'{opts.metric}_s',
            compare.stderr_progress(wname))
        print(' ' * 60, end='\r', file=sys.stderr)
        agree = {m.result for ms in res['runs'].values() for m in ms}
        if len(agree) != 1:
            sys.exit(f'bench: {wname} gave different results: {agree}')
        print()
        for line in compare.format_ratios(res, wname):
            print(line)
        res['result'] = agree.pop()
        res['runs'] = {name: [dataclasses.asdict(m) for m in ms]
                       for name, ms in res['runs'].items()}
        results[wname] = res
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, 'results.json')
    with open(path, 'w') as f:
        json.dump({'options': vars(opts),
                   'emulators': {e.name: {'binary': e.qemu, 'cpu': e.cpu,
                                          'version': e.version()}
                                 for e in emus.values()},
                   'packages': image.records() if image else None,
                   'workloads': results}, f, indent=1)
    print(f'results: {path}')
