#!/usr/bin/env python3
"""Asset preparation from parallel tests, on a machine that lacks it.

Several processes at once ask qemu_dseg.assets for kernel headers that
are not installed and for a package that is not cached, as the Linux
tests do when meson runs them in parallel on a new machine.  apt-get,
apt-cache and dpkg-query are stand-ins (first on PATH, state in a
scratch directory) that behave as Debian's do where it matters here:
apt-get install takes dpkg's frontend lock and fails at once when it is
held, unless given DPkg::Lock::Timeout, with which it waits (apt 2.6,
measured); a download writes the .deb into the current directory.
Nothing is installed on the machine.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

from qemu_dseg import testing

RELEASE = '0.0.0-qemu-dseg-test'
HEADERS = f'linux-headers-{RELEASE}'
PACKAGE = 'qemu-dseg-test-data'
VERSION = '1.0'
WORKERS = 4

APT_GET = r'''#!/bin/sh
# apt-get install and download, logged to $STATE/log.
state=$FAKE_APT_STATE timeout= cmd= specs=
while [ $# -gt 0 ]; do
    case $1 in
    -o) case $2 in DPkg::Lock::Timeout=*) timeout=${2#*=} ;; esac; shift 2 ;;
    -*) shift ;;
    install|download) cmd=$1; shift ;;
    *) specs="$specs $1"; shift ;;
    esac
done
case $cmd in
install)
    exec 9>"$state/lock-frontend"
    if [ -n "$timeout" ]; then
        flock -w "$timeout" 9
    else
        flock -n 9
    fi || {
        echo "E: Could not get lock $state/lock-frontend"
        echo "E: Unable to acquire the dpkg frontend lock ($state/lock-frontend), is another process using it?"
        exit 100
    } >&2
    if [ -e "$state/broken" ]; then
        echo "Reading package lists..."
        for s in $specs; do
            echo "E: Version '${s#*=}' for '${s%%=*}' was not found"
        done >&2
        exit 100
    fi
    sleep 1
    for s in $specs; do
        echo "${s#*=}" > "$state/installed-${s%%=*}"
        mkdir -p "$state/usr/src/${s%%=*}"
        : > "$state/usr/src/${s%%=*}/Module.symvers"
    done
    ;;
download)
    sleep 0.5
    for s in $specs; do
        cp "$state/${s%%=*}.deb" "./${s%%=*}_${s#*=}_all.deb"
    done
    ;;
esac
echo "$cmd$specs" >> "$state/log"
'''

DPKG_QUERY = r'''#!/bin/sh
# dpkg-query -W (status and version) and -L (files) of installed packages.
state=$FAKE_APT_STATE
for name; do :; done
[ -e "$state/installed-$name" ] || {
    echo "dpkg-query: no packages found matching $name" >&2; exit 1; }
case $1 in
-W) echo "ii  $(cat "$state/installed-$name")" ;;
-L) echo "$state/usr/src"; echo "$state/usr/src/$name"
    echo "$state/usr/src/$name/Module.symvers" ;;
esac
'''

APT_CACHE = r'''#!/bin/sh
# apt-cache show of the packages in $STATE, each NAME.deb at VERSION.
state=$FAKE_APT_STATE
for name; do :; done
[ -e "$state/$name.deb" ] || {
    echo "E: No packages found" >&2; exit 100; }
printf 'Package: %s\nVersion: %s\nSHA256: %s\n\n' "$name" "$FAKE_VERSION" \
    "$(sha256sum "$state/$name.deb" | cut -d' ' -f1)"
'''

# Run by each worker: one asset call, its result or error on stdout.
WORKER = '''
import sys
from qemu_dseg import assets
try:
    if sys.argv[1] == 'headers':
        print(assets.kernel_headers(sys.argv[2], sys.argv[3]))
    else:
        pkg = assets.fetch(sys.argv[2])
        root = assets.unpack(pkg)
        with open(root + '/usr/share/qemu-dseg-test/data') as f:
            print(pkg.sha256, f.read().strip())
except assets.AssetError as e:
    print(f'AssetError: {e}')
'''


class AssetsTest(testing.TestCase):

    def setUp(self):
        super().setUp()
        self.state = os.path.join(self.logs, 'apt')
        bindir = os.path.join(self.logs, 'bin')
        os.makedirs(self.state)
        os.makedirs(bindir)
        for name, text in (('apt-get', APT_GET), ('apt-cache', APT_CACHE),
                           ('dpkg-query', DPKG_QUERY)):
            path = os.path.join(bindir, name)
            with open(path, 'w') as f:
                f.write(text)
            os.chmod(path, 0o755)
        self.env = {**os.environ,
                    'PATH': bindir + os.pathsep + os.environ['PATH'],
                    'FAKE_APT_STATE': self.state,
                    'FAKE_VERSION': VERSION,
                    'QEMU_DSEG_CACHE': os.path.join(self.logs, 'cache')}

    def start(self, *args):
        return subprocess.Popen(
            [sys.executable, '-c', WORKER, *args], env=self.env,
            stdout=subprocess.PIPE, text=True)

    def in_parallel(self, *args):
        """WORKERS processes at once; their outputs."""
        procs = [self.start(*args) for _ in range(WORKERS)]
        return [p.communicate(timeout=120)[0].strip() for p in procs]

    def log(self):
        with open(os.path.join(self.state, 'log')) as f:
            return f.read().splitlines()

    def test_headers_installed_once(self):
        """Parallel tests that need absent headers install them once."""
        kdir = os.path.join(self.state, 'usr', 'src', HEADERS)
        out = self.in_parallel('headers', RELEASE, VERSION)
        self.assertEqual(out, [kdir] * WORKERS)
        self.assertEqual(self.log(), [f'install {HEADERS}={VERSION}'])

    def test_waits_for_dpkg_lock(self):
        """Another program holding dpkg's lock delays the install."""
        with open(os.path.join(self.state, 'lock-frontend'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            proc = self.start('headers', RELEASE, VERSION)
            time.sleep(2)
            self.assertIsNone(proc.poll(), 'apt-get did not wait')
        out = proc.communicate(timeout=60)[0].strip()
        self.assertEqual(out, os.path.join(self.state, 'usr', 'src',
                                           HEADERS))

    def test_install_failure_says_why(self):
        """A failed install names the package and apt's error."""
        open(os.path.join(self.state, 'broken'), 'w').close()
        out = self.in_parallel('headers', RELEASE, VERSION)
        self.assertEqual(out, [
            f'AssetError: installing {HEADERS}={VERSION} failed: '
            f"E: Version '{VERSION}' for '{HEADERS}' was not found"] *
            WORKERS)

    def test_package_fetched_once(self):
        """Parallel tests that need an uncached package download and
        unpack it once, and all get the same verified package."""
        with tempfile.TemporaryDirectory() as tree:
            data = os.path.join(tree, 'usr', 'share', 'qemu-dseg-test')
            os.makedirs(data)
            with open(os.path.join(data, 'data'), 'w') as f:
                f.write('qemu-dseg asset test\n')
            os.makedirs(os.path.join(tree, 'DEBIAN'))
            with open(os.path.join(tree, 'DEBIAN', 'control'), 'w') as f:
                f.write(f'Package: {PACKAGE}\nVersion: {VERSION}\n'
                        f'Architecture: all\nMaintainer: qemu-dseg\n'
                        f'Description: test data\n')
            deb = os.path.join(self.state, f'{PACKAGE}.deb')
            subprocess.run(['dpkg-deb', '--build', '--root-owner-group',
                            tree, deb], check=True, capture_output=True)
        with open(deb, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        out = self.in_parallel('fetch', PACKAGE)
        self.assertEqual(out, [f'{digest} qemu-dseg asset test'] * WORKERS)
        self.assertEqual(self.log(), [f'download {PACKAGE}={VERSION}'])
        shutil.rmtree(self.env['QEMU_DSEG_CACHE'])


if __name__ == '__main__':
    testing.main()
