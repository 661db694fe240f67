#!/usr/bin/python3
"""qemu-dseg translation experiment: one workload under every translation mode.

Runs the bare-metal guest tests/guest/experiment.c once per translation
mode of docs/specs/direct-segments.rst (base native, native direct, base
virtualised, guest direct, VMM direct, dual direct) on the fork with
direct segments on and a fixed-size softmmu TLB (-accel tcg,tlb-size=N).
The guest encloses the workload loop in two checkpoints; at the first the
script resets the counters, at the second it reads them (QMP query-dseg),
and it times the loop on the host between the two.  For each mode it
reports TLB fills, page-table references per fill (architectural and
performed), the share of fills that took each path, escape-filter hits,
the loop's wall-clock time and the CPU time of the vCPU thread in it.
The base modes are also run with the feature off and QEMU's default
(dynamic) TLB, on the fork and on the unpatched upstream build of the
same source, for the fork's overhead.

Outputs: a table on stdout, the results as JSON and a chart (PNG).
docs/devel/dseg-experiment.rst explains every column.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests', 'functional'))
import harness  # noqa: E402


class Mode:
    """A translation mode: its guest mode name and intended counter path."""

    def __init__(self, name, label, path, virtualised, segments):
        self.name = name            # mode= of the guest's command line
        self.label = label          # for people
        self.path = path            # the query-dseg path its table fills take
        self.virtualised = virtualised
        self.segments = segments    # needs direct segments (-cpu ...,+dseg)


MODES = (
    Mode('base-native', 'base native', 'native-walk', False, False),
    Mode('native-direct', 'native direct', 'native-direct', False, True),
    Mode('base-virtualised', 'base virtualised', 'walk-2d', True, False),
    Mode('guest-direct', 'guest direct', 'guest-direct', True, True),
    Mode('vmm-direct', 'VMM direct', 'vmm-direct', True, True),
    Mode('dual-direct', 'dual direct', 'dual-direct', True, True),
)
MODE_BY_NAME = {m.name: m for m in MODES}
PATHS = ('native-walk', 'native-direct', 'walk-2d', 'guest-direct',
         'vmm-direct', 'dual-direct')
# Short path names for the share table.
PATH_ABBREV = {'native-walk': 'walk', 'native-direct': 'n-dir',
               'walk-2d': '2d', 'guest-direct': 'g-dir',
               'vmm-direct': 'v-dir', 'dual-direct': 'dual'}
# The modes that need no direct segments, which upstream QEMU runs too.
BASE_MODES = tuple(m.name for m in MODES if not m.segments)

# Default size (MiB) and loop iterations of each workload.
WORKLOADS = {
    'gups': {'size_mb': 64, 'iters': 2 << 20,
             'what': 'random read-modify-write of 8-byte words'},
    'chase': {'size_mb': 64, 'iters': 2 << 20,
              'what': 'pointer chase over a random cyclic permutation of '
                      '64-byte slots'},
    'scan': {'size_mb': 64, 'iters': 8,
             'what': 'sequential passes summing every word'},
}
DEFAULT_WORKLOAD = 'gups'
DEFAULT_TLB_SIZE = 256
VICTIM_TLB_ENTRIES = 8
PAGE_4K = 4096

# The guest needs no timer.  Without PIT and HPET no asynchronous interrupt
# kicks the vCPU (the firmware leaves the PIT ticking), and the counters of
# a fixed-size TLB repeat exactly from run to run.
MACHINE = 'q35,pit=off,hpet=off'
# How often the console is polled while a workload loop runs, in seconds.
POLL_S = 0.001
_CHECKSUM = re.compile(r'^experiment: checksum (0x[0-9a-f]+)$', re.M)


class Emulator:
    """One emulator configuration that runs the experiment guest."""

    def __init__(self, name, label, qemu, cpu, tlb_size=None, counters=True):
        self.name = name
        self.label = label
        self.qemu = qemu
        self.cpu = cpu
        self.tlb_size = tlb_size    # None: no -accel option at all
        self.counters = counters    # has query-dseg

    def args(self):
        """Its accelerator options."""
        if self.tlb_size is None:
            return []
        return ['-accel', f'tcg,tlb-size={self.tlb_size}']

    def version(self):
        """The first line of its --version."""
        out = subprocess.run([self.qemu, '--version'], capture_output=True,
                             text=True, check=True).stdout
        return out.splitlines()[0]


def tlb_geometry(tlb_size):
    """The softmmu TLB geometry that -accel tcg,tlb-size=TLB_SIZE gives."""
    if not tlb_size:
        return (f"TLB: QEMU's dynamic sizing (tlb-size=0: resized with use), "
                f"+ {VICTIM_TLB_ENTRIES}-entry victim")
    return (f'TLB: {tlb_size} entries per MMU index, direct-mapped, '
            f'+ {VICTIM_TLB_ENTRIES}-entry victim (reach '
            f'{tlb_size * PAGE_4K // 1024} KiB of 4 KiB pages)')


def guest_memory_mb(size_mb):
    """Guest RAM for a table of SIZE_MB MiB: the table (in a VM: its RAM,
    32 MiB plus the table), page tables and the image."""
    return max(256, size_mb + 160)


def _launch(vm, qemu):
    """Launch harness Machine VM with the emulator binary QEMU.

    harness.Machine always starts harness.QEMU; the experiment also runs
    the upstream build, so the binary is swapped for the launch only.
    """
    saved = harness.QEMU
    harness.QEMU = qemu
    try:
        vm.launch()
    finally:
        harness.QEMU = saved


def _wait_checkpoint(vm, name, timeout):
    """Wait until the guest has printed checkpoint NAME and halted."""
    vm.wait_console(rf'^CHECKPOINT {name}\r?$', timeout)
    deadline = time.monotonic() + 10
    while not vm.vcpu_halted():
        if time.monotonic() > deadline:
            _fail(vm, f'the vCPU did not halt at checkpoint {name}')
        time.sleep(POLL_S)


def _fail(vm, msg):
    """Stop VM and raise a harness error with its console tail."""
    vm.kill()
    raise harness.MachineError(f'{vm.name}: {msg}{vm.describe()}')


def run_once(emu, mode, kind, size_mb, iters, seed, guests, timeout=600,
             warn=None, attempts=3):
    """Run the workload once under MODE on EMU.

    Returns {'wall_s', 'vcpu_s', 'counters' (None without query-dseg),
    'checksum', 'console'}.  The times run from the NMI that ends the
    "start" checkpoint to the "end" checkpoint, so they cover the workload
    loop (plus a VMRUN and a #VMEXIT in virtualised modes).  A run that
    fails before its loop started (for example because the emulator
    binary was being relinked) is retried up to ATTEMPTS times in all,
    after WARN(message); any later failure is raised at once.
    """
    image = os.path.join(guests, 'experiment.bin')
    if not os.path.exists(image):
        raise FileNotFoundError(f'experiment guest {image} is not built')
    append = (f'mode={mode.name} kind={kind} size_mb={size_mb} '
              f'iters={iters} seed={seed}')
    args = ['-M', MACHINE, '-cpu', emu.cpu,
            '-m', f'{guest_memory_mb(size_mb)}M', *emu.args(),
            '-kernel', image, *harness.DEBUG_EXIT_ARGS, '-append', append]
    for attempt in range(1, attempts + 1):
        vm = harness.Machine(args, name=f'experiment-{mode.name}')
        state = {'loop_started': False}
        try:
            wall, cpu, counters, console = _serve(vm, emu, timeout, state)
        except Exception as e:
            # Keep this error: closing QMP to a killed QEMU raises too.
            try:
                vm.__exit__(None, None, None)
            except Exception:
                pass
            if state['loop_started'] or attempt == attempts:
                raise
            if warn:
                lines = str(e).strip().splitlines() or [repr(e)]
                why = lines[0]
                if '--- qemu stderr ---' in lines[:-1]:
                    why += '; ' + lines[lines.index('--- qemu stderr ---')
                                        + 1]
                warn(f'run failed before its loop ({why}); retrying')
            time.sleep(2)
            continue
        vm.__exit__(None, None, None)
        return {'wall_s': wall, 'vcpu_s': cpu, 'counters': counters,
                'checksum': _CHECKSUM.search(console).group(1),
                'console': console}


def _serve(vm, emu, timeout, state):
    """Launch VM, serve its two checkpoints and wait for its exit.

    Sets STATE['loop_started'] when the guest is sent into its loop.

    Returns (wall time of the loop, CPU time of the vCPU thread in it,
    counters or None, console).
    """
    _launch(vm, emu.qemu)
    _wait_checkpoint(vm, 'start', timeout)
    tid = vm.qmp('query-cpus-fast')[0]['thread-id']
    if emu.counters:
        vm.qmp('dseg-reset-counters')
    cpu_start = thread_cpu_s(tid)
    start = time.perf_counter()
    state['loop_started'] = True
    vm.qmp('inject-nmi')
    end_line = re.compile(r'^CHECKPOINT end\r?$', re.M)
    deadline = time.monotonic() + timeout
    while not end_line.search(vm.console()):
        # The harness has no public poll of the process; a QEMU that died
        # must not leave us polling until the deadline.
        if vm._proc.poll() is not None:
            _fail(vm, f'QEMU exited ({vm._proc.returncode}) during the '
                  f'workload loop')
        if time.monotonic() > deadline:
            _fail(vm, f'the workload loop took more than {timeout} s')
        time.sleep(POLL_S)
    wall = time.perf_counter() - start
    _wait_checkpoint(vm, 'end', 10)
    # The vCPU is halted now, so its CPU time is that of the loop.
    cpu = thread_cpu_s(tid)
    cpu = cpu - cpu_start if cpu is not None and cpu_start is not None \
        else None
    counters = vm.qmp('query-dseg')[0]['counters'] if emu.counters else None
    vm.qmp('inject-nmi')
    status = vm.wait_guest_exit(timeout)
    console = vm.console()
    if status != 0:
        _fail(vm, f'the guest exited with status {status}')
    if not _CHECKSUM.search(console):
        _fail(vm, 'the guest printed no checksum')
    return wall, cpu, counters, console


def thread_cpu_s(tid):
    """CPU time in seconds that thread TID has run, or None if unknown.

    The first field of Linux's /proc/TID/schedstat is in nanoseconds.
    """
    try:
        with open(f'/proc/{tid}/schedstat') as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def summarise(counters):
    """Derived figures of one query-dseg counter set (see the docs)."""
    fills = sum(counters[p]['fills'] for p in PATHS)
    arch = sum(counters[p]['arch-refs'] for p in PATHS)
    perf = sum(counters[p]['guest-refs'] + counters[p]['nested-refs']
               for p in PATHS)
    per_path = {}
    for p in PATHS:
        c = counters[p]
        n = c['fills']
        per_path[p] = {
            'fills': n,
            'share': n / fills if fills else 0.0,
            'arch_per_fill': c['arch-refs'] / n if n else None,
            'performed_per_fill': ((c['guest-refs'] + c['nested-refs']) / n
                                   if n else None),
        }
    return {
        'fills': fills,
        'arch_refs': arch,
        'performed_refs': perf,
        'arch_per_fill': arch / fills if fills else 0.0,
        'performed_per_fill': perf / fills if fills else 0.0,
        'dominant_path': max(PATHS, key=lambda p: counters[p]['fills']),
        'paths': per_path,
        'filter_hits': counters['filter-hits'],
        'filter_probes': counters['filter-probes'],
        'guest_segment_hits': counters['guest-segment-hits'],
        'vmm_segment_hits': counters['vmm-segment-hits'],
    }


def _timing(runs, stat):
    """Wall and vCPU times of RUNS: all of them, their minimum and median,
    and as 'wall_time_s' and 'vcpu_time_s' the one that STAT names."""
    walls = [r['wall_s'] for r in runs]
    cpus = [r['vcpu_s'] for r in runs]
    known = None not in cpus
    t = {'wall_s': walls, 'wall_min_s': min(walls),
         'wall_median_s': statistics.median(walls),
         'vcpu_s': cpus if known else None,
         'vcpu_min_s': min(cpus) if known else None,
         'vcpu_median_s': statistics.median(cpus) if known else None}
    t['wall_time_s'] = t[f'wall_{stat}_s']
    t['vcpu_time_s'] = t[f'vcpu_{stat}_s']
    return t


def _ratio(a, b):
    """A / B, or None when either is unknown."""
    return a / b if a is not None and b else None


class Experiment:
    """The runs of one invocation, with a progress line per run."""

    def __init__(self, opts, out=sys.stdout):
        self.opts = opts
        self.out = out
        self.done = 0
        self.total = 0
        self.fork = Emulator('fork-dseg', f'fork +dseg tlb-size='
                             f'{opts.tlb_size}', opts.qemu, 'max,+dseg',
                             tlb_size=opts.tlb_size)
        self.fork_off = Emulator('fork-off', 'fork dseg off, dynamic TLB',
                                 opts.qemu, 'max')
        self.upstream = Emulator('upstream', 'upstream, dynamic TLB',
                                 opts.upstream_qemu, 'max', counters=False)

    def say(self, text):
        """Print a line of progress or results."""
        print(text, file=self.out, flush=True)

    def run(self, emu, mode, wl):
        """One run of workload WL under MODE on EMU, with its progress
        line."""
        r = run_once(emu, mode, wl['kind'], wl['size_mb'], wl['iters'],
                     self.opts.seed, self.opts.guests,
                     warn=lambda msg: self.say(f'  warning: {mode.name} on '
                                               f'{emu.label}: {msg}'))
        self.done += 1
        fills = (f"fills {summarise(r['counters'])['fills']:>9}"
                 if r['counters'] else f"{'':>15}")
        cpu = f"vCPU {_fmt(r['vcpu_s'], '7.3f')} s"
        self.say(f'[{self.done:>2}/{self.total}] {wl["kind"]:<5} '
                 f'{mode.name:<16} {emu.label:<26} loop {r["wall_s"]:7.3f} s'
                 f'  {cpu}  {fills}  checksum {r["checksum"]}')
        return r

    def run_workload(self, wl, modes):
        """All runs of one workload; returns its JSON-ready results."""
        runs = {m.name: [] for m in modes}
        # Repeats go round all modes, so that drift hits every mode alike.
        for _ in range(self.opts.runs):
            for mode in modes:
                runs[mode.name].append(self.run(self.fork, mode, wl))
        overhead = []
        if self.opts.upstream:
            for name in BASE_MODES:
                mode = MODE_BY_NAME[name]
                pair = [self.fork_off, self.upstream]
                by_emu = {e.name: [] for e in pair}
                for i in range(self.opts.runs):
                    # Alternate which emulator goes first.
                    for emu in pair[i % 2:] + pair[:i % 2]:
                        by_emu[emu.name].append(self.run(emu, mode, wl))
                for emu in pair:
                    runs[f'{name}@{emu.name}'] = by_emu[emu.name]
                fork = _timing(by_emu['fork-off'], self.opts.stat)
                up = _timing(by_emu['upstream'], self.opts.stat)
                overhead.append({
                    'mode': name, 'fork_off': fork, 'upstream': up,
                    'fork_off_counters': by_emu['fork-off'][0]['counters'],
                    'wall_ratio': _ratio(fork['wall_time_s'],
                                         up['wall_time_s']),
                    'vcpu_ratio': _ratio(fork['vcpu_time_s'],
                                         up['vcpu_time_s'])})
        return self.collect(wl, modes, runs, overhead)

    def collect(self, wl, modes, runs, overhead):
        """The results of workload WL from its RUNS ({mode: [run]})."""
        checksums = {r['checksum'] for rs in runs.values() for r in rs}
        if len(checksums) != 1:
            raise AssertionError(
                f'{wl["kind"]}: the workload checksum differs between modes '
                f'or emulators: ' + ', '.join(
                    f'{k}={sorted({r["checksum"] for r in rs})}'
                    for k, rs in runs.items()))
        rows = []
        for mode in modes:
            rs = runs[mode.name]
            first = rs[0]['counters']
            row = {'mode': mode.name, 'label': mode.label,
                   'intended_path': mode.path}
            row.update(_timing(rs, self.opts.stat))
            row.update(summarise(first))
            row['counters'] = first
            row['counters_identical_in_repeats'] = all(
                r['counters'] == first for r in rs)
            row['guest_lines'] = re.findall(r'^experiment: .*$',
                                            rs[0]['console'], re.M)
            rows.append(row)
        by_mode = {r['mode']: r for r in rows}
        native = by_mode.get('base-native')
        for row in rows:
            for t in ('wall', 'vcpu'):
                row[f'{t}_vs_base_native'] = _ratio(
                    row[f'{t}_time_s'],
                    native[f'{t}_time_s'] if native else None)
        claims = {}
        for name in ('vmm-direct', 'dual-direct'):
            if native and name in by_mode:
                row = by_mode[name]
                claims[name] = {
                    'wall_vs_base_native': row['wall_vs_base_native'],
                    'vcpu_vs_base_native': row['vcpu_vs_base_native'],
                    'arch_per_fill': row['arch_per_fill'],
                    'base_native_arch_per_fill': native['arch_per_fill'],
                }
        return {'kind': wl['kind'], 'what': WORKLOADS[wl['kind']]['what'],
                'size_mb': wl['size_mb'], 'iters': wl['iters'],
                'seed': self.opts.seed, 'checksum': checksums.pop(),
                'modes': rows, 'overhead': overhead, 'claims': claims}

    def workloads(self):
        """The workloads to run, with their sizes and iterations."""
        kinds = list(WORKLOADS) if self.opts.workload == 'all' \
            else [self.opts.workload]
        return [{'kind': k,
                 'size_mb': self.opts.size_mb or WORKLOADS[k]['size_mb'],
                 'iters': self.opts.iters.get(k, WORKLOADS[k]['iters'])}
                for k in kinds]

    def main(self):
        """Run everything; returns the JSON-ready results."""
        modes = [MODE_BY_NAME[n] for n in self.opts.modes]
        wls = self.workloads()
        per_wl = len(modes) + (2 * len(BASE_MODES) if self.opts.upstream
                               else 0)
        self.total = per_wl * self.opts.runs * len(wls)
        emus = [self.fork] + ([self.fork_off, self.upstream]
                              if self.opts.upstream else [])
        for emu in emus:
            if not os.access(emu.qemu, os.X_OK):
                sys.exit(f'experiment: {emu.label} emulator {emu.qemu} is '
                         f'not built')
        self.say(tlb_geometry(self.opts.tlb_size))
        self.say(f'{self.total} runs: {len(modes)} modes x {len(wls)} '
                 f'workload(s) x {self.opts.runs} repeat(s)' +
                 (', plus the base modes on the fork (dseg off) and on '
                  'upstream' if self.opts.upstream else ''))
        load_before = os.getloadavg()
        start = time.monotonic()
        results = [self.run_workload(wl, modes) for wl in wls]
        elapsed = time.monotonic() - start
        return {
            'config': {
                'tlb_size': self.opts.tlb_size,
                'tlb_geometry': tlb_geometry(self.opts.tlb_size),
                'runs': self.opts.runs,
                'time_statistic': self.opts.stat,
                'seed': self.opts.seed,
                'paging': '4-level, 4 KiB pages (guest, nested and native)',
                'emulators': {e.name: {'label': e.label, 'binary': e.qemu,
                                       'version': e.version(),
                                       'cpu': e.cpu,
                                       'accel': e.args()} for e in emus},
                'host': {'machine': platform.machine(),
                         'cpus': os.cpu_count(),
                         'load_average_before': load_before,
                         'load_average_after': os.getloadavg()},
            },
            'workloads': results,
            'run_count': self.done,
            'elapsed_s': elapsed,
        }


# --- output ---------------------------------------------------------------

def _fmt(v, spec, none='-'):
    """V formatted with SPEC, or NONE for None."""
    return none if v is None else format(v, spec)


def _stat_text(cfg):
    """How the reported time was chosen from the repeats, for people."""
    n = cfg['runs']
    if n == 1:
        return 'one run'
    return (f'fastest of {n} runs' if cfg['time_statistic'] == 'min'
            else f'median of {n} runs')


def format_results(res):
    """The human-readable tables of RES (the JSON results)."""
    cfg = res['config']
    lines = []
    fork = cfg['emulators']['fork-dseg']
    lines.append(f"{fork['version']}; -cpu {fork['cpu']} "
                 f"{' '.join(fork['accel'])}")
    lines.append(cfg['tlb_geometry'])
    lines.append(f"Paging: {cfg['paging']}; one vCPU; times: "
                 f"{_stat_text(cfg)} of the workload loop alone")
    host = cfg['host']
    load = host['load_average_before'][0]
    if load > 0.5:
        lines.append(f"Note: host load average {load:.2f} before the runs "
                     f"on {host['cpus']} CPUs; other jobs inflate wall "
                     f"times more than vCPU times")
    for wl in res['workloads']:
        lines.append('')
        lines.append(f"Workload {wl['kind']}: {wl['what']}, "
                     f"{wl['size_mb']} MiB table, {wl['iters']} iterations, "
                     f"seed {wl['seed']}; checksum {wl['checksum']} in every "
                     f"run")
        lines.append('')
        hdr = (f"{'mode':<17}{'path':<14}{'fills':>9}{'arch/fill':>10}"
               f"{'perf/fill':>10}{'on path':>9}{'filter':>7}"
               f"{'wall s':>8}{'x nat':>7}{'vCPU s':>8}{'x nat':>7}")
        lines.append(hdr)
        lines.append('-' * len(hdr))
        for r in wl['modes']:
            lines.append(
                f"{r['label']:<17}{r['intended_path']:<14}{r['fills']:>9}"
                f"{r['arch_per_fill']:>10.2f}{r['performed_per_fill']:>10.2f}"
                f"{100 * r['paths'][r['intended_path']]['share']:>8.2f}%"
                f"{r['filter_hits']:>7}{r['wall_time_s']:>8.3f}"
                f"{_fmt(r['wall_vs_base_native'], '.2f'):>7}"
                f"{_fmt(r['vcpu_time_s'], '.3f'):>8}"
                f"{_fmt(r['vcpu_vs_base_native'], '.2f'):>7}")
        lines.append('')
        lines.append('Share of fills by path (%):')
        lines.append(f"{'mode':<17}" + ''.join(f'{PATH_ABBREV[p]:>8}'
                                               for p in PATHS))
        for r in wl['modes']:
            cells = []
            for p in PATHS:
                s = r['paths'][p]['share']
                cells.append(f'{100 * s:>8.2f}' if s else f"{'-':>8}")
            lines.append(f"{r['label']:<17}" + ''.join(cells))
        if wl['overhead']:
            lines.append('')
            lines.append('Overhead of the fork against upstream QEMU (same '
                         'source, no qemu-dseg code).')
            lines.append('Both with -cpu max (direct segments off) and '
                         'without tlb-size, which upstream lacks,')
            lines.append("so both use QEMU's dynamic TLB; "
                         "ratio = fork / upstream:")
            lines.append(f"{'mode':<17}{'fork s':>9}{'upstream s':>12}"
                         f"{'ratio':>7}{'fork vCPU':>11}{'upstream':>10}"
                         f"{'ratio':>7}")
            for o in wl['overhead']:
                lines.append(
                    f"{MODE_BY_NAME[o['mode']].label:<17}"
                    f"{o['fork_off']['wall_time_s']:>9.3f}"
                    f"{o['upstream']['wall_time_s']:>12.3f}"
                    f"{_fmt(o['wall_ratio'], '.3f'):>7}"
                    f"{_fmt(o['fork_off']['vcpu_time_s'], '.3f'):>11}"
                    f"{_fmt(o['upstream']['vcpu_time_s'], '.3f'):>10}"
                    f"{_fmt(o['vcpu_ratio'], '.3f'):>7}")
        if wl['claims']:
            lines.append('')
            lines.append("The paper's claims, checked on these numbers "
                         "(what we measure; no pass/fail):")
            text = {'vmm-direct': 'VMM direct near base native',
                    'dual-direct': 'dual direct better than base native'}
            for name, c in wl['claims'].items():
                lines.append(
                    f"  {text[name]}: wall "
                    f"{_fmt(c['wall_vs_base_native'], '.2f')}x, vCPU "
                    f"{_fmt(c['vcpu_vs_base_native'], '.2f')}x base native; "
                    f"{c['arch_per_fill']:.2f} vs "
                    f"{c['base_native_arch_per_fill']:.2f} arch refs/fill")
    return '\n'.join(lines)


def _bars(ax, values, labels, width, offset, **kw):
    """Bars of VALUES at offset OFFSET from each of the x positions."""
    xs = [i + offset for i in range(len(values))]
    bars = ax.bar(xs, values, width, **kw)
    ax.bar_label(bars, labels=labels, fontsize=7.5, padding=2)
    return bars


def _time_label(seconds, ratio):
    """A bar label: the time, and the ratio if it is known."""
    return f'{seconds:.3f} s' + (f'\n{ratio:.2f}x' if ratio is not None
                                 else '')


def draw_chart(res, path):
    """A PNG of references per fill, and wall (and vCPU) time, per mode."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    wls = res['workloads']
    tlb = res['config']['tlb_size']
    fig, axes = plt.subplots(len(wls), 3, figsize=(17, 5.2 * len(wls)),
                             squeeze=False,
                             gridspec_kw={'width_ratios': [3, 3, 1.5]})
    w = 0.38
    for row, wl in zip(axes, wls):
        modes = wl['modes']
        names = [r['label'].replace(' ', '\n', 1) for r in modes]
        x = list(range(len(modes)))

        ax = row[0]
        arch = [r['arch_per_fill'] for r in modes]
        perf = [r['performed_per_fill'] for r in modes]
        _bars(ax, arch, [f'{v:.1f}' for v in arch], w, -w / 2,
              label='architectural (arch-refs)', color='#4c72b0')
        _bars(ax, perf, [f'{v:.1f}' for v in perf], w, w / 2,
              label='performed by QEMU (guest+nested)', color='#dd8452')
        ax.set_xticks(x, names, fontsize=9)
        ax.set_ylabel('page-table references per TLB fill')
        ax.set_title(f"{wl['kind']}, {wl['size_mb']} MiB: references per "
                     f"fill")
        ax.set_ylim(0, max(arch + perf) * 1.18 + 1)
        ax.legend(fontsize=8, loc='upper left')

        ax = row[1]
        walls = [r['wall_time_s'] for r in modes]
        _bars(ax, walls, [_time_label(v, r['wall_vs_base_native'])
                          for v, r in zip(walls, modes)], 0.6, 0,
              label='wall', color='#55a868')
        if modes[0]['vcpu_time_s'] is not None:
            ax.scatter(x, [r['vcpu_time_s'] for r in modes], marker='_',
                       s=900, linewidths=2, color='#333333', zorder=3,
                       label='vCPU thread CPU time')
        ax.set_xticks(x, names, fontsize=9)
        ax.set_ylabel('time of the workload loop (s)')
        ax.set_title(f"time per mode ({_stat_text(res['config'])}; "
                     f"tlb-size={tlb}); label: x base native")
        ax.set_ylim(0, max(walls + [r['vcpu_time_s'] or 0
                                    for r in modes]) * 1.3)
        ax.legend(fontsize=8, loc='upper left', markerscale=0.3)

        ax = row[2]
        if not wl['overhead']:
            ax.axis('off')
            continue
        over = wl['overhead']
        names = [MODE_BY_NAME[o['mode']].label.replace(' ', '\n')
                 for o in over]
        up = [o['upstream']['wall_time_s'] for o in over]
        fork = [o['fork_off']['wall_time_s'] for o in over]
        _bars(ax, up, [f'{v:.3f} s' for v in up], w, -w / 2,
              label='upstream', color='#999999')
        _bars(ax, fork, [_time_label(v, o['wall_ratio'])
                         for v, o in zip(fork, over)], w, w / 2,
              label='fork, dseg off', color='#c44e52')
        ax.set_xticks(list(range(len(over))), names, fontsize=9)
        ax.set_ylabel('wall time of the workload loop (s)')
        ax.set_title('fork vs upstream, dynamic TLB\n(label: fork / '
                     'upstream)')
        ax.set_ylim(0, max(fork + up) * 1.35)
        ax.legend(fontsize=8, loc='upper left')
    fig.suptitle(f"qemu-dseg: one workload under each translation mode "
                 f"(4 KiB pages). {res['config']['tlb_geometry']}",
                 fontsize=11)
    # Room at the top for the title, whatever the number of rows.
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.25 / fig.get_figheight()))
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- command line ---------------------------------------------------------

def _iters_arg(text):
    """--iters: N (every workload) or KIND=N,... as {kind: N}."""
    if '=' not in text:
        n = int(text)
        if n < 1:
            raise argparse.ArgumentTypeError('iterations must be positive')
        return dict.fromkeys(WORKLOADS, n)
    iters = {}
    for item in text.split(','):
        kind, _, n = item.partition('=')
        if kind not in WORKLOADS or not n.isdigit() or int(n) < 1:
            raise argparse.ArgumentTypeError(f'bad iterations {item!r}')
        iters[kind] = int(n)
    return iters


def parse_args(argv):
    """The options of ARGV (see --help), with defaults filled in."""
    ap = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog='See docs/devel/dseg-experiment.rst.')
    ap.add_argument('--workload', choices=[*WORKLOADS, 'all'],
                    default=DEFAULT_WORKLOAD,
                    help=f'workload to run (default: {DEFAULT_WORKLOAD})')
    ap.add_argument('--size-mb', type=int,
                    help='table size in MiB (default: 64)')
    ap.add_argument('--iters', type=_iters_arg, default={},
                    metavar='N|KIND=N,...',
                    help='loop iterations: updates (gups), steps (chase) or '
                         'passes (scan); N for every workload run, or per '
                         'kind, e.g. gups=1000000,scan=2 (default: ' +
                         ','.join(f"{k}={v['iters']}"
                                  for k, v in WORKLOADS.items()) + ')')
    ap.add_argument('--seed', type=int, default=1,
                    help='random seed, positive (default: 1)')
    ap.add_argument('--tlb-size', type=int, default=DEFAULT_TLB_SIZE,
                    help='softmmu TLB entries per MMU index for the mode '
                         'runs, a power of two from 64 to 65536, or 0 for '
                         f"QEMU's dynamic TLB (default: {DEFAULT_TLB_SIZE})")
    ap.add_argument('--runs', type=int, default=5,
                    help='repeats of every run (default: 5)')
    ap.add_argument('--stat', choices=('min', 'median'), default='min',
                    help='which time of the repeats to report: the '
                         'fastest (default; interference on the host only '
                         'adds time) or the median')
    ap.add_argument('--modes', nargs='+', choices=list(MODE_BY_NAME),
                    default=list(MODE_BY_NAME), metavar='MODE',
                    help='translation modes to run (default: all six: ' +
                         ', '.join(MODE_BY_NAME) + ')')
    ap.add_argument('--no-upstream', dest='upstream', action='store_false',
                    help='skip the comparison with the upstream build')
    ap.add_argument('--build', default=os.path.join(REPO, 'build'),
                    help='meson build directory (default: build)')
    ap.add_argument('--qemu', help='the fork (default: '
                    '$QEMU_DSEG_QEMU or BUILD/qemu/qemu-system-x86_64)')
    ap.add_argument('--upstream-qemu', help='the upstream build (default: '
                    'BUILD/qemu-upstream/qemu-system-x86_64)')
    ap.add_argument('--guests', help='directory of the test guests '
                    '(default: $QEMU_DSEG_GUESTS or BUILD/tests/guest)')
    ap.add_argument('--out', help='directory for results.json and '
                    'modes.png (default: BUILD/experiment)')
    ap.add_argument('--no-chart', dest='chart', action='store_false',
                    help='do not draw modes.png')
    opts = ap.parse_args(argv)
    if opts.seed <= 0:
        ap.error('--seed must be positive')
    if opts.runs < 1:
        ap.error('--runs must be at least 1')
    if opts.size_mb is not None and not 1 <= opts.size_mb <= 1024:
        ap.error('--size-mb must be 1 to 1024')
    t = opts.tlb_size
    if t and (t < 64 or t > 65536 or t & (t - 1)):
        ap.error('--tlb-size must be 0 or a power of two from 64 to 65536')
    build = os.path.abspath(opts.build)
    default_build = build == os.path.join(REPO, 'build')
    opts.qemu = opts.qemu or (harness.QEMU if default_build else os.path.join(
        build, 'qemu', 'qemu-system-x86_64'))
    opts.upstream_qemu = opts.upstream_qemu or os.path.join(
        build, 'qemu-upstream', 'qemu-system-x86_64')
    opts.guests = opts.guests or (harness.GUESTS if default_build else
                                  os.path.join(build, 'tests', 'guest'))
    opts.out = opts.out or os.path.join(build, 'experiment')
    return opts


def main(argv=None, out=sys.stdout):
    """Run the experiment; returns the results (also written as JSON)."""
    opts = parse_args(argv)
    res = Experiment(opts, out).main()
    os.makedirs(opts.out, exist_ok=True)
    json_path = os.path.join(opts.out, 'results.json')
    with open(json_path, 'w') as f:
        json.dump(res, f, indent=1)
    print('', file=out)
    print(format_results(res), file=out)
    print('', file=out)
    if opts.chart:
        png = os.path.join(opts.out, 'modes.png')
        draw_chart(res, png)
        print(f'chart:   {png}', file=out)
    print(f'results: {json_path}', file=out)
    print(f"total:   {res['run_count']} runs in {res['elapsed_s']:.0f} s",
          file=out)
    return res


if __name__ == '__main__':
    main()
