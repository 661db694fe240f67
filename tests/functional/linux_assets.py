"""Linux guest assets for qemu-dseg functional tests.

Boots Debian's unmodified cloud kernel: the kernel and busybox-static
packages are fetched once with apt into a cache, and a small initramfs
(busybox, the requested kernel modules and a test's /init) is written
by hand as a gzip'd newc cpio archive.
"""

import glob
import gzip
import hashlib
import io
import lzma
import os
import pathlib
import re
import shutil
import stat
import struct
import subprocess

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
APPLETS = ("sh mount umount cat grep insmod poweroff dmesg echo ls sleep "
           "uname mkdir dd md5sum sha256sum head tail awk sed sync").split()

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
EPILOGUE = "poweroff -f\n"


def _run(cmd, timeout, text=True, **kwargs):
    """Run cmd and return its stdout; RuntimeError on any failure."""
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=text,
                              timeout=timeout, **kwargs).stdout
    except subprocess.CalledProcessError as e:
        err = str(e.stderr or e.stdout or "").strip().splitlines()
        raise RuntimeError(f"{cmd[0]} failed: {err[-1] if err else e}") from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"{cmd[0]} failed: {e}") from e


def _version_key(path):
    """Sort key that orders embedded numbers numerically (-9 < -56)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _cached_deb(cache, pattern, resolve):
    """Return the cached .deb matching pattern, else apt-get download it."""
    debs = sorted(glob.glob(os.path.join(cache, pattern)), key=_version_key)
    if debs:
        return debs[-1]
    pkg = resolve()
    tmp = os.path.join(cache, f"download.{os.getpid()}")
    os.makedirs(tmp, exist_ok=True)
    try:
        _run(["apt-get", "-q", "-o", "APT::Sandbox::User=root",
              "download", pkg], timeout=600, cwd=tmp)
        names = os.listdir(tmp)
        if len(names) != 1:
            raise RuntimeError(f"apt-get download {pkg} gave {names}")
        name = names[0]
        os.replace(os.path.join(tmp, name), os.path.join(cache, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(cache, name)


def _kernel_package():
    """Concrete kernel package the cloud metapackage depends on."""
    try:
        out = _run(["apt-cache", "depends", KERNEL_METAPACKAGE], timeout=60)
    except RuntimeError:
        out = ""
    m = re.search(r"Depends: (linux-image-\S+-cloud-amd64)$", out, re.M)
    if not m:
        raise RuntimeError(f"apt knows no {KERNEL_METAPACKAGE}; "
                           "run scripts/setup.sh (apt-get update) first")
    return m.group(1)


def _extract(deb):
    """Unpack deb next to itself once; return the tree's path."""
    root = deb[:-len(".deb")]
    if not os.path.isdir(root):
        tmp = f"{root}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        _run(["dpkg-deb", "-x", deb, tmp], timeout=300)
        os.replace(tmp, root)
    return root


def _read_module(path):
    """Plain ELF bytes of a possibly xz- or zstd-compressed module."""
    if path.endswith(".zst"):
        return _run(["zstd", "-dcq", path], timeout=120, text=False)
    data = pathlib.Path(path).read_bytes()
    return lzma.decompress(data) if path.endswith(".xz") else data


def _module_depends(elf):
    """Module names from the 'depends=' entry of an ELF64 .modinfo."""
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    sections = [struct.unpack_from("<I20xQQ", elf, shoff + i * shentsize)
                for i in range(shnum)]
    strtab = sections[shstrndx][1]
    for name, off, size in sections:
        if elf[strtab + name:elf.index(b"\0", strtab + name)] == b".modinfo":
            for entry in elf[off:off + size].split(b"\0"):
                if entry.startswith(b"depends="):
                    return [d for d in entry[8:].decode().split(",") if d]
    return []


def _resolve_modules(root, names):
    """[(file name, .ko bytes)] for names and their deps, deps first.

    The package carries no modules.dep (depmod makes it on install), so
    dependencies are read from each module's own .modinfo section.
    """
    index = {}
    for path in glob.glob(os.path.join(root, "lib/modules/*/kernel/**/*.ko*"),
                          recursive=True):
        base = os.path.basename(path).split(".ko")[0]
        index[base.replace("-", "_")] = path
    ordered, seen = [], set()

    def visit(name):
        key = name.replace("-", "_")
        if key in seen:
            return
        if key not in index:
            raise RuntimeError(f"kernel module {name} not in {root}")
        seen.add(key)
        try:
            elf = _read_module(index[key])
            deps = _module_depends(elf)
        except (OSError, ValueError, lzma.LZMAError, struct.error) as e:
            raise RuntimeError(f"cannot read {index[key]}: {e}") from e
        for dep in deps:
            visit(dep)
        base = os.path.basename(index[key]).split(".ko")[0]
        ordered.append((base + ".ko", elf))

    for name in names:
        visit(name)
    return ordered


def _cpio(entries):
    """newc cpio archive of (path, mode, data, rdev major, rdev minor)."""
    out = io.BytesIO()

    def pad():
        out.write(b"\0" * (-out.tell() % 4))

    for ino, (path, mode, data, major, minor) in enumerate(
            entries + [("TRAILER!!!", 0, b"", 0, 0)], 1):
        name = path.lstrip("/").encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor,
                  len(name), 0)
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name)
        pad()
        out.write(data)
        pad()
    return out.getvalue()


def linux_guest(init_script: str, extra_files: dict[str, bytes] | None = None,
                modules: list[str] = ("kvm-amd",),
                cache_dir: str | None = None) -> tuple[str, str]:
    """Return (vmlinuz, initramfs.cpio.gz) paths for a Debian cloud kernel.

    The initramfs holds busybox with common applets, the requested modules
    and their dependencies under /lib/modules (listed dependencies-first
    in /lib/modules/load-order), init_script as /init and extra_files
    (path -> bytes; executable under /bin).
    """
    cache = os.path.join(cache_dir or os.environ.get("QEMU_DSEG_CACHE") or
                         os.path.expanduser("~/.cache/qemu-dseg"), "linux")
    os.makedirs(cache, exist_ok=True)
    kernel_deb = _cached_deb(cache, "linux-image-*-cloud-amd64_*.deb",
                             _kernel_package)
    busybox_deb = _cached_deb(cache, f"{BUSYBOX_PACKAGE}_*.deb",
                              lambda: BUSYBOX_PACKAGE)
    kernel_root, busybox_root = _extract(kernel_deb), _extract(busybox_deb)
    vmlinuz = glob.glob(os.path.join(kernel_root, "boot/vmlinuz-*"))
    if len(vmlinuz) != 1:
        raise RuntimeError(f"expected one boot/vmlinuz-* in {kernel_root}")

    extra_files = {"/" + p.lstrip("/"): d
                   for p, d in (extra_files or {}).items()}
    digest = hashlib.sha256(repr((
        kernel_deb, busybox_deb, list(modules), init_script,
        sorted((p, hashlib.sha256(d).hexdigest())
               for p, d in extra_files.items()))).encode()).hexdigest()
    initrd = os.path.join(cache, f"initramfs-{digest[:16]}.cpio.gz")
    if os.path.exists(initrd):
        return vmlinuz[0], initrd

    kos = _resolve_modules(kernel_root, modules)
    busybox = pathlib.Path(busybox_root, "bin/busybox").read_bytes()
    files = {"/bin/busybox": (0o755, busybox),
             "/init": (0o755, init_script.encode()),
             "/lib/modules/load-order": (0o644, "".join(
                 n + "\n" for n, _ in kos).encode())}
    files.update({f"/lib/modules/{n}": (0o644, elf) for n, elf in kos})
    files.update({p: (0o755 if p.startswith("/bin/") else 0o644, d)
                  for p, d in extra_files.items()})
    links = {f"/bin/{a}": b"busybox" for a in APPLETS}
    dirs = {"/proc", "/sys", "/dev", "/tmp", "/etc"}
    for path in [*files, *links]:
        while (path := os.path.dirname(path)) != "/":
            dirs.add(path)
    entries = [(d, stat.S_IFDIR | 0o755, b"", 0, 0) for d in sorted(dirs)]
    entries += [("/dev/console", stat.S_IFCHR | 0o600, b"", 5, 1),
                ("/dev/null", stat.S_IFCHR | 0o666, b"", 1, 3)]
    entries += [(p, stat.S_IFLNK | 0o777, t, 0, 0) for p, t in links.items()]
    entries += [(p, stat.S_IFREG | m, d, 0, 0)
                for p, (m, d) in sorted(files.items())]
    tmp = f"{initrd}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(gzip.compress(_cpio(entries), mtime=0))
    os.replace(tmp, initrd)
    return vmlinuz[0], initrd
