"""The Slurm executor: a sweep's runs as one job array of an existing
cluster.

The sweep prepares every run's directory (runner.Runner.prepare()),
writes the job's script and the list of its runs into
OUT/slurm/JOB-TIME/, and submits it with `sbatch --wait`: task I of the
array runs the Ith run (python3 -m qemu_dseg.sweep.runner RUN_DIR), on
whichever node Slurm gives it, and writes its status into the run's
directory.  OUT, the build and the guests must therefore be at the same
paths on every node (a shared file system).  While the array runs, the
sweep prints a progress line per finished run, as the local executor
does; an interrupt cancels the job (scancel).  A task that ended without
a status (Slurm killed it at its time limit, or the node failed) is
'failed', with Slurm's output of the task as its log.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import math
import os
import shlex
import signal
import subprocess
import sys
import time

from . import runner

POLL_S = 2


def script(job_dir, dirs, opts, cpus, mem_mb):
    """The job array's script for the run directories DIRS."""
    minutes = opts.slurm_time or math.ceil(opts.timeout / 60) + 5
    lines = ['#!/bin/sh',
             '#SBATCH --job-name=dseg-sweep',
             f'#SBATCH --array=0-{len(dirs) - 1}'
             + (f'%{opts.slurm_parallel}' if opts.slurm_parallel else ''),
             f'#SBATCH --output={job_dir}/task-%a.out',
             f'#SBATCH --cpus-per-task={cpus}',
             f'#SBATCH --mem={opts.slurm_mem or mem_mb}M',
             f'#SBATCH --time={minutes}']
    if opts.partition:
        lines.append(f'#SBATCH --partition={opts.partition}')
    lines += [
        '# Task I runs line I+1 of runs.txt, a prepared run directory.',
        f'export PYTHONPATH={shlex.quote(os.environ.get("PYTHONPATH", ""))}',
        f'dir=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" '
        f'{shlex.quote(os.path.join(job_dir, "runs.txt"))})',
        f'exec {shlex.quote(sys.executable)} -m qemu_dseg.sweep.runner '
        '"$dir"', '']
    return '\n'.join(lines)


def run_slurm(go, todo, opts, say):
    """Run TODO ([(run, key)]) with GO (runner.Runner) as one Slurm job
    array, with the options OPTS (partition, slurm_time, slurm_mem,
    slurm_parallel, slurm_arg); returns {key: status}."""
    job_dir = os.path.join(go.out, 'slurm',
                           time.strftime('job-%Y%m%d-%H%M%S'))
    os.makedirs(job_dir)
    dirs = [go.prepare(run, key) for run, key in todo]
    with open(os.path.join(job_dir, 'runs.txt'), 'w') as f:
        f.write(''.join(d + '\n' for d in dirs))
    path = os.path.join(job_dir, 'job.sh')
    with open(path, 'w') as f:
        f.write(script(job_dir, dirs, opts,
                       max(runner.vcpus(r) for r, _ in todo),
                       max(runner.memory_mb(r) for r, _ in todo)))
    cmd = ['sbatch', '--parsable', '--wait', *opts.slurm_arg, path]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    job = proc.stdout.readline().strip().split(';')[0]
    if not job:
        raise runner.ExecutorError(f'sbatch refused the job {path}: '
                                   + proc.communicate()[1].strip())
    say(f'submitted job array {job} of {len(todo)} tasks: {path}')
    done = {}
    start = time.monotonic()

    def interrupted(signum, frame):
        raise KeyboardInterrupt
    old = {sig: signal.signal(sig, interrupted)
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            ended = proc.poll() is not None
            for i, (run, key) in enumerate(todo):
                st = key not in done and runner.status(go.out, key)
                if not st and ended and key not in done:
                    st = {'status': 'failed', 'exit': None, 'seconds': 0,
                          'log': os.path.join(job_dir, f'task-{i}.out'),
                          'why': 'the Slurm task ended without a status'}
                    runner.write_json(os.path.join(
                        runner.run_dir(go.out, key), 'status.json'), st)
                if st:
                    done[key] = st
                    runner.progress(say, run, st, len(done), len(todo),
                                    start)
            if ended:
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        subprocess.run(['scancel', job], check=False)
        proc.kill()
        raise
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    err = proc.communicate()[1].strip()
    if proc.returncode and err:
        say(f'sbatch: {err}')
    return done
