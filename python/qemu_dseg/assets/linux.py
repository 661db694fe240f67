"""Linux guests: Debian's cloud kernel with a busybox initramfs.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import glob
import hashlib
import os
from typing import NamedTuple

from .debian import (BUSYBOX_PACKAGE, fetch, kernel_package,
                     library_packages, unpack)
from .elf import elf_needed, shared_libraries
from .initramfs import write_initramfs
from .kmod import module_bytes, module_files
from .work import AssetError, serialised

APPLETS = ('sh mount umount cat grep insmod rmmod poweroff dmesg echo ls '
           'sleep uname mkdir dd md5sum sha256sum head tail awk sed sync '
           'lsmod ifconfig cmp wc kill seq date taskset nproc').split()

# Shell snippet for the top of an /init script.
INIT_PRELUDE = """\
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
load_modules() {
    while read -r m; do
        insmod "/lib/modules/$m" || echo "insmod $m failed"
    done < /lib/modules/load-order
}
"""
EPILOGUE = 'poweroff -f\n'


class LinuxImage(NamedTuple):
    """A bootable Linux guest: bzImage, initramfs and their packages."""
    kernel: str
    initrd: str
    packages: tuple

    def records(self):
        return [p.record() for p in self.packages]


@serialised
def linux_guest(init_script, extra_files=None, modules=('kvm-amd',),
                programs=None):
    """A LinuxImage of Debian's cloud kernel with a busybox initramfs.

    The initramfs holds busybox with APPLETS, MODULES and their
    dependencies under /lib/modules (in load order in
    /lib/modules/load-order), INIT_SCRIPT as /init, EXTRA_FILES
    (path -> bytes; executable under /bin and /lib) and PROGRAMS (path ->
    (Debian package, path in it)), unmodified programs from Debian's
    packages; a file at an applet's path replaces the applet.  Every
    dynamically linked file among them gets the shared libraries it needs,
    from libc6 and the library packages that the programs' packages
    depend on, and the dynamic loader.  Built once per
    content.
    """
    kernel = fetch(kernel_package())
    busybox = fetch(BUSYBOX_PACKAGE)
    packages = (kernel, busybox)
    extra_files = {'/' + p.lstrip('/'): d
                   for p, d in (extra_files or {}).items()}
    program_pkgs = {}
    for dst, (name, src) in (programs or {}).items():
        if name not in program_pkgs:
            program_pkgs[name] = fetch(name)
        path = os.path.join(unpack(program_pkgs[name]), src)
        if not os.path.exists(path):
            raise AssetError(f'{name} has no {src}')
        with open(os.path.realpath(path), 'rb') as f:
            extra_files[dst] = f.read()
    if any(elf_needed(d) != ([], False) for d in extra_files.values()):
        libpkgs = library_packages(list(program_pkgs.values()))
        packages += tuple(program_pkgs.values()) + tuple(libpkgs)
        extra_files.update(shared_libraries(
            list(extra_files.values()),
            [unpack(p) for p in libpkgs]))
    kernel_root, busybox_root = unpack(kernel), unpack(busybox)
    vmlinuz = glob.glob(os.path.join(kernel_root, 'boot', 'vmlinuz-*'))
    if len(vmlinuz) != 1:
        raise AssetError(f'expected one boot/vmlinuz-* in {kernel_root}')

    def image(initrd):
        return LinuxImage(vmlinuz[0], initrd, packages)

    digest = hashlib.sha256(repr((
        [p.sha256 for p in packages], APPLETS, list(modules), init_script,
        sorted((p, hashlib.sha256(d).hexdigest())
               for p, d in extra_files.items()))).encode()).hexdigest()
    initrd = os.path.join(os.path.dirname(kernel.deb),
                          f'initramfs-{digest[:16]}.cpio.gz')
    if os.path.exists(initrd):
        return image(initrd)

    kos = [(os.path.basename(p).split('.ko')[0] + '.ko', module_bytes(p))
           for p in module_files(kernel_root, modules)]
    with open(os.path.join(busybox_root, 'bin', 'busybox'), 'rb') as f:
        files = {'/bin/busybox': (0o755, f.read())}
    files['/init'] = (0o755, init_script.encode())
    files['/lib/modules/load-order'] = (0o644, ''.join(
        n + '\n' for n, _ in kos).encode())
    files.update({f'/lib/modules/{n}': (0o644, elf) for n, elf in kos})
    files.update({p: (0o755 if p.startswith(('/bin/', '/lib')) else 0o644,
                      d) for p, d in extra_files.items()})
    write_initramfs(initrd, files,
                    links={f'/bin/{a}': 'busybox' for a in APPLETS
                           if f'/bin/{a}' not in files},
                    dirs=('/proc', '/sys', '/dev', '/tmp', '/etc'))
    return image(initrd)
