#!/usr/bin/env python3
"""The tests from a checkout at a long path.

A checkout can lie anywhere, and the path of a UNIX socket must fit in
108 bytes (sun_path).  This test reaches the checkout and the build
directory through symbolic links in a directory whose path is longer
than that, and runs test_dseg_debug from there, with its logs there too:
a test of QMP and the gdbstub, which passes only if none of its sockets
is made under the checkout, the build or the log directory.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import subprocess
import sys

from qemu_dseg import config, testing

SUN_PATH = 108
TEST = 'test_dseg_debug'


class LongPathTest(testing.TestCase):

    def test_dseg_debug_from_long_path(self):
        base = self.logs
        while len(base) <= SUN_PATH:
            base = os.path.join(base, 'a-checkout-at-a-long-path')
        repo = os.path.join(base, 'qemu-dseg')
        build = os.path.join(base, 'build')
        logs = os.path.join(base, 'logs')
        os.makedirs(logs)
        os.symlink(config.REPO, repo)
        os.symlink(config.BUILD, build)

        def moved(path):
            for old, new in ((config.BUILD, build), (config.REPO, repo)):
                if path == old or path.startswith(old + os.sep):
                    return new + path[len(old):]
            return path

        env = dict(os.environ)
        for key in [k for k in env
                    if k.startswith('QEMU_DSEG_') or k == 'PYTHONPATH']:
            env[key] = os.pathsep.join(map(moved,
                                           env[key].split(os.pathsep)))
        env['QEMU_DSEG_LOG_DIR'] = logs
        program = os.path.join(repo, 'tests', 'functional', f'{TEST}.py')
        run = subprocess.run([sys.executable, program], env=env,
                             capture_output=True, text=True, timeout=300,
                             check=False)
        report = (f'\n--- {TEST} from {program} ---\n{run.stdout}'
                  f'{run.stderr}')
        self.assertGreater(len(os.path.join(logs, TEST)), SUN_PATH)
        self.assertEqual(run.returncode, 0, report)
        self.assertIn('\nok 1 ', run.stdout, report)
        self.assertNotIn('not ok', run.stdout, report)
        self.assertTrue(os.listdir(os.path.join(logs, TEST)), report)


if __name__ == '__main__':
    testing.main()
