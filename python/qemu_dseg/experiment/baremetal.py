"""The bare-metal experiment: one timed run, and a whole invocation.

A run boots tests/guest/experiment.c under one translation mode on one
emulator.  The guest encloses its workload loop in two checkpoints; at
the first the runner resets the counters, at the second it reads them
(query-dseg), and it times the loop on the host between the two: the
wall-clock time and the CPU time of the vCPU thread.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from typing import Optional

from .. import guests
from ..machine import Machine, MachineError
from ..model import MODE_BY_NAME
from . import compare, stats, tlbmodel
from .common import (BASE_MODES, FORK_BOUND, Emulator, mode_ratios,
                     tlb_geometry)
from .compare import Ratio
from .output import fmt
from .rows import BareMetalRow



@dataclass(frozen=True)
class Kind:
    """A workload of tests/guest/experiment.c: its default table size
    (MiB) and loop iterations, what it does, and what one iteration
    is."""
    size_mb: int
    iters: int
    what: str
    unit: str


@dataclass(frozen=True)
class Workload:
    """A workload as one invocation runs it."""
    kind: str
    size_mb: int
    iters: int


@dataclass
class Run:
    """One run (run_once()): the loop's times, the counters (None
    without query-dseg), the checksum and the console; with the dseg-tlb
    plugin loaded, the model's configuration and its counters of the loop
    (model_of()); and what QEMU itself printed (a plugin's report at its
    exit, for one)."""
    wall_s: float
    vcpu_s: Optional[float]
    counters: Optional[dict]
    checksum: str
    console: str
    model: Optional[dict] = None
    output: str = ''


WORKLOADS = {
    'gups': Kind(64, 2 << 20, 'random read-modify-write of 8-byte words',
                 'update'),
    'chase': Kind(64, 2 << 20, 'pointer chase over a random cyclic '
                  'permutation of 64-byte slots', 'step'),
    'scan': Kind(64, 8, 'sequential passes summing every word', 'pass'),
}
DEFAULT_WORKLOAD = 'gups'
# The guest needs no timer.  Without PIT and HPET no asynchronous interrupt
# kicks the vCPU (the firmware leaves the PIT ticking), and the counters of
# a fixed-size TLB repeat exactly from run to run.
MACHINE = 'q35,pit=off,hpet=off'
# How often the console is polled while a workload loop runs, in seconds.
POLL_S = 0.001
_CHECKSUM = re.compile(r'^experiment: checksum (0x[0-9a-f]+)$', re.M)


def guest_memory_mb(size_mb):
    """Guest RAM for a table of SIZE_MB MiB: the table (in a VM: its RAM,
    32 MiB plus the table), page tables and the image."""
    return max(256, size_mb + 160)


def run_once(emu, mode, kind, size_mb, iters, seed, guests_dir, log_dir,
             timeout=600, warn=None, attempts=3):
    """Run the workload once under MODE on EMU.

    Returns a Run.  The times run from the resume that ends the
    "start" checkpoint to the "end" checkpoint, so they cover the workload
    loop (plus a VMRUN and a #VMEXIT in virtualised modes).  A run that
    fails before its loop started (for example because the emulator
    binary was being relinked) is retried up to ATTEMPTS times in all,
    after WARN(message); any later failure is raised at once.  The
    machine's logs go to LOG_DIR.
    """
    append = (f'mode={mode.name} kind={kind} size_mb={size_mb} '
              f'iters={iters} seed={seed}')
    args = ['-M', MACHINE, '-cpu', emu.cpu,
            '-m', f'{guest_memory_mb(size_mb)}M', *emu.args(),
            '-kernel', guests.image('experiment', guests_dir),
            *guests.DEBUG_EXIT_ARGS, '-append', append]
    for attempt in range(1, attempts + 1):
        started = []
        try:
            with Machine(args, name=f'{kind}-{mode.name}-{emu.name}',
                         binary=emu.qemu, log_dir=log_dir) as vm:
                return _serve(vm, emu, timeout, started)
        except MachineError as e:
            if started or attempt == attempts:
                raise
            if warn:
                lines = str(e).strip().splitlines() or [repr(e)]
                why = lines[0]
                if '--- qemu output ---' in lines[:-1]:
                    why += '; ' + lines[lines.index('--- qemu output ---')
                                        + 1]
                warn(f'run failed before its loop ({why}); retrying')
            time.sleep(2)


def model_of(vm, info):
    """The modelled hierarchy of VM, with INFO its query-dseg: None when
    the model is off (no dseg-tlb plugin), else {'preset', 'geometry',
    'l2-cycles', 'ref-cycles'} (query-dseg-model) and 'counters', the
    model's counters of each vCPU (query-dseg's 'model')."""
    if not any('model' in cpu for cpu in info):
        return None
    return {**vm.cmd('query-dseg-model'),
            'counters': [cpu.get('model') for cpu in info]}


def _serve(vm, emu, timeout, started):
    """Launch VM, serve its two checkpoints and wait for its exit.

    Appends to STARTED when the guest is sent into its loop.
    """
    vm.launch()
    vm.wait_checkpoint('start', timeout, POLL_S)
    if emu.counters:
        vm.cmd('dseg-reset-counters')
    cpu_start = vm.vcpu_cpu_s()
    start = time.perf_counter()
    started.append(start)
    vm.resume()
    vm.wait_console(r'^CHECKPOINT end\r?$', timeout, POLL_S)
    wall = time.perf_counter() - start
    vm.wait_halted('end', POLL_S)
    # The vCPU is halted now, so its CPU time is that of the loop.
    cpu = vm.vcpu_cpu_s()
    cpu = cpu - cpu_start if cpu is not None and cpu_start is not None \
        else None
    info = vm.cmd('query-dseg') if emu.counters else None
    counters = info[0]['counters'] if info else None
    model = model_of(vm, info) if info else None
    vm.resume()
    status = vm.wait_guest_exit(timeout)
    console = vm.console()
    if status != 0:
        vm.fail(f'the guest exited with status {status}')
    checksum = _CHECKSUM.search(console)
    if not checksum:
        vm.fail('the guest printed no checksum')
    return Run(wall, cpu, counters, checksum.group(1), console, model,
               vm.output())


class Experiment:
    """The runs of one invocation, with a progress line per run.

    OPTS: the options of scripts/dseg-experiment.py bare-metal (workload,
    size_mb, iters, seed, tlb_size, runs, stat, modes, upstream, qemu,
    upstream_qemu, guests, out, tlb_model, tlb_model_options).  With
    the TLB model, the mode runs load its plugin.
    """

    def __init__(self, opts, out=sys.stdout):
        self.opts = opts
        self.out = out
        self.log_dir = os.path.join(opts.out, 'logs')
        self.done = 0
        self.total = 0
        self.model_options = tlbmodel.options_of(opts)
        model = self.model_options is not None
        self.fork = Emulator(
            'fork-dseg', f'fork +dseg tlb-size={opts.tlb_size}' +
            (' +model' if model else ''), opts.qemu,
            'max,+dseg', tlb_size=opts.tlb_size,
            plugin_args=tlbmodel.plugin_args(opts.qemu, self.model_options)
            if model else ())
        self.fork_off = Emulator('fork-off', 'fork dseg off, dynamic TLB',
                                 opts.qemu, 'max', counters=False)
        self.upstream = Emulator('upstream', 'upstream, dynamic TLB',
                                 opts.upstream_qemu, 'max', counters=False)
        self.metric = compare.default_metric()

    def say(self, text):
        """Print a line of progress or results."""
        print(text, file=self.out, flush=True)

    def run(self, emu, mode, wl):
        """One run of workload WL under MODE on EMU, with its progress
        line."""
        r = run_once(emu, mode, wl.kind, wl.size_mb, wl.iters,
                     self.opts.seed, self.opts.guests, self.log_dir,
                     warn=lambda msg: self.say(f'  warning: {mode.name} on '
                                               f'{emu.label}: {msg}'))
        self.done += 1
        fills = (f"fills {stats.summarise(r.counters)['fills']:>9}"
                 if r.counters else f"{'':>15}")
        cpu = f"vCPU {fmt(r.vcpu_s, '7.3f')} s"
        self.say(f'[{self.done:>3}/{self.total}] {wl.kind:<5} '
                 f'{mode.name:<16} {emu.label:<26} loop {r.wall_s:7.3f} s'
                 f'  {cpu}  {fills}  checksum {r.checksum}')
        return r

    def series(self, modes):
        """The series of a workload: {name: (emulator, mode)}.  The modes
        on the fork with dseg, and with --upstream the base modes on the
        fork with dseg off (name@fork-off) and on upstream
        (name@upstream)."""
        series = {m.name: (self.fork, m) for m in modes}
        if self.opts.upstream:
            for name in BASE_MODES:
                for emu in (self.fork_off, self.upstream):
                    series[f'{name}@{emu.name}'] = (emu, MODE_BY_NAME[name])
        return series

    def ratios(self, series):
        """The ratios reported for SERIES, with their targets."""
        ratios = mode_ratios(series)
        ratios += [Ratio(f'fork (dseg off) / upstream: '
                         f'{MODE_BY_NAME[name].label}', f'{name}@fork-off',
                         f'{name}@upstream', FORK_BOUND)
                   for name in BASE_MODES if f'{name}@upstream' in series]
        return ratios

    def run_workload(self, wl, modes):
        """All runs of one workload, in interleaved rounds of every series
        until the stop rule; returns its JSON-ready results."""
        series = self.series(modes)
        o = self.opts
        rounds = compare.run_rounds(
            list(series), lambda name: self.run(*series[name], wl),
            self.ratios(series), o.runs, o.max_runs, o.target / 100,
            self.metric)
        runs = rounds['runs']
        overhead = []
        for name in BASE_MODES:
            if f'{name}@upstream' not in runs:
                continue
            fork = stats.timing(runs[f'{name}@fork-off'], o.stat)
            up = stats.timing(runs[f'{name}@upstream'], o.stat)
            overhead.append({
                'mode': name, 'fork_off': fork, 'upstream': up,
                'wall_ratio': stats.ratio(fork['wall_time_s'],
                                          up['wall_time_s']),
                'vcpu_ratio': stats.ratio(fork['vcpu_time_s'],
                                          up['vcpu_time_s'])})
        res = self.collect(wl, modes, runs, overhead)
        res['rounds'] = {k: rounds[k] for k in
                         ('rounds', 'stopped', 'metric', 'target', 'ratios')}
        return res

    def collect(self, wl, modes, runs, overhead):
        """The results of workload WL from its RUNS ({mode: [run]})."""
        checksums = {r.checksum for rs in runs.values() for r in rs}
        if len(checksums) != 1:
            raise AssertionError(
                f'{wl.kind}: the workload checksum differs between modes '
                f'or emulators: ' + ', '.join(
                    f'{k}={sorted({r.checksum for r in rs})}'
                    for k, rs in runs.items()))
        rows = []
        for mode in modes:
            rs = runs[mode.name]
            first = rs[0].counters
            model = rs[0].model and tlbmodel.combine(
                rs[0].model['counters'])
            rows.append(BareMetalRow(
                mode=mode.name, label=mode.label, intended_path=mode.path,
                **stats.timing(rs, self.opts.stat),
                **stats.summarise(first), counters=first,
                counters_identical_in_repeats=all(
                    r.counters == first for r in rs),
                model=model and tlbmodel.summarise(model, wl.iters),
                guest_lines=re.findall(r'^experiment: .*$', rs[0].console,
                                       re.M)))
        by_mode = stats.add_ratios_to_base_native(rows)
        native = by_mode.get('base-native')
        claims = {}
        for name in ('vmm-direct', 'dual-direct'):
            if native and name in by_mode:
                row = by_mode[name]
                claims[name] = {
                    'wall_vs_base_native': row.wall_vs_base_native,
                    'vcpu_vs_base_native': row.vcpu_vs_base_native,
                    'arch_per_fill': row.arch_per_fill,
                    'base_native_arch_per_fill': native.arch_per_fill,
                }
                if row.model and native.model:
                    claims[name].update(
                        cycles_per_op=row.model.cycles_per_op,
                        base_native_cycles_per_op=native.model.cycles_per_op)
        return {'kind': wl.kind, 'what': WORKLOADS[wl.kind].what,
                'unit': WORKLOADS[wl.kind].unit,
                'size_mb': wl.size_mb, 'iters': wl.iters,
                'seed': self.opts.seed, 'checksum': checksums.pop(),
                'modes': rows, 'overhead': overhead, 'claims': claims}

    def workloads(self):
        """The workloads to run, with their sizes and iterations."""
        kinds = list(WORKLOADS) if self.opts.workload == 'all' \
            else [self.opts.workload]
        return [Workload(k, self.opts.size_mb or WORKLOADS[k].size_mb,
                         self.opts.iters.get(k, WORKLOADS[k].iters))
                for k in kinds]

    def main(self):
        """Run everything; returns the JSON-ready results."""
        modes = [MODE_BY_NAME[n] for n in self.opts.modes]
        wls = self.workloads()
        per_wl = len(modes) + (2 * len(BASE_MODES) if self.opts.upstream
                               else 0)
        self.total = per_wl * self.opts.max_runs * len(wls)
        emus = [self.fork] + ([self.fork_off, self.upstream]
                              if self.opts.upstream else [])
        for emu in emus:
            if not os.access(emu.qemu, os.X_OK):
                sys.exit(f'experiment: {emu.label} emulator {emu.qemu} is '
                         f'not built')
        self.say(tlb_geometry(self.opts.tlb_size))
        model = None
        if self.model_options is not None:
            model = tlbmodel.start(self.opts.qemu, self.model_options)
            self.say(tlbmodel.describe(model) + '; the mode runs load it, '
                     'and their times include its work')
        o = self.opts
        rounds = (f'{o.runs} round(s)' if o.runs == o.max_runs else
                  f'{o.runs} to {o.max_runs} rounds (until every ratio is '
                  f'within +-{o.target:g}%)')
        self.say(f'at most {self.total} runs: {len(modes)} modes' +
                 (', plus the base modes on the fork (dseg off) and on '
                  'upstream,' if o.upstream else '') +
                 f' x {len(wls)} workload(s) x {rounds}')
        load_before = os.getloadavg()
        start = time.monotonic()
        results = [self.run_workload(wl, modes) for wl in wls]
        elapsed = time.monotonic() - start
        return {
            'config': {
                'tlb_size': self.opts.tlb_size,
                'tlb_geometry': tlb_geometry(self.opts.tlb_size),
                'tlb_model': model,
                'runs': self.opts.runs,
                'max_runs': self.opts.max_runs,
                'target_percent': self.opts.target,
                'ratio_metric': self.metric,
                'time_statistic': self.opts.stat,
                'seed': self.opts.seed,
                'paging': '4-level, 4 KiB pages (guest, nested and native)',
                'emulators': {e.name: {'label': e.label, 'binary': e.qemu,
                                       'version': e.version(),
                                       'cpu': e.cpu,
                                       'accel': e.accel_args()}
                                  for e in emus},
                'host': {'machine': platform.machine(),
                         'cpus': os.cpu_count(),
                         'load_average_before': load_before,
                         'load_average_after': os.getloadavg()},
            },
            'workloads': results,
            'run_count': self.done,
            'elapsed_s': elapsed,
        }


