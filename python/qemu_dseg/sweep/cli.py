"""The sweep's command line (scripts/dseg-sweep.py).

SPDX-License-Identifier: GPL-2.0-or-later
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

from .. import config
from . import merge, runner, slurm, spec as specs
from .spec import SweepError


def parser():
    ap = argparse.ArgumentParser(
        prog='dseg-sweep.py',
        description='qemu-dseg sweeps: a grid of experiment runs '
                    '(scripts/dseg-experiment.py), one boot each, run here '
                    'in parallel, resumed where they stopped, and merged '
                    'into one result.',
        epilog='See docs/devel/dseg-sweep.rst.')
    ap.add_argument('spec', nargs='?', metavar='SWEEP.toml',
                    help='the description: experiment, [options], [axes]')
    ap.add_argument('--experiment', help='the experiment: linux or '
                    'bare-metal (default: the description\'s, else linux)')
    ap.add_argument('--axis', action='append', default=[],
                    metavar='NAME=V1,V2,...',
                    help="an axis: an option of the experiment's (without "
                         'its dashes) and its values (repeatable; adds to '
                         'or replaces the description\'s)')
    ap.add_argument('--option', action='append', default=[],
                    metavar='NAME[=VALUE]',
                    help='an option of every run, NAME alone a flag '
                         '(repeatable; adds to or replaces the '
                         'description\'s)')
    ap.add_argument('--out', default=os.path.join(config.BUILD, 'sweep'),
                    help='the sweep\'s directory: its runs and merged '
                         'results (default: BUILD/sweep)')
    ap.add_argument('--executor', choices=('local', 'slurm'),
                    default='local',
                    help='where the runs run: here (default), or as a job '
                         'array of the Slurm cluster that sbatch reaches')
    ap.add_argument('--jobs', type=int,
                    help='local: runs at once (default: as many as the CPUs '
                         'and the available memory allow; said at the '
                         'start)')
    ap.add_argument('--partition', help='slurm: the partition (default: '
                    "the cluster's default)")
    ap.add_argument('--slurm-time', type=int, metavar='MINUTES',
                    help='slurm: the time limit of each task (default: '
                         '--timeout and 5 minutes)')
    ap.add_argument('--slurm-mem', type=int, metavar='MB',
                    help="slurm: each task's memory (default: the run's "
                         "guest RAM and QEMU's 512 MiB)")
    ap.add_argument('--slurm-parallel', type=int, metavar='N',
                    help='slurm: at most N tasks at once (default: as many '
                         'as Slurm gives)')
    ap.add_argument('--slurm-arg', action='append', default=[],
                    metavar='ARG',
                    help='slurm: one more argument of sbatch, e.g. '
                         '--slurm-arg=--account=NAME (repeatable)')
    ap.add_argument('--timeout', type=float, default=6 * 3600,
                    help='seconds a run may take before it is killed and '
                         'reported (default: 21600)')
    ap.add_argument('--qemu', default=config.QEMU,
                    help='the fork (default: $QEMU_DSEG_QEMU or '
                         'build/qemu/qemu-system-x86_64)')
    ap.add_argument('--guests', default=config.GUESTS,
                    help='the test guests (default: $QEMU_DSEG_GUESTS or '
                         'build/tests/guest)')
    ap.add_argument('--list', action='store_true',
                    help='list the runs and their status; run nothing')
    ap.add_argument('--no-chart', dest='chart', action='store_false',
                    help='draw no charts')
    return ap


def description(opts):
    """The description of OPTS: the file's, with the command line's
    additions."""
    spec = specs.load(opts.spec) if opts.spec else \
        {'experiment': None, 'options': {}, 'axes': {}}
    if opts.experiment:
        spec['experiment'] = opts.experiment
    spec['options'].update(specs.assignments(opts.option, 'option'))
    spec['axes'].update(specs.assignments(opts.axis, 'axis'))
    spec['experiment'] = spec['experiment'] or 'linux'
    return spec


def main(argv=None, out=sys.stdout):
    """Run the sweep; returns its exit status (0: every run ok)."""
    ap = parser()
    opts = ap.parse_args(argv)

    def say(text):
        print(text, file=out, flush=True)
    if not os.access(opts.qemu, os.X_OK):
        ap.error(f'{opts.qemu} is not built (scripts/build-qemu.sh)')
    qemu, guests = os.path.abspath(opts.qemu), os.path.abspath(opts.guests)
    try:
        spec = description(opts)
        runs = specs.expand(spec)
        parsed = specs.check(runs, qemu, guests)
    except SweepError as e:
        ap.error(str(e))
    if opts.jobs is not None and opts.jobs < 1:
        ap.error('--jobs must be at least 1')
    if not 0 < opts.timeout < 366 * 86400:
        ap.error('--timeout: seconds, more than 0 and less than a year')
    for name in ('slurm_time', 'slurm_mem', 'slurm_parallel'):
        if getattr(opts, name) is not None and getattr(opts, name) < 1:
            ap.error(f'--{name.replace("_", "-")} must be at least 1')
    if opts.executor == 'slurm':
        if opts.jobs:
            ap.error('--jobs is for --executor local; Slurm decides, '
                     'within --slurm-parallel')
        for tool in ('sbatch', 'scancel'):
            if not shutil.which(tool):
                ap.error(f'--executor slurm: no {tool} on PATH (Debian: '
                         'slurm-client)')
    elif (opts.partition or opts.slurm_time or opts.slurm_mem or
          opts.slurm_parallel or opts.slurm_arg):
        ap.error('--partition and --slurm-* go with --executor slurm')
    found = specs.inputs(spec['experiment'], qemu, guests)
    keyed = [(run, specs.key(run, found)) for run in runs]
    out_dir = os.path.abspath(opts.out)
    todo = [(r, k) for r, k in keyed if not runner.finished(out_dir, k)]
    shape = ' x '.join(f'{len(v)} {n}' for n, v in spec['axes'].items())
    say(f'sweep: {len(runs)} runs of the {spec["experiment"]} experiment'
        + (f' ({shape})' if shape else '')
        + f'; {len(runs) - len(todo)} finished already, {len(todo)} to run;'
        f' in {out_dir}')
    if opts.list:
        for run, key in keyed:
            st = runner.status(out_dir, key)
            say(f"{st['status'] if st else 'todo':<15} {key}  {run.label()}")
        return 0
    os.makedirs(out_dir, exist_ok=True)
    if todo:
        start = time.monotonic()
        go = runner.Runner(out_dir, qemu, guests, found, opts.timeout)
        try:
            if opts.executor == 'slurm':
                slurm.run_slurm(go, todo, parsed, opts, say)
            else:
                if opts.jobs:
                    jobs, why = min(opts.jobs, len(todo)), '--jobs'
                else:
                    jobs, why = runner.local_jobs([parsed[r]
                                                   for r, _ in todo])
                say(f'running {jobs} at a time ({why})')
                runner.run_local(go, todo, jobs, say)
        except runner.ExecutorError as e:
            say(f'error: {e}')
            return 1
        except KeyboardInterrupt:
            left = sum(1 for _, k in keyed if not runner.finished(out_dir, k))
            say(f'interrupted: {len(runs) - left} of {len(runs)} runs '
                f'finished; the same command runs the other {left}')
            return 130
        say(f'ran {len(todo)} in {math.ceil(time.monotonic() - start)} s')
    entries = merge.collect(out_dir, keyed)
    doc = merge.document(spec, entries)
    with open(os.path.join(out_dir, 'sweep.json'), 'w') as f:
        json.dump(doc, f, indent=1, default=str)
    axis_names = list(spec['axes'])
    text = merge.table(entries, axis_names)
    with open(os.path.join(out_dir, 'sweep.txt'), 'w') as f:
        f.write(text + '\n')
    say('')
    say(text)
    say('')
    if opts.chart:
        for path in merge.charts(entries, axis_names,
                                 os.path.join(out_dir, 'charts')):
            say(f'chart:   {path}')
    say(f"results: {os.path.join(out_dir, 'sweep.json')}")
    counts = doc['counts']
    say('runs:    ' + ', '.join(f'{n} {s}' for s, n in sorted(counts.items())))
    return 0 if set(counts) == {'ok'} else 1
