"""The Linux experiment's workloads and their guest-side scripts.

Each workload is a snippet of the guest's /init, a real shell script in
guest/ (package data) with @NAME@ placeholders that guest_script() fills
in.  A table workload (GUPS, the chase, BFS, CG) is one of our programs
(tests/guest/linux/NAME.c) whose loop is the window, between dseg-window
marks 1 and 2, followed by a line 'NAME-RESULT ok|failed ...' that
check() reads; the program checks its own result after the window.  A
server workload (memcached, redis) starts an unmodified server in the
guest and waits (server.sh); its load generator runs on the host, at
native speed, through a host forward of QEMU's user network, and the
window is drawn around it (Machine.window_around()), so that it holds
the server's work, the guest kernel's networking and interrupts, and
nothing of the client.
linux-init.sh is the head of /init (the guest module, the NIC,
run_in_region, serve), and bench-init.sh the /init of the overhead
benchmark's Linux boot.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import re
import shutil
import socket
import subprocess
import time
from importlib import resources

from .. import assets, boot, guests
from .common import MIB

# A placeholder of a guest-side script: @NAME@.
PLACEHOLDER = re.compile(r'@([a-z][a-z0-9_]*)@')


def guest_script(script, **values):
    """The script guest/SCRIPT with every @KEY@ replaced by VALUES[KEY], in
    one pass (a value is never searched for placeholders).  ValueError
    when the script has a placeholder that VALUES lacks, or VALUES has a
    key that the script does not use."""
    text = resources.files(__package__).joinpath(
        'guest', script).read_text()
    used = set()

    def value(m):
        key = m.group(1)
        if key not in values:
            raise ValueError(f'guest/{script}: no value for @{key}@')
        used.add(key)
        return str(values[key])
    text = PLACEHOLDER.sub(value, text)
    unused = set(values) - used
    if unused:
        raise ValueError(f'guest/{script} has no '
                         f'@{sorted(unused)[0]}@')
    return text


# The servers, unmodified programs from Debian's packages, in the guest.
PROGRAMS = {
    '/bin/memcached': ('memcached', 'usr/bin/memcached'),
    # redis-server is redis-check-rdb under another name.
    '/bin/redis-server': ('redis-tools', 'usr/bin/redis-check-rdb'),
}
# How long a server may take to answer once the guest started it.
READY_TIMEOUT = 60


def host_tool(name, package):
    """The path of a client program on the host, from Debian's PACKAGE
    (scripts/setup.sh installs it); ClientError if it is missing."""
    path = shutil.which(name)
    if path is None:
        raise ClientError(f'{name} is not installed on the host: '
                          f'scripts/setup.sh installs {package}')
    return path


class ClientError(RuntimeError):
    """A host-side client could not run or its server did not answer."""


def run_tool(argv, timeout, check=True, text=True):
    """Run ARGV on the host; its CompletedProcess (stdout and stderr
    together, as text or, without TEXT, bytes).  ClientError when it
    times out and, with CHECK, when it fails."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=text,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ClientError(f'{argv[0]} timed out after {timeout} s') from e
    if check and p.returncode:
        raise ClientError(f'{" ".join(argv)}: exit {p.returncode}: '
                          f'{str(p.stdout).strip()[-500:]}')
    return p


class Workload:
    """A workload: its /init snippet, how many operations its window does
    and how its console output is checked."""

    name = ''
    what = ''
    unit = ''
    # How its measured memory gets into a primary region, or None.
    region_how = None
    # Whether that is libdseg-preload.so (run_in_region), which says on
    # the console whether it got the region, and whether the program
    # certainly makes an allocation large enough to ask for it (if not,
    # the library's silence is no failure).
    preloaded = False
    allocates_large = False
    # Its /init snippet in guest/.
    script_file = ''

    def __init__(self, opts):
        self.opts = opts

    def size_mb(self):
        """The size of its data set, in MiB (roughly, for servers)."""
        raise NotImplementedError

    def region_mb(self):
        """The primary region its measured program asks for, in MiB."""
        raise NotImplementedError

    def ops(self):
        """Operations in its window."""
        raise NotImplementedError

    def script_values(self):
        """The values of its snippet's placeholders."""
        raise NotImplementedError

    def script(self):
        """Its /init snippet, in which $region is 1 in the direct modes
        of the guest dimension."""
        return guest_script(self.script_file, **self.script_values())

    def describe(self):
        raise NotImplementedError

    def files(self):
        """What it adds to the guest's image: ({guest path: bytes},
        {guest path: (Debian package, path in it)})."""
        return {}, {}

    def check(self, text):
        """(ok, detail, checksum or None) from the workload's console
        output TEXT."""
        m = re.search(rf'^{self.name.upper()}-RESULT (\w+)(.*)$', text, re.M)
        if not m:
            return False, 'no result line', None
        return m.group(1) == 'ok', m.group(2).strip(), None


class TableWorkload(Workload):
    """One of our programs over a table: its loop is the window, which
    its snippet brackets with dseg-window marks 1 and 2; then a line
    'NAME-RESULT ok|failed ...'."""

    unit = ''
    unit_plural = ''
    region_how = 'the table, from libdseg'
    script_file = 'table.sh'

    def size_mb(self):
        return getattr(self.opts, f'{self.name}_mb')

    def region_mb(self):
        return self.size_mb()

    def ops(self):
        return getattr(self.opts, f'{self.name}_{self.unit_plural}')

    def describe(self):
        return (f'{self.what} (tests/guest/linux/{self.name}.c), '
                f'{self.size_mb()} MiB table, {self.ops()} '
                f'{self.unit_plural}, seed {self.opts.seed}')

    def files(self):
        with open(guests.path(self.name, self.opts.guests), 'rb') as f:
            return {f'/bin/{self.name}': f.read()}, {}

    def script_values(self):
        return {'name': self.name, 'tag': self.name.upper(),
                'size_mb': self.size_mb(), 'ops': self.ops(),
                'seed': self.opts.seed}

    def check(self, text):
        ok, detail, _ = super().check(text)
        m = re.search(rf'^{self.name.upper()} mib \d+ \w+ \d+ seed \d+ '
                      r'table (\w+) checksum (0x[0-9a-f]+)', text, re.M)
        return ok and m is not None, detail, m and m.group(2)


class Gups(TableWorkload):
    name = 'gups'
    what = 'random read-modify-write of 8-byte words'
    unit, unit_plural = 'update', 'updates'


class Chase(TableWorkload):
    name = 'chase'
    what = 'pointer chase over one random cycle of 64-byte slots'
    unit, unit_plural = 'step', 'steps'


class Bfs(TableWorkload):
    name = 'bfs'
    what = ("Graph500's breadth-first search of a Kronecker graph, each "
            'tree validated')
    unit, unit_plural = 'search', 'searches'


class Cg(TableWorkload):
    name = 'cg'
    what = ('NPB-style conjugate gradient on a random sparse SPD matrix, '
            "each solve checked against CG's bounds")
    unit, unit_plural = 'iteration', 'iterations'


class ServerWorkload(Workload):
    """A server in the guest, driven by a load generator on the host."""

    script_file = 'server.sh'
    preloaded = allocates_large = True
    # The port it listens on in the guest.
    port = 0

    def command(self):
        """The server's command line in the guest."""
        raise NotImplementedError

    def script_values(self):
        return {'region_mb': self.region_mb(), 'command': self.command(),
                'name': self.name}

    def answers(self, port):
        """Whether the server answers on the host's PORT."""
        raise NotImplementedError

    def prepare(self, port, timeout):
        """What the host does before the window: wait until the server
        answers on PORT, for at most READY_TIMEOUT s."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.answers(port):
            if time.monotonic() > deadline:
                raise ClientError(f'{self.name} did not answer on port '
                                  f'{port} within {READY_TIMEOUT} s')
            time.sleep(0.2)

    def client(self, port):
        """The load generator's command line: the window's work."""
        raise NotImplementedError

    def check_run(self, port, out, timeout):
        """(ok, detail, None) from the load generator's
        CompletedProcess OUT and the server's state after it."""
        raise NotImplementedError

    def stop(self, port, timeout):
        """Ask the server on PORT to exit, as its own protocol allows (so
        that the program, not just the shell that started it, ends and
        frees its primary region)."""
        raise NotImplementedError

    def check(self, text):
        raise TypeError(f'{self.name} is checked on the host (check_run)')


class Memcached(ServerWorkload):
    name = 'memcached'
    what = ('memcached, a thread per vCPU, driven from the host by '
            'memcslap: N sets, then N gets of random keys')
    unit = 'request'
    region_how = "memcached's slabs, through libdseg-preload.so"
    port = 11211
    # One value that the host sets before the window and reads after it.
    ITEM = b'qemu-dseg-item'

    def size_mb(self):
        # memcslap's values average about 2.6 KiB.
        return self.opts.memcached_keys * 2600 // MIB

    def region_mb(self):
        return self.opts.memcached_mb + 64

    def ops(self):
        return 2 * self.opts.memcached_keys

    def describe(self):
        o = self.opts
        return (f'memcached ({o.memcached_mb} MiB cache, {o.vcpus} '
                f'thread(s)), '
                f'memcslap on the host: {o.memcached_keys} sets then '
                f'{o.memcached_keys} gets')

    def command(self):
        return (f'/bin/memcached -u root -m {self.opts.memcached_mb} '
                f'-l 0.0.0.0 -p {self.port} -t {self.opts.vcpus} '
                f'--enable-shutdown')

    def stop(self, port, timeout):
        try:
            with socket.create_connection(('127.0.0.1', port),
                                          timeout=timeout) as s:
                s.sendall(b'shutdown\r\n')
                while s.recv(4096):
                    pass
        except OSError as e:
            raise ClientError(f'memcached did not shut down: {e}') from e

    @staticmethod
    def servers(port):
        return f'--servers=127.0.0.1:{port}'

    def answers(self, port):
        return run_tool([host_tool('memcstat', 'libmemcached-tools'),
                         self.servers(port)], 10, check=False
                        ).returncode == 0

    ITEM_VALUE = bytes(range(256)) * 2048

    @staticmethod
    def exchange(port, request, complete, timeout):
        """Send REQUEST (memcached's text protocol) to the server on
        PORT and read its answer until COMPLETE(answer) says it is whole.
        Within TIMEOUT s, not libmemcached's own 5 s: a server's first
        large allocation in the direct modes of the guest dimension sets
        up its primary region, which zeroes it first."""
        answer = b''
        try:
            with socket.create_connection(('127.0.0.1', port),
                                          timeout=timeout) as s:
                s.sendall(request)
                while not complete(answer):
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        raise ClientError(f'memcached closed the connection '
                                          f'after {answer[:80]!r}')
                    answer += chunk
        except OSError as e:
            raise ClientError(f'memcached: {e}') from e
        return answer

    def prepare(self, port, timeout):
        super().prepare(port, timeout)
        value = self.ITEM_VALUE
        answer = self.exchange(
            port, b'set %s 0 0 %d\r\n%s\r\n' % (self.ITEM, len(value),
                                                value),
            lambda a: a.endswith(b'\r\n'), timeout)
        if answer != b'STORED\r\n':
            raise ClientError(f'memcached answered the set of '
                              f'{self.ITEM.decode()} with {answer[:80]!r}')

    def get_item(self, port, timeout):
        """The value of ITEM on the server on PORT, or None."""
        def complete(a):
            head, sep, rest = a.partition(b'\r\n')
            if not sep:
                return False
            m = re.fullmatch(rb'VALUE \S+ \d+ (\d+)', head)
            return len(rest) >= int(m.group(1)) + 7 if m else True

        answer = self.exchange(port, b'get %s\r\n' % self.ITEM, complete,
                               timeout)
        head, _, rest = answer.partition(b'\r\n')
        m = re.fullmatch(rb'VALUE \S+ \d+ (\d+)', head)
        if not m or rest[int(m.group(1)):] != b'\r\nEND\r\n':
            return None
        return rest[:int(m.group(1))]

    def client(self, port):
        n = self.opts.memcached_keys
        return [host_tool('memcslap', 'libmemcached-tools'),
                self.servers(port), '--test=get', f'--initial-load={n}',
                f'--execute-number={n}', '--concurrency=1']

    def check_run(self, port, out, timeout):
        got = self.get_item(port, timeout)
        stat = run_tool([host_tool('memcstat', 'libmemcached-tools'),
                         self.servers(port)], timeout).stdout
        figures = {k: int(v) for k, v in re.findall(
            r'^\s*(get_hits|get_misses|curr_items): (\d+)$', stat, re.M)}
        items = self.opts.memcached_keys + 1
        ok = (out.returncode == 0 and got == self.ITEM_VALUE and
              figures.get('get_hits') == items and
              figures.get('get_misses') == 0 and
              figures.get('curr_items') == items)
        return ok, (f'status {out.returncode} ' +
                    ' '.join(f'{k} {v}' for k, v in figures.items()) +
                    ('' if got == self.ITEM_VALUE
                     else ' item: not what was set')), None


class Redis(ServerWorkload):
    name = 'redis'
    what = 'redis-server, driven from the host by redis-benchmark'
    unit = 'request'
    region_how = ("redis-server's heap: jemalloc's extents, through "
                  "libdseg-preload.so")
    port = 6379

    def size_mb(self):
        return self.opts.redis_keys * self.opts.redis_value // MIB

    def region_mb(self):
        # At most one key per SET; jemalloc rounds a value up by at most
        # a quarter (its size classes), and a key costs about 100 bytes
        # more (measured: 5.1 KiB per key of a 4 KiB value).
        o = self.opts
        keys = min(o.redis_requests, o.redis_keys)
        return keys * (o.redis_value * 5 // 4 + 128) // MIB + 64

    def ops(self):
        return 2 * self.opts.redis_requests

    def describe(self):
        o = self.opts
        return (f'redis-server (no persistence), redis-benchmark on the '
                f'host: SET then GET, {o.redis_requests} requests each, '
                f'{o.redis_keys} random keys, {o.redis_value}-byte values, '
                f'{o.redis_clients} connections, pipeline 16')

    def command(self):
        return (f"/bin/redis-server --port {self.port} --bind 0.0.0.0 "
                f"--protected-mode no --save '' --appendonly no "
                f"--logfile /tmp/redis.log")

    @staticmethod
    def cli(port, *args):
        return [host_tool('redis-cli', 'redis-tools'), '-h', '127.0.0.1',
                '-p', str(port), *args]

    def answers(self, port):
        p = run_tool(self.cli(port, 'ping'), 10, check=False)
        return p.returncode == 0 and p.stdout.strip() == 'PONG'

    def stop(self, port, timeout):
        run_tool(self.cli(port, 'shutdown', 'nosave'), timeout, check=False)

    def client(self, port):
        o = self.opts
        return [host_tool('redis-benchmark', 'redis-tools'),
                '-h', '127.0.0.1', '-p', str(port), '-q', '-t', 'set,get',
                '-n', str(o.redis_requests), '-r', str(o.redis_keys),
                '-d', str(o.redis_value), '-P', '16',
                '-c', str(o.redis_clients)]

    def check_run(self, port, out, timeout):
        text = out.stdout.replace('\r', '\n')
        rates = re.findall(r'^(SET|GET): ([0-9.]+) requests', text, re.M)
        run_tool(self.cli(port, 'set', 'qemu-dseg-check', '42'), timeout)
        got = run_tool(self.cli(port, 'get', 'qemu-dseg-check'),
                       timeout).stdout.strip()
        keys = run_tool(self.cli(port, 'dbsize'), timeout).stdout.strip()
        ok = (out.returncode == 0 and [r[0] for r in rates] ==
              ['SET', 'GET'] and 'error' not in text.lower() and
              got == '42')
        return ok, (f'status {out.returncode} keys {keys} ' + ' '.join(
            f'{c} {r}/s' for c, r in rates)), None


class Command(Workload):
    """A researcher's own command line (--command), run by the guest's
    shell; the whole run, its start included, is the window, and it must
    exit 0.  Its programs come from the host (--command-file) or from
    Debian's packages (--command-package), with the shared libraries they
    need; with --command-region-mb, in the direct modes of the guest
    dimension its large allocations go to a primary region through
    libdseg-preload.so."""

    name = 'command'
    unit = 'run'
    script_file = 'command.sh'

    @property
    def preloaded(self):
        return self.opts.command_region_mb > 0

    @property
    def region_how(self):
        return ('its large allocations, through libdseg-preload.so'
                if self.opts.command_region_mb else None)

    def size_mb(self):
        return self.opts.command_region_mb

    def region_mb(self):
        return self.opts.command_region_mb

    def ops(self):
        return 1

    def describe(self):
        return f'the command {self.opts.command_line!r}'

    def script_values(self):
        mb = self.opts.command_region_mb
        return {'command': self.opts.command_line,
                'runner': f'run_in_region {mb}' if mb else ''}

    def files(self):
        data, programs = {}, {}
        for src, dst in self.opts.command_file:
            with open(src, 'rb') as f:
                data[dst] = f.read()
        for package, path in self.opts.command_package:
            programs['/bin/' + os.path.basename(path)] = (
                package, path.lstrip('/'))
        return data, programs


# What libdseg-preload.so says when it got its primary region.
PRELOAD_REGION = re.compile(r'^libdseg-preload: primary region of \d+ MiB',
                            re.M)


def check_preloaded(wl, text, check):
    """CHECK, the (ok, detail, checksum) of workload WL, failed when WL
    runs with libdseg-preload.so and its console output TEXT shows that
    the library did not get its primary region, or says nothing of it
    although WL certainly asked for it."""
    if not wl.preloaded or PRELOAD_REGION.search(text):
        return check
    ok, detail, checksum = check
    why = re.search(r'^libdseg-preload: no primary region.*$', text, re.M)
    if why is None and not wl.allocates_large:
        return check
    return False, (f'{detail}; ' if detail else '') + (
        why.group(0) if why else 'libdseg-preload said nothing of its '
        'primary region'), checksum


WORKLOADS = {w.name: w for w in (Gups, Chase, Bfs, Cg, Memcached, Redis,
                                  Command)}
# The workloads that run unless --workloads names others.
DEFAULT_WORKLOADS = tuple(n for n in WORKLOADS if n != Command.name)


def init_script(workloads, pool_base, pool_size):
    """The guest's /init: each workload in turn, between markers, with
    the guest module's pool at POOL_BASE of POOL_SIZE bytes."""
    parts = [guest_script('linux-init.sh', prelude=assets.INIT_PRELUDE,
                          region_flag=boot.REGION_FLAG,
                          guest_ip=boot.GUEST_IP,
                          pool_base=f'{pool_base:#x}',
                          pool_size=f'{pool_size:#x}')]
    for wl in workloads:
        parts.append(f'echo "WORKLOAD-BEGIN {wl.name}"\n')
        parts.append(wl.script())
        parts.append(f'echo "WORKLOAD-END {wl.name}"\n')
    parts.append('echo LINUX-EXPERIMENT-DONE\n')
    parts.append(assets.EPILOGUE)
    return ''.join(parts)
