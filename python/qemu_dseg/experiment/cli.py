"""The experiment's command line (scripts/dseg-experiment.py).

By default the Linux experiment (linux.py): Debian's kernel and real
programs in all six modes.  --bare-metal runs the bare-metal experiment
(runner.py) instead, with its own options.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import json
import os
import sys

from .. import config
from ..model import MODE_BY_NAME
from . import chart, linux, output
from .runner import DEFAULT_TLB_SIZE, DEFAULT_WORKLOAD, WORKLOADS, Experiment

DESCRIPTION = ('qemu-dseg translation experiment: one workload under '
               'every translation mode.')


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


LINUX_DESCRIPTION = ('qemu-dseg translation experiment under Linux: real '
                     'programs under every translation mode.')


def _positive(text):
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError('must be positive')
    return n


def _paths(opts, ap):
    """Fill in the emulator, guest and output paths of OPTS."""
    build = os.path.abspath(opts.build)
    default_build = build == config.BUILD
    opts.qemu = opts.qemu or (config.QEMU if default_build else os.path.join(
        build, 'qemu', 'qemu-system-x86_64'))
    opts.guests = opts.guests or (config.GUESTS if default_build else
                                  os.path.join(build, 'tests', 'guest'))
    opts.out = opts.out or os.path.join(build, 'experiment')
    if not os.access(opts.qemu, os.X_OK):
        ap.error(f'{opts.qemu} is not built (scripts/build-qemu.sh)')
    return build


def _common_args(ap):
    ap.add_argument('--build', default=config.BUILD,
                    help='meson build directory (default: build)')
    ap.add_argument('--qemu', help='the fork (default: '
                    '$QEMU_DSEG_QEMU or BUILD/qemu/qemu-system-x86_64)')
    ap.add_argument('--guests', help='directory of the test guests '
                    '(default: $QEMU_DSEG_GUESTS or BUILD/tests/guest)')
    ap.add_argument('--out', help='directory for results.json and '
                    'modes.png (default: BUILD/experiment)')
    ap.add_argument('--no-chart', dest='chart', action='store_false',
                    help='do not draw modes.png')


def parse_linux_args(argv):
    """The Linux experiment's options of ARGV, with defaults filled in."""
    ap = argparse.ArgumentParser(
        description=LINUX_DESCRIPTION,
        epilog='--bare-metal (first) runs the bare-metal experiment '
               'instead; see its --help.  See '
               'docs/devel/dseg-experiment.rst.')
    ap.add_argument('--workloads', nargs='+', choices=list(linux.WORKLOADS),
                    default=list(linux.WORKLOADS), metavar='WORKLOAD',
                    help='workloads, run in this order in each boot '
                         '(default: all: ' + ', '.join(linux.WORKLOADS) +
                         ')')
    ap.add_argument('--modes', nargs='+', choices=list(MODE_BY_NAME),
                    default=list(MODE_BY_NAME), metavar='MODE',
                    help='translation modes (default: all six: ' +
                         ', '.join(MODE_BY_NAME) + ')')
    ap.add_argument('--guest-mb', type=_positive, default=8192,
                    help="the guest's RAM in MiB (default: 8192); QEMU "
                         'gets 2048 more, its RAM below 4 GiB')
    ap.add_argument('--vcpus', type=_positive, default=1,
                    help='vCPUs (default: 1)')
    ap.add_argument('--gups-mb', type=_positive, default=1024,
                    help='GUPS table in MiB (default: 1024)')
    ap.add_argument('--gups-updates', type=_positive, default=1 << 20,
                    help='GUPS updates in the window (default: 1048576)')
    ap.add_argument('--chase-mb', type=_positive, default=1024,
                    help='pointer-chase table in MiB (default: 1024)')
    ap.add_argument('--chase-steps', type=_positive, default=1 << 20,
                    help='pointer-chase loads in the window (default: '
                         '1048576)')
    ap.add_argument('--memcached-keys', type=_positive, default=8192,
                    help='memcslap keys: as many sets, then gets '
                         '(default: 8192)')
    ap.add_argument('--memcached-mb', type=_positive, default=256,
                    help="memcached's cache in MiB (default: 256)")
    ap.add_argument('--redis-requests', type=_positive, default=32768,
                    help='redis-benchmark requests per command, SET and '
                         'GET (default: 32768)')
    ap.add_argument('--redis-keys', type=_positive, default=65536,
                    help='redis-benchmark random key space (default: '
                         '65536)')
    ap.add_argument('--redis-value', type=_positive, default=4096,
                    help='redis-benchmark value size in bytes (default: '
                         '4096)')
    ap.add_argument('--seed', type=_positive, default=1,
                    help='seed of GUPS and the chase (default: 1)')
    ap.add_argument('--tlb-size', type=int, default=DEFAULT_TLB_SIZE,
                    help='softmmu TLB entries per MMU index, a power of '
                         'two from 64 to 65536 (default: '
                         f'{DEFAULT_TLB_SIZE})')
    ap.add_argument('--timeout', type=_positive, default=900,
                    help='seconds to wait for each step of a boot '
                         '(default: 900)')
    _common_args(ap)
    opts = ap.parse_args(argv)
    t = opts.tlb_size
    if t < 64 or t > 65536 or t & (t - 1):
        ap.error('--tlb-size must be a power of two from 64 to 65536')
    if opts.guest_mb < 512:
        ap.error('--guest-mb must be at least 512')
    if opts.vcpus > 4:
        ap.error('--vcpus: at most 4 (the thin hypervisor\'s limit)')
    _paths(opts, ap)
    need = max(w(opts).region_mb() for w in linux.WORKLOADS.values()
               if w.name in opts.workloads) + 64
    if (linux.POOL_BASE >> 20) - 4096 + need > opts.guest_mb - 64:
        ap.error(f'--guest-mb {opts.guest_mb} is too small for these '
                 f'workloads: their primary regions need {need} MiB from '
                 f'{linux.POOL_BASE >> 20} MiB up')
    return opts


def parse_args(argv):
    """The bare-metal experiment's options of ARGV (see --help), with
    defaults filled in."""
    ap = argparse.ArgumentParser(
        prog='dseg-experiment.py --bare-metal',
        description=DESCRIPTION,
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
                    help='rounds: every run repeated, interleaved with the '
                         'others (default: 5)')
    ap.add_argument('--max-runs', type=int,
                    help='go on past --runs, up to this many rounds, until '
                         'every ratio\'s 95%% confidence interval is within '
                         '+-TARGET (default: --runs, no stop rule)')
    ap.add_argument('--target', type=float, default=1.0,
                    help='the stop rule\'s half-width of the intervals, in '
                         'percent (default: 1)')
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
    ap.add_argument('--upstream-qemu', help='the upstream build (default: '
                    'BUILD/qemu-upstream/qemu-system-x86_64)')
    _common_args(ap)
    opts = ap.parse_args(argv)
    if opts.seed <= 0:
        ap.error('--seed must be positive')
    if opts.runs < 1:
        ap.error('--runs must be at least 1')
    opts.max_runs = opts.max_runs or opts.runs
    if opts.max_runs < opts.runs:
        ap.error('--max-runs must be at least --runs')
    if opts.target <= 0:
        ap.error('--target must be positive')
    if opts.size_mb is not None and not 1 <= opts.size_mb <= 1024:
        ap.error('--size-mb must be 1 to 1024')
    t = opts.tlb_size
    if t and (t < 64 or t > 65536 or t & (t - 1)):
        ap.error('--tlb-size must be 0 or a power of two from 64 to 65536')
    build = _paths(opts, ap)
    opts.upstream_qemu = opts.upstream_qemu or os.path.join(
        build, 'qemu-upstream', 'qemu-system-x86_64')
    return opts


def main(argv=None, out=sys.stdout):
    """Run the experiment; returns the results (also written as JSON)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['--bare-metal']:
        opts = parse_args(argv[1:])
        res = Experiment(opts, out).main()
        text = output.format_results(res)
    else:
        opts = parse_linux_args(argv)
        res = linux.LinuxExperiment(opts, out).main()
        text = linux.format_results(res)
    os.makedirs(opts.out, exist_ok=True)
    json_path = os.path.join(opts.out, 'results.json')
    with open(json_path, 'w') as f:
        json.dump(res, f, indent=1)
    print('', file=out)
    print(text, file=out)
    print('', file=out)
    if opts.chart:
        png = os.path.join(opts.out, 'modes.png')
        chart.draw_chart(res, png)
        print(f'chart:   {png}', file=out)
    print(f'results: {json_path}', file=out)
    print(f"total:   {res['run_count']} runs in {res['elapsed_s']:.0f} s",
          file=out)
    return res

