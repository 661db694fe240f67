#!/usr/bin/env python3
"""A sweep of the Linux experiment (scripts/dseg-sweep.py): GUPS over
16 MiB in base native and VMM direct, one boot of Debian's kernel each.

Both runs end ok, with GUPS's result right (the experiment's check);
each window's fills took its mode's path, at the references per fill the
spec gives for 4 KiB pages (4 for a native walk, 4 for a VMM-direct fill
with the guest's page tables in the segment; the guest kernel's few
large pages take one fewer); both give the same checksum; the runs' keys
and provenance name the Debian kernel package that they booted.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import io
import json
import os

from qemu_dseg import testing
from qemu_dseg.assets import debian
from qemu_dseg.sweep import cli

GUPS_MB, UPDATES, SEED = 16, 65536, 3


class LinuxSweepTest(testing.TestCase):

    def test_linux_sweep(self):
        out = os.path.join(self.logs, 'sweep')
        text = io.StringIO()
        status = cli.main(
            ['--experiment', 'linux', '--option', 'workloads=gups',
             '--option', f'gups-mb={GUPS_MB}',
             '--option', f'gups-updates={UPDATES}',
             '--option', f'seed={SEED}', '--option', 'no-tlb-model',
             '--option', 'vcpus=1',
             '--axis', 'modes=base-native,vmm-direct', '--out', out,
             '--no-chart'], out=text)
        print(''.join(f'# {line}\n' for line in
                      text.getvalue().splitlines()))
        self.assertEqual(status, 0, text.getvalue())
        with open(os.path.join(out, 'sweep.json')) as f:
            doc = json.load(f)
        self.assertEqual(doc['counts'], {'ok': 2})
        kernel = debian.kernel_package()
        want = {'base-native': 'native-walk', 'vmm-direct': 'vmm-direct'}
        checksums = set()
        for run in doc['runs']:
            prov = run['provenance']
            self.assertEqual(prov['inputs']['kernel'], kernel)
            self.assertIn(kernel, [p['package'] for p in prov['packages']])
            (wl,) = run['results']['workloads']
            (row,) = wl['modes']
            self.assertTrue(row['ok'], row['result'])
            self.assertEqual(row['mode'], run['point']['modes'])
            path = want[row['mode']]
            self.assertEqual(row['dominant_path'], path)
            p = row['paths'][path]
            self.assertGreater(p['share'], 0.99, p)
            self.assertAlmostEqual(p['arch_per_fill'], 4.0, delta=0.01,
                                   msg=p)
            checksums.add(wl['checksum'])
        self.assertEqual(len(checksums), 1, checksums)


if __name__ == '__main__':
    testing.main()
