"""What preparing assets takes: the error, commands, the lock, digests.

Tests run in parallel and each prepares what it needs, so every function
of the package that downloads, unpacks, installs or builds holds one lock
that all processes share (QEMU_DSEG_CACHE/assets.lock, serialised()): the
first process does the work, the others wait and then find it done.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import contextlib
import fcntl
import functools
import hashlib
import os
import subprocess
import sys

from .. import config


class AssetError(RuntimeError):
    """A package could not be had, or is not what was recorded."""


def run(cmd, timeout=600, text=True, what=None, **kwargs):
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


def serialised(fn):
    """FN runs under the lock of asset preparation."""
    @functools.wraps(fn)
    def locked(*args, **kwargs):
        with _assets_lock():
            return fn(*args, **kwargs)
    return locked


def sha256(path):
    """The sha256 of the file at PATH, in hex."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()
