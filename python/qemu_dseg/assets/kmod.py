"""Kernel modules: those of Debian's kernel package, and ours built for it.

modprobe resolves module dependencies (after depmod indexes the unpacked
kernel package); an out-of-tree module (contrib/linux) is built with
Debian's kbuild tree of exactly that kernel, once per content of its
sources.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import glob
import hashlib
import os
import re
import shutil

from .. import config
from .debian import (fetch, kernel_headers, kernel_package,
                     kernel_release, unpack)
from .work import AssetError, run, serialised, sha256


@serialised
def module_files(root, names):
    """The module files of NAMES and their dependencies in load order,
    as modprobe resolves them in the unpacked kernel package ROOT."""
    release = kernel_release(root)
    if not os.path.exists(os.path.join(root, 'lib', 'modules', release,
                                       'modules.dep')):
        run(['depmod', '-b', root, release], 300)
    files = []
    for name in names:
        out = run(['modprobe', '-d', root, '-S', release,
                    '--show-depends', name], 60)
        for path in re.findall(r'^insmod (\S+)', out, re.M):
            if path not in files:
                files.append(path)
    return files


def _tree_digest(src):
    """The sha256 of the files in directory SRC: names and contents."""
    h = hashlib.sha256()
    for d, _, names in sorted(os.walk(src)):
        for n in sorted(names):
            path = os.path.join(d, n)
            h.update(os.path.relpath(path, src).encode() + b'\0')
            h.update(sha256(path).encode())
    return h.hexdigest()


@serialised
def build_module(tree, name, kernel, out):
    """Build the out-of-tree module in the Kbuild directory TREE/NAME (it
    may use TREE's other directories) for the kernel package KERNEL, once
    per content of TREE, in OUT/<release>-<digest>/; return the .ko's
    path."""
    release = kernel_release(unpack(kernel))
    work = os.path.join(out, f'{release}-{_tree_digest(tree)[:16]}')
    kos = glob.glob(os.path.join(work, name, '*.ko'))
    if len(kos) == 1:
        return kos[0]
    kdir = kernel_headers(release, kernel.version)
    tmp = f'{work}.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(tree, tmp)
    run(['make', '-C', kdir, f'M={os.path.join(tmp, name)}', 'modules'],
         600, what=f'building {os.path.join(tree, name)} against {kdir}')
    kos = glob.glob(os.path.join(tmp, name, '*.ko'))
    if len(kos) != 1:
        raise AssetError(f'building {os.path.join(tree, name)} gave {kos}')
    vermagic = run(['modinfo', '-F', 'vermagic', kos[0]], 60).split()
    if vermagic[:1] != [release]:
        raise AssetError(f'{kos[0]} is built for {vermagic[:1]}, not '
                         f'{release}')
    for old in glob.glob(os.path.join(out, f'{release}-*')):
        if old != tmp:
            shutil.rmtree(old)
    os.replace(tmp, work)
    return os.path.join(work, name, os.path.basename(kos[0]))


def module_bytes(path):
    """The plain ELF of a module file, decompressed if need be."""
    if path.endswith('.xz'):
        return run(['xz', '-dc', path], 120, text=False)
    if path.endswith('.zst'):
        return run(['zstd', '-dcq', path], 120, text=False)
    with open(path, 'rb') as f:
        return f.read()


def contrib_module(name):
    """The module contrib/linux/NAME, built for the kernel that the Linux
    guests boot, in BUILD/contrib/linux/NAME; the .ko's path."""
    return build_module(
        os.path.join(config.REPO, 'contrib', 'linux'), name,
        fetch(kernel_package()),
        os.path.join(config.BUILD, 'contrib', 'linux', name))


def dseg_module():
    """The guest module contrib/linux/dseg (see contrib_module())."""
    return contrib_module('dseg')


def dseg_vmm_module():
    """The host module contrib/linux/dseg-vmm, for L1 Linux running KVM
    (see contrib_module())."""
    return contrib_module('dseg-vmm')
