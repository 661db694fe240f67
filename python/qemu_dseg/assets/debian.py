"""Debian's packages: downloaded once, recorded and verified; unpacked.

Packages are downloaded once with apt into QEMU_DSEG_CACHE/linux and
recorded: every Package names the Debian package, its version and the
sha256 of the .deb.  A download is checked against the SHA256 that apt's
index gives, and a cached .deb against the record written beside it when
it was downloaded (and against apt's index, when apt knows the version),
so a result can say exactly which packages it ran, and a corrupt cache is
caught.  apt-get waits for dpkg's own lock when another program (an
unattended upgrade) holds it.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import glob
import json
import os
import re
import shutil
import tempfile
from typing import NamedTuple

from .. import config
from .work import AssetError, run, serialised, sha256

KERNEL_METAPACKAGE = 'linux-image-cloud-amd64'
BUSYBOX_PACKAGE = 'busybox-static'
LIBC_PACKAGE = 'libc6'
# How long apt-get waits for dpkg's lock held by another program.
APT_LOCK_TIMEOUT = 600
# Library packages whose names do not start with "lib".
OTHER_LIBRARY_PACKAGES = ('zlib1g',)


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


@serialised
def apt_install(specs):
    """Install Debian packages SPECS (NAME or NAME=VERSION) with apt-get
    (needs root), waiting up to APT_LOCK_TIMEOUT seconds for dpkg's lock
    held by another program; AssetError naming them and apt's errors."""
    run(['apt-get', 'install', '-y', '-q', '--no-install-recommends',
          '-o', f'DPkg::Lock::Timeout={APT_LOCK_TIMEOUT}', *specs],
         APT_LOCK_TIMEOUT + 900, what=f'installing {" ".join(specs)}',
         env={**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'})


def _apt_candidate(name):
    """{'Package', 'Version', 'SHA256', 'Depends'} of the version apt
    would install, or None when apt's index does not know NAME."""
    try:
        out = run(['apt-cache', 'show', '--no-all-versions', name], 60)
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
    digest = sha256(deb)
    if digest != rec.get('sha256') or (want and digest != want):
        return None
    return Package(rec['package'], rec['version'], digest, deb)


@serialised
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
        run(['apt-get', '-q', '-o', 'APT::Sandbox::User=root',
              'download', f'{name}={version}'], cwd=tmp,
             what=f'downloading {name}={version}')
        names = os.listdir(tmp)
        if len(names) != 1:
            raise AssetError(f'apt-get download {name} gave {names}')
        got = os.path.join(tmp, names[0])
        digest = sha256(got)
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


@serialised
def unpack(pkg):
    """The package's files, unpacked once beside its .deb."""
    root = pkg.deb[:-len('.deb')]
    if not os.path.isdir(root):
        tmp = f'{root}.tmp{os.getpid()}'
        shutil.rmtree(tmp, ignore_errors=True)
        run(['dpkg-deb', '-x', pkg.deb, tmp], 300)
        os.replace(tmp, root)
    return root


def kernel_release(root):
    """The release (uname -r) of the unpacked kernel package at ROOT."""
    releases = os.listdir(os.path.join(root, 'lib', 'modules'))
    if len(releases) != 1:
        raise AssetError(f'expected one kernel release in {root}, found '
                         f'{releases}')
    return releases[0]


def _installed_version(name):
    """The version of Debian package NAME that dpkg has installed, or
    None."""
    try:
        out = run(['dpkg-query', '-W', '-f', '${db:Status-Abbrev} '
                    '${Version}', name], 60)
    except AssetError:
        return None
    fields = out.split()
    return fields[1] if len(fields) == 2 and fields[0] == 'ii' else None


@serialised
def kernel_headers(release, version):
    """The kbuild tree of kernel RELEASE at Debian version VERSION:
    Debian's linux-headers-RELEASE package of exactly that version,
    installed with apt-get when it is not (needs root)."""
    name = f'linux-headers-{release}'
    if _installed_version(name) != version:
        apt_install([f'{name}={version}'])
    files = run(['dpkg-query', '-L', name], 60).split('\n')
    symvers = [f for f in files if f.endswith('/Module.symvers')]
    if len(symvers) != 1:
        raise AssetError(f'{name} {version} is no kbuild tree: it has '
                         f'{len(symvers)} Module.symvers files')
    return os.path.dirname(symvers[0])


def _depends(pkg):
    """The package names in the Depends and Pre-Depends of PKG (the
    first of each set of alternatives)."""
    out = run(['dpkg-deb', '-f', pkg.deb, 'Depends', 'Pre-Depends'], 60)
    names = []
    for line in out.splitlines():
        line = line.split(':', 1)[1] if re.match(r'^\S+:', line) else line
        for dep in line.split(','):
            name = re.sub(r'\(.*?\)|:any', '', dep.split('|')[0]).strip()
            if name:
                names.append(name)
    return names


def library_packages(pkgs):
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
