"""The translation experiment under Linux: real programs in all six modes.

Debian's unmodified cloud kernel boots in each translation mode: directly
on the fork for base native and native direct, and under the thin test
hypervisor (tests/guest/thinvmm.c) for the four virtualised modes, with
all of the guest's RAM above 4 GiB under its VMM segment in VMM direct and
dual direct.  In one boot per mode its /init runs each workload in turn;
the workload's measured part is an exact counter window on the
isa-dseg-window device (docs/specs/direct-segments.rst).  In the direct
modes of the guest dimension (native direct, guest direct, dual direct)
the guest module contrib/linux/dseg gives the measured program its
memory in a primary region: GUPS asks for it (libdseg), the unmodified
servers get their large allocations there through libdseg-preload.so.

Every page table is built of 4 KiB pages: Linux runs with 4-level paging,
without transparent huge pages, and thinvmm maps its guest with 4 KiB
nested pages.  The softmmu TLB has a fixed size (-accel tcg,tlb-size).

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import platform
import re
import subprocess
import sys
import time

from .. import assets, boot, guests
from ..machine import Machine
from ..model import MODE_BY_NAME, PATHS
from . import stats
from .output import fmt
from .runner import MODE_RATIOS, tlb_geometry

MIB = 1 << 20
# Linux's command line in every mode: 4 KiB pages everywhere.
LINUX_CMDLINE = 'no5lvl nokaslr transparent_hugepage=never'
# The guest module's pool: RAM above 4 GiB both when Linux boots directly
# (q35 puts RAM beyond 2 GiB there) and under thinvmm (its high RAM).
POOL_BASE = 5 << 30
# thinvmm's line on the guest RAM and the share under its VMM segment.
_LAYOUT = re.compile(r'^THINVMM-LAYOUT (.*)$', re.M)

PROGRAMS = {
    '/bin/memcached': ('memcached', 'usr/bin/memcached'),
    '/bin/memcslap': ('libmemcached-tools', 'usr/bin/memcslap'),
    '/bin/memccp': ('libmemcached-tools', 'usr/bin/memccp'),
    '/bin/memccat': ('libmemcached-tools', 'usr/bin/memccat'),
    '/bin/memcstat': ('libmemcached-tools', 'usr/bin/memcstat'),
    # redis-server is redis-check-rdb under another name.
    '/bin/redis-server': ('redis-tools', 'usr/bin/redis-check-rdb'),
    '/bin/redis-benchmark': ('redis-tools', 'usr/bin/redis-benchmark'),
    '/bin/redis-cli': ('redis-tools', 'usr/bin/redis-cli'),
}


class Workload:
    """A workload: its /init snippet, how many operations its window does
    and how its console output is checked."""

    name = ''
    what = ''
    unit = ''
    # How its measured memory gets into a primary region, or None.
    region_how = None

    def __init__(self, opts):
        self.opts = opts

    def size_mb(self):
        """The size of its data set, in MiB (roughly, for servers)."""
        raise NotImplementedError

    def region_mb(self):
        """The primary region its measured program asks for, in MiB."""
        raise NotImplementedError

    def ops(self):
        """Operations in its window."""
        raise NotImplementedError

    def script(self):
        """Its /init snippet: $region is 1 in the direct modes of the
        guest dimension; it brackets the measured part with dseg-window
        marks 1 and 2 and ends with a line 'NAME-RESULT ok|failed ...'."""
        raise NotImplementedError

    def describe(self):
        raise NotImplementedError

    def check(self, text):
        """(ok, detail, checksum or None) from the workload's console
        output TEXT."""
        m = re.search(rf'^{self.name.upper()}-RESULT (\w+)(.*)$', text, re.M)
        if not m:
            return False, 'no result line', None
        return m.group(1) == 'ok', m.group(2).strip(), None


class TableWorkload(Workload):
    """One of our programs over a table: its loop is the window."""

    unit = ''
    unit_plural = ''
    region_how = 'the table, from libdseg'

    def size_mb(self):
        return getattr(self.opts, f'{self.name}_mb')

    def region_mb(self):
        return self.size_mb()

    def ops(self):
        return getattr(self.opts, f'{self.name}_{self.unit_plural}')

    def describe(self):
        return (f'{self.what} (tests/guest/linux/{self.name}.c), '
                f'{self.size_mb()} MiB table, {self.ops()} '
                f'{self.unit_plural}, seed {self.opts.seed}')

    def script(self):
        tag = self.name.upper()
        return f"""\
t=; [ $region = 1 ] && t=--region
/bin/{self.name} $t --window {self.size_mb()} {self.ops()} \\
    {self.opts.seed} > /tmp/{self.name}.out
st=$?
cat /tmp/{self.name}.out
if [ $st = 0 ] && grep -q '^{tag} .* checksum ' /tmp/{self.name}.out; then
    echo "{tag}-RESULT ok $(sed -n 's/.*checksum //p' /tmp/{self.name}.out)"
else
    echo "{tag}-RESULT failed status $st"
fi
"""

    def check(self, text):
        ok, detail, _ = super().check(text)
        m = re.search(rf'^{self.name.upper()} mib \d+ \w+ \d+ seed \d+ '
                      r'table (\w+) checksum (0x[0-9a-f]+)', text, re.M)
        return ok and m is not None, detail, m and m.group(2)


class Gups(TableWorkload):
    name = 'gups'
    what = 'random read-modify-write of 8-byte words'
    unit, unit_plural = 'update', 'updates'


class Chase(TableWorkload):
    name = 'chase'
    what = 'pointer chase over one random cycle of 64-byte slots'
    unit, unit_plural = 'step', 'steps'


class Memcached(Workload):
    name = 'memcached'
    what = ('memcached 1 thread, driven by memcslap over loopback: '
            'N sets, then N gets of random keys')
    unit = 'request'
    region_how = "memcached's slabs, through libdseg-preload.so"

    def size_mb(self):
        # memcslap's values average about 2.6 KiB.
        return self.opts.memcached_keys * 2600 // MIB

    def region_mb(self):
        return self.opts.memcached_mb + 64

    def ops(self):
        return 2 * self.opts.memcached_keys

    def describe(self):
        o = self.opts
        return (f'memcached ({o.memcached_mb} MiB cache, 1 thread), '
                f'memcslap: {o.memcached_keys} sets then '
                f'{o.memcached_keys} gets')

    def script(self):
        o = self.opts
        return f"""\
memcached_ok=1
run_in_region {self.region_mb()} /bin/memcached -u root -m {o.memcached_mb} \\
    -l 127.0.0.1 -p 11211 -t 1 &
mpid=$!
wait_for memcstat --servers=127.0.0.1 || memcached_ok=0
head -c 524288 /bin/busybox > /tmp/item
memccp --servers=127.0.0.1 /tmp/item || memcached_ok=0
dseg-window 1
memcslap --servers=127.0.0.1 --test=get --initial-load={o.memcached_keys} \\
    --execute-number={o.memcached_keys} --concurrency=1 > /tmp/slap.out 2>&1
st=$?
dseg-window 2
cat /tmp/slap.out
# memccat ends the value with a newline of its own.
[ "$(memccat --servers=127.0.0.1 item | md5sum)" = \
  "$( (cat /tmp/item; echo) | md5sum)" ] || {{
    echo 'memccat: not what was set'; memcached_ok=0; }}
memcstat --servers=127.0.0.1 > /tmp/stat.out
hits=$(sed -n 's/^[[:space:]]*get_hits: //p' /tmp/stat.out)
misses=$(sed -n 's/^[[:space:]]*get_misses: //p' /tmp/stat.out)
items=$(sed -n 's/^[[:space:]]*curr_items: //p' /tmp/stat.out)
[ "$st" = 0 ] && [ "$hits" = {o.memcached_keys + 1} ] && [ "$misses" = 0 ] \\
    && [ "$items" = {o.memcached_keys + 1} ] || memcached_ok=0
kill $mpid; wait $mpid
r=failed; [ $memcached_ok = 1 ] && r=ok
echo "MEMCACHED-RESULT $r status $st get_hits $hits get_misses $misses curr_items $items"
"""


class Redis(Workload):
    name = 'redis'
    what = 'redis-server, driven by redis-benchmark over loopback'
    unit = 'request'
    region_how = ("redis-server's heap: jemalloc's extents, through "
                  "libdseg-preload.so")

    def size_mb(self):
        return self.opts.redis_keys * self.opts.redis_value // MIB

    def region_mb(self):
        # At most one key per SET; jemalloc rounds a value up by at most
        # a quarter (its size classes), and a key costs about 100 bytes
        # more (measured: 5.1 KiB per key of a 4 KiB value).
        o = self.opts
        keys = min(o.redis_requests, o.redis_keys)
        return keys * (o.redis_value * 5 // 4 + 128) // MIB + 64

    def ops(self):
        return 2 * self.opts.redis_requests

    def describe(self):
        o = self.opts
        return (f'redis-server (no persistence), redis-benchmark SET then '
                f'GET, {o.redis_requests} requests each, {o.redis_keys} '
                f'random keys, {o.redis_value}-byte values, pipeline 16')

    def script(self):
        o = self.opts
        return f"""\
redis_ok=1
run_in_region {self.region_mb()} /bin/redis-server --port 6379 --save '' \\
    --appendonly no --logfile /tmp/redis.log &
rpid=$!
wait_for redis-cli ping || redis_ok=0
dseg-window 1
redis-benchmark -q -t set,get -n {o.redis_requests} -r {o.redis_keys} \\
    -d {o.redis_value} -P 16 > /tmp/bench.out 2>&1
st=$?
dseg-window 2
tr '\\r' '\\n' < /tmp/bench.out | grep -E '^(SET|GET): [0-9.]+ requests' \\
    > /tmp/bench.sum
cat /tmp/bench.sum
[ "$st" = 0 ] && [ "$(wc -l < /tmp/bench.sum)" = 2 ] || redis_ok=0
grep -qi error /tmp/bench.out && redis_ok=0
redis-cli set qemu-dseg-check 42 > /dev/null
[ "$(redis-cli get qemu-dseg-check)" = 42 ] || redis_ok=0
keys=$(redis-cli dbsize)
redis-cli shutdown nosave > /dev/null 2>&1; wait $rpid
r=failed; [ $redis_ok = 1 ] && r=ok
echo "REDIS-RESULT $r status $st keys $keys"
"""


WORKLOADS = {w.name: w for w in (Gups, Chase, Memcached, Redis)}

INIT_HEAD = """#!/bin/sh
{prelude}
ifconfig lo 127.0.0.1 up
echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
# As redis asks: jemalloc then never remaps memory to decommit it.
echo 1 > /proc/sys/vm/overcommit_memory
region=0
if grep -q {region_flag} /proc/cmdline; then
    region=1
    insmod /lib/modules/dseg.ko pool_base={pool_base:#x} \\
        pool_size={pool_size:#x} || echo INSMOD-FAILED
fi
# run_in_region MB PROGRAM...: in the direct modes of the guest dimension,
# PROGRAM's large allocations go to a primary region of MB MiB.
run_in_region() {{
    mb=$1; shift
    if [ $region = 1 ]; then
        LD_PRELOAD=/lib/libdseg-preload.so DSEG_REGION_MB=$mb "$@"
    else
        "$@"
    fi
}}
# wait_for COMMAND...: until it succeeds, for at most 60 s.
wait_for() {{
    for i in $(seq 300); do
        "$@" > /dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}}
"""


def init_script(workloads, pool_size):
    """The guest's /init: each workload in turn, between markers."""
    parts = [INIT_HEAD.format(prelude=assets.INIT_PRELUDE,
                              region_flag=boot.REGION_FLAG,
                              pool_base=POOL_BASE, pool_size=pool_size)]
    for wl in workloads:
        parts.append(f'echo "WORKLOAD-BEGIN {wl.name}"\n')
        parts.append(wl.script())
        parts.append(f'echo "WORKLOAD-END {wl.name}"\n')
    parts.append('echo LINUX-EXPERIMENT-DONE\n')
    parts.append(assets.EPILOGUE)
    return ''.join(parts)


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
    """One invocation: one boot per mode, one window per workload."""

    def __init__(self, opts, out=sys.stdout):
        self.opts = opts
        self.out = out
        self.log_dir = os.path.join(opts.out, 'logs')
        self.workloads = [WORKLOADS[n](opts) for n in opts.workloads]
        self.modes = [MODE_BY_NAME[n] for n in opts.modes]
        regions = [w.region_mb() for w in self.workloads]
        self.pool_size = (max(regions) + 64) * MIB
        self.done = 0

    def say(self, text):
        print(text, file=self.out, flush=True)

    def image(self):
        """The kernel and initramfs: busybox, the workloads' programs
        with their libraries, ours, and the guest module."""
        files = {'/bin/gups': guests.path('gups', self.opts.guests),
                 '/bin/chase': guests.path('chase', self.opts.guests),
                 '/bin/dseg-window': guests.path('dseg_window',
                                                 self.opts.guests),
                 '/lib/libdseg-preload.so': guests.path(
                     'libdseg-preload.so', self.opts.guests)}
        data = {}
        for dst, src in files.items():
            with open(src, 'rb') as f:
                data[dst] = f.read()
        with open(assets.dseg_module(), 'rb') as f:
            data['/lib/modules/dseg.ko'] = f.read()
        return assets.linux_guest(
            init_script(self.workloads, self.pool_size), extra_files=data,
            modules=(), programs=PROGRAMS)

    def qemu_args(self, mode, image):
        """QEMU's arguments for MODE."""
        o = self.opts
        return boot.linux_args(
            image, mode, memory_mb=boot.Q35_LOW_RAM_MB + o.guest_mb,
            vcpus=o.vcpus, tlb_size=o.tlb_size, cmdline=LINUX_CMDLINE,
            pool=(POOL_BASE, self.pool_size), guest_mb=o.guest_mb,
            guests_dir=o.guests, extra_args=['-device', 'isa-dseg-window'])

    def run_mode(self, mode, image):
        """Boot Linux in MODE and serve one window per workload; returns
        {'boot_s', 'windows': {name: Window}, 'console', 'layout'}."""
        o = self.opts
        windows = {}
        start = time.monotonic()
        with Machine(self.qemu_args(mode, image), name=mode.name,
                     binary=o.qemu, log_dir=self.log_dir) as vm:
            vm.launch()
            for wl in self.workloads:
                vm.wait_console(rf'^WORKLOAD-BEGIN {wl.name}\r?$',
                                o.timeout)
                if not windows:
                    boot = time.monotonic() - start
                w = vm.serve_window(o.timeout)
                if w.marks != [1, 2]:
                    vm.fail(f'{wl.name}: window marks {w.marks}')
                windows[wl.name] = w
            vm.wait_console(r'^LINUX-EXPERIMENT-DONE\r?$', o.timeout)
            vm.wait_exit(120)
            console = vm.console()
        layout = _LAYOUT.search(console)
        return {'boot_s': boot, 'windows': windows, 'console': console,
                'layout': layout and layout.group(1).strip(),
                'total_s': time.monotonic() - start}

    def row(self, mode, wl, run):
        """The JSON row of workload WL in MODE."""
        w = run['windows'][wl.name]
        counters = combine(w.info)
        text = run['console']
        a = text.find(f'WORKLOAD-BEGIN {wl.name}')
        b = text.find(f'WORKLOAD-END {wl.name}', a)
        ok, detail, checksum = wl.check(text[a:b])
        row = {'mode': mode.name, 'label': mode.label,
               'intended_path': mode.path,
               'ok': ok, 'result': detail, 'checksum': checksum,
               'wall_time_s': w.wall_s, 'vcpu_time_s': w.vcpu_s,
               'ops': wl.ops()}
        row.update(stats.summarise(counters))
        row['arch_refs_per_op'] = row['arch_refs'] / wl.ops()
        row['fills_per_op'] = row['fills'] / wl.ops()
        row['counters'] = counters
        row['per_cpu_counters'] = [c['counters'] for c in w.info]
        return row

    def main(self):
        o = self.opts
        self.say(f'Linux experiment: {len(self.modes)} modes x '
                 f'{len(self.workloads)} workloads '
                 f"({', '.join(w.name for w in self.workloads)}), one boot "
                 f'per mode; {o.guest_mb} MiB guest RAM, {o.vcpus} vCPU(s)')
        self.say(tlb_geometry(o.tlb_size))
        start = time.monotonic()
        self.say('building the initramfs (Debian packages, the guest '
                 'module)...')
        image = self.image()
        self.say('packages: ' + ', '.join(f'{p.name} {p.version}'
                                          for p in image.packages))
        load_before = os.getloadavg()
        runs = {}
        for i, mode in enumerate(self.modes, 1):
            run = self.run_mode(mode, image)
            runs[mode.name] = run
            cells = []
            for wl in self.workloads:
                r = self.row(mode, wl, run)
                cells.append(f"{wl.name} {'ok' if r['ok'] else 'FAILED'} "
                             f"{r['wall_time_s']:.1f} s "
                             f"{r['fills']} fills")
            self.say(f'[{i}/{len(self.modes)}] {mode.name:<16} boot '
                     f"{run['boot_s']:5.1f} s; " + '; '.join(cells))
        results = []
        for wl in self.workloads:
            rows = [self.row(m, wl, runs[m.name]) for m in self.modes]
            results.append(self.collect(wl, rows))
        return {
            'experiment': 'linux',
            'config': {
                'tlb_size': o.tlb_size,
                'tlb_geometry': tlb_geometry(o.tlb_size),
                'runs': 1, 'time_statistic': 'min',
                'seed': o.seed, 'guest_mb': o.guest_mb, 'vcpus': o.vcpus,
                'linux_cmdline': boot.kernel_cmdline(extra=LINUX_CMDLINE),
                'paging': '4-level, 4 KiB pages (guest, nested and native)',
                'packages': image.records(),
                'emulator': {'binary': o.qemu,
                             'version': _version(o.qemu)},
                'thinvmm_layout': next(
                    (r['layout'] for m, r in sorted(
                        runs.items(), key=lambda i: 'vmm' not in i[0])
                     if r['layout']), None),
                'boot_s': {m: r['boot_s'] for m, r in runs.items()},
                'host': {'machine': platform.machine(),
                         'cpus': os.cpu_count(),
                         'load_average_before': load_before,
                         'load_average_after': os.getloadavg()},
            },
            'workloads': results,
            'run_count': len(runs),
            'elapsed_s': time.monotonic() - start,
        }

    def collect(self, wl, rows):
        """The results of workload WL: its rows, with ratios to base
        native and the paper's claims as measured ratios."""
        by_mode = stats.add_ratios_to_base_native(rows)
        claims = {}
        base = by_mode.get('base-virtualised')
        for name in ('guest-direct', 'vmm-direct', 'dual-direct'):
            r = by_mode.get(name)
            if r and base:
                claims[name] = {
                    'arch_refs_per_op': r['arch_refs_per_op'],
                    'base_virtualised_arch_refs_per_op':
                        base['arch_refs_per_op'],
                    'refs_saved_vs_base_virtualised': 1 - stats.ratio(
                        r['arch_refs_per_op'], base['arch_refs_per_op']),
                    'wall_vs_base_native': r['wall_vs_base_native'],
                }
        time_ratios = [
            {'a': a, 'b': b, 'bound': bound,
             'vcpu_ratio': stats.ratio(by_mode[a]['vcpu_time_s'],
                                       by_mode[b]['vcpu_time_s'])}
            for a, b, bound in MODE_RATIOS if a in by_mode and b in by_mode]
        checksums = {r['checksum'] for r in rows}
        return {'kind': wl.name, 'what': wl.describe(), 'unit': wl.unit,
                'primary_region': wl.region_how,
                'size_mb': wl.size_mb(), 'iters': wl.ops(),
                'seed': self.opts.seed,
                'checksum': checksums.pop() if len(checksums) == 1 else None,
                'all_ok': all(r['ok'] for r in rows),
                'modes': rows, 'overhead': [], 'claims': claims,
                'time_ratios': time_ratios}


def _version(qemu):
    return subprocess.run([qemu, '--version'], capture_output=True,
                          text=True, check=True).stdout.splitlines()[0]


def format_results(res):
    """The human-readable tables of the Linux experiment's results."""
    cfg = res['config']
    lines = [f"{cfg['emulator']['version']}; -cpu max,+dseg; "
             f"{cfg['tlb_geometry']}",
             f"Linux: {cfg['guest_mb']} MiB of guest RAM, "
             f"{cfg['vcpus']} vCPU(s), {cfg['paging']}; "
             + ', '.join(f"{p['package']} {p['version']}"
                         for p in cfg['packages'][:1])]
    if cfg['thinvmm_layout']:
        lines.append(f"thinvmm: {cfg['thinvmm_layout']}")
    lines.append('Boot to the first workload (s): ' + ', '.join(
        f'{MODE_BY_NAME[m].label} {s:.1f}' for m, s in cfg['boot_s'].items()))
    for wl in res['workloads']:
        lines.append('')
        status = 'correct in every mode' if wl['all_ok'] else \
            'FAILED in ' + ', '.join(r['label'] for r in wl['modes']
                                     if not r['ok'])
        lines.append(f"Workload {wl['kind']}: {wl['what']}; {status}"
                     + (f"; checksum {wl['checksum']}" if wl['checksum']
                        else ''))
        lines.append('Primary region in the direct modes of the guest '
                     'dimension: ' + (wl['primary_region'] or
                                      'none (the program uses its own '
                                      'memory in every mode)'))
        lines.append('')
        unit = wl['unit']
        hdr = (f"{'mode':<17}{'path':<14}{'fills':>9}{'arch/fill':>10}"
               f"{'perf/fill':>10}{'on path':>9}{'filter':>7}"
               f"{'refs/' + unit:>13}{'wall s':>8}{'x nat':>7}"
               f"{'vCPU s':>8}")
        lines.append(hdr)
        lines.append('-' * len(hdr))
        for r in wl['modes']:
            share = r['paths'][r['intended_path']]['share']
            lines.append(
                f"{r['label']:<17}{r['intended_path']:<14}{r['fills']:>9}"
                f"{r['arch_per_fill']:>10.2f}{r['performed_per_fill']:>10.2f}"
                f"{100 * share:>8.2f}%{r['filter_hits']:>7}"
                f"{r['arch_refs_per_op']:>13.2f}{r['wall_time_s']:>8.2f}"
                f"{fmt(r['wall_vs_base_native'], '.2f'):>7}"
                f"{fmt(r['vcpu_time_s'], '.2f'):>8}")
        lines.append('')
        lines.append('Share of fills by path (%):')
        lines.append(f"{'mode':<17}" + ''.join(f'{p:>14}' for p in PATHS))
        for r in wl['modes']:
            cells = [f"{100 * r['paths'][p]['share']:>14.2f}"
                     if r['paths'][p]['share'] else f"{'-':>14}"
                     for p in PATHS]
            lines.append(f"{r['label']:<17}" + ''.join(cells))
        if wl['claims']:
            lines.append('')
            lines.append("The paper's claims, as measured (page-walk "
                         f"references per {unit} against base "
                         "virtualised; no pass/fail):")
            for name, c in wl['claims'].items():
                saved = c['refs_saved_vs_base_virtualised']
                lines.append(
                    f"  {MODE_BY_NAME[name].label}: "
                    f"{c['arch_refs_per_op']:.2f} vs "
                    f"{c['base_virtualised_arch_refs_per_op']:.2f} refs/"
                    f"{unit} ({100 * abs(saved):.1f}% "
                    f"{'fewer' if saved >= 0 else 'more'}); wall "
                    f"{fmt(c['wall_vs_base_native'], '.2f')}x base native")
        if wl['time_ratios']:
            lines.append('Time ratios (vCPU time, one run each, so no '
                         'interval; --bare-metal --max-runs gives them '
                         'with one):')
            lines.append('  ' + '; '.join(
                f"{MODE_BY_NAME[t['a']].label} / "
                f"{MODE_BY_NAME[t['b']].label} "
                f"{fmt(t['vcpu_ratio'], '.3f')}"
                + (f" (target <= {t['bound']:g})" if t['bound'] is not None
                   else '')
                for t in wl['time_ratios']))
    return '\n'.join(lines)

