"""Functional test harness of qemu-dseg.

Starts the fork with a guest, talks QMP through QEMU's own python/qemu.qmp
package (taken from the fetched source tree), captures the serial console
in a file and decodes the guest's isa-debug-exit status.  Every wait has a
timeout; a failure message carries the tail of the console.

Environment (set by meson; defaults suit a build in ./build):
  QEMU_DSEG_QEMU   the qemu-system-x86_64 binary under test
  QEMU_DSEG_SRC    the patched QEMU source tree (for python/qemu)
  QEMU_DSEG_GUESTS the directory holding the test guest images

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
QEMU = os.environ.get('QEMU_DSEG_QEMU',
                      os.path.join(_REPO, 'build/qemu/qemu-system-x86_64'))
QEMU_SRC = os.environ.get('QEMU_DSEG_SRC', os.path.join(_REPO, 'build/qemu-src'))
GUESTS = os.environ.get('QEMU_DSEG_GUESTS',
                        os.path.join(_REPO, 'build/tests/guest'))

sys.path.insert(0, os.path.join(QEMU_SRC, 'python'))
from qemu.qmp.legacy import QEMUMonitorProtocol  # noqa: E402

# Port and width of the isa-debug-exit device the test guests write to.
DEBUG_EXIT_ARGS = ['-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04']
# Guest status that lib/libguest.h reports for an unexpected exception.
GUEST_EXIT_FAULT = 0x7f


def guest_image(name):
    """Path of a test guest built from tests/guest/NAME.c."""
    path = os.path.join(GUESTS, name + '.bin')
    if not os.path.exists(path):
        raise FileNotFoundError(f'test guest {path} is not built')
    return path


def debug_exit_status(returncode):
    """The value a guest wrote to isa-debug-exit, or None.

    QEMU exits with (value << 1) | 1, so an even return code (including a
    normal shutdown's 0) means the guest never reached the device.
    """
    if returncode is None or returncode <= 0 or not returncode & 1:
        return None
    return returncode >> 1


# A test checkpoint line of the guest console.
_CHECKPOINT = re.compile(r'^CHECKPOINT (\S+)\r?\n', re.M)


class MachineError(AssertionError):
    """A run went wrong; the message includes the console tail."""


class Machine:
    """One run of qemu-system-x86_64 under test.

    Use as a context manager: the process is always reaped, even when a
    test fails half-way.
    """

    def __init__(self, args, name='vm', console_tail=30):
        self.args = list(args)
        self.name = name
        self.console_tail = console_tail
        self._dir = tempfile.mkdtemp(prefix=f'qemu-dseg-{name}-')
        self.console_path = os.path.join(self._dir, 'console.log')
        self._qmp = None
        self._proc = None
        self.returncode = None

    def launch(self, qmp=True):
        cmd = [QEMU, '-nodefaults', '-display', 'none', '-no-reboot',
               '-chardev', f'file,id=con,path={self.console_path}',
               '-serial', 'chardev:con']
        if qmp:
            sock = os.path.join(self._dir, 'qmp.sock')
            self._qmp = QEMUMonitorProtocol(sock, server=True,
                                            nickname=self.name)
            cmd += ['-chardev', f'socket,id=qmp,path={sock}',
                    '-mon', 'chardev=qmp,mode=control']
        cmd += self.args
        self.cmdline = cmd
        self._stderr = open(os.path.join(self._dir, 'stderr.log'), 'w+')
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                      stdout=self._stderr,
                                      stderr=subprocess.STDOUT)
        if qmp:
            try:
                self._qmp.accept(timeout=30)
            except Exception as e:
                self._fail(f'QMP connection failed: {e!r}')
            self._qmp.settimeout(30)
        return self

    def qmp(self, command, **args):
        """Run a QMP command and return its result; raise on QMP error."""
        return self._qmp.cmd(command, **args)

    def qmp_raw(self, command, **args):
        """Run a QMP command and return the whole response message."""
        return self._qmp.cmd_raw(command, args or None)

    def console(self):
        try:
            with open(self.console_path, errors='replace') as f:
                return f.read().replace('\r\n', '\n')
        except FileNotFoundError:
            return ''

    def wait_console(self, pattern, timeout):
        """Wait until the console matches PATTERN; return the match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.console(), re.M)
            if m:
                return m
            if self._proc.poll() is not None:
                self.returncode = self._proc.returncode
                self._fail(f'QEMU exited ({self.returncode}) before the '
                           f'console showed {pattern!r}')
            if time.monotonic() > deadline:
                self._fail(f'timed out after {timeout} s waiting for '
                           f'{pattern!r} on the console')
            time.sleep(0.2)

    def wait(self, timeout):
        """Wait for QEMU to exit by itself; return its exit code."""
        try:
            self.returncode = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self._fail(f'timed out after {timeout} s waiting for QEMU to exit')
        return self.returncode

    def wait_guest_exit(self, timeout):
        """Wait for the guest's isa-debug-exit write; return its value."""
        rc = self.wait(timeout)
        status = debug_exit_status(rc)
        if status is None:
            self._fail(f'QEMU exited with {rc}: the guest did not write to '
                       f'isa-debug-exit')
        return status

    def vcpu_halted(self):
        """Whether vCPU 0 is halted (HMP 'info registers' shows HLT=1)."""
        regs = self.qmp('human-monitor-command',
                        **{'command-line': 'info registers'})
        return 'HLT=1' in regs

    def serve_checkpoints(self, at_checkpoint, timeout):
        """Serve the test checkpoints of the guest until it exits.

        At each "CHECKPOINT <name>" line (tests/guest/lib/libguest.h): wait
        until the vCPU halts, call AT_CHECKPOINT(name), then wake the
        guest with an NMI.  Returns the guest's isa-debug-exit status.
        """
        deadline = time.monotonic() + timeout
        served = 0
        while True:
            names = _CHECKPOINT.findall(self.console())
            if served < len(names):
                halt_deadline = time.monotonic() + 10
                while not self.vcpu_halted():
                    if time.monotonic() > halt_deadline:
                        self._fail(f'the vCPU did not halt at checkpoint '
                                   f'{names[served]}')
                    time.sleep(0.01)
                at_checkpoint(names[served])
                served += 1
                self.qmp('inject-nmi')
                continue
            if self._proc.poll() is not None:
                return self.wait_guest_exit(0)
            if time.monotonic() > deadline:
                self._fail(f'timed out after {timeout} s with {served} '
                           f'checkpoints served')
            time.sleep(0.02)

    def quit(self, timeout=30):
        """Make QEMU exit with QMP quit; return its exit code."""
        self.qmp('quit')
        returncode = self.wait(timeout)
        self._close_qmp()
        return returncode

    def _close_qmp(self):
        if self._qmp:
            try:
                self._qmp.close()
            except EOFError:
                pass                    # QEMU exited and hung up first
            self._qmp = None

    def kill(self):
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self.returncode = self._proc.wait()

    def output(self):
        """What QEMU itself printed so far (stdout and stderr)."""
        # A file of our own: QEMU shares the offset of self._stderr.
        with open(self._stderr.name, errors='replace') as f:
            return f.read()

    def describe(self):
        """The console tail and QEMU's own output, for failure messages."""
        lines = self.console().splitlines()[-self.console_tail:]
        err = self.output().strip()
        text = '\n--- console tail ---\n' + '\n'.join(lines)
        if err:
            text += '\n--- qemu stderr ---\n' + err
        return text

    def _fail(self, msg):
        self.kill()
        raise MachineError(f'{self.name}: {msg}{self.describe()}')

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        self._close_qmp()
        if self._proc:
            self._stderr.close()
        if not os.environ.get('QEMU_DSEG_KEEP_LOGS'):
            shutil.rmtree(self._dir, ignore_errors=True)


def guest_args(name, append='', extra_args=(), machine='q35', cpu='max',
               memory='256M'):
    """QEMU arguments that run test guest NAME."""
    args = ['-M', machine, '-cpu', cpu, '-m', memory,
            '-kernel', guest_image(name), *DEBUG_EXIT_ARGS, *extra_args]
    if append:
        args += ['-append', append]
    return args


def run_guest(name, append='', extra_args=(), timeout=60, machine='q35',
              cpu='max', memory='256M'):
    """Run test guest NAME to its end; return (status, console)."""
    args = guest_args(name, append, extra_args, machine, cpu, memory)
    with Machine(args, name=name) as vm:
        vm.launch(qmp=False)
        status = vm.wait_guest_exit(timeout)
        return status, vm.console()


# --- guests that report TAP (tests/guest/lib/tap.h) --------------------------

_TAP_PLAN = re.compile(r'^1\.\.(\d+)$', re.M)
_TAP_RESULT = re.compile(r'^(not )?ok (\d+)(?: - (.*))?$', re.M)


def guest_tap(console):
    """The TAP output of a guest: (plan or None, [(passed, number, text)])."""
    plans = _TAP_PLAN.findall(console)
    results = [(not m.group(1), int(m.group(2)), m.group(3) or '')
               for m in _TAP_RESULT.finditer(console)]
    return (int(plans[0]) if len(plans) == 1 else None), results


def assert_guest_passed(test, status, console):
    """Fail TEST unless the guest met its TAP plan with every check ok."""
    plan, results = guest_tap(console)
    tail = '\n--- console ---\n' + console[-4000:]
    failed = [f'{n} - {text}' for passed, n, text in results if not passed]
    test.assertEqual(failed, [], 'guest checks failed' + tail)
    test.assertIsNotNone(plan, 'guest printed no single TAP plan' + tail)
    test.assertEqual([n for _, n, _ in results], list(range(1, plan + 1)),
                     'guest did not run its planned checks' + tail)
    test.assertEqual(status, 0, 'guest exit status' + tail)


def run_guest_windows(name, append='', cpu='max,+dseg', extra_args=(),
                      timeout=60, memory='256M'):
    """Run guest NAME, reading query-dseg of vCPU 0 at each checkpoint.

    After each read the counters are reset, so the counters read at
    checkpoint N are those of the window since checkpoint N-1.  Returns
    (status, console, {checkpoint name: DsegCpuInfo}).
    """
    windows = {}

    def at_checkpoint(cp):
        windows[cp] = vm.qmp('query-dseg')[0]
        vm.qmp('dseg-reset-counters')

    args = guest_args(name, append, extra_args, cpu=cpu, memory=memory)
    with Machine(args, name=name) as vm:
        vm.launch()
        status = vm.serve_checkpoints(at_checkpoint, timeout)
        return status, vm.console(), windows


def main():
    """Run the calling module's unittest cases with TAP output."""
    import pycotap
    unittest.main(testRunner=pycotap.TAPTestRunner(
        message_log=pycotap.LogMode.LogToError,
        test_output_log=pycotap.LogMode.LogToError), verbosity=0)
