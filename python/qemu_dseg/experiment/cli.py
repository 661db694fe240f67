"""The experiment's command line (scripts/dseg-experiment.py).

Two subcommands: `linux` (the default, when the first argument names no
subcommand), the Linux experiment (linux.py): Debian's kernel and real
programs in all six modes; and `bare-metal` (old spelling: --bare-metal),
the bare-metal experiment (baremetal.py), each with its own options.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import json
import os
import sys

from .. import boot, config
from ..model import MODE_BY_NAME
from . import baremetal, chart, linux, output, rows, workloads
from .baremetal import DEFAULT_WORKLOAD, WORKLOADS
from .common import DEFAULT_TLB_SIZE, tlb_size_type

DESCRIPTION = ('qemu-dseg translation experiment: one workload under '
               'every translation mode.')
BARE_METAL_DESCRIPTION = ('qemu-dseg translation experiment on bare '
                          'metal: a test guest\'s workload under every '
                          'translation mode.')
# The subcommands; the first is the default.
COMMANDS = ('linux', 'bare-metal')
# The old spelling of a subcommand.
ALIASES = {'--bare-metal': 'bare-metal'}


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


# The Linux experiment's sizes, by default (about 10 minutes on two
# cores after the builds) and with --paper.
SIZES = {
    'default': dict(guest_mb=8192, vcpus=2, gups_mb=128,
                    gups_updates=1 << 20, chase_mb=64, chase_steps=1 << 20,
                    bfs_mb=16, bfs_searches=2, cg_mb=16, cg_iterations=4,
                    memcached_keys=1024, memcached_mb=256,
                    redis_requests=4096, redis_keys=65536, runs=2),
    'paper': dict(guest_mb=16384, vcpus=2, gups_mb=8192,
                  gups_updates=1 << 24, chase_mb=8192, chase_steps=1 << 24,
                  bfs_mb=8192, bfs_searches=4, cg_mb=8192, cg_iterations=25,
                  memcached_keys=1 << 18, memcached_mb=4096,
                  redis_requests=1 << 18, redis_keys=1 << 20, runs=3),
}
# What each size is (the options --NAME).
SIZE_OPTIONS = {
    'guest_mb': "the guest's RAM in MiB; QEMU gets "
                f'{boot.Q35_LOW_RAM_MB} more, its RAM below 4 GiB',
    'vcpus': 'vCPUs, at most 4; memcached runs a thread per vCPU',
    'gups_mb': 'GUPS table in MiB',
    'gups_updates': 'GUPS updates in the window',
    'chase_mb': 'pointer-chase table in MiB',
    'chase_steps': 'pointer-chase loads in the window',
    'bfs_mb': 'BFS table in MiB: the largest Kronecker graph that fits',
    'bfs_searches': 'BFS searches in the window',
    'cg_mb': 'CG table in MiB: the most rows whose matrix fits',
    'cg_iterations': 'CG iterations in the window, in solves of 25',
    'memcached_keys': 'memcslap keys: as many sets, then gets',
    'memcached_mb': "memcached's cache in MiB",
    'redis_requests': 'redis-benchmark requests per command, SET and GET',
    'redis_keys': 'redis-benchmark random key space',
}
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


def _linux_args(ap):
    """The Linux experiment's options."""
    ap.add_argument('--workloads', nargs='+',
                    choices=list(workloads.WORKLOADS), metavar='WORKLOAD',
                    help='workloads, run in this order in each boot, of ' +
                         ', '.join(workloads.WORKLOADS) + ' (default: ' +
                         ', '.join(workloads.DEFAULT_WORKLOADS) +
                         ', and command with --command)')
    ap.add_argument('--command', dest='command_line', metavar='COMMAND',
                    help="one's own workload, the workload 'command': a "
                         "shell command line that the guest runs in a "
                         'window of its own in every mode, after the '
                         'others; it must exit 0')
    ap.add_argument('--command-file', action='append', default=[],
                    type=_command_file, metavar='HOST[:GUEST]',
                    help="a host file for the command, at GUEST in the "
                         "guest (default: /bin/ and its name); a dynamic "
                         "program gets the libraries it needs from "
                         "Debian's packages (repeatable)")
    ap.add_argument('--command-package', action='append', default=[],
                    type=_command_package, metavar='PACKAGE:PATH',
                    help="a program of a Debian package for the command, "
                         "at /bin/ and its name (repeatable)")
    ap.add_argument('--command-region-mb', type=int, default=0,
                    metavar='MB',
                    help='in the direct modes of the guest dimension, run '
                         'the command with libdseg-preload.so and a '
                         'primary region of MB MiB (default: 0, without)')
    ap.add_argument('--modes', nargs='+', choices=list(MODE_BY_NAME),
                    default=list(MODE_BY_NAME), metavar='MODE',
                    help='translation modes (default: all six: ' +
                         ', '.join(MODE_BY_NAME) + ')')
    ap.add_argument('--paper', action='store_true',
                    help="the paper's scale as far as this emulator and a "
                         'host of 24 GiB allow: GiB data sets, '
                         f'{SIZES["paper"]["runs"]} rounds (about 30 hours on two cores, estimated; '
                         'docs/devel/dseg-experiment.rst); the '
                         'options below override its parts')
    for name, help_text in SIZE_OPTIONS.items():
        ap.add_argument('--' + name.replace('_', '-'), type=_positive,
                        help=f'{help_text} (default: '
                             f'{SIZES["default"][name]}; --paper: '
                             f'{SIZES["paper"][name]})')
    ap.add_argument('--nested-page', choices=list(linux.NESTED_PAGES),
                    default='4k',
                    help="thinvmm's nested page size for the guest's RAM "
                         'above 4 GiB (default: 4k; 2m keeps the guest '
                         "kernel's large pages whole)")
    ap.add_argument('--redis-value', type=_positive, default=4096,
                    help='redis-benchmark value size in bytes (default: '
                         '4096)')
    ap.add_argument('--redis-clients', type=_positive, default=4,
                    help='redis-benchmark connections (default: 4; with '
                         "its own default of 50, QEMU's user network "
                         'resets connections under the default load)')
    ap.add_argument('--seed', type=_positive, default=1,
                    help='seed of the table workloads (default: 1)')
    ap.add_argument('--tlb-size', type=tlb_size_type(),
                    default=DEFAULT_TLB_SIZE,
                    help='softmmu TLB entries per MMU index, a power of '
                         'two from 64 to 65536 (default: '
                         f'{DEFAULT_TLB_SIZE})')
    ap.add_argument('--timeout', type=_positive, default=900,
                    help='seconds to wait for each step of a boot '
                         '(default: 900)')
    _rounds_args(ap, 'one boot per mode', SIZES['default']['runs'], 5.0,
                 SIZES['paper']['runs'])
    _tlb_model_args(ap, '')
    _common_args(ap)
    ap.set_defaults(check=_check_linux, experiment=linux.LinuxExperiment,
                    format=output.format_linux)


def _command_file(spec):
    """--command-file HOST[:GUEST] as (HOST, GUEST), GUEST by default
    /bin/ and HOST's name."""
    src, _, dst = spec.partition(':')
    if not os.path.isfile(src):
        raise argparse.ArgumentTypeError(f'{spec}: no file {src}')
    if dst and not dst.startswith('/'):
        raise argparse.ArgumentTypeError(f'{spec}: {dst} is not absolute')
    return src, dst or '/bin/' + os.path.basename(src)


def _command_package(spec):
    """--command-package PACKAGE:PATH as (PACKAGE, PATH)."""
    package, _, path = spec.partition(':')
    if not package or not path:
        raise argparse.ArgumentTypeError(f'{spec}: use PACKAGE:PATH')
    return package, path


def _rounds_args(ap, what, runs, target, paper_runs=None):
    """The options of interleaved rounds (compare.run_rounds()), in which
    WHAT is repeated: RUNS rounds and a TARGET half-width in percent by
    default; with PAPER_RUNS, that many with --paper, and the check fills
    in --runs."""
    ap.add_argument('--runs', type=int,
                    default=None if paper_runs else runs,
                    help=f'rounds: {what} repeated, interleaved with the '
                         f'others (default: {runs}'
                         + (f'; --paper: {paper_runs}' if paper_runs else '')
                         + ')')
    ap.add_argument('--max-runs', type=int,
                    help='go on past --runs, up to this many rounds, until '
                         'every ratio\'s 95%% confidence interval is within '
                         '+-TARGET (default: --runs, no stop rule)')
    ap.add_argument('--target', type=float, default=target,
                    help='the stop rule\'s half-width of the intervals, in '
                         f'percent (default: {target:g})')


def _check_rounds(opts, ap):
    """Check the options of _rounds_args(); fill in --max-runs."""
    if opts.runs < 1:
        ap.error('--runs must be at least 1')
    opts.max_runs = opts.max_runs or opts.runs
    if opts.max_runs < opts.runs:
        ap.error('--max-runs must be at least --runs')
    if opts.target <= 0:
        ap.error('--target must be positive')


def _tlb_model_args(ap, default, why_off=''):
    """The options of the modelled TLB hierarchy (tlbmodel.py): on by
    default with the plugin's default preset (DEFAULT ''), or off (None)
    by default, for the reason WHY_OFF."""
    ap.add_argument('--tlb-model', metavar='PRESET', default=default,
                    help="model a CPU's TLBs and walk caches with the "
                         "fork's dseg-tlb plugin, starting from this preset "
                         '(one of those of docs/devel/dseg-tlb-model.rst; '
                         'default: ' + ("the plugin's default, named in "
                                        'the output' if default == ''
                                        else f'off, {why_off}') + ')')
    ap.add_argument('--tlb-model-options', default='', metavar='PARTS',
                    help="more of the plugin's options, PART=VALUE joined "
                         "by ',', which override the preset's parts, e.g. "
                         "l2=2048x16:4k+2m,pwc=64,ref-cycles=30 (see "
                         'docs/devel/dseg-tlb-model.rst)')
    ap.add_argument('--no-tlb-model', dest='tlb_model',
                    action='store_const', const=None,
                    help='no TLB model: only the softmmu TLB\'s fills')


def _check_tlb_model(opts, ap):
    """Check the TLB model's options of OPTS."""
    parts = [p for p in opts.tlb_model_options.split(',') if p]
    if opts.tlb_model is None and parts:
        ap.error('--tlb-model-options with --no-tlb-model')
    if any(p.startswith('preset=') for p in parts):
        ap.error('--tlb-model-options: name the preset with --tlb-model')


def _check_linux(opts, ap):
    """Check the Linux experiment's OPTS together; fill in the sizes
    (SIZES) and paths."""
    for name, value in SIZES['paper' if opts.paper else 'default'].items():
        if getattr(opts, name) is None:
            setattr(opts, name, value)
    _check_tlb_model(opts, ap)
    _check_rounds(opts, ap)
    if opts.workloads is None:
        opts.workloads = list(workloads.DEFAULT_WORKLOADS)
        if opts.command_line:
            opts.workloads.append('command')
    if ('command' in opts.workloads) != bool(opts.command_line):
        ap.error('the workload command needs --command, and --command '
                 'the workload command')
    if not opts.command_line and (opts.command_file or opts.command_package
                                  or opts.command_region_mb):
        ap.error('--command-file, --command-package and --command-region-mb '
                 'go with --command')
    if opts.command_region_mb < 0:
        ap.error('--command-region-mb must not be negative')
    if opts.guest_mb < 512:
        ap.error('--guest-mb must be at least 512')
    if opts.vcpus > 4:
        ap.error('--vcpus: at most 4 (the thin hypervisor\'s limit)')
    _paths(opts, ap)
    need = max(w(opts).region_mb() for w in workloads.WORKLOADS.values()
               if w.name in opts.workloads) + 64
    if (linux.POOL_BASE >> 20) - 4096 + need > opts.guest_mb - 64:
        ap.error(f'--guest-mb {opts.guest_mb} is too small for these '
                 f'workloads: their primary regions need {need} MiB from '
                 f'{linux.POOL_BASE >> 20} MiB up')


def _bare_metal_args(ap):
    """The bare-metal experiment's options."""
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
                         ','.join(f"{k}={v.iters}"
                                  for k, v in WORKLOADS.items()) + ')')
    ap.add_argument('--seed', type=int, default=1,
                    help='random seed, positive (default: 1)')
    ap.add_argument('--tlb-size', type=tlb_size_type(dynamic=True),
                    default=DEFAULT_TLB_SIZE,
                    help='softmmu TLB entries per MMU index for the mode '
                         'runs, a power of two from 64 to 65536, or 0 for '
                         f"QEMU's dynamic TLB (default: {DEFAULT_TLB_SIZE})")
    _rounds_args(ap, 'every run', 5, 1.0)
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
    _tlb_model_args(ap, None, 'so that the times are the emulator\'s '
                    'alone')
    _common_args(ap)
    ap.set_defaults(check=_check_bare_metal,
                    experiment=baremetal.Experiment,
                    format=output.format_bare_metal)


def _check_bare_metal(opts, ap):
    """Check the bare-metal experiment's OPTS together; fill in paths."""
    _check_tlb_model(opts, ap)
    _check_rounds(opts, ap)
    if opts.seed <= 0:
        ap.error('--seed must be positive')
    if opts.size_mb is not None and not 1 <= opts.size_mb <= 1024:
        ap.error('--size-mb must be 1 to 1024')
    build = _paths(opts, ap)
    opts.upstream_qemu = opts.upstream_qemu or os.path.join(
        build, 'qemu-upstream', 'qemu-system-x86_64')


def parser(allow_abbrev=True):
    """The parser of the command line, and {subcommand: its parser};
    without ALLOW_ABBREV, long options must be spelt out."""
    ap = argparse.ArgumentParser(
        allow_abbrev=allow_abbrev,
        prog='dseg-experiment.py', description=DESCRIPTION,
        epilog='Without a subcommand, linux.  --bare-metal is the old '
               'spelling of bare-metal.  Each subcommand lists its options: '
               'linux --help, bare-metal --help.  See '
               'docs/devel/dseg-experiment.rst.')
    sub = ap.add_subparsers(dest='command', metavar='COMMAND')
    _linux_args(sub.add_parser(
        'linux', allow_abbrev=allow_abbrev, help='the Linux experiment (default)',
        description=LINUX_DESCRIPTION,
        epilog='See docs/devel/dseg-experiment.rst.'))
    _bare_metal_args(sub.add_parser(
        'bare-metal', allow_abbrev=allow_abbrev, help='the bare-metal experiment',
        description=BARE_METAL_DESCRIPTION,
        epilog='See docs/devel/dseg-experiment.rst.'))
    return ap, sub.choices


def parse_args(argv, allow_abbrev=True):
    """The options of ARGV (see --help), with defaults filled in; their
    'command' names the subcommand.  Without ALLOW_ABBREV, long options
    must be spelt out."""
    argv = list(argv)
    if argv[:1] and argv[0] in ALIASES:
        argv[0] = ALIASES[argv[0]]
    elif not argv or argv[0] not in (*COMMANDS, '-h', '--help'):
        argv.insert(0, COMMANDS[0])
    ap, subparsers = parser(allow_abbrev)
    opts = ap.parse_args(argv)
    opts.check(opts, subparsers[opts.command])
    return opts


def main(argv=None, out=sys.stdout):
    """Run the experiment; returns the results (also written as JSON)."""
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    res = opts.experiment(opts, out).main()
    text = opts.format(res)
    os.makedirs(opts.out, exist_ok=True)
    json_path = os.path.join(opts.out, 'results.json')
    with open(json_path, 'w') as f:
        json.dump(res, f, indent=1, default=rows.json_default)
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

