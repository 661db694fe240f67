#!/usr/bin/env python3
"""The main job, reduced: the Linux experiment in all six modes on 2 vCPUs.

Runs scripts/dseg-experiment.py's Linux experiment (python/qemu_dseg/
experiment/linux.py) with a 4 GiB guest on 2 vCPUs and small workloads:
GUPS and the pointer chase over 256 MiB, memcached with 1024 keys and
redis with 4096 requests of each kind.  In each mode one boot of Debian's kernel runs the three in
turn, each in an exact counter window.

Checks:

* the applications give correct results in every mode: GUPS and the
  chase each the same checksum everywhere; memcached every get a hit, the items it was given,
  and a 512 KiB value read back as it was set; redis-benchmark exits 0
  with both summaries and no error, and a key set afterwards reads back;
* thinvmm laid the guest out with at least 99% of its RAM under the VMM
  segment, and ran 2 vCPUs;
* VMM direct: at least 95% of the guest's fills in every window, on all
  vCPUs together, took the vmm-direct path;
* GUPS and the chase, whose tables are primary regions in the direct
  modes of the guest dimension, take that mode's path for at least 99% of its window's
  fills in native direct, guest direct and dual direct;
* memcached's slabs and redis's heap are in a primary region there
  (dual-direct fills).

SPDX-License-Identifier: GPL-2.0-or-later
"""

import io
import json
import os
import re

from qemu_dseg import config, model, testing
from qemu_dseg.experiment import cli


class LinuxExperimentTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        out = os.path.join(cls.logs, 'experiment')
        text = io.StringIO()
        cli.main(['--guest-mb', '4096', '--vcpus', '2',
                  '--gups-mb', '256', '--gups-updates', str(1 << 18),
                  '--chase-mb', '256', '--chase-steps', str(1 << 18),
                  '--memcached-keys', '1024', '--redis-requests', '4096',
                  '--redis-keys', '16384',
                  '--qemu', config.QEMU, '--guests', config.GUESTS,
                  '--out', out, '--no-chart'], out=text)
        cls.text = text.getvalue()
        print(''.join(f'# {line}\n' for line in cls.text.splitlines()
                      if not line.startswith('packages:')))
        with open(os.path.join(out, 'results.json')) as f:
            cls.res = json.load(f)
        cls.wls = {w['kind']: w for w in cls.res['workloads']}

    def row(self, kind, mode):
        return next(r for r in self.wls[kind]['modes'] if r['mode'] == mode)

    def test_all_modes_all_workloads(self):
        self.assertEqual(sorted(self.wls),
                         ['chase', 'gups', 'memcached', 'redis'])
        for wl in self.wls.values():
            self.assertEqual([r['mode'] for r in wl['modes']],
                             list(model.MODE_BY_NAME))

    def test_results_correct_in_every_mode(self):
        for kind, wl in self.wls.items():
            for r in wl['modes']:
                with self.subTest(workload=kind, mode=r['mode']):
                    self.assertTrue(r['ok'], r['result'])
        self.assertIsNotNone(self.wls['gups']['checksum'])
        self.assertIsNotNone(self.wls['chase']['checksum'])
        for r in self.wls['memcached']['modes']:
            self.assertIn('get_hits 1025 get_misses 0 curr_items 1025',
                          r['result'])

    def test_layout_and_vcpus(self):
        cfg = self.res['config']
        self.assertEqual(cfg['vcpus'], 2)
        m = re.search(r'VMM segment over high RAM, ([\d.]+)% of guest RAM; '
                      r'2 vCPUs', cfg['thinvmm_layout'] or '')
        self.assertIsNotNone(m, cfg['thinvmm_layout'])
        self.assertGreaterEqual(float(m.group(1)), 99.0)
        for r in self.wls['gups']['modes']:
            self.assertEqual(len(r['per_cpu_counters']), 2, r['mode'])

    def test_vmm_direct_share(self):
        for kind in self.wls:
            c = self.row(kind, 'vmm-direct')['counters']
            guest = sum(c[p]['fills'] for p in model.GUEST_MODE_PATHS)
            vd = c['vmm-direct']['fills']
            with self.subTest(workload=kind):
                self.assertGreater(guest, 0)
                self.assertGreaterEqual(vd, 0.95 * guest, c)

    def test_primary_region_paths(self):
        for kind, mode in [(k, m) for k in ('gups', 'chase') for m in
                           ('native-direct', 'guest-direct', 'dual-direct')]:
            r = self.row(kind, mode)
            with self.subTest(workload=kind, mode=mode):
                self.assertGreaterEqual(r['paths'][mode]['share'], 0.99)
                self.assertGreaterEqual(r['paths'][mode]['fills'], 1 << 17)
        for kind in ('memcached', 'redis'):
            c = self.row(kind, 'dual-direct')['counters']
            with self.subTest(workload=kind):
                self.assertGreater(c['dual-direct']['fills'], 0)


if __name__ == '__main__':
    testing.main()
