"""The Linux experiment's workloads and their guest-side scripts.

Each workload is a snippet of the guest's /init, a real shell script in
guest/ (package data) with @NAME@ placeholders that guest_script() fills
in: its measured part between dseg-window marks 1 and 2, then a line
'NAME-RESULT ok|failed ...' that check() reads.  linux-init.sh is the
head of /init (the guest module, run_in_region, wait_for), and
bench-init.sh the /init of the overhead benchmark's Linux boot.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import re
from importlib import resources

from .. import assets, boot
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


PROGRAMS = {
    '/bin/memcached': ('memcached', 'usr/bin/memcached'),
    '/bin/memcslap': ('libmemcached-tools', 'usr/bin/memcslap'),
    '/bin/memccp': ('libmemcached-tools', 'usr/bin/memccp'),
    '/bin/memccat': ('libmemcached-tools', 'usr/bin/memccat'),
    '/bin/memcstat': ('libmemcached-tools', 'usr/bin/memcstat'),
    # redis-server is redis-check-rdb under another name.
    '/bin/redis-server': ('redis-tools', 'usr/bin/redis-check-rdb'),
    '/bin/redis-benchmark': ('redis-tools', 'usr/bin/redis-benchmark'),
    '/bin/redis-cli': ('redis-tools', 'usr/bin/redis-cli'),
}


class Workload:
    """A workload: its /init snippet, how many operations its window does
    and how its console output is checked."""

    name = ''
    what = ''
    unit = ''
    # How its measured memory gets into a primary region, or None.
    region_how = None
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
        """Its /init snippet: $region is 1 in the direct modes of the
        guest dimension; it brackets the measured part with dseg-window
        marks 1 and 2 and ends with a line 'NAME-RESULT ok|failed ...'."""
        return guest_script(self.script_file, **self.script_values())

    def describe(self):
        raise NotImplementedError

    def check(self, text):
        """(ok, detail, checksum or None) from the workload's console
        output TEXT."""
        m = re.search(rf'^{self.name.upper()}-RESULT (\w+)(.*)$', text, re.M)
        if not m:
            return False, 'no result line', None
        return m.group(1) == 'ok', m.group(2).strip(), None


class TableWorkload(Workload):
    """One of our programs over a table: its loop is the window."""

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


class Memcached(Workload):
    name = 'memcached'
    what = ('memcached 1 thread, driven by memcslap over loopback: '
            'N sets, then N gets of random keys')
    unit = 'request'
    region_how = "memcached's slabs, through libdseg-preload.so"
    script_file = 'memcached.sh'

    def size_mb(self):
        # memcslap's values average about 2.6 KiB.
        return self.opts.memcached_keys * 2600 // MIB

    def region_mb(self):
        return self.opts.memcached_mb + 64

    def ops(self):
        return 2 * self.opts.memcached_keys

    def describe(self):
        o = self.opts
        return (f'memcached ({o.memcached_mb} MiB cache, 1 thread), '
                f'memcslap: {o.memcached_keys} sets then '
                f'{o.memcached_keys} gets')

    def script_values(self):
        o = self.opts
        return {'region_mb': self.region_mb(), 'cache_mb': o.memcached_mb,
                'keys': o.memcached_keys, 'items': o.memcached_keys + 1}


class Redis(Workload):
    name = 'redis'
    what = 'redis-server, driven by redis-benchmark over loopback'
    unit = 'request'
    region_how = ("redis-server's heap: jemalloc's extents, through "
                  "libdseg-preload.so")
    script_file = 'redis.sh'

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
        return (f'redis-server (no persistence), redis-benchmark SET then '
                f'GET, {o.redis_requests} requests each, {o.redis_keys} '
                f'random keys, {o.redis_value}-byte values, pipeline 16')

    def script_values(self):
        o = self.opts
        return {'region_mb': self.region_mb(),
                'requests': o.redis_requests, 'keys': o.redis_keys,
                'value': o.redis_value}


WORKLOADS = {w.name: w for w in (Gups, Chase, Memcached, Redis)}


def init_script(workloads, pool_base, pool_size):
    """The guest's /init: each workload in turn, between markers, with
    the guest module's pool at POOL_BASE of POOL_SIZE bytes."""
    parts = [guest_script('linux-init.sh', prelude=assets.INIT_PRELUDE,
                          region_flag=boot.REGION_FLAG,
                          pool_base=f'{pool_base:#x}',
                          pool_size=f'{pool_size:#x}')]
    for wl in workloads:
        parts.append(f'echo "WORKLOAD-BEGIN {wl.name}"\n')
        parts.append(wl.script())
        parts.append(f'echo "WORKLOAD-END {wl.name}"\n')
    parts.append('echo LINUX-EXPERIMENT-DONE\n')
    parts.append(assets.EPILOGUE)
    return ''.join(parts)
