"""Running a sweep's runs: one run in its directory, and the local
executor that runs as many at once as the machine allows.

Each run has a directory OUT/runs/KEY with run.json (its point, command
line and inputs), log.txt (the experiment's output), results.json (the
experiment's results) and, once it ended, status.json: 'ok', 'failed'
(the experiment exited with an error), 'timeout', or 'wrong-checksum'
(set by the merge, merge.py).  Only 'ok' is finished; a run without a
status was interrupted.  status.json is written last, whole.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures

from .. import boot, config
from ..experiment import baremetal

EXPERIMENT = os.path.join(config.REPO, 'scripts', 'dseg-experiment.py')
# QEMU's own memory beside a guest's RAM, and the share of the host's
# available memory that runs may take, for the local executor.
QEMU_OVERHEAD_MB = 512
MEMORY_SHARE = 0.8


class ExecutorError(Exception):
    """An executor that could not run the runs at all."""


def run_dir(out, key):
    return os.path.join(out, 'runs', key)


def read_json(path):
    """The JSON in PATH, or None if there is none (or half of one)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path, data):
    """Write DATA to PATH whole: to a temporary file, then renamed."""
    tmp = f'{path}.{os.getpid()}.{threading.get_ident()}.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def write_new_json(path, data):
    """Write DATA to PATH whole, unless PATH exists; whether it did."""
    tmp = f'{path}.{os.getpid()}.{threading.get_ident()}.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1, sort_keys=True)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def status(out, key):
    """The run's status.json, or None if it has not ended."""
    return read_json(os.path.join(run_dir(out, key), 'status.json'))


def finished(out, key):
    st = status(out, key)
    return bool(st) and st['status'] == 'ok'


def memory_mb(opts):
    """What one run with the experiment's options OPTS may take of the
    host's memory: its guest's RAM and QEMU's own."""
    if opts.command == 'linux':
        guest = opts.guest_mb + boot.Q35_LOW_RAM_MB
    else:
        kind = baremetal.WORKLOADS[opts.workload]
        guest = baremetal.guest_memory_mb(opts.size_mb or kind.size_mb)
    return guest + QEMU_OVERHEAD_MB


def vcpus(opts):
    """The host CPUs one run with the experiment's options OPTS keeps
    busy: one per vCPU."""
    return getattr(opts, 'vcpus', 1)


def available_mb():
    """MemAvailable of /proc/meminfo, in MiB."""
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) // 1024
    raise OSError('/proc/meminfo has no MemAvailable')


def local_jobs(runs):
    """How many runs of the experiment's options RUNS to run at once
    here, and why: as many as there are CPUs for their vCPUs and
    MEMORY_SHARE of the available memory for their guests and QEMU, at
    least one."""
    cpus = os.cpu_count() or 1
    per_cpu = max(vcpus(r) for r in runs)
    per_mb = max(memory_mb(r) for r in runs)
    mem = available_mb()
    by_cpu = max(cpus // per_cpu, 1)
    by_mem = max(int(mem * MEMORY_SHARE) // per_mb, 1)
    jobs = min(by_cpu, by_mem, len(runs))
    return jobs, (f'{cpus} CPUs for {per_cpu} vCPU(s) per run, '
                  f'{MEMORY_SHARE:.0%} of {mem} MiB available for '
                  f'{per_mb} MiB per run')


class Runner:
    """Runs the runs of one sweep, each in its directory under OUT, with
    the fork QEMU and the guests GUESTS, each for at most TIMEOUT
    seconds."""

    def __init__(self, out, qemu, guests, found, timeout):
        self.out = out
        self.qemu = qemu
        self.guests = guests
        self.found = found
        self.timeout = timeout
        self.live = set()
        self.lock = threading.Lock()
        self.stopping = False

    def command(self, run, key):
        return [sys.executable, EXPERIMENT, *run.argv(), '--qemu', self.qemu,
                '--guests', self.guests, '--out', run_dir(self.out, key),
                '--no-chart']

    def prepare(self, run, key):
        """Make RUN's directory (key KEY) ready for execute(): its
        run.json, and no status or results of an earlier attempt."""
        d = run_dir(self.out, key)
        os.makedirs(d, exist_ok=True)
        for name in ('status.json', 'results.json'):
            if os.path.exists(os.path.join(d, name)):
                os.unlink(os.path.join(d, name))
        write_json(os.path.join(d, 'run.json'),
                   {'key': key, 'experiment': run.experiment,
                    'point': [list(p) for p in run.point],
                    'argv': run.argv(), 'command': self.command(run, key),
                    'timeout': self.timeout, 'inputs': self.found})
        return d

    def run(self, run, key):
        """Run RUN (key KEY) here to its end; returns its status, or None
        if the sweep was interrupted.  A run that cannot start (no
        memory for a process, a full disk) is 'failed', with why."""
        with self.lock:
            if self.stopping:
                return None
        try:
            return execute(self.prepare(run, key), self)
        except OSError as e:
            st = {'status': 'failed', 'exit': None, 'seconds': 0,
                  'log': os.path.join(run_dir(self.out, key), 'log.txt'),
                  'why': f'the run could not start: {e}'}
            try:
                write_json(os.path.join(run_dir(self.out, key),
                                        'status.json'), st)
            except OSError:
                pass
            return st

    def stop(self):
        """Stop every run in flight; they end without a status."""
        with self.lock:
            self.stopping = True
            for proc in self.live:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def execute(d, runner=None):
    """Run the prepared run in directory D (Runner.prepare()) to its end,
    within its timeout, and write its status; returns it.  With RUNNER,
    the process is one that RUNNER.stop() kills, and a stopped run gets
    no status (None)."""
    spec = read_json(os.path.join(d, 'run.json'))
    log = os.path.join(d, 'log.txt')
    started = time.time()
    with open(log, 'w') as f:
        proc = subprocess.Popen(spec['command'], stdout=f,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                start_new_session=True)
        if runner:
            with runner.lock:
                runner.live.add(proc)
                if runner.stopping:
                    os.killpg(proc.pid, signal.SIGKILL)
        try:
            rc = proc.wait(spec['timeout'])
            what = 'ok' if rc == 0 else 'failed'
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
            what = 'timeout'
        finally:
            if runner:
                with runner.lock:
                    runner.live.discard(proc)
    if runner and runner.stopping:
        return None             # interrupted: no status, run it again
    st = {'status': what, 'exit': rc, 'log': log,
          'seconds': round(time.time() - started, 3),
          'started': time.strftime('%Y-%m-%dT%H:%M:%S%z',
                                   time.localtime(started)),
          'host': platform.node()}
    if what == 'ok' and not read_json(os.path.join(d, 'results.json')):
        st['status'] = 'failed'
    write_json(os.path.join(d, 'status.json'), st)
    return st


def _duration(seconds):
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02}'


def progress(say, run, st, n, total, start):
    """The progress line of the Nth of TOTAL runs to end, RUN with status
    ST, with an estimate of the time left since START."""
    left = (time.monotonic() - start) / n * (total - n)
    say(f'[{n:>{len(str(total))}}/{total}] {st["status"]:<7} '
        f'{st["seconds"]:7.1f} s  {run.label()}'
        + (f'  log: {st["log"]}' if st['status'] != 'ok' else '')
        + (f'  (about {_duration(left)} left)' if n < total else ''))


# What interrupts a sweep.
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def interruptible():
    """Make INTERRUPTS raise KeyboardInterrupt, even where the shell that
    started the sweep ignores SIGINT (a script's background job);
    returns the handlers to restore()."""
    return {sig: signal.signal(sig, _interrupted) for sig in INTERRUPTS}


def uninterruptible():
    """Ignore INTERRUPTS while an interrupt is handled."""
    for sig in INTERRUPTS:
        signal.signal(sig, signal.SIG_IGN)


def restore(old):
    for sig, handler in old.items():
        signal.signal(sig, handler)


def run_local(runner, todo, jobs, say):
    """Run TODO ([(run, key)]) JOBS at a time, with a progress line per
    finished run and an estimate of the time left; returns {key: status}.
    An interrupt (interruptible()) stops the runs in flight, which stay
    to do."""
    done = {}
    start = time.monotonic()
    old = interruptible()
    pool = futures.ThreadPoolExecutor(jobs)
    try:
        pending = {pool.submit(runner.run, run, key): (run, key)
                   for run, key in todo}
        for fut in futures.as_completed(pending):
            run, key = pending[fut]
            st = fut.result()
            if st is not None:
                done[key] = st
                progress(say, run, st, len(done), len(todo), start)
    except KeyboardInterrupt:
        uninterruptible()
        runner.stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        restore(old)
    return done


if __name__ == '__main__':
    # A task of a Slurm job array (slurm.py): python3 -m
    # qemu_dseg.sweep.runner RUN_DIR runs the prepared run there.
    if len(sys.argv) != 2 or not os.path.isfile(
            os.path.join(sys.argv[1], 'run.json')):
        sys.exit('usage: python3 -m qemu_dseg.sweep.runner RUN_DIR (a '
                 'directory with run.json)')
    sys.exit(0 if execute(sys.argv[1]) else 1)
