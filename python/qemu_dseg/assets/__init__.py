"""Linux guests from Debian's packages: the kernel, its modules, busybox.

By role:
  debian     Debian's packages, downloaded once with apt, recorded and
             verified, and unpacked; kernel headers installed
  kmod       kernel modules: those of the kernel package in load order,
             and ours (contrib/linux) built for it
  initramfs  writing an initramfs (cpio)
  elf        the shared libraries that ELF programs need
  linux      a bootable Linux guest (LinuxImage) of all of them, and the
             shell snippets of its /init
  work       what they share: AssetError, commands, the lock of asset
             preparation, digests

The names that the rest of qemu_dseg uses are also here (assets.fetch,
assets.linux_guest, ...).

SPDX-License-Identifier: GPL-2.0-or-later
"""

from .debian import (BUSYBOX_PACKAGE, KERNEL_METAPACKAGE, Package,
                     apt_install, fetch, kernel_headers, kernel_package,
                     unpack)
from .elf import elf_needed, shared_libraries
from .initramfs import write_initramfs
from .kmod import build_module, contrib_module, dseg_module, dseg_vmm_module
from .linux import APPLETS, EPILOGUE, INIT_PRELUDE, LinuxImage, linux_guest
from .work import AssetError

__all__ = [
    'APPLETS', 'AssetError', 'BUSYBOX_PACKAGE', 'EPILOGUE', 'INIT_PRELUDE',
    'KERNEL_METAPACKAGE', 'LinuxImage', 'Package', 'apt_install',
    'build_module', 'contrib_module', 'dseg_module', 'dseg_vmm_module',
    'elf_needed', 'fetch', 'kernel_headers', 'kernel_package', 'linux_guest',
    'shared_libraries', 'unpack', 'write_initramfs',
]
