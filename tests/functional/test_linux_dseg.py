#!/usr/bin/env python3
"""Linux programs the guest segment: the guest module contrib/linux/dseg.

Debian's unmodified cloud kernel boots directly on the fork with two
vCPUs (MTTCG) and 256 MiB of RAM reserved at boot (memmap=256M$0x10000000)
as the module's pool.  The module is built against Debian's linux-headers
of exactly that kernel; tests/guest/linux/dseg_region.c exercises it from
user space:

* insmod refuses, with one clear kernel log line each, a CPU without
  +dseg, a missing pool, a pool that the kernel manages and one where no
  memory is; the pool it takes is claimed in /proc/iomem;
* a process's primary region is zeroed, reads back what was written, and
  is reported by the module where query-dseg saw the segment;
* a second region for the same process fails with EBUSY; munmap, fork
  and exec leave no region behind; the region cannot be split or
  mprotected; a program exec'd after vfork or by posix_spawn cannot
  reach its parent's region; a user without privileges gets no region
  over RLIMIT_MEMLOCK, at most four at once and no physical address, and
  /dev/dseg is 0660; mremap cannot move, grow or shrink it, and a refused
  mremap leaves it whole (its pool pages are not handed to another
  process); mappings larger than the pool, up to 2^45 bytes plus a page,
  fail with ENOMEM; the kernel logs no warning, oops or BUG;
* two processes with a region each take turns on one vCPU, each sees only
  its own data, and the counters of exactly that window show that every
  turn refilled the pages through the segment (native-direct);
* four threads of one process move between the two vCPUs and see their
  own data;
* an unmodified, dynamically linked GUPS run with LD_PRELOAD of
  contrib/linux/libdseg's libdseg-preload.so gets its table in a primary
  region: the counter window of its loop (isa-dseg-window) shows its
  fills on the native-direct path, and its checksum is that of the same
  program without the library;
* rmmod is refused while a region lives, and once every program has
  exited, and after rmmod, no vCPU's guest segment is armed;
* interface fuzzing (test_interface_fuzz, tests/guest/linux/dseg_fuzz.c):
  random cases on /dev/dseg (open, mmap, munmap, mprotect, mremap,
  madvise, ioctl, touches, fork, vfork+exec) and on the preload library's
  entry points for a bounded time, on a kernel booted with the debugging
  that Debian's kernel has instead of KASAN (below); then no region is
  left, the whole pool maps, the module unloads, and the kernel logged no
  warning, oops or BUG.

The test talks to the guest's /init over a second serial port (ttyS1):
at each "WAIT name" line the init script waits for a line from the test.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import re

from qemu_dseg import assets, boot, guests, model, testing
from qemu_dseg.experiment.workloads import PROGRAMS
from qemu_dseg.model import ANY

POOL_BASE = 0x10000000
POOL_SIZE = 0x10000000
POOL = f'pool_base={POOL_BASE:#x} pool_size={POOL_SIZE:#x}'
# Guest-physical addresses that no RAM backs (-m 1G).
HOLE = 0x60000000
TOUCH_MIB = 64
ALT_MIB, ALT_ROUNDS = 4, 40
EXEC_RUNS = 20
GUPS_ARGS = '32 65536 1'            # MiB, updates, seed
GUPS_ITERS = 65536
PAGES_PER_MIB = 256
TLB_SIZE = 256                      # softmmu TLB entries (-accel tcg,tlb-size)

# The module's kernel log lines, between markers (with "quiet", errors
# also reach the console directly).
DMESG = "echo DMESG-BEGIN; dmesg | grep 'dseg:'; echo DMESG-END"
# Whatever the kernel logs when something went wrong.
TROUBLE = ("echo TROUBLE-BEGIN; dmesg | grep -E 'WARNING|BUG|Oops|"
           "general protection|Call Trace'; echo TROUBLE-END")

INIT_NO_DSEG = f"""#!/bin/sh
{assets.INIT_PRELUDE}
insmod /lib/modules/dseg.ko {POOL} && echo INSMOD-LOADED
{DMESG}
echo DONE
{assets.EPILOGUE}"""

INIT = f"""#!/bin/sh
{assets.INIT_PRELUDE}
exec 3</dev/ttyS1
wait_for() {{ echo "WAIT $1"; read -r go <&3; }}
insmod /lib/modules/dseg.ko && echo INSMOD-LOADED-WITHOUT-POOL
insmod /lib/modules/dseg.ko pool_base=0x30000000 pool_size=0x100000 \\
    && echo INSMOD-LOADED-RAM-POOL
insmod /lib/modules/dseg.ko pool_base={HOLE:#x} pool_size=0x100000 \\
    && echo INSMOD-LOADED-HOLE-POOL
insmod /lib/modules/dseg.ko {POOL} || echo INSMOD-FAILED
grep 'dseg pool' /proc/iomem | sed 's/^ */IOMEM /'
/bin/dseg_region touch {TOUCH_MIB} 5
/bin/dseg_region second
/bin/dseg_region lifecycle
/bin/dseg_region mremap 4
/bin/dseg_region exec {EXEC_RUNS}
/bin/dseg_region unprivileged
/bin/dseg_region sizes {POOL_SIZE >> 20}
wait_for alternate-begin
/bin/dseg_region alternate {ALT_MIB} {ALT_ROUNDS}
wait_for alternate-end
/bin/dseg_region threads 16 20
/bin/gups {GUPS_ARGS}
LD_PRELOAD=/lib/libdseg-preload.so DSEG_REGION_MB=64 DSEG_VERBOSE=1 \
    /bin/gups-dynamic --window {GUPS_ARGS}
/bin/dseg_region hold 1 &
holder=$!
sleep 1
rmmod dseg && echo RMMOD-WHILE-LIVE
kill $holder
wait $holder
wait_for idle
rmmod dseg && echo RMMOD-OK
wait_for unloaded
{DMESG}
{TROUBLE}
echo DONE
{assets.EPILOGUE}"""


# Debian's redis (it allocates with jemalloc) with its memory in a
# primary region through the preload library, under load: SET then GET of
# REDIS_KEYS 4 KiB values.  Then the memory it has outside the region:
# the resident pages of its anonymous mappings and heap (smaps).  Then a
# BGSAVE, whose forked child writes the data set from its copy of the
# region, and a second redis, without the library, that loads the dump.
REDIS_PROGRAMS = {'/bin/redis-server': PROGRAMS['/bin/redis-server'],
                  '/bin/redis-benchmark': ('redis-tools',
                                           'usr/bin/redis-benchmark'),
                  '/bin/redis-cli': ('redis-tools', 'usr/bin/redis-cli')}
REDIS_KEYS = 32768
REDIS_REGION_MB = 224
INIT_REDIS = f"""#!/bin/sh
{assets.INIT_PRELUDE}
ifconfig lo 127.0.0.1 up
echo 1 > /proc/sys/vm/overcommit_memory
insmod /lib/modules/dseg.ko {POOL} || echo INSMOD-FAILED
LD_PRELOAD=/lib/libdseg-preload.so DSEG_REGION_MB={REDIS_REGION_MB} \\
    DSEG_VERBOSE=1 /bin/redis-server --port 6379 --save '' \\
    --appendonly no --logfile /tmp/redis.log --dir /tmp &
rpid=$!
ok=1
for i in $(seq 300); do redis-cli ping > /dev/null 2>&1 && break; sleep 0.2; done
redis-benchmark -q -t set,get -n {REDIS_KEYS} -r {REDIS_KEYS} -d 4096 -P 16 \\
    > /tmp/bench.out 2>&1 || ok=0
tr '\\r' '\\n' < /tmp/bench.out | grep -E '^(SET|GET): [0-9.]+ requests' | sed 's/^/BENCH /'
redis-cli set qemu-dseg-check 42 > /dev/null
[ "$(redis-cli get qemu-dseg-check)" = 42 ] || ok=0
echo "REDIS-KEYS $(redis-cli dbsize)"
echo "REDIS-USED $(redis-cli info memory | sed -n 's/^used_memory:\\([0-9]*\\).*/\\1/p')"
echo "REDIS-OUTSIDE-KB $(awk '/^[0-9a-f]+-[0-9a-f]+ /{{anon = (NF == 5 || $6 == "[heap]")}}
    /^Rss:/ && anon {{kb += $2}} END {{print kb + 0}}' /proc/$rpid/smaps)"
persistence() {{ redis-cli -p $1 info persistence | tr -d '\r' | sed -n "s/^$2://p"; }}
redis-cli bgsave > /dev/null || ok=0
for i in $(seq 600); do
    [ "$(persistence 6379 rdb_bgsave_in_progress)" = 0 ] && break; sleep 0.2
done
echo "REDIS-BGSAVE $(persistence 6379 rdb_last_bgsave_status)"
redis-cli shutdown nosave > /dev/null 2>&1; wait $rpid
echo "REDIS-EXIT $?"
/bin/redis-server --port 6380 --save '' --appendonly no --dir /tmp \\
    --logfile /tmp/redis2.log &
rpid=$!
for i in $(seq 600); do
    [ "$(persistence 6380 loading)" = 0 ] && break; sleep 0.2
done
echo "REDIS-LOADED-KEYS $(redis-cli -p 6380 dbsize)"
echo "REDIS-LOADED-CHECK $(redis-cli -p 6380 get qemu-dseg-check)"
redis-cli -p 6380 shutdown nosave > /dev/null 2>&1; wait $rpid
[ $ok = 1 ] && echo REDIS-OK
{TROUBLE}
echo DONE
{assets.EPILOGUE}"""


# Interface fuzzing.  Debian ships no KASAN kernel; its cloud kernel has
# SLUB debugging (slub_debug=FZPU: sanity checks, red zones, poisoning of
# freed objects, owner tracking), init_on_free, CONFIG_DEBUG_LIST with
# BUG_ON_DATA_CORRUPTION and CONFIG_HARDENED_USERCOPY, whose reports are
# "BUG" or "WARNING" lines that TROUBLE catches.
FUZZ_CMDLINE = 'slub_debug=FZPU init_on_free=1'
FUZZ_SECONDS = {'device': 25, 'alloc': 10}
FUZZ_SEED = 0x5eed
FUZZ_MIN_CASES = 1000
INIT_FUZZ = f"""#!/bin/sh
{assets.INIT_PRELUDE}
insmod /lib/modules/dseg.ko {POOL} || echo INSMOD-FAILED
/bin/dseg_fuzz device {FUZZ_SECONDS['device']} {FUZZ_SEED:#x} {POOL_SIZE >> 20}
LD_PRELOAD=/lib/libdseg-preload.so DSEG_REGION_MB=64 \\
    /bin/dseg_fuzz alloc {FUZZ_SECONDS['alloc']} {FUZZ_SEED:#x}
rmmod dseg && echo RMMOD-OK
{TROUBLE}
echo DONE
{assets.EPILOGUE}"""


# What the kernel itself logs under the module's name when it loads it.
KERNEL_LINES = ('dseg: loading out-of-tree module taints kernel.',
                'dseg: module verification failed: signature and/or '
                'required key missing - tainting kernel')


def kernel_log(console):
    """The module's own kernel log lines that /init printed, without their
    timestamps.  Busybox's insmod tries finit_module, then init_module, so
    a refused load logs its line twice in a row: that counts once."""
    m = re.search(r'^DMESG-BEGIN\n(.*?)^DMESG-END$', console, re.M | re.S)
    if not m:
        return None
    lines = []
    for line in m.group(1).splitlines():
        line = re.sub(r'^\[[ 0-9.]+\] ', '', line)
        if line not in KERNEL_LINES and lines[-1:] != [line]:
            lines.append(line)
    return lines


class LinuxDsegTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.module = assets.dseg_module()

    def image(self, init, programs=None):
        files = testing.read_files({
            '/lib/modules/dseg.ko': self.module,
            '/bin/dseg_region': guests.path('dseg_region'),
            '/bin/gups': guests.path('gups'),
            '/bin/gups-dynamic': guests.path('gups-dynamic'),
            '/bin/dseg_fuzz': guests.path('dseg_fuzz'),
            '/lib/libdseg-preload.so': guests.path('libdseg-preload.so')})
        return self.linux_image(init, extra_files=files, modules=(),
                                programs=programs)

    def boot_args(self, linux, cpu, extra=(), cmdline=''):
        # A softmmu TLB of fixed size: a dynamic one grows with the GUPS
        # before the windowed one and, if the next flush comes soon enough,
        # does not shrink back, so the windowed GUPS can find its 8192
        # pages all in it and miss almost never.  The pool is that of
        # native direct.
        return boot.linux_args(
            linux, model.MODE_BY_NAME['native-direct'], memory_mb=1024,
            cpu=cpu, vcpus=2, tlb_size=TLB_SIZE, multi_thread=True,
            cmdline=cmdline, pool=(POOL_BASE, POOL_SIZE), extra_args=extra)

    def test_interface_fuzz(self):
        linux = self.image(INIT_FUZZ)
        args = self.boot_args(linux, 'max,+dseg', cmdline=FUZZ_CMDLINE)
        with self.machine(args, name='linux', qmp=False) as vm:
            vm.launch()
            vm.wait_console(r'^DONE', 60 + 3 * sum(FUZZ_SECONDS.values()))
            self.assertEqual(vm.wait_exit(60), 0)
            console = vm.console()
        tail = '\n--- console ---\n' + console[-3000:]
        self.assertNotIn('INSMOD-FAILED', console, tail)
        self.assertEqual(re.findall(r'^FAIL .*$', console, re.M), [], tail)
        for mode in FUZZ_SECONDS:
            self.assertIn(f'FUZZ-OK {mode}', console, tail)
            cases = int(re.search(rf'^FUZZ-CASES {mode} (\d+)$', console,
                                  re.M).group(1))
            print(f'# fuzz {mode}: {cases} cases in '
                  f'{FUZZ_SECONDS[mode]} s, seed {FUZZ_SEED:#x}')
            self.assertGreaterEqual(cases, FUZZ_MIN_CASES, tail)
        self.assertIn('RMMOD-OK', console, tail)
        self.assertRegex(console, r'(?m)^TROUBLE-BEGIN\nTROUBLE-END$', tail)

    def test_insmod_without_dseg(self):
        linux = self.image(INIT_NO_DSEG)
        with self.machine(self.boot_args(linux, 'max'), name='linux',
                          qmp=False) as vm:
            vm.launch()
            vm.wait_console(r'^DONE', 120)
            vm.wait_exit(60)
            console = vm.console()
        self.assertNotIn('INSMOD-LOADED', console)
        self.assertEqual(kernel_log(console), [
            'dseg: this CPU does not enumerate direct segments (CPUID '
            'Fn8000_0001 ECX[31])'], console)

    def test_primary_regions(self):
        linux = self.image(INIT)
        args = self.boot_args(linux, 'max,+dseg',
                              ['-device', 'isa-dseg-window'])
        seen = {}
        with self.machine(args, name='linux') as vm:
            ctl = vm.control_line()
            vm.launch()
            ctl.connect()

            def at(name, timeout=120):
                """Wait for the init's "WAIT NAME", stop the VM for
                query-dseg of every vCPU, reset the counters, go on."""
                vm.wait_console(rf'^WAIT {name}$', timeout)
                vm.cmd('stop')
                seen[name] = vm.counter_window()
                vm.cmd('cont')
                ctl.go()

            at('alternate-begin')
            at('alternate-end')
            # The preloaded GUPS marks its loop as a window.
            marks, seen['preload'], _, _ = vm.serve_window(120)
            for name in ('idle', 'unloaded'):
                at(name)
            vm.wait_console(r'^DONE', 60)
            self.assertEqual(vm.wait_exit(60), 0)
            console = vm.console()
        self.check_console(console)
        self.check_alternate(seen['alternate-end'])
        self.assertEqual(marks, [1, 2])
        self.check_preload(console, seen['preload'])
        for name in ('idle', 'unloaded'):
            for info in seen[name]:
                self.assertTrue(info['enabled'])
                self.assertEqual(info['guest-segment']['limit'], 0,
                                 f'{name}: cpu {info["cpu-index"]} armed')

    def test_redis_in_region(self):
        """Debian's redis, whose jemalloc takes its extents from the
        preload library's mmap, keeps its data set in a primary region and
        works: jemalloc's objects at the start of an extent are jemalloc's
        to free, not the library's."""
        linux = self.image(INIT_REDIS, programs=REDIS_PROGRAMS)
        with self.machine(self.boot_args(linux, 'max,+dseg'), name='linux',
                          qmp=False) as vm:
            vm.launch()
            vm.wait_console(r'^DONE', 600)
            self.assertEqual(vm.wait_exit(60), 0)
            console = vm.console()
        tail = '\n--- console ---\n' + console[-3000:]
        self.assertIn(f'libdseg-preload: primary region of {REDIS_REGION_MB} '
                      f'MiB at', console, tail)
        self.assertEqual(len(re.findall(r'^BENCH (SET|GET): ', console,
                                        re.M)), 2, tail)
        self.assertIn('REDIS-OK', console, tail)
        self.assertIn('REDIS-EXIT 0', console, tail)
        # The BGSAVE child wrote the whole data set from its copy.
        self.assertIn('REDIS-BGSAVE ok', console, tail)
        self.assertIn('REDIS-LOADED-CHECK 42', console, tail)
        self.assertRegex(console, r'(?m)^TROUBLE-BEGIN\nTROUBLE-END$', tail)
        keys = int(re.search(r'^REDIS-KEYS (\d+)$', console, re.M).group(1))
        self.assertIn(f'REDIS-LOADED-KEYS {keys}\n', console, tail)
        used = int(re.search(r'^REDIS-USED (\d+)$', console, re.M).group(1))
        outside = int(re.search(r'^REDIS-OUTSIDE-KB (\d+)$', console,
                                re.M).group(1)) << 10
        print(f'# redis: {keys} keys, used_memory {used >> 20} MiB, '
              f'{outside >> 20} MiB resident outside the region')
        # Most keys of the random key space were set, 4 KiB each.
        self.assertGreater(keys, REDIS_KEYS // 2, tail)
        self.assertGreater(used, keys * 4096, tail)
        self.assertLess(outside, used // 10, tail)

    def check_console(self, console):
        tail = '\n--- console ---\n' + console[-3000:]
        for marker in ('INSMOD-LOADED-WITHOUT-POOL', 'INSMOD-LOADED-RAM-POOL',
                       'INSMOD-LOADED-HOLE-POOL', 'INSMOD-FAILED',
                       'RMMOD-WHILE-LIVE'):
            self.assertNotIn(marker, console, tail)
        self.assertIn('RMMOD-OK', console, tail)
        # The pool is claimed, under the reservation of memmap=.
        self.assertEqual(re.findall(r'^IOMEM (.*)$', console, re.M),
                         [f'{POOL_BASE:08x}-{POOL_BASE + POOL_SIZE - 1:08x} '
                          f': dseg pool'], tail)
        self.assertEqual(re.findall(r'^FAIL .*$', console, re.M), [], tail)
        self.assertEqual(kernel_log(console), [
            'dseg: no memory pool: pass page-aligned pool_base= and '
            'pool_size= of memory reserved at boot (memmap=SIZE$BASE)',
            'dseg: pool 0x30000000+0x100000 is not reserved: the kernel '
            'manages some of it (reserve it with memmap=SIZE$BASE)',
            f'dseg: pool {HOLE:#x}+0x100000 is not memory: 0x0 bytes of it '
            f"are reserved RAM, the rest a hole or a device's (reserve "
            f'RAM with memmap=SIZE$BASE)',
            f'dseg: pool {POOL_BASE:#x}+{POOL_SIZE:#x} (65536 pages), '
            f'/dev/dseg ready',
            'dseg: unloaded'], tail)
        self.assertRegex(console, r'(?m)^TROUBLE-BEGIN\nTROUBLE-END$', tail)
        self.assertIn('TOUCH-OK', console, tail)
        m = re.search(r'^REGION (\S+) (\S+) (\S+)$', console, re.M)
        base, limit, phys = (int(x, 16) for x in m.groups())
        self.assertEqual(limit - base, TOUCH_MIB << 20)
        self.assertGreaterEqual(phys, POOL_BASE)
        self.assertLessEqual(phys + (limit - base), POOL_BASE + POOL_SIZE)
        for what in ('region starts zeroed', 'ioctl REGION', 'read back',
                     'second region refused with EBUSY',
                     'forked child has no region', "parent's region intact",
                     'after exec: no region', 'partial munmap refused',
                     'mprotect refused', 'no region after munmap',
                     'a new region after munmap, zeroed',
                     'two processes each saw only their own region',
                     'threads on several CPUs saw their own data',
                     'region held', 'region for mremap',
                     'mremap move refused', 'mremap grow refused',
                     'mremap shrink refused',
                     'region after mremap unchanged',
                     'region data after mremap intact',
                     "another process's region after mremap is elsewhere",
                     "region data after the other's writes",
                     'munmap after mremap frees the region',
                     'region for exec',
                     "exec after vfork: no access to the parent's region",
                     "posix_spawn: no access to the parent's region",
                     'region data after exec intact',
                     '/dev/dseg is 0660',
                     'unprivileged: a region over RLIMIT_MEMLOCK refused '
                     '(ENOMEM)',
                     'unprivileged: a region, and no physical address',
                     'unprivileged: four regions',
                     'unprivileged: a fifth region of one user refused '
                     '(ENOSPC)',
                     'unprivileged: RLIMIT_MEMLOCK 0 refused (EPERM)',
                     'open /dev/dseg',
                     f'mmap of {POOL_SIZE + (1 << 20):#x} bytes: '
                     f'ENOMEM',
                     'mmap of 0x100000000000 bytes: ENOMEM',
                     'mmap of 0x100000001000 bytes: ENOMEM',
                     'mmap of 0x200000001000 bytes: ENOMEM',
                     'no region after refused sizes'):
            self.assertRegex(console, rf'(?m)^ok {re.escape(what)}$', tail)
        self.assertIn('# 2 CPUs', console, tail)

    def check_preload(self, console, infos):
        tail = '\n--- console ---\n' + console[-3000:]
        self.assertIn('libdseg-preload: primary region of 64 MiB at',
                      console, tail)
        sums = re.findall(r'^GUPS mib 32 iters 65536 seed 1 table anon '
                          r'checksum (0x[0-9a-f]+)$', console, re.M)
        self.assertEqual(len(sums), 2, tail)
        self.assertEqual(sums[0], sums[1], tail)
        # The loop ran on one vCPU or moved between the two.
        fills = {p: sum(i['counters'][p]['fills'] for i in infos)
                 for p in model.PATHS}
        print(f'# preloaded GUPS window: {fills}')
        self.assertGreaterEqual(fills['native-direct'], GUPS_ITERS // 2)
        self.assertGreaterEqual(fills['native-direct'],
                                0.99 * sum(fills.values()), fills)

    def check_alternate(self, infos):
        # Each process fills its pages, yields to the other, whose arming
        # flushes the TLB, and reads them back: every turn refills every
        # page through the segment, which costs no reference.
        c = infos[0]['counters']
        direct = c['native-direct']['fills']
        print(f'# alternate window, cpu 0: native-direct {direct} fills, '
              f'native-walk {c["native-walk"]["fills"]}')
        self.assertGreaterEqual(direct, 2 * ALT_ROUNDS * ALT_MIB *
                                PAGES_PER_MIB, c)
        model.assert_counters(c, {'native-walk': ANY,
                                  'native-direct': {'fills': direct},
                                  'guest-segment-hits': direct},
                              'alternate window, cpu 0')


if __name__ == '__main__':
    testing.main()
