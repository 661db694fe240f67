#!/usr/bin/env python3
"""Sweeps through Slurm (dseg-sweep.py --executor slurm): the grid of
test_sweep.py as a job array of a real single-node Slurm, which this
test starts itself (Debian's munged, slurmctld and slurmd, as root, with
their own key, configuration, ports and directories) and stops after.

The merged result must be the grid's run one at a time here: the same
keys, points and statuses, the same counters in every run, the same
table but for the times; each run's provenance names the node that ran
it.  A second sweep finds every run finished and submits nothing.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time

from qemu_dseg import testing
from test_sweep import POINTS, counters, ran, sweep

DAEMONS = ('munged', 'slurmctld', 'slurmd')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def mem_total_mb():
    with open('/proc/meminfo') as f:
        return int(f.readline().split()[1]) // 1024


def slurm_conf(d, host):
    """A one-node cluster's slurm.conf, everything under D; the node has
    this machine's CPUs, and its memory less 1 GiB (slurmd drains a node
    with less than the configuration says)."""
    return '\n'.join([
        'ClusterName=dsegsweep', f'SlurmctldHost={host}', 'SlurmUser=root',
        f'SlurmctldPort={free_port()}', f'SlurmdPort={free_port()}',
        'AuthType=auth/munge', f'AuthInfo=socket={d}/munge.socket',
        'CredType=cred/munge', f'StateSaveLocation={d}/state',
        f'SlurmdSpoolDir={d}/spool',
        f'SlurmctldPidFile={d}/slurmctld.pid',
        f'SlurmdPidFile={d}/slurmd.pid',
        f'SlurmctldLogFile={d}/slurmctld.log',
        f'SlurmdLogFile={d}/slurmd.log',
        # No cgroups: the test machine may be a container.
        'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none',
        'JobAcctGatherType=jobacct_gather/none', 'MpiDefault=none',
        'SelectType=select/cons_tres', 'SelectTypeParameters=CR_Core_Memory',
        'SchedulerType=sched/builtin', 'ReturnToService=2',
        f'NodeName={host} CPUs={os.cpu_count()} '
        f'RealMemory={mem_total_mb() - 1024} '
        'State=UNKNOWN',
        'PartitionName=sweep Nodes=ALL Default=YES MaxTime=INFINITE '
        'State=UP', ''])


def table_without_times(text):
    """The table's lines, without the column of times."""
    lines = [line for line in text.splitlines()
             if re.match(r'(modes|base-native|vmm-direct|dual-direct) ',
                         line)]
    return [re.sub(r'\s+(time s|\d+\.\d{3})\s+(model|-)', r' \2', line)
            for line in lines]


class SlurmSweepTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if os.geteuid() != 0:
            raise RuntimeError('this test starts Slurm\'s daemons: run it '
                               'as root')
        for tool in (*DAEMONS, 'sbatch', 'sinfo'):
            if not shutil.which(tool) and not os.path.exists(
                    f'/usr/sbin/{tool}'):
                raise RuntimeError(f'no {tool}: scripts/setup.sh installs '
                                   "Debian's slurmctld, slurmd, "
                                   'slurm-client and munge')
        # munged wants a short socket path and a key only its user reads.
        cls.dir = d = os.path.join('/run', f'dseg-sweep-slurm-{os.getpid()}')
        os.makedirs(os.path.join(d, 'state'))
        os.makedirs(os.path.join(d, 'spool'))
        os.chmod(d, 0o700)
        key = os.path.join(d, 'munge.key')
        with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), 'wb') as f:
            f.write(secrets.token_bytes(1024))
        host = socket.gethostname().split('.')[0]
        conf = os.path.join(d, 'slurm.conf')
        with open(conf, 'w') as f:
            f.write(slurm_conf(d, host))
        os.environ['SLURM_CONF'] = conf
        cls.procs = []
        cls.start(['munged', '-F', '-f', f'--key-file={key}',
                   f'--socket={d}/munge.socket', f'--pid-file={d}/munged.pid',
                   f'--log-file={d}/munged.log', f'--seed-file={d}/seed'])
        cls.start(['slurmctld', '-D', '-f', conf])
        cls.start(['slurmd', '-D', '-f', conf])
        deadline = time.monotonic() + 60
        while True:
            state = subprocess.run(['sinfo', '-h', '-o', '%t'],
                                   capture_output=True, text=True)
            if state.stdout.strip() == 'idle':
                break
            if time.monotonic() > deadline:
                cls.tearDownClass()
                raise RuntimeError(f'Slurm did not come up in 60 s: '
                                   f'{state.stdout}{state.stderr}; logs '
                                   f'in {cls.logs}')
            time.sleep(0.5)
        print(f'# a one-node Slurm on {host} is up')

    @classmethod
    def start(cls, argv):
        name = os.path.basename(argv[0])
        log = open(os.path.join(cls.logs, f'{name}.out'), 'w')
        cls.procs.append(subprocess.Popen(argv, stdout=log,
                                          stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL,
                                          start_new_session=True))

    @classmethod
    def tearDownClass(cls):
        for proc in reversed(cls.procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        cls.procs = []
        for name in os.listdir(cls.dir):
            if name.endswith('.log'):
                shutil.copy(os.path.join(cls.dir, name), cls.logs)
        shutil.rmtree(cls.dir, ignore_errors=True)
        os.environ.pop('SLURM_CONF', None)
        super().tearDownClass()

    def test_slurm_matches_local(self):
        status, text, local = sweep(os.path.join(self.logs, 'local'),
                                    '--jobs', '1', '--no-chart')
        self.assertEqual(status, 0, text)
        out = os.path.join(self.logs, 'slurm')
        status, s_text, s_doc = sweep(out, '--executor', 'slurm',
                                      '--slurm-time', '10', '--no-chart')
        self.assertEqual(status, 0, s_text)
        self.assertRegex(s_text, rf'submitted job array \d+ of {POINTS} '
                         r'tasks')
        self.assertEqual(s_doc['counts'], {'ok': POINTS})
        self.assertEqual(counters(s_doc), counters(local))
        self.assertEqual(len(counters(local)), POINTS)
        self.assertEqual([(r['key'], r['point'], r['status'])
                          for r in s_doc['runs']],
                         [(r['key'], r['point'], r['status'])
                          for r in local['runs']])
        self.assertEqual(table_without_times(s_text),
                         table_without_times(text))
        self.assertEqual(len(table_without_times(text)), POINTS + 1)
        for r in s_doc['runs']:
            self.assertEqual(r['provenance']['host'], socket.gethostname())
        times = [re.search(r'ran \d+ in (\d+) s', t).group(1)
                 for t in (text, s_text)]
        print(f'# {POINTS} runs one at a time here: {times[0]} s; as a '
              f'Slurm job array: {times[1]} s')
        # Nothing to run the second time: no job.
        status, again, _ = sweep(out, '--executor', 'slurm', '--no-chart')
        self.assertEqual((status, ran(again)), (0, (0, POINTS)), again)
        self.assertNotIn('submitted', again)


if __name__ == '__main__':
    testing.main()
