"""ELF files: the shared libraries a program needs, at any depth.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import struct

from .work import AssetError

# Where the shared libraries of Debian's packages are, and where the
# initramfs has them (the dynamic loader's default directory).
LIB_DIRS = ('lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu')
GUEST_LIB_DIR = '/lib/x86_64-linux-gnu'
DYNAMIC_LOADER = '/lib64/ld-linux-x86-64.so.2'


def elf_needed(data):
    """(DT_NEEDED names, has PT_INTERP) of the ELF64 file DATA; ([],
    False) for a static program or anything that is not ELF64."""
    if data[:5] != b'\x7fELF\x02':
        return [], False
    phoff, = struct.unpack_from('<Q', data, 0x20)
    phentsize, phnum = struct.unpack_from('<HH', data, 0x36)
    loads, dynamic, interp = [], None, False
    for i in range(phnum):
        ptype, _, off, vaddr, _, filesz = struct.unpack_from(
            '<IIQQQQ', data, phoff + i * phentsize)
        if ptype == 1:
            loads.append((vaddr, off, filesz))
        elif ptype == 2:
            dynamic = (off, filesz)
        elif ptype == 3:
            interp = True
    if dynamic is None:
        return [], interp
    entries = [struct.unpack_from('<qQ', data, dynamic[0] + i)
               for i in range(0, dynamic[1], 16)]

    def offset(vaddr):
        for start, off, size in loads:
            if start <= vaddr < start + size:
                return vaddr - start + off
        raise AssetError('ELF: DT_STRTAB outside its segments')

    strtab = offset(next(v for t, v in entries if t == 5))
    names = []
    for tag, val in entries:
        if tag == 1:
            end = data.index(b'\0', strtab + val)
            names.append(data[strtab + val:end].decode())
    return names, interp


def shared_libraries(elves, roots):
    """The shared libraries that the ELF files ELVES (bytes) need, at any
    depth, from the unpacked packages ROOTS: {initramfs path: bytes},
    with the dynamic loader when any of them is dynamically linked."""
    def find(name):
        for root in roots:
            for d in LIB_DIRS:
                path = os.path.join(root, d, name)
                if os.path.exists(path):
                    with open(os.path.realpath(path), 'rb') as f:
                        return f.read()
        raise AssetError(f'no package provides the shared library {name}')

    libs, todo, dynamic = {}, list(elves), False
    while todo:
        needed, interp = elf_needed(todo.pop())
        dynamic = dynamic or interp or bool(needed)
        for name in needed:
            path = f'{GUEST_LIB_DIR}/{name}'
            if path not in libs:
                libs[path] = find(name)
                todo.append(libs[path])
    if dynamic:
        libs[DYNAMIC_LOADER] = find(os.path.basename(DYNAMIC_LOADER))
    return libs
