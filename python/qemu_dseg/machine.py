"""One run of the fork (or of upstream QEMU), built on QEMU's QEMUMachine.

Machine adds what qemu-dseg's tests and experiments need to QEMU's own
python/qemu/machine: the serial console in a log file beside QEMU's own
output log, waits on that console that always time out, the guest-side
test checkpoints of tests/guest/lib/libguest.h, resuming from them,
counter windows (query-dseg, then dseg-reset-counters), control lines,
and failure messages that carry the console tail and the paths of the
logs.

Logs go to the log directory, wherever the checkout lies; UNIX sockets
(the gdbstub, control lines) go to QEMUMachine's private temp_dir in
/var/tmp, because a socket's path must fit in 108 bytes.  QMP uses a
socket pair and has no path.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import re
import socket
import time
from typing import NamedTuple, Optional

from qemu.machine import QEMUMachine
from qemu.machine.machine import AbnormalShutdown, VMLaunchFailure

from . import config

# A test checkpoint line of the guest console (tests/guest/lib/libguest.h).
_CHECKPOINT = re.compile(r'^CHECKPOINT (\S+)\r?\n', re.M)
# How long a vCPU may take to halt after printing its checkpoint.
HALT_TIMEOUT = 10


class MachineError(AssertionError):
    """A run went wrong; the message has the console tail and log paths."""


class Machine(QEMUMachine):
    """qemu-system-x86_64 with ARGS, its console in LOG_DIR/NAME-console.log.

    BINARY defaults to the fork (config.QEMU).  QEMU's own output goes to
    LOG_DIR/NAME.log (QEMUMachine's log); both files stay after the run.
    Use it as a context manager: QEMU is always reaped, and killed at
    once when the block ends with an exception.
    """

    def __init__(self, args, name='vm', binary=None, log_dir=None,
                 qmp=True, console_tail=30):
        log_dir = log_dir or os.path.join(config.LOG_DIR, 'machines')
        os.makedirs(log_dir, exist_ok=True)
        super().__init__(binary or config.QEMU, name=name, log_dir=log_dir)
        self.name = name
        self.console_tail = console_tail
        self.console_path = os.path.join(log_dir, f'{name}-console.log')
        self.output_path = os.path.join(log_dir, f'{name}.log')
        self.set_qmp_monitor(qmp)
        self.add_args('-nodefaults', '-no-reboot',
                      '-chardev', f'file,id=con,path={self.console_path}',
                      '-serial', 'chardev:con', *args)
        self.control_lines = []

    def __exit__(self, exc_type, exc_val, exc_tb):
        try:
            if exc_type is None:
                self.shutdown()
            else:
                self.kill()
        finally:
            for line in self.control_lines:
                line.close()

    def socket_path(self, name):
        """The path of a UNIX socket NAME of this run, in the machine's
        private temp_dir (removed at shutdown): short, whatever the
        checkout's path.  Call before launch()."""
        return os.path.join(self.temp_dir, name)

    def gdbstub(self):
        """Add a gdbstub on a UNIX socket (server, no wait); return the
        socket's path, for gdb's `target remote`.  Call before
        launch()."""
        path = self.socket_path('gdb.sock')
        self.add_args('-gdb', f'unix:{path},server=on,wait=off')
        return path

    def control_line(self):
        """Add the guest's next serial port (ttyS1 after the console) as
        a ControlLine; connect() it after launch()."""
        n = len(self.control_lines)
        line = ControlLine(self.socket_path(f'ctl{n}.sock'))
        self.add_args('-chardev', f'socket,id=ctl{n},path={line.path},'
                      f'server=on,wait=off', '-serial', f'chardev:ctl{n}')
        self.control_lines.append(line)
        return line

    def launch(self):
        try:
            super().launch()
        except VMLaunchFailure as e:
            raise MachineError(f'{self.name}: QEMU did not start: '
                               f'{e}{self.describe()}') from e
        return self

    # --- what the machine printed -------------------------------------

    def console(self):
        """The serial console so far, with \\n line ends."""
        try:
            with open(self.console_path, errors='replace') as f:
                return f.read().replace('\r\n', '\n')
        except FileNotFoundError:
            return ''

    def output(self):
        """What QEMU itself printed so far (stdout and stderr)."""
        try:
            with open(self.output_path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def describe(self):
        """The console tail, QEMU's output and the logs, for messages."""
        lines = self.console().splitlines()[-self.console_tail:]
        text = '\n--- console tail ---\n' + '\n'.join(lines)
        err = self.output().strip()
        if err:
            text += '\n--- qemu output ---\n' + err
        return (text + f'\n--- logs: {self.console_path}, '
                f'{self.output_path}')

    def fail(self, msg):
        """Kill QEMU and raise MachineError(MSG) with the description."""
        self.kill()
        raise MachineError(f'{self.name}: {msg}{self.describe()}')

    # --- waiting ------------------------------------------------------

    def _check_alive(self, what):
        if not self.is_running():
            self.fail(f'QEMU exited ({self.exitcode()}) {what}')

    def wait_console(self, pattern, timeout, poll=0.2):
        """Wait until the console matches PATTERN; return the match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.console(), re.M)
            if m:
                return m
            self._check_alive(f'before the console showed {pattern!r}')
            if time.monotonic() > deadline:
                self.fail(f'timed out after {timeout} s waiting for '
                          f'{pattern!r} on the console')
            time.sleep(poll)

    def wait_exit(self, timeout):
        """Wait for QEMU to exit by itself; return its exit code."""
        try:
            self.wait(timeout)
        except AbnormalShutdown:
            self.fail(f'timed out after {timeout} s waiting for QEMU to '
                      f'exit')
        return self.exitcode()

    def wait_guest_exit(self, timeout):
        """Wait for the guest's isa-debug-exit write; return its value."""
        rc = self.wait_exit(timeout)
        status = debug_exit_status(rc)
        if status is None:
            self.fail(f'QEMU exited with {rc}: the guest did not write to '
                      f'isa-debug-exit')
        return status

    def quit(self, timeout=30):
        """Make QEMU exit with QMP quit; return its exit code."""
        self.shutdown(timeout=timeout)
        return self.exitcode()

    # --- the vCPUs ----------------------------------------------------

    def registers(self, cpu=None):
        """HMP 'info registers' of vCPU CPU (default: the current vCPU,
        vCPU 0)."""
        line = 'info registers' if cpu is None else f'info registers {cpu}'
        return self.cmd('human-monitor-command', command_line=line)

    def vcpu_halted(self):
        """Whether vCPU 0 is halted."""
        return 'HLT=1' in self.registers()

    def vcpu_threads(self):
        """The host thread id of each vCPU, in cpu-index order."""
        return [c['thread-id'] for c in self.cmd('query-cpus-fast')]

    def read_phys(self, addr, size):
        """SIZE bytes of guest-physical memory at ADDR (pmemsave)."""
        path = os.path.join(self.log_dir, f'{self.name}-pmem.bin')
        self.cmd('pmemsave', val=addr, size=size, filename=path)
        try:
            with open(path, 'rb') as f:
                return f.read()
        finally:
            os.unlink(path)

    # --- checkpoints and counter windows -------------------------------

    def wait_checkpoint(self, name, timeout, poll=0.01):
        """Wait until the guest printed checkpoint NAME and vCPU 0 halted."""
        self.wait_console(rf'^CHECKPOINT {re.escape(name)}\r?$', timeout,
                          poll)
        self.wait_halted(name, poll)

    def wait_halted(self, checkpoint, poll=0.01):
        deadline = time.monotonic() + HALT_TIMEOUT
        while not self.vcpu_halted():
            if time.monotonic() > deadline:
                self.fail(f'the vCPU did not halt at checkpoint '
                          f'{checkpoint}')
            time.sleep(poll)

    def resume(self):
        """Leave a checkpoint: the NMI that wakes the guest."""
        self.cmd('inject-nmi')

    def counter_window(self):
        """Close a counter window: query-dseg of every vCPU, then reset."""
        info = self.cmd('query-dseg')
        self.cmd('dseg-reset-counters')
        return info

    def wait_window_mark(self, timeout):
        """Wait until guest software writes a mark to the isa-dseg-window
        device and the VM has stopped; return the mark.  The VM stays
        stopped: read the counters, then resume it with cmd('cont')."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.event_wait('DSEG_WINDOW', timeout=0.5)
                break
            except TimeoutError:
                pass
            self._check_alive('before the guest marked a counter window')
            if time.monotonic() > deadline:
                self.fail(f'timed out after {timeout} s waiting for a '
                          f'counter window mark')
        while self.cmd('query-status')['status'] != 'paused':
            time.sleep(0.01)
        return event['data']['mark']

    def vcpu_cpu_s(self):
        """The CPU time in seconds that all vCPU threads have run (Linux's
        /proc/TID/schedstat), or None where the host does not say."""
        total = 0.0
        for tid in self.vcpu_threads():
            try:
                with open(f'/proc/{tid}/schedstat') as f:
                    total += int(f.read().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                return None
        return total

    def serve_window(self, timeout):
        """Serve one counter window that guest software marks: reset the
        counters at its first mark, read them at its second, and resume
        the VM after each.  Returns a Window: the two marks, query-dseg at
        the second, and the window's wall time and vCPU time (of all
        vCPU threads) in seconds, from the resume to the second stop."""
        first = self.wait_window_mark(timeout)
        window, second = self._counted(
            lambda: self.wait_window_mark(timeout))
        return window._replace(marks=[first, second])

    def window_around(self, action):
        """A counter window around ACTION(), which a program outside the
        guest does (a load generator on the host): stop the VM, reset
        the counters, resume it, call ACTION(), stop the VM, read the
        counters, resume it.  Returns a Window without marks, whose
        times are from the resume to the second stop, and ACTION's
        result."""
        def act():
            try:
                return action()
            finally:
                self.cmd('stop')

        self.cmd('stop')
        return self._counted(act)

    def _counted(self, between):
        """With the VM stopped: reset the counters, resume it, call
        BETWEEN(), which returns once the VM has stopped again, read the
        counters and resume it.  Returns a Window without marks, timed
        from the resume to the stop, and BETWEEN's result."""
        self.cmd('dseg-reset-counters')
        cpu = self.vcpu_cpu_s()
        start = time.perf_counter()
        self.cmd('cont')
        result = between()
        wall = time.perf_counter() - start
        end = self.vcpu_cpu_s()
        info = self.cmd('query-dseg')
        self.cmd('cont')
        return Window([], info, wall,
                      None if cpu is None or end is None else end - cpu), \
            result

    def serve_checkpoints(self, at_checkpoint, timeout):
        """Serve the guest's checkpoints until it exits.

        At each checkpoint: wait until the vCPU halts, call
        AT_CHECKPOINT(name), then resume the guest.  Returns the guest's
        isa-debug-exit status.
        """
        deadline = time.monotonic() + timeout
        served = 0
        while True:
            names = _CHECKPOINT.findall(self.console())
            if served < len(names):
                self.wait_halted(names[served])
                at_checkpoint(names[served])
                served += 1
                self.resume()
                continue
            if not self.is_running():
                return self.wait_guest_exit(0)
            if time.monotonic() > deadline:
                self.fail(f'timed out after {timeout} s with {served} '
                          f'checkpoints served')
            time.sleep(0.02)


class ControlLine:
    """A serial port of the guest on a UNIX socket of QEMU's: the test
    sends lines that the guest's programs wait for (Machine.control_line())."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def connect(self):
        self.sock.connect(self.path)

    def go(self):
        """Send the line the guest waits for."""
        self.sock.sendall(b'go\n')

    def close(self):
        self.sock.close()


class Window(NamedTuple):
    """A counter window that guest software marked (serve_window()), or
    that the host drew around an action of its own (window_around())."""
    marks: list             # [first mark, second mark], or []
    info: list              # query-dseg at the second mark
    wall_s: float           # from the resume at the first mark
    vcpu_s: Optional[float]  # CPU time of all vCPU threads, if known


def free_tcp_port():
    """A TCP port of 127.0.0.1 that is free now (the kernel's pick), for
    a host forward of QEMU's user network (boot.nic_args())."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def debug_exit_status(returncode):
    """The value a guest wrote to isa-debug-exit, or None.

    QEMU exits with (value << 1) | 1, so an even return code (including a
    normal shutdown's 0) means the guest never reached the device.
    """
    if returncode is None or returncode <= 0 or not returncode & 1:
        return None
    return returncode >> 1
