"""The Slurm executor: a sweep's runs as one job array of an existing
cluster.

The sweep prepares every run's directory (runner.Runner.prepare()),
writes the job's script and the list of its runs into a new directory
OUT/slurm/job-DATE-TIME-*/, and submits it with `sbatch --wait`: task I
of the array runs the Ith run (python3 -m qemu_dseg.sweep.runner
RUN_DIR), on whichever node Slurm gives it, and writes its status into
the run's directory.  OUT, the build and the guests must therefore be at
the same paths on every node (a shared file system).  While the array
runs, the sweep prints a progress line per finished run, as the local
executor does; an interrupt cancels the job (scancel).  A task that has
written no status GRACE_S seconds after the array ended (Slurm killed
it, or its node failed) is 'failed', with Slurm's output of the task as
its log; a status that a task wrote meanwhile is never overwritten.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import math
import os
import shlex
import subprocess
import sys
import tempfile
import time

from . import runner

POLL_S = 2
# How long after the array ended a task's status may take to show (a
# shared file system's caches).
GRACE_S = 30


def script(job_dir, count, opts, cpus, mem_mb):
    """The script of a job array of COUNT tasks."""
    minutes = opts.slurm_time or math.ceil(opts.timeout / 60) + 5
    lines = ['#!/bin/sh',
             '#SBATCH --job-name=dseg-sweep',
             f'#SBATCH --array=0-{count - 1}'
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


def _cancel(job, say):
    r = subprocess.run(['scancel', job], capture_output=True, text=True)
    if r.returncode:
        say(f'scancel {job} failed: {r.stderr.strip()}; cancel the job '
            'yourself')


def run_slurm(go, todo, parsed, opts, say):
    """Run TODO ([(run, key)]) with GO (runner.Runner) as one Slurm job
    array, each run's experiment options in PARSED ({run: options}), and
    the sweep's options OPTS (timeout, partition, slurm_time, slurm_mem,
    slurm_parallel, slurm_arg); returns {key: status}."""
    os.makedirs(os.path.join(go.out, 'slurm'), exist_ok=True)
    job_dir = tempfile.mkdtemp(prefix=time.strftime('job-%Y%m%d-%H%M%S-'),
                               dir=os.path.join(go.out, 'slurm'))
    dirs = [go.prepare(run, key) for run, key in todo]
    with open(os.path.join(job_dir, 'runs.txt'), 'w') as f:
        f.write(''.join(d + '\n' for d in dirs))
    path = os.path.join(job_dir, 'job.sh')
    with open(path, 'w') as f:
        f.write(script(job_dir, len(dirs), opts,
                       max(runner.vcpus(parsed[r]) for r, _ in todo),
                       max(runner.memory_mb(parsed[r]) for r, _ in todo)))
    errors = os.path.join(job_dir, 'sbatch.err')
    done = {}
    start = time.monotonic()
    old = runner.interruptible()
    job = proc = None
    try:
        with open(errors, 'w') as err:
            proc = subprocess.Popen(
                ['sbatch', '--parsable', '--wait', *opts.slurm_arg, path],
                stdout=subprocess.PIPE, stderr=err, text=True)
        job = proc.stdout.readline().strip().split(';')[0]
        if not job:
            proc.wait()
            with open(errors) as f:
                raise runner.ExecutorError(f'sbatch refused the job {path}: '
                                           + f.read().strip())
        say(f'submitted job array {job} of {len(todo)} tasks: {path}')
        ended = None
        while True:
            if ended is None and proc.poll() is not None:
                ended = time.monotonic()
            for i, (run, key) in enumerate(todo):
                if key in done:
                    continue
                st = runner.status(go.out, key)
                if not st and ended and time.monotonic() - ended > GRACE_S:
                    st = {'status': 'failed', 'exit': None, 'seconds': 0,
                          'log': os.path.join(job_dir, f'task-{i}.out'),
                          'why': 'the Slurm task ended without a status'}
                    if not runner.write_new_json(os.path.join(
                            runner.run_dir(go.out, key), 'status.json'), st):
                        st = runner.status(go.out, key)
                if st:
                    done[key] = st
                    runner.progress(say, run, st, len(done), len(todo),
                                    start)
            if len(done) == len(todo):
                break
            time.sleep(POLL_S)
        proc.wait()
    except KeyboardInterrupt:
        runner.uninterruptible()
        if job:
            _cancel(job, say)
        elif proc:
            proc.kill()     # sbatch had not said whether it submitted
        raise
    finally:
        runner.restore(old)
    with open(errors) as f:
        text = f.read().strip()
    if proc.returncode and text:
        say(f'sbatch: {text}')
    return done
