#!/usr/bin/env python3
"""Smoke tests: the fork runs, names itself, and runs a bare-metal guest.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import subprocess

from qemu_dseg import config, guests, testing


class SmokeTest(testing.TestCase):

    def test_version_names_fork_and_upstream(self):
        out = subprocess.run([config.QEMU, '--version'], check=True,
                             capture_output=True, text=True,
                             timeout=30).stdout
        upstream = open(f'{config.QEMU_SRC}/VERSION').read().strip()
        self.assertRegex(upstream, r'^10\.0\.\d+$')
        self.assertIn(f'QEMU emulator version {upstream} (qemu-dseg', out)

    def test_guest_exit_status(self):
        for status in (0, 5, 42):
            with self.subTest(status=status):
                got, console = self.run_guest('smoke',
                                               append=f'status={status}')
                self.assertEqual(got, status)
                self.assertIn('qemu-dseg smoke guest: hello from long mode',
                              console)
                self.assertIn(f'exiting with status {status}\n', console)

    def test_guest_exception_is_reported(self):
        got, console = self.run_guest('smoke', append='fault=1')
        self.assertEqual(got, guests.GUEST_EXIT_FAULT)
        self.assertRegex(console, r'unexpected exception 6, error code 0x0 '
                                  r'at rip 0x[0-9a-f]+')
        self.assertNotIn('exiting with status', console)

    def test_qmp_query_status(self):
        args = guests.args('smoke', memory='128M', extra_args=['-S'])
        with self.machine(args, name='qmp') as vm:
            vm.launch()
            self.assertEqual(vm.cmd('query-status')['status'], 'prelaunch')
            vm.cmd('cont')
            self.assertEqual(vm.wait_guest_exit(30), 0)


if __name__ == '__main__':
    testing.main()
