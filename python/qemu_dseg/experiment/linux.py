"""The translation experiment under Linux: real programs in all six modes.

Debian's unmodified cloud kernel boots in each translation mode: directly
on the fork for base native and native direct, and under the thin test
hypervisor (tests/guest/thinvmm/) for the four virtualised modes, with
all of the guest's RAM above 4 GiB under its VMM segment in VMM direct and
dual direct.  In each boot (one per mode and round, the rounds
interleaved: compare.run_rounds) its /init runs each workload in turn;
the workload's measured part is an exact counter window on the
isa-dseg-window device (docs/specs/direct-segments.rst).  In the direct
modes of the guest dimension (native direct, guest direct, dual direct)
the guest module contrib/linux/dseg gives the measured program its
memory in a primary region: the table programs ask for it (libdseg),
the unmodified servers get their large allocations there through
libdseg-preload.so.
The servers' load generators run on the host, through the guest's
virtio NIC on QEMU's user network (workloads.ServerWorkload).

Linux runs with 4-level paging, without transparent huge pages, so its
programs' memory is in 4 KiB pages (its kernel maps its own memory with
large pages); thinvmm maps its guest with 4 KiB nested pages, or 2 MiB
ones with --nested-page 2m.  The softmmu TLB has a fixed size
(-accel tcg,tlb-size).  Unless the options turn it off, the fork's
dseg-tlb plugin models a CPU's TLBs and walk caches (tlbmodel.py), and
every window has the model's counters beside those of the softmmu TLB's
fills.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from typing import Optional

from .. import assets, boot, guests
from ..machine import Machine, free_tcp_port
from ..model import MODE_BY_NAME
from . import compare, stats, tlbmodel, workloads
from .common import MIB, mode_ratios, qemu_version, tlb_geometry
from .rows import LinuxRow

# Linux's command line in every mode: 4 KiB pages for its programs.
LINUX_CMDLINE = 'no5lvl nokaslr transparent_hugepage=never'
# The guest module's pool: RAM above 4 GiB both when Linux boots directly
# (q35 puts RAM beyond 2 GiB there) and under thinvmm (its high RAM).
POOL_BASE = 5 << 30
# thinvmm's nested page sizes (its npt_page=), as people read them.
NESTED_PAGES = {'4k': '4 KiB', '2m': '2 MiB'}
# The guest's NIC's driver (boot.nic_args()), with what it needs.
NIC_MODULES = ('virtio_net', 'virtio_pci')
# The modes of the paper's claims, each compared with base virtualised.
CLAIM_MODES = ('guest-direct', 'vmm-direct', 'dual-direct')
# thinvmm's line on the guest RAM and the share under its VMM segment.
_LAYOUT = re.compile(r'^THINVMM-LAYOUT (.*)$', re.M)

@dataclass
class ModeRun:
    """One boot in a mode (LinuxExperiment.run_mode()): the time to the
    first workload and in all, each workload's time from its start to the
    next one's (its preparation and checks too) and its window
    (machine.Window), each workload's (ok, detail, checksum) and thinvmm's
    layout line, if any."""
    boot_s: float
    total_s: float
    spans: dict
    windows: dict
    checks: dict
    layout: Optional[str]


def combine(infos):
    """The counters of all vCPUs of a query-dseg answer, added up."""
    total = {}
    for cpu in infos:
        for key, val in cpu['counters'].items():
            if isinstance(val, dict):
                d = total.setdefault(key, {})
                for k, v in val.items():
                    d[k] = d.get(k, 0) + v
            else:
                total[key] = total.get(key, 0) + val
    return total


class LinuxExperiment:
    """One invocation: one boot per mode and round, one window per
    workload."""

    def __init__(self, opts, out=sys.stdout):
        self.opts = opts
        self.out = out
        self.log_dir = os.path.join(opts.out, 'logs')
        self.workloads = [workloads.WORKLOADS[n](opts)
                          for n in opts.workloads]
        self.modes = [MODE_BY_NAME[n] for n in opts.modes]
        regions = [w.region_mb() for w in self.workloads]
        self.pool_size = (max(regions) + 64) * MIB
        self.model_options = tlbmodel.options_of(opts)

    def say(self, text):
        print(text, file=self.out, flush=True)

    def image(self):
        """The kernel and initramfs: busybox, the workloads' programs
        with their libraries, ours, and the guest module."""
        files = {'/bin/dseg-window': guests.path('dseg_window',
                                                 self.opts.guests),
                 '/lib/libdseg-preload.so': guests.path(
                     'libdseg-preload.so', self.opts.guests)}
        data = {}
        for dst, src in files.items():
            with open(src, 'rb') as f:
                data[dst] = f.read()
        with open(assets.dseg_module(), 'rb') as f:
            data['/lib/modules/dseg.ko'] = f.read()
        programs = dict(workloads.PROGRAMS)
        for wl in self.workloads:
            more_data, more_programs = wl.files()
            data.update(more_data)
            programs.update(more_programs)
        return assets.linux_guest(
            workloads.init_script(self.workloads, POOL_BASE,
                                  self.pool_size), extra_files=data,
            modules=NIC_MODULES, programs=programs)

    def qemu_args(self, mode, image, ports):
        """QEMU's arguments for MODE, with the host's PORTS {workload
        name: port} forwarded to the servers' ports."""
        o = self.opts
        extra = ['-device', 'isa-dseg-window', *boot.nic_args(
            mode, {ports[w.name]: w.port for w in self.workloads
                   if w.name in ports})]
        if self.model_options is not None:
            extra += tlbmodel.plugin_args(o.qemu, self.model_options)
        return boot.linux_args(
            image, mode, memory_mb=boot.Q35_LOW_RAM_MB + o.guest_mb,
            vcpus=o.vcpus, tlb_size=o.tlb_size, cmdline=LINUX_CMDLINE,
            pool=(POOL_BASE, self.pool_size), guest_mb=o.guest_mb,
            thinvmm=f'npt_page={o.nested_page}', guests_dir=o.guests,
            extra_args=extra)

    def serve(self, vm, mode, wl, port, ctl):
        """The window of server workload WL, whose guest port the host's
        PORT reaches: its load generator on the host; the server's checks
        after it.  Returns (window, (ok, detail, checksum))."""
        o = self.opts
        vm.wait_console(rf'^SERVE {wl.name}\r?$', o.timeout)
        try:
            wl.prepare(port, o.timeout)
            w, out = vm.window_around(lambda: workloads.run_tool(
                wl.client(port), o.timeout, check=False))
            with open(os.path.join(self.log_dir, f'{mode.name}-{wl.name}'
                                   f'-client.log'), 'w') as f:
                f.write(out.stdout)
            check = wl.check_run(port, out, o.timeout)
            wl.stop(port, o.timeout)
        except workloads.ClientError as e:
            vm.fail(f'{wl.name}: {e}')
        ctl.go()
        return w, check

    def run_mode(self, mode, image):
        """Boot Linux in MODE and serve one window per workload; returns
        its ModeRun."""
        o = self.opts
        windows, checks, began = {}, {}, []
        ports = {w.name: free_tcp_port() for w in self.workloads
                 if isinstance(w, workloads.ServerWorkload)}
        start = time.monotonic()
        with Machine(self.qemu_args(mode, image, ports), name=mode.name,
                     binary=o.qemu, log_dir=self.log_dir) as vm:
            ctl = vm.control_line()
            vm.launch()
            ctl.connect()
            for wl in self.workloads:
                vm.wait_console(rf'^WORKLOAD-BEGIN {wl.name}\r?$',
                                o.timeout)
                began.append(time.monotonic())
                if wl.name in ports:
                    w, checks[wl.name] = self.serve(vm, mode, wl,
                                                    ports[wl.name], ctl)
                else:
                    w = vm.serve_window(o.timeout)
                    if w.marks != [1, 2]:
                        vm.fail(f'{wl.name}: window marks {w.marks}')
                windows[wl.name] = w
            vm.wait_console(r'^LINUX-EXPERIMENT-DONE\r?$', o.timeout)
            began.append(time.monotonic())
            vm.wait_exit(120)
            console = vm.console()
        for wl in self.workloads:
            a = console.find(f'WORKLOAD-BEGIN {wl.name}')
            b = console.find(f'WORKLOAD-END {wl.name}', a)
            if wl.name not in checks:
                checks[wl.name] = wl.check(console[a:b])
            if mode.guest_segment:
                checks[wl.name] = workloads.check_preloaded(
                    wl, console[a:b], checks[wl.name])
        layout = _LAYOUT.search(console)
        spans = {wl.name: b - a for wl, a, b in
                 zip(self.workloads, began, began[1:])}
        return ModeRun(began[0] - start, time.monotonic() - start, spans,
                       windows, checks,
                       layout and layout.group(1).strip())

    def row(self, mode, wl, runs):
        """The row of workload WL in MODE from its RUNS (one per round):
        the counters of the first, every round's times and the fastest,
        and correct only when every run was, with the same checksum."""
        w = runs[0].windows[wl.name]
        counters = combine(w.info)
        checks = [r.checks[wl.name] for r in runs]
        ok, detail, checksum = next((c for c in checks if not c[0]),
                                    checks[0])
        if len({c[2] for c in checks}) > 1:
            ok, detail = False, ('checksums differ between rounds: ' +
                                 ', '.join(str(c[2]) for c in checks))
        figures = stats.summarise(counters)
        model = None
        if self.model_options is not None:
            model = tlbmodel.combine([c.get('model') for c in w.info])
            if model is None:
                raise AssertionError(f'{mode.name}: {wl.name}: query-dseg '
                                     f'has no model counters')
            model = tlbmodel.summarise(model, wl.ops())
        return LinuxRow(
            mode=mode.name, label=mode.label, intended_path=mode.path,
            ok=ok, result=detail, checksum=checksum,
            **stats.timing([r.windows[wl.name] for r in runs], 'min'),
            ops=wl.ops(), **figures,
            arch_refs_per_op=figures['arch_refs'] / wl.ops(),
            fills_per_op=figures['fills'] / wl.ops(), counters=counters,
            per_cpu_counters=[c['counters'] for c in w.info], model=model,
            per_cpu_model=model and [c['model'] for c in w.info])

    def ratios(self):
        """The time ratios of every workload (common.MODE_RATIOS of the
        modes that run), each on that workload's windows.  Their bounds
        are the emulator's targets, so they have none (and no verdict)
        with the model on, whose work in the windows differs by mode."""
        names = [m.name for m in self.modes]
        return [r for wl in self.workloads
                for r in mode_ratios(names, part=wl.name,
                                     bounds=self.model_options is None)]

    def run_and_report(self, name, image):
        """Boot mode NAME (run_mode()) and print its line."""
        mode = MODE_BY_NAME[name]
        run = self.run_mode(mode, image)
        self.boots += 1
        cells = []
        for wl in self.workloads:
            ok = run.checks[wl.name][0]
            w = run.windows[wl.name]
            cells.append(f"{wl.name} {'ok' if ok else 'FAILED'} "
                         f'{w.wall_s:.1f}/{run.spans[wl.name]:.1f} s')
        self.say(f'[boot {self.boots}] {mode.name:<16} boot '
                 f'{run.boot_s:5.1f} s, in all {run.total_s:5.1f} s; ' +
                 '; '.join(cells))
        return run

    def main(self):
        o = self.opts
        self.say(f'Linux experiment: {len(self.modes)} modes x '
                 f'{len(self.workloads)} workloads '
                 f"({', '.join(w.name for w in self.workloads)}), one boot "
                 f'per mode and round; {o.guest_mb} MiB guest RAM, '
                 f'{o.vcpus} vCPU(s)')
        self.say(tlb_geometry(o.tlb_size))
        model = None
        if self.model_options is not None:
            model = tlbmodel.start(o.qemu, self.model_options)
            self.say(tlbmodel.describe(model))
        else:
            self.say('TLB model: off')
        start = time.monotonic()
        self.say('building the initramfs (Debian packages, the guest '
                 'module)...')
        image = self.image()
        self.say('packages: ' + ', '.join(f'{p.name} {p.version}'
                                          for p in image.packages))
        load_before = os.getloadavg()
        self.boots = 0
        o_rounds = (f'{o.runs} round(s)' if o.runs == o.max_runs else
                    f'{o.runs} to {o.max_runs} rounds, until every time '
                    f'ratio is within +-{o.target:g}%')
        self.say(f'{o_rounds} of one boot per mode, in rotated order')
        rounds = compare.run_rounds(
            [m.name for m in self.modes],
            lambda name: self.run_and_report(name, image), self.ratios(),
            o.runs, o.max_runs, o.target / 100, compare.default_metric(),
            progress=lambda text: self.say(f'  {text}'))
        runs = rounds['runs']
        results = []
        for wl in self.workloads:
            rows = [self.row(m, wl, runs[m.name]) for m in self.modes]
            res = self.collect(wl, rows)
            res['rounds'] = dict(
                {k: rounds[k] for k in ('rounds', 'stopped', 'metric',
                                         'target')},
                ratios=[r for r in rounds['ratios']
                        if r['part'] == wl.name])
            results.append(res)
        return {
            'experiment': 'linux',
            'config': {
                'tlb_size': o.tlb_size,
                'tlb_geometry': tlb_geometry(o.tlb_size),
                'tlb_model': model,
                'runs': rounds['rounds'], 'time_statistic': 'min',
                'seed': o.seed, 'guest_mb': o.guest_mb, 'vcpus': o.vcpus,
                'linux_cmdline': boot.kernel_cmdline(extra=LINUX_CMDLINE),
                'paging': ('4-level, 4 KiB pages (guest and native), '
                           f'{NESTED_PAGES[o.nested_page]} nested pages'),
                'packages': image.records(),
                'emulator': {'binary': o.qemu,
                             'version': qemu_version(o.qemu)},
                'thinvmm_layout': next(
                    (rs[0].layout for m, rs in sorted(
                        runs.items(), key=lambda i: 'vmm' not in i[0])
                     if rs[0].layout), None),
                'boot_s': {m: min(r.boot_s for r in rs)
                           for m, rs in runs.items()},
                'host': {'machine': platform.machine(),
                         'cpus': os.cpu_count(),
                         'load_average_before': load_before,
                         'load_average_after': os.getloadavg()},
            },
            'workloads': results,
            'run_count': self.boots,
            'elapsed_s': time.monotonic() - start,
        }

    def collect(self, wl, rows):
        """The results of workload WL: its rows, with ratios to base
        native and the paper's claims as measured ratios: 'claims' from
        the softmmu TLB's fills, 'model_claims' from the TLB model's
        counters (when it is on)."""
        by_mode = stats.add_ratios_to_base_native(rows)
        claims = {}
        model_claims = {}
        base = by_mode.get('base-virtualised')
        native = by_mode.get('base-native')
        for name in CLAIM_MODES:
            r = by_mode.get(name)
            if r and r.model and base:
                model_claims[name] = {
                    'refs_per_op': r.model.refs_per_op,
                    'base_virtualised_refs_per_op': base.model.refs_per_op,
                    'refs_saved_vs_base_virtualised': 1 - stats.ratio(
                        r.model.refs_per_op, base.model.refs_per_op),
                    'cycles_per_op': r.model.cycles_per_op,
                    'base_native_cycles_per_op':
                        native and native.model.cycles_per_op,
                    'cycles_vs_base_native': stats.ratio(
                        r.model.cycles_per_op,
                        native and native.model.cycles_per_op),
                }
            if r and base:
                claims[name] = {
                    'arch_refs_per_op': r.arch_refs_per_op,
                    'base_virtualised_arch_refs_per_op':
                        base.arch_refs_per_op,
                    'refs_saved_vs_base_virtualised': 1 - stats.ratio(
                        r.arch_refs_per_op, base.arch_refs_per_op),
                    'wall_vs_base_native': r.wall_vs_base_native,
                }
        checksums = {r.checksum for r in rows}
        return {'kind': wl.name, 'what': wl.describe(), 'unit': wl.unit,
                'primary_region': wl.region_how,
                'size_mb': wl.size_mb(), 'iters': wl.ops(),
                'seed': self.opts.seed,
                'checksum': checksums.pop() if len(checksums) == 1 else None,
                'all_ok': all(r.ok for r in rows),
                'modes': rows, 'overhead': [], 'claims': claims,
                'model_claims': model_claims}
