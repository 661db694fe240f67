"""Initramfs images: gzip'd newc cpio archives, written by cpio.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import gzip
import os
import stat
import tempfile

from .work import AssetError, run


def write_initramfs(path, files, links=(), dirs=()):
    """A gzip'd newc cpio archive at PATH, written by cpio.

    FILES maps a path in the image to (mode, bytes), LINKS maps a path to
    its symlink target; DIRS are extra empty directories.  Owned by root,
    with /dev/console and /dev/null (mknod: needs root).
    """
    with tempfile.TemporaryDirectory() as stage:
        def place(p):
            full = os.path.join(stage, p.lstrip('/'))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            return full

        for d in dirs:
            os.makedirs(os.path.join(stage, d.lstrip('/')), exist_ok=True)
        for p, (mode, data) in files.items():
            full = place(p)
            with open(full, 'wb') as f:
                f.write(data)
            os.chmod(full, mode)
        for p, target in dict(links).items():
            os.symlink(target, place(p))
        try:
            os.mknod(place('/dev/console'), stat.S_IFCHR | 0o600,
                     os.makedev(5, 1))
            os.mknod(place('/dev/null'), stat.S_IFCHR | 0o666,
                     os.makedev(1, 3))
        except PermissionError as e:
            raise AssetError('building an initramfs needs root (mknod of '
                             '/dev/console)') from e
        names = sorted(os.path.relpath(os.path.join(d, n), stage)
                       for d, ds, fs in os.walk(stage) for n in ds + fs)
        for n in names:
            os.utime(os.path.join(stage, n), (0, 0), follow_symlinks=False)
        archive = run(['cpio', '--quiet', '-o', '-H', 'newc', '-R', '0:0',
                        '--reproducible'], 300, text=False, cwd=stage,
                       input='\n'.join(names).encode())
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(gzip.compress(archive, mtime=0))
    os.replace(tmp, path)
