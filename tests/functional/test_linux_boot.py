#!/usr/bin/env python3
"""Debian's unmodified cloud kernel boots under the fork with -cpu max.

The initramfs is built at test time from Debian's linux-image and
busybox-static packages (see python/qemu_dseg/assets/).  Its /init reports what the
kernel sees of the emulated CPU and loads kvm_amd.  Also checks that a
cached Debian package is verified before use.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import hashlib
import os
import re
import tempfile

from qemu_dseg import assets, boot, testing

INIT = f"""#!/bin/sh
{assets.INIT_PRELUDE}
echo QEMU-DSEG-INIT-OK
load_modules
echo "cpuinfo-svm: $(grep -c -w svm /proc/cpuinfo)"
echo "cpuinfo-npt: $(grep -c -w npt /proc/cpuinfo)"
echo "kvm_amd-npt: $(cat /sys/module/kvm_amd/parameters/npt)"
dmesg | grep -i kvm
echo QEMU-DSEG-INIT-DONE
{assets.EPILOGUE}"""


class LinuxBootTest(testing.TestCase):

    def test_boot_cpu_max_svm_npt_kvm_amd(self):
        linux = self.linux_image(INIT)
        args = boot.linux_args(linux, memory_mb=1024, cpu='max')
        with self.machine(args, name='linux') as vm:
            vm.launch()
            vm.wait_console(r'^QEMU-DSEG-INIT-OK', timeout=240)
            self.assertEqual(vm.cmd('query-status')['status'], 'running')
            vm.wait_console(r'^QEMU-DSEG-INIT-DONE', timeout=120)
            self.assertEqual(vm.wait_exit(60), 0)
            console = vm.console()

        self.assertRegex(console, r'(?m)^cpuinfo-svm: [1-9]')
        self.assertRegex(console, r'(?m)^cpuinfo-npt: [1-9]')
        self.assertRegex(console, r'(?m)^kvm_amd-npt: (Y|1)$')
        self.assertRegex(console, r'(SVM|kvm_amd): kvm: Nested Paging enabled')
        self.assertIsNone(re.search(r'insmod .* failed', console))

    def test_cached_package_verified(self):
        """A corrupt .deb in the cache is fetched again, not used."""
        with tempfile.TemporaryDirectory() as cache:
            pkg = assets.fetch(assets.BUSYBOX_PACKAGE, cache)
            with open(pkg.deb, 'rb') as f:
                good = f.read()
            self.assertEqual(hashlib.sha256(good).hexdigest(), pkg.sha256)
            with open(pkg.deb, 'r+b') as f:
                f.seek(len(good) // 2)
                f.write(b'qemu-dseg')
            again = assets.fetch(assets.BUSYBOX_PACKAGE, cache)
            self.assertEqual(again, pkg)
            with open(again.deb, 'rb') as f:
                self.assertEqual(f.read(), good)
            self.assertEqual(sorted(os.listdir(cache)),
                             sorted([os.path.basename(pkg.deb),
                                     os.path.basename(pkg.deb) + '.json']))


if __name__ == '__main__':
    testing.main()
