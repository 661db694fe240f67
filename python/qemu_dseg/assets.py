"""Linux guests from Debian's packages: the kernel, its modules, busybox.

Packages are downloaded once with apt into QEMU_DSEG_CACHE/linux and
recorded: every Package names the Debian package, its version and the
sha256 of the .deb.  A download is checked against the SHA256 that apt's
index gives, and a cached .deb against the record written beside it when
it was downloaded (and against apt's index, when apt knows the version),
so a result can say exactly which packages it ran, and a corrupt cache is
caught.  Initramfs images are built with the standard tools: modprobe
resolves module dependencies (after depmod indexes the unpacked kernel
package) and cpio writes the archive.

Tests run in parallel and each prepares what it needs, so every function
here that downloads, unpacks, installs or builds holds one lock that all
processes share (QEMU_DSEG_CACHE/assets.lock): the first process does the
work, the others wait and then find it done.  apt-get waits for dpkg's
own lock when another program (an unattended upgrade) holds it.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import contextlib
import fcntl
import functools
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from typing import NamedTuple

from . import config

KERNEL_METAPACKAGE = 'linux-image-cloud-amd64'
BUSYBOX_PACKAGE = 'busybox-static'
LIBC_PACKAGE = 'libc6'
# Where the shared libraries of Debian's packages are, and where the
# initramfs has them (the dynamic loader's default directory).
LIB_DIRS = ('lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu')
GUEST_LIB_DIR = '/lib/x86_64-linux-gnu'
DYNAMIC_LOADER = '/lib64/ld-linux-x86-64.so.2'
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
# How long apt-get waits for dpkg's lock held by another program.
APT_LOCK_TIMEOUT = 600


class AssetError(RuntimeError):
    """A package could not be had, or is not what was recorded."""


class Package(NamedTuple):
    """A Debian package as downloaded: what it is and where it is."""
    name: str
    version: str
    sha256: str
    deb: str                # the .deb in the cache

    def record(self):
        """The JSON-ready record of the package (no local paths)."""
        return {'package': self.name, 'version': self.version,
                'sha256': self.sha256}

    def __str__(self):
        return f'{self.name} {self.version} sha256 {self.sha256}'


class LinuxImage(NamedTuple):
    """A bootable Linux guest: bzImage, initramfs and their packages."""
    kernel: str
    initrd: str
    packages: tuple

    def records(self):
        return [p.record() for p in self.packages]


def _run(cmd, timeout=600, text=True, what=None, **kwargs):
    """Run CMD and return its stdout; AssetError on any failure, saying
    WHAT failed (default: CMD's program) and why: the command's error
    lines (apt's "E:" lines), else its last line of output."""
    what = what or cmd[0]
    try:
        return subprocess.run(cmd, check=True, capture_output=True,
                              text=text, timeout=timeout, **kwargs).stdout
    except subprocess.CalledProcessError as e:
        out = e.stderr or e.stdout or ''
        if isinstance(out, bytes):
            out = out.decode(errors='replace')
        lines = out.strip().splitlines()
        errors = [line for line in lines if line.startswith('E:')]
        why = '; '.join(errors or lines[-1:]) or f'exit status {e.returncode}'
        raise AssetError(f'{what} failed: {why}') from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AssetError(f'{what} failed: {e}') from e


_lock_depth = 0


@contextlib.contextmanager
def _assets_lock():
    """Hold the lock of asset preparation (reentrant in one process)."""
    global _lock_depth
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    os.makedirs(config.CACHE, exist_ok=True)
    path = os.path.join(config.CACHE, 'assets.lock')
    with open(path, 'a') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f'# waiting for another process that prepares assets '
                  f'(lock {path})', file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0


def _serialised(fn):
    """FN runs under the lock of asset preparation."""
    @functools.wraps(fn)
    def locked(*args, **kwargs):
        with _assets_lock():
            return fn(*args, **kwargs)
    return locked


@_serialised
def apt_install(specs):
    """Install Debian packages SPECS (NAME or NAME=VERSION) with apt-get
    (needs root), waiting up to APT_LOCK_TIMEOUT seconds for dpkg's lock
    held by another program; AssetError naming them and apt's errors."""
    _run(['apt-get', 'install', '-y', '-q', '--no-install-recommends',
          '-o', f'DPkg::Lock::Timeout={APT_LOCK_TIMEOUT}', *specs],
         APT_LOCK_TIMEOUT + 900, what=f'installing {" ".join(specs)}',
         env={**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'})


def _sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _apt_candidate(name):
    """{'Package', 'Version', 'SHA256', 'Depends'} of the version apt
    would install, or None when apt's index does not know NAME."""
    try:
        out = _run(['apt-cache', 'show', '--no-all-versions', name], 60)
    except AssetError:
        return None
    fields = dict(re.findall(r'^([A-Za-z0-9-]+): (.*)$',
                             out.split('\n\n')[0], re.M))
    return fields if 'Version' in fields and 'SHA256' in fields else None


def _deb_name(name, version):
    return f"{name}_{version.replace(':', '%3a')}_"


def _version_key(path):
    """Sort key that orders embedded numbers numerically (-9 < -56)."""
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', path)]


def _verified(deb, want=None):
    """The Package of cached DEB, if its bytes match its record (and
    WANT, apt's SHA256 of that version, when given); else None."""
    try:
        with open(deb + '.json') as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    digest = _sha256(deb)
    if digest != rec.get('sha256') or (want and digest != want):
        return None
    return Package(rec['package'], rec['version'], digest, deb)


@_serialised
def fetch(name, cache=None):
    """The Package NAME at apt's candidate version, from the cache or
    downloaded with apt-get; offline, the newest verified cached one."""
    cache = cache or os.path.join(config.CACHE, 'linux')
    os.makedirs(cache, exist_ok=True)
    apt = _apt_candidate(name)
    if apt is None:
        cached = sorted(glob.glob(os.path.join(cache, f'{name}_*.deb')),
                        key=_version_key)
        for deb in reversed(cached):
            pkg = _verified(deb)
            if pkg:
                return pkg
        raise AssetError(f'apt knows no {name} and the cache has no '
                         f'verified copy; run scripts/setup.sh '
                         f'(apt-get update) first')
    version, want = apt['Version'], apt['SHA256']
    for deb in glob.glob(os.path.join(cache, _deb_name(name, version) +
                                      '*.deb')):
        pkg = _verified(deb, want)
        if pkg:
            return pkg
        # Corrupt or unrecorded: fetch it again, and unpack it anew.
        os.unlink(deb)
        shutil.rmtree(deb[:-len('.deb')], ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        _run(['apt-get', '-q', '-o', 'APT::Sandbox::User=root',
              'download', f'{name}={version}'], cwd=tmp,
             what=f'downloading {name}={version}')
        names = os.listdir(tmp)
        if len(names) != 1:
            raise AssetError(f'apt-get download {name} gave {names}')
        got = os.path.join(tmp, names[0])
        digest = _sha256(got)
        if digest != want:
            raise AssetError(f'{names[0]}: sha256 {digest}, but apt\'s '
                             f'index says {want}')
        deb = os.path.join(cache, names[0])
        with open(deb + '.json', 'w') as f:
            json.dump({'package': name, 'version': version,
                       'sha256': digest}, f)
        os.replace(got, deb)
    return Package(name, version, digest, deb)


def kernel_package():
    """The concrete kernel package that Debian's cloud metapackage
    depends on now (e.g. linux-image-6.1.0-57-cloud-amd64)."""
    apt = _apt_candidate(KERNEL_METAPACKAGE)
    m = re.search(r'(linux-image-\S+-cloud-amd64)', (apt or {}).get(
        'Depends', ''))
    if m:
        return m.group(1)
    cached = sorted(glob.glob(os.path.join(
        config.CACHE, 'linux', 'linux-image-*-cloud-amd64_*.deb')),
        key=_version_key)
    if cached:
        return os.path.basename(cached[-1]).split('_')[0]
    raise AssetError(f'apt knows no {KERNEL_METAPACKAGE}; run '
                     f'scripts/setup.sh (apt-get update) first')


@_serialised
def unpack(pkg):
    """The package's files, unpacked once beside its .deb."""
    root = pkg.deb[:-len('.deb')]
    if not os.path.isdir(root):
        tmp = f'{root}.tmp{os.getpid()}'
        shutil.rmtree(tmp, ignore_errors=True)
        _run(['dpkg-deb', '-x', pkg.deb, tmp], 300)
        os.replace(tmp, root)
    return root


def kernel_release(root):
    """The release (uname -r) of the unpacked kernel package at ROOT."""
    releases = os.listdir(os.path.join(root, 'lib', 'modules'))
    if len(releases) != 1:
        raise AssetError(f'expected one kernel release in {root}, found '
                         f'{releases}')
    return releases[0]


@_serialised
def module_files(root, names):
    """The module files of NAMES and their dependencies in load order,
    as modprobe resolves them in the unpacked kernel package ROOT."""
    release = kernel_release(root)
    if not os.path.exists(os.path.join(root, 'lib', 'modules', release,
                                       'modules.dep')):
        _run(['depmod', '-b', root, release], 300)
    files = []
    for name in names:
        out = _run(['modprobe', '-d', root, '-S', release,
                    '--show-depends', name], 60)
        for path in re.findall(r'^insmod (\S+)', out, re.M):
            if path not in files:
                files.append(path)
    return files


def _installed_version(name):
    """The version of Debian package NAME that dpkg has installed, or
    None."""
    try:
        out = _run(['dpkg-query', '-W', '-f', '${db:Status-Abbrev} '
                    '${Version}', name], 60)
    except AssetError:
        return None
    fields = out.split()
    return fields[1] if len(fields) == 2 and fields[0] == 'ii' else None


@_serialised
def kernel_headers(release, version):
    """The kbuild tree of kernel RELEASE at Debian version VERSION:
    Debian's linux-headers-RELEASE package of exactly that version,
    installed with apt-get when it is not (needs root)."""
    name = f'linux-headers-{release}'
    if _installed_version(name) != version:
        apt_install([f'{name}={version}'])
    files = _run(['dpkg-query', '-L', name], 60).split('\n')
    symvers = [f for f in files if f.endswith('/Module.symvers')]
    if len(symvers) != 1:
        raise AssetError(f'{name} {version} is no kbuild tree: it has '
                         f'{len(symvers)} Module.symvers files')
    return os.path.dirname(symvers[0])


def _tree_digest(src):
    """The sha256 of the files in directory SRC: names and contents."""
    h = hashlib.sha256()
    for d, _, names in sorted(os.walk(src)):
        for n in sorted(names):
            path = os.path.join(d, n)
            h.update(os.path.relpath(path, src).encode() + b'\0')
            h.update(_sha256(path).encode())
    return h.hexdigest()


@_serialised
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
    _run(['make', '-C', kdir, f'M={os.path.join(tmp, name)}', 'modules'],
         600, what=f'building {os.path.join(tree, name)} against {kdir}')
    kos = glob.glob(os.path.join(tmp, name, '*.ko'))
    if len(kos) != 1:
        raise AssetError(f'building {os.path.join(tree, name)} gave {kos}')
    vermagic = _run(['modinfo', '-F', 'vermagic', kos[0]], 60).split()
    if vermagic[:1] != [release]:
        raise AssetError(f'{kos[0]} is built for {vermagic[:1]}, not '
                         f'{release}')
    for old in glob.glob(os.path.join(out, f'{release}-*')):
        if old != tmp:
            shutil.rmtree(old)
    os.replace(tmp, work)
    return os.path.join(work, name, os.path.basename(kos[0]))


def _module_bytes(path):
    """The plain ELF of a module file, decompressed if need be."""
    if path.endswith('.xz'):
        return _run(['xz', '-dc', path], 120, text=False)
    if path.endswith('.zst'):
        return _run(['zstd', '-dcq', path], 120, text=False)
    with open(path, 'rb') as f:
        return f.read()


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
        archive = _run(['cpio', '--quiet', '-o', '-H', 'newc', '-R', '0:0',
                        '--reproducible'], 300, text=False, cwd=stage,
                       input='\n'.join(names).encode())
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(gzip.compress(archive, mtime=0))
    os.replace(tmp, path)


def _depends(pkg):
    """The package names in the Depends and Pre-Depends of PKG (the
    first of each set of alternatives)."""
    out = _run(['dpkg-deb', '-f', pkg.deb, 'Depends', 'Pre-Depends'], 60)
    names = []
    for line in out.splitlines():
        line = line.split(':', 1)[1] if re.match(r'^\S+:', line) else line
        for dep in line.split(','):
            name = re.sub(r'\(.*?\)|:any', '', dep.split('|')[0]).strip()
            if name:
                names.append(name)
    return names


# Library packages whose names do not start with "lib".
OTHER_LIBRARY_PACKAGES = ('zlib1g',)


def _library_packages(pkgs):
    """libc6 and the library packages (lib*, OTHER_LIBRARY_PACKAGES) that
    PKGS depend on, at any depth: where the shared libraries of their
    programs come from."""
    found = {LIBC_PACKAGE: fetch(LIBC_PACKAGE)}
    todo = list(pkgs)
    while todo:
        for name in _depends(todo.pop()):
            if (name.startswith('lib') or name in OTHER_LIBRARY_PACKAGES) \
                    and name not in found:
                found[name] = fetch(name)
                todo.append(found[name])
    return list(found.values())


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


@_serialised
def linux_guest(init_script, extra_files=None, modules=('kvm-amd',),
                programs=None):
    """A LinuxImage of Debian's cloud kernel with a busybox initramfs.

    The initramfs holds busybox with APPLETS, MODULES and their
    dependencies under /lib/modules (in load order in
    /lib/modules/load-order), INIT_SCRIPT as /init, EXTRA_FILES
    (path -> bytes; executable under /bin and /lib) and PROGRAMS (path ->
    (Debian package, path in it)), unmodified programs from Debian's
    packages.  Every dynamically linked file among them gets the shared
    libraries it needs, from libc6 and the library packages that the
    programs' packages depend on, and the dynamic loader.  Built once per
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
        libpkgs = _library_packages(list(program_pkgs.values()))
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

    kos = [(os.path.basename(p).split('.ko')[0] + '.ko', _module_bytes(p))
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
                    links={f'/bin/{a}': 'busybox' for a in APPLETS},
                    dirs=('/proc', '/sys', '/dev', '/tmp', '/etc'))
    return image(initrd)


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
