#!/usr/bin/env python3
"""Direct-segment state across a migration to a file and back.

The guest (tests/guest/dseg_migrate.c) arms a guest segment in host mode
and a VMM segment, inserts pages into the escape filter, stores a pattern
through the guest segment and stops at checkpoint "migrate".  The test
stops that VM, migrates it to a file (the equivalent of savevm) and loads
the file into a new QEMU with the same command line (loadvm): query-dseg
must show the same registers and filter words, with counters at zero.
Resumed there, the guest reads the pattern back through the segment, with
exactly one native-direct fill per page, and checks its registers, the
filter and new stores through the segment itself (TAP).

Loading into a CPU without the feature, or with another filter geometry,
must fail with an error that names dseg; a VM that never used the feature
sends no cpu/dseg subsection and loads into a CPU without it, while one
stopped in guest mode sends it with every register zero (the saved host
copy is state) and runs on after the load.  Hostile
copies of the stream (a filter of 2^255 bits, invalid segments, a saved
host copy in host mode, filter bits beyond the geometry) must fail the
same way and leave the destination running with its DSEG state intact.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import time

from qemu_dseg import guests, model, testing
from qemu_dseg.machine import Machine
from qemu_dseg.model import ANY, MASK64, PAGE_1G, PAGE_4K

GUEST = 'dseg_migrate'
CPU = 'max,+dseg'

# The guest's DSEG state (tests/guest/dseg_migrate.c).
SEG_BASE = 0xffff888000000000
SEG_PAGES = 16
TGT_PA = 0x0a000000
GUEST_SEGMENT = {'base': SEG_BASE, 'limit': SEG_BASE + SEG_PAGES * PAGE_4K,
                 'offset': (TGT_PA - SEG_BASE) & MASK64}
VMM_SEGMENT = {'base': 0x40000000, 'limit': 0x80000000,
               'offset': 0xc0000000}
FILTER_PAGES = (0x40001000, 0x40005000, 0x12345000)
ZERO_SEGMENT = {'base': 0, 'limit': 0, 'offset': 0}

# The subsection in the migration stream: QEMU_VM_SUBSECTION (5), the
# length of the name, the name and the version (1), big-endian.
SUBSECTION = b'\x05\x08cpu/dseg\x00\x00\x00\x01'
# Its fields' length: three segments and the saved flag, the geometry,
# and the filter words of the largest geometry (2^12 bits).
SUBSECTION_FIELDS = 3 * 24 + 1 + 2 + 8 * 64
# A native walk of the image (1 GiB pages, 4-level paging).
IMAGE_WALK = model.walk_len(4, PAGE_1G)
TIMEOUT = 30


def wait_for(what, poll, timeout=TIMEOUT):
    """Call POLL until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = poll()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout} s waiting for '
                                 f'{what}')
        time.sleep(0.05)


def migration_done(vm):
    """query-migrate once it is completed or failed, else None."""
    info = vm.cmd('query-migrate')
    return info if info.get('status') in ('completed', 'failed') else None


def save(vm, path):
    """Stop VM and migrate it to the file PATH; return query-migrate."""
    vm.cmd('stop')
    vm.cmd('migrate', uri=f'file:{path}')
    return wait_for('the migration to the file', lambda: migration_done(vm))


def registers(info):
    """The migrated part of a DsegCpuInfo: everything but the counters."""
    return {k: v for k, v in info.items() if k != 'counters'}


class DsegMigrateTest(testing.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stream = os.path.join(cls.logs, 'dseg.mig')
        cls.args = guests.args(GUEST, append='mode=full', cpu=CPU)
        with Machine(cls.args, name='source', log_dir=cls.logs) as vm:
            vm.launch()
            vm.wait_checkpoint('begin-write', TIMEOUT)
            vm.cmd('dseg-reset-counters')
            vm.resume()
            vm.wait_checkpoint('migrate', TIMEOUT)
            cls.source_info = vm.cmd('query-dseg')[0]
            cls.source_migration = save(vm, cls.stream)
            cls.source_status = vm.cmd('query-status')['status']
            cls.source_console = vm.console()
            cls.source_exit = vm.quit(TIMEOUT)

    def destination(self, cpu, name, append='mode=full'):
        """A QEMU that waits for an incoming migration, then stays paused."""
        args = guests.args(GUEST, append=append, cpu=cpu)
        return self.machine(args + ['-S', '-incoming', 'defer'], name=name)

    @staticmethod
    def load(vm, stream):
        """Launch destination VM on STREAM; return the final query-migrate."""
        vm.launch()
        vm.cmd('migrate-incoming', uri=f'file:{stream}',
               exit_on_error=False)
        return wait_for(f'{vm.name} to load the stream',
                        lambda: migration_done(vm))

    def assert_load_fails(self, cpu, *phrases):
        with self.destination(cpu, 'bad-destination') as vm:
            info = self.load(vm, self.stream)
            self.assertEqual(info['status'], 'failed', vm.describe())
            self.assertNotEqual(vm.cmd('query-status')['status'], 'running')
            error = vm.output() + info.get('error-desc', '')
            for phrase in ('dseg',) + phrases:
                self.assertIn(phrase, error)

    def test_source(self):
        self.assertEqual(self.source_migration['status'], 'completed')
        self.assertEqual(self.source_status, 'postmigrate')
        self.assertEqual(self.source_exit, 0)
        info = self.source_info
        self.assertTrue(info['enabled'])
        self.assertFalse(info['guest-mode'])
        self.assertEqual(info['guest-segment'], GUEST_SEGMENT)
        self.assertEqual(info['host-guest-segment'], ZERO_SEGMENT)
        self.assertEqual(info['vmm-segment'], VMM_SEGMENT)
        self.assertEqual(info['filter'], {
            'bits': 256, 'hashes': 4,
            'words': model.filter_words(FILTER_PAGES)})
        # Window "write": one store through the segment per page.
        model.assert_counters(info['counters'], {
            'native-walk': ANY, 'native-direct': {'fills': SEG_PAGES},
            'guest-segment-hits': SEG_PAGES}, 'write')
        with open(self.stream, 'rb') as f:
            self.assertIn(SUBSECTION, f.read())

    def test_round_trip(self):
        with self.destination(CPU, 'destination') as vm:
            info = self.load(vm, self.stream)
            self.assertEqual(info['status'], 'completed', vm.describe())
            self.assertEqual(vm.cmd('query-status')['status'], 'paused')
            loaded = vm.cmd('query-dseg')[0]
            self.assertEqual(registers(loaded), registers(self.source_info))
            model.assert_counters(loaded['counters'], {}, 'loaded')

            windows = {}

            def at_checkpoint(name):
                windows[name] = vm.counter_window()[0]

            vm.cmd('cont')
            vm.resume()
            status = vm.serve_checkpoints(at_checkpoint, TIMEOUT)
            console = self.source_console + vm.console()
        self.assert_guest_passed(status, console)
        self.assertEqual(list(windows), ['readback'])
        # From the load to "readback": one load through the segment per
        # page, the rest is the image's own code and data.
        c = windows['readback']['counters']
        walk = c['native-walk']['fills']
        model.assert_counters(c, {
            'native-walk': {'fills': walk, 'guest-refs': IMAGE_WALK * walk,
                            'arch-refs': IMAGE_WALK * walk},
            'native-direct': {'fills': SEG_PAGES},
            'guest-segment-hits': SEG_PAGES}, 'readback')
        self.assertEqual(registers(windows['readback']),
                         registers(self.source_info))

    def assert_hostile_stream_refused(self, name, edit, *phrases,
                                      stream=None, append='mode=full'):
        """Load a copy of STREAM (default: the class's) whose subsection
        EDIT(bytearray, offset of its first field) changed into a guest
        started with APPEND: the load fails naming dseg and PHRASES, and
        QEMU runs on with its DSEG state as it was."""
        with open(stream or self.stream, 'rb') as f:
            data = bytearray(f.read())
        at = data.index(SUBSECTION) + len(SUBSECTION)
        edit(data, at)
        stream = os.path.join(self.logs, f'{name}.mig')
        with open(stream, 'wb') as f:
            f.write(data)
        with self.destination(CPU, name, append) as vm:
            vm.launch()
            before = vm.cmd('query-dseg')[0]
            vm.cmd('migrate-incoming', uri=f'file:{stream}',
                   exit_on_error=False)
            info = wait_for(f'{name} to load the stream',
                            lambda: migration_done(vm))
            self.assertEqual(info['status'], 'failed', vm.describe())
            error = vm.output() + info.get('error-desc', '')
            for phrase in ('dseg',) + phrases:
                self.assertIn(phrase, error)
            # The DSEG state is as it was; the CPU's mode is upstream's
            # state, loaded before the subsection.
            after = vm.cmd('query-dseg')[0]
            del after['guest-mode'], before['guest-mode']
            self.assertEqual(registers(after), registers(before))
            self.assertEqual(after['filter'], {'bits': 256, 'hashes': 4,
                                               'words': [0, 0, 0, 0]})

    # Offsets in the subsection (big-endian): guest segment 0, host copy
    # 24, saved flag 48, VMM segment 49, filter log2 73, hashes 74, words
    # from 75.
    def test_hostile_filter_geometry(self):
        def edit(data, at):
            data[at + 73] = 255
        self.assert_hostile_stream_refused('hostile-geometry', edit,
                                           'filter', '2^255')

    def test_hostile_vmm_segment(self):
        def edit(data, at):
            data[at + 49:at + 57] = (0x40000800).to_bytes(8, 'big')
        self.assert_hostile_stream_refused('hostile-vmm', edit,
                                           'VMM segment')

    def test_hostile_guest_segment(self):
        def edit(data, at):
            data[at + 8:at + 16] = (SEG_BASE - PAGE_4K).to_bytes(8, 'big')
        self.assert_hostile_stream_refused('hostile-guest', edit,
                                           'guest segment')

    def test_hostile_host_copy_in_host_mode(self):
        def edit(data, at):
            data[at + 48] = 1
        self.assert_hostile_stream_refused('hostile-host-copy', edit,
                                           'host mode')

    def test_hostile_filter_words(self):
        def edit(data, at):
            word = at + 75 + 8 * 10
            data[word:word + 8] = (1).to_bytes(8, 'big')
        self.assert_hostile_stream_refused('hostile-words', edit,
                                           'beyond its geometry')

    def test_destination_without_dseg(self):
        self.assert_load_fails('max', 'does not have the dseg feature')

    def test_destination_other_filter_bits(self):
        self.assert_load_fails(CPU + ',dseg-filter-bits=512', 'filter',
                               '512')

    def test_destination_other_filter_hashes(self):
        self.assert_load_fails(CPU + ',dseg-filter-hashes=6', 'filter')

    def test_unused_feature(self):
        """A VM that never used DSEG loads into a CPU without it."""
        stream = os.path.join(self.logs, 'idle.mig')
        args = guests.args(GUEST, append='mode=idle', cpu=CPU)
        with self.machine(args, name='idle-source') as vm:
            vm.launch()
            vm.wait_checkpoint('idle', TIMEOUT)
            self.assertTrue(vm.cmd('query-dseg')[0]['enabled'])
            self.assertEqual(save(vm, stream)['status'], 'completed')
            source_console = vm.console()
        with open(stream, 'rb') as f:
            self.assertNotIn(SUBSECTION, f.read())

        with self.destination('max', 'idle-destination', 'mode=idle') as vm:
            info = self.load(vm, stream)
            self.assertEqual(info['status'], 'completed', vm.describe())
            loaded = vm.cmd('query-dseg')[0]
            self.assertFalse(loaded['enabled'])
            for seg in ('guest-segment', 'host-guest-segment',
                        'vmm-segment'):
                self.assertEqual(loaded[seg], ZERO_SEGMENT, seg)
            self.assertEqual(loaded['filter']['words'], [0] * 4)
            vm.cmd('cont')
            vm.resume()
            status = vm.wait_guest_exit(TIMEOUT)
            console = source_console + vm.console()
        self.assert_guest_passed(status, console)
        self.assertIn('# before: dseg on', console)
        self.assertIn('# after: dseg off', console)


    def guest_mode_stream(self):
        """A stream of the guest in guest mode with every register zero:
        (path, the source's query-dseg, its console)."""
        stream = os.path.join(self.logs, 'vm.mig')
        args = guests.args(GUEST, append='mode=vm', cpu=CPU)
        with self.machine(args, name='vm-source') as vm:
            vm.launch()
            vm.wait_checkpoint('vm-idle', TIMEOUT)
            source = vm.cmd('query-dseg')[0]
            self.assertTrue(source['guest-mode'])
            for seg in ('guest-segment', 'host-guest-segment',
                        'vmm-segment'):
                self.assertEqual(source[seg], ZERO_SEGMENT, seg)
            self.assertEqual(save(vm, stream)['status'], 'completed')
            return stream, source, vm.console()

    def test_hostile_guest_mode_without_host_copy(self):
        """A CPU in guest mode comes with a saved host copy: a stream
        whose subsection says it has none, or that has no subsection, is
        refused."""
        stream, _, _ = self.guest_mode_stream()

        def no_copy(data, at):
            data[at + 48] = 0

        def no_subsection(data, at):
            del data[at - len(SUBSECTION):at + SUBSECTION_FIELDS]

        for name, edit in (('no-host-copy', no_copy),
                           ('no-subsection', no_subsection)):
            self.assert_hostile_stream_refused(
                name, edit, 'guest mode', 'no saved host copy',
                stream=stream, append='mode=vm')

    def test_guest_mode_sends_subsection(self):
        """A CPU in guest mode sends cpu/dseg even with every register
        zero: the saved host copy is state; and it loads and runs on."""
        stream, source, source_console = self.guest_mode_stream()
        with open(stream, 'rb') as f:
            self.assertIn(SUBSECTION, f.read())

        with self.destination(CPU, 'vm-destination', 'mode=vm') as vm:
            info = self.load(vm, stream)
            self.assertEqual(info['status'], 'completed', vm.describe())
            self.assertEqual(registers(vm.cmd('query-dseg')[0]),
                             registers(source))
            vm.cmd('cont')
            vm.resume()
            status = vm.wait_guest_exit(TIMEOUT)
            console = source_console + vm.console()
        self.assert_guest_passed(status, console)


if __name__ == '__main__':
    testing.main()
