#!/usr/bin/env python3
"""Sweeps (scripts/dseg-sweep.py): a grid of 12 bare-metal experiment
runs (3 modes x 2 workloads x 2 TLB sizes), one boot each.

Run one at a time and two at a time, the grid gives exactly the same
counters in every run, under the same keys; the merged result names the
fork by the digest of its binary, computed here.  Interrupted after a
few runs, a sweep resumes without running those again.  A run that
fails, times out or gives a workload checksum that differs from base
native's is reported with its log and does not stop the others, and the
next sweep runs it, and only it, again.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import contextlib
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time

from qemu_dseg import config, testing
from qemu_dseg.sweep import cli

SCRIPT = os.path.join(config.REPO, 'scripts', 'dseg-sweep.py')
MODES = ('base-native', 'vmm-direct', 'dual-direct')
GRID = ['--experiment', 'bare-metal', '--option', 'size-mb=4',
        '--option', 'iters=gups=20000,chase=20000', '--option', 'seed=7',
        '--axis', 'modes=' + ','.join(MODES), '--axis', 'workload=gups,chase',
        '--axis', 'tlb-size=64,256']
POINTS = len(MODES) * 2 * 2


def sweep(out, *args):
    """Run the sweep of GRID into OUT in this process: (status, what it
    printed, sweep.json)."""
    text = io.StringIO()
    status = cli.main([*GRID, '--out', out, *args], out=text)
    print(''.join(f'# {line}\n' for line in text.getvalue().splitlines()))
    with open(os.path.join(out, 'sweep.json')) as f:
        return status, text.getvalue(), json.load(f)


def counters(doc):
    """{key: [(workload, mode, query-dseg counters)]} of a sweep.json."""
    return {r['key']: [(wl['kind'], row['mode'], row['counters'])
                       for wl in r['results']['workloads']
                       for row in wl['modes']]
            for r in doc['runs'] if r['status'] == 'ok'}


def ran(text):
    """How many runs a sweep said it had to run, and had finished."""
    m = re.search(r'; (\d+) finished already, (\d+) to run;', text)
    return int(m.group(2)), int(m.group(1))


def refused(*args):
    """The message of a sweep that must refuse ARGS before it runs."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            cli.main([*args, '--out', os.devnull], out=io.StringIO())
        except SystemExit as e:
            if e.code == 2:
                return err.getvalue().strip().splitlines()[-1]
    raise AssertionError(f'not refused: {args}')


def listed_keys(*args):
    """The keys of a sweep's runs, by point (--list runs nothing)."""
    text = io.StringIO()
    cli.main([*args, '--list', '--out', os.devnull], out=text)
    return {point: key for key, point in
            re.findall(r'(?m)^todo +(\w+)  (.*)$', text.getvalue())}


class SweepTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.serial_dir = os.path.join(cls.logs, 'serial')
        cls.serial = sweep(cls.serial_dir, '--jobs', '1')
        cls.parallel = sweep(os.path.join(cls.logs, 'parallel'),
                             '--jobs', '2')

    def test_parallel_matches_serial(self):
        (s_status, s_text, s_doc), (p_status, p_text, p_doc) = \
            self.serial, self.parallel
        self.assertEqual((s_status, p_status), (0, 0), s_text + p_text)
        self.assertEqual(s_doc['counts'], {'ok': POINTS})
        self.assertEqual(p_doc['counts'], {'ok': POINTS})
        s, p = counters(s_doc), counters(p_doc)
        self.assertEqual(len(s), POINTS)
        self.assertEqual(s, p)
        # Each run is one mode: its row's fills took that mode's path.
        for run in s_doc['runs']:
            (row,) = run['results']['workloads'][0]['modes']
            self.assertEqual(row['mode'], run['point']['modes'])
            self.assertGreater(row['fills'], 0, run['key'])
        times = [float(re.search(r'ran \d+ in (\d+) s', t).group(1))
                 for t in (s_text, p_text)]
        print(f'# {POINTS} runs one at a time: {times[0]:.0f} s; two at a '
              f'time: {times[1]:.0f} s')

    def test_provenance(self):
        status, text, doc = self.serial
        with open(os.path.realpath(config.QEMU), 'rb') as f:
            h = hashlib.sha256()
            h.update(os.path.basename(config.QEMU).encode() + b'\0')
            h.update(f.read())
        for run in doc['runs']:
            prov = run['provenance']
            self.assertEqual(prov['inputs']['fork'], h.hexdigest())
            self.assertEqual(prov['seed'], 7)
            self.assertTrue(prov['host'])
            self.assertIn(f'--modes {run["point"]["modes"]}',
                          ' '.join(prov['argv']))
        for axis in ('modes', 'workload', 'tlb-size'):
            self.assertTrue(os.path.isfile(os.path.join(
                self.serial_dir, 'charts', f'{axis}.png')), axis)
        table = [line for line in text.splitlines()
                 if re.match(r'(base-native|vmm-direct|dual-direct) ', line)]
        self.assertEqual(len(table), POINTS, text)

    def test_bad_descriptions(self):
        base = ['--experiment', 'bare-metal', '--option', 'workload=gups']
        for args, message in (
                (['--axis', 'tlb-size=64,3', '--option', 'modes=base-native'],
                 'run tlb-size=3: dseg-experiment.py bare-metal: error: '
                 'argument --tlb-size: must be 0 or a power of two'),
                # Long options are spelt out: no abbreviation passes.
                (['--option', 'max-run=5', '--option', 'modes=base-native'],
                 'unrecognized arguments: --max-run 5'),
                (['--axis', 'mode=base-native,vmm-direct'],
                 'modes: each run boots one translation mode'),
                (['--option', 'runs=3', '--option', 'modes=base-native'],
                 'runs: the sweep sets it itself'),
                (['--axis', 'modes=base-native,base-native'],
                 'modes: a value twice'),
                (['--experiment', 'bogus', '--option', 'modes=base-native'],
                 "experiment 'bogus': one of linux, bare-metal")):
            with self.subTest(args=args):
                self.assertIn(message, refused(*base, *args))
        self.assertIn('workload: all is three boots',
                      refused('--experiment', 'bare-metal', '--option',
                              'modes=base-native', '--axis',
                              'workload=gups,all'))

    def test_key_is_the_content(self):
        """The same runs, their options given in another order, have the
        same keys; another option value, other keys."""
        axes = ['--axis', 'modes=base-native,vmm-direct']
        one = listed_keys('--experiment', 'bare-metal', '--option',
                          'size-mb=4', '--option', 'seed=7', *axes)
        other = listed_keys('--option', 'seed=7', *axes, '--experiment',
                            'bare-metal', '--option', 'size-mb=4')
        self.assertEqual(len(one), 2)
        self.assertEqual(one, other)
        seed = listed_keys('--experiment', 'bare-metal', '--option',
                           'size-mb=4', '--option', 'seed=8', *axes)
        self.assertFalse(set(one.values()) & set(seed.values()))

    def test_resume(self):
        out = os.path.join(self.logs, 'resume')
        runs = os.path.join(out, 'runs')
        proc = subprocess.Popen(
            [sys.executable, SCRIPT, *GRID, '--out', out, '--jobs', '1'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120

        def ended():
            return sorted(os.listdir(runs)) if os.path.isdir(runs) else []
        while len([k for k in ended() if os.path.exists(
                os.path.join(runs, k, 'status.json'))]) < 4:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                self.fail('the sweep ended, or did not finish 4 runs in '
                          '120 s:\n' + proc.communicate()[0])
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        first, _ = proc.communicate(timeout=60)
        print(''.join(f'# {line}\n' for line in first.splitlines()))
        self.assertEqual(proc.returncode, 130, first)
        m = re.search(r'interrupted: (\d+) of 12 runs finished; the same '
                      r'command runs the other (\d+)', first)
        self.assertIsNotNone(m, first)
        done = int(m.group(1))
        self.assertGreaterEqual(done, 4)
        self.assertLess(done, POINTS)
        finished = {k: os.stat(os.path.join(runs, k, 'status.json'))
                    .st_mtime_ns for k in ended()
                    if os.path.exists(os.path.join(runs, k, 'status.json'))}
        self.assertEqual(len(finished), done)
        status, text, doc = sweep(out, '--jobs', '2')
        self.assertEqual(status, 0, text)
        self.assertEqual(ran(text), (POINTS - done, done))
        for k, mtime in finished.items():
            self.assertEqual(os.stat(os.path.join(runs, k, 'status.json'))
                             .st_mtime_ns, mtime, k)
        self.assertEqual(counters(doc), counters(self.serial[2]))

    def test_failures(self):
        out = os.path.join(self.logs, 'failures')
        # Every run times out: each is reported with its log, none stops
        # the others, and the next sweep runs them all again.
        status, text, doc = sweep(out, '--jobs', '2', '--timeout', '0.01',
                                  '--no-chart')
        self.assertEqual(status, 1, text)
        self.assertEqual(doc['counts'], {'timeout': POINTS})
        self.assertEqual(len(re.findall(r'(?m)^\[ *\d+/12\] timeout .* log: '
                                        r'\S+/log\.txt', text)), POINTS, text)
        status, text, doc = sweep(out, '--jobs', '2', '--no-chart')
        self.assertEqual((status, ran(text)), (0, (POINTS, 0)), text)
        # A run whose workload checksum differs from base native's: its
        # results are altered here.  It is reported, and only it runs
        # again.
        victim = next(r for r in doc['runs']
                      if r['point']['modes'] == 'vmm-direct')
        path = os.path.join(out, 'runs', victim['key'], 'results.json')
        with open(path) as f:
            res = json.load(f)
        res['workloads'][0]['checksum'] = '0x1'
        with open(path, 'w') as f:
            json.dump(res, f)
        status, text, doc = sweep(out, '--no-chart')
        self.assertEqual(status, 1, text)
        self.assertEqual(doc['counts'], {'ok': POINTS - 1,
                                         'wrong-checksum': 1})
        label = ' '.join(f'{n}={v}' for n, v in victim['point'].items())
        self.assertIn(f"wrong-checksum: {label}: {victim['log']}", text)
        status, text, doc = sweep(out, '--no-chart')
        self.assertEqual((status, ran(text)), (0, (1, POINTS - 1)), text)


if __name__ == '__main__':
    testing.main()
