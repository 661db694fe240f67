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
sends no cpu/dseg subsection and loads into a CPU without it.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import shutil
import tempfile
import time
import unittest

import dseg_model
from dseg_model import MASK64, PAGE_1G, PAGE_4K
import harness

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
# A native walk of the image (1 GiB pages, 4-level paging).
IMAGE_WALK = dseg_model.walk_len(4, PAGE_1G)
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
    info = vm.qmp('query-migrate')
    return info if info.get('status') in ('completed', 'failed') else None


def wait_checkpoint(vm, name):
    """Wait until the guest stops at checkpoint NAME with vCPU 0 halted."""
    vm.wait_console(rf'^CHECKPOINT {name}$', TIMEOUT)
    wait_for(f'the vCPU to halt at {name}', vm.vcpu_halted)


def resume(vm):
    """Leave a checkpoint (lib/libguest.h): the NMI that wakes the guest."""
    vm.qmp('inject-nmi')


def save(vm, path):
    """Stop VM and migrate it to the file PATH; return query-migrate."""
    vm.qmp('stop')
    vm.qmp('migrate', uri=f'file:{path}')
    return wait_for('the migration to the file', lambda: migration_done(vm))


def counters_zero(counters):
    """Whether every path and event counter is 0."""
    return all(counters[p] == dict.fromkeys(
        ('fills', 'guest-refs', 'nested-refs', 'arch-refs'), 0)
        for p in dseg_model.PATHS) and all(
        counters[e] == 0 for e in ('guest-segment-hits', 'vmm-segment-hits',
                                   'filter-probes', 'filter-hits'))


def registers(info):
    """The migrated part of a DsegCpuInfo: everything but the counters."""
    return {k: v for k, v in info.items() if k != 'counters'}


class DsegMigrateTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='qemu-dseg-migrate-')
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.stream = os.path.join(cls.tmp, 'dseg.mig')
        cls.args = harness.guest_args(GUEST, append='mode=full', cpu=CPU)
        with harness.Machine(cls.args, name='source') as vm:
            vm.launch()
            wait_checkpoint(vm, 'begin-write')
            vm.qmp('dseg-reset-counters')
            resume(vm)
            wait_checkpoint(vm, 'migrate')
            cls.source_info = vm.qmp('query-dseg')[0]
            cls.source_migration = save(vm, cls.stream)
            cls.source_status = vm.qmp('query-status')['status']
            cls.source_console = vm.console()
            cls.source_exit = vm.quit(TIMEOUT)

    @staticmethod
    def destination(cpu, name, append='mode=full'):
        """A QEMU that waits for an incoming migration, then stays paused."""
        args = harness.guest_args(GUEST, append=append, cpu=cpu)
        return harness.Machine(args + ['-S', '-incoming', 'defer'], name=name)

    @staticmethod
    def load(vm, stream):
        """Launch destination VM on STREAM; return the final query-migrate."""
        vm.launch()
        vm.qmp('migrate-incoming', uri=f'file:{stream}',
               **{'exit-on-error': False})
        return wait_for(f'{vm.name} to load the stream',
                        lambda: migration_done(vm))

    def assert_load_fails(self, cpu, *phrases):
        with self.destination(cpu, 'bad-destination') as vm:
            info = self.load(vm, self.stream)
            self.assertEqual(info['status'], 'failed', vm.describe())
            self.assertNotEqual(vm.qmp('query-status')['status'], 'running')
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
            'words': dseg_model.filter_words(FILTER_PAGES)})
        # Window "write": one store through the segment per page.
        c = info['counters']
        self.assertEqual(c['native-direct'], {
            'fills': SEG_PAGES, 'guest-refs': 0, 'nested-refs': 0,
            'arch-refs': 0})
        self.assertEqual(c['guest-segment-hits'], SEG_PAGES)
        with open(self.stream, 'rb') as f:
            self.assertIn(SUBSECTION, f.read())

    def test_round_trip(self):
        with self.destination(CPU, 'destination') as vm:
            info = self.load(vm, self.stream)
            self.assertEqual(info['status'], 'completed', vm.describe())
            self.assertEqual(vm.qmp('query-status')['status'], 'paused')
            loaded = vm.qmp('query-dseg')[0]
            self.assertEqual(registers(loaded), registers(self.source_info))
            self.assertTrue(counters_zero(loaded['counters']),
                            loaded['counters'])

            windows = {}

            def at_checkpoint(name):
                windows[name] = vm.qmp('query-dseg')[0]
                vm.qmp('dseg-reset-counters')

            vm.qmp('cont')
            resume(vm)
            status = vm.serve_checkpoints(at_checkpoint, TIMEOUT)
            console = self.source_console + vm.console()
        harness.assert_guest_passed(self, status, console)
        self.assertEqual(list(windows), ['readback'])
        # From the load to "readback": one load through the segment per
        # page, the rest is the image's own code and data.
        c = windows['readback']['counters']
        self.assertEqual(c['native-direct'], {
            'fills': SEG_PAGES, 'guest-refs': 0, 'nested-refs': 0,
            'arch-refs': 0})
        self.assertEqual(c['guest-segment-hits'], SEG_PAGES)
        walk = c['native-walk']
        self.assertEqual((walk['guest-refs'], walk['nested-refs'],
                          walk['arch-refs']),
                         (IMAGE_WALK * walk['fills'], 0,
                          IMAGE_WALK * walk['fills']))
        self.assertEqual(registers(windows['readback']),
                         registers(self.source_info))

    def test_destination_without_dseg(self):
        self.assert_load_fails('max', 'does not have the dseg feature')

    def test_destination_other_filter_bits(self):
        self.assert_load_fails(CPU + ',dseg-filter-bits=512', 'filter',
                               '512')

    def test_destination_other_filter_hashes(self):
        self.assert_load_fails(CPU + ',dseg-filter-hashes=6', 'filter')

    def test_unused_feature(self):
        """A VM that never used DSEG loads into a CPU without it."""
        stream = os.path.join(self.tmp, 'idle.mig')
        args = harness.guest_args(GUEST, append='mode=idle', cpu=CPU)
        with harness.Machine(args, name='idle-source') as vm:
            vm.launch()
            wait_checkpoint(vm, 'idle')
            self.assertTrue(vm.qmp('query-dseg')[0]['enabled'])
            self.assertEqual(save(vm, stream)['status'], 'completed')
            source_console = vm.console()
        with open(stream, 'rb') as f:
            self.assertNotIn(SUBSECTION, f.read())

        with self.destination('max', 'idle-destination', 'mode=idle') as vm:
            info = self.load(vm, stream)
            self.assertEqual(info['status'], 'completed', vm.describe())
            loaded = vm.qmp('query-dseg')[0]
            self.assertFalse(loaded['enabled'])
            for seg in ('guest-segment', 'host-guest-segment',
                        'vmm-segment'):
                self.assertEqual(loaded[seg], ZERO_SEGMENT, seg)
            self.assertEqual(loaded['filter']['words'], [0] * 4)
            vm.qmp('cont')
            resume(vm)
            status = vm.wait_guest_exit(TIMEOUT)
            console = source_console + vm.console()
        harness.assert_guest_passed(self, status, console)
        self.assertIn('# before: dseg on', console)
        self.assertIn('# after: dseg off', console)


if __name__ == '__main__':
    harness.main()
