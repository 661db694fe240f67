#!/usr/bin/env python3
"""DSEG MSRs: enumeration, validity rules, access rights, escape filter.

The guest (tests/guest/dseg_msr.c) checks the MSR rules of
docs/specs/direct-segments.rst in host mode and reports TAP; at its
checkpoint "state" this test compares query-dseg with the registers and
filter the guest programmed, computing the filter words from the hash
formula.  Also checks the CPU properties and the QMP commands' errors.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import re
import subprocess

from qemu_dseg import config, guests, model, testing

# What dseg_msr.c programs before its checkpoint "state".
STATE_G = {'base': 0xffff888000000000, 'limit': 0xffff888040000000,
           'offset': 0x0000778040000000}
STATE_V = {'base': 0x40000000, 'limit': 0x80000000, 'offset': 0xc0000000}
STATE_INSERTS = (0x40001000, 0x12345000)


class DsegMsrTest(testing.TestCase):

    def run_msr(self, cpu, bits=256, hashes=4):
        append = f'filter_bits={bits} filter_hashes={hashes}'
        status, console, windows = self.run_guest_windows(
            'dseg_msr', append=append, cpu=cpu)
        self.assert_guest_passed(status, console)
        state = windows['state']
        self.assertTrue(state['enabled'])
        self.assertFalse(state['guest-mode'])
        self.assertEqual(state['guest-segment'], STATE_G)
        self.assertEqual(state['vmm-segment'], STATE_V)
        self.assertEqual(state['host-guest-segment'],
                         {'base': 0, 'limit': 0, 'offset': 0})
        self.assertEqual(state['filter'], {
            'bits': bits, 'hashes': hashes,
            'words': model.filter_words(STATE_INSERTS, bits, hashes)})
        return console

    def test_default(self):
        console = self.run_msr('max,+dseg')
        self.assertIn('MAXPHYADDR 40, canonical width 57', console)

    def test_spec_filter_example(self):
        # docs/specs/direct-segments.rst: the bits of gPA 0x40001000.
        self.assertEqual(sorted(model.filter_hashes(0x40001000, 256, 4)),
                         [123, 131, 219, 232])
        self.assertEqual(model.filter_hashes(0x12345000, 256, 4),
                         [18, 226, 8, 208])
        self.assertEqual(model.multiplier(0), 0xe220a8397b1dcdaf)
        self.assertEqual(model.multiplier(7), 0xc584133ac916ab3d)

    def test_canonical_width_48(self):
        console = self.run_msr('max,+dseg,-la57')
        self.assertIn('canonical width 48', console)

    def test_maxphyaddr_36(self):
        console = self.run_msr('max,+dseg,phys-bits=36')
        self.assertIn('MAXPHYADDR 36', console)

    def test_filter_64_bits_1_hash(self):
        self.run_msr('max,+dseg,dseg-filter-bits=64,dseg-filter-hashes=1',
                     64, 1)

    def test_filter_1024_bits_6_hashes(self):
        self.run_msr('max,dseg=on,dseg-filter-bits=1024,'
                     'dseg-filter-hashes=6', 1024, 6)

    def test_filter_4096_bits_8_hashes(self):
        self.run_msr('max,+dseg,dseg-filter-bits=4096,dseg-filter-hashes=8',
                     4096, 8)

    def run_feature_off(self, cpu):
        status, console = self.run_guest('dseg_msr', cpu=cpu,
                                            append='dseg=0')
        self.assert_guest_passed(status, console)

    def test_feature_off_by_default(self):
        self.run_feature_off('max')

    def test_feature_off_minus(self):
        self.run_feature_off('max,-dseg')

    def test_feature_off_property(self):
        self.run_feature_off('max,dseg=off')

    def test_bad_geometry(self):
        accepted = []
        for prop in ('dseg-filter-bits=32', 'dseg-filter-bits=8192',
                     'dseg-filter-bits=100', 'dseg-filter-hashes=0',
                     'dseg-filter-hashes=9'):
            for dseg in ('on', 'off'):
                cpu = f'max,dseg={dseg},{prop}'
                run = subprocess.run(
                    [config.QEMU, '-M', 'q35', '-nodefaults', '-display',
                     'none', '-S', '-cpu', cpu],
                    stdin=subprocess.DEVNULL, capture_output=True,
                    text=True, timeout=30)
                if (run.returncode == 0 or
                        prop.split('=')[0] not in run.stderr):
                    accepted.append((cpu, run.returncode, run.stderr))
        self.assertEqual(accepted, [], 'bad geometries not refused')

    def test_qmp(self):
        args = guests.args('dseg_msr', cpu='max,+dseg',
                                  extra_args=['-S'])
        with self.machine(args, name='qmp') as vm:
            vm.launch()
            info = vm.cmd('query-dseg')
            self.assertEqual(len(info), 1)
            self.assertEqual(info[0]['cpu-index'], 0)
            self.assertEqual(set(info[0]['counters']),
                             set(model.PATHS) | set(model.EVENTS))
            self.assertEqual(vm.cmd('dseg-reset-counters', cpu_index=0),
                             {})
            self.assertEqual(vm.cmd('dseg-reset-counters'), {})
            err = vm.qmp('dseg-reset-counters', cpu_index=1)
            self.assertEqual(err['error']['class'], 'GenericError')

    def test_info_dseg_layout_is_the_specs(self):
        # The spec's 'info dseg' example and the real command print lines
        # of the same shapes: numbers, the mode and "(empty)" aside.
        def shapes(lines):
            out = set()
            for line in lines:
                line = re.sub(r'\b(guest|host) mode\b', 'MODE', line)
                line = line.replace('(empty)', '')
                line = re.sub(r'0x[0-9a-f]+|\b\d+(\.\d+)?\b|(?<= )-(?= |$)',
                              'N', line)
                out.add(' '.join(line.split()))
            return out

        with open(os.path.join(config.REPO, 'docs', 'specs',
                               'direct-segments.rst')) as f:
            spec = f.read()
        example = spec[spec.index('   (qemu) info dseg\n'):]
        example = example[:example.index('\n\n')].splitlines()[1:]
        args = guests.args('dseg_msr', cpu='max,+dseg', extra_args=['-S'])
        with self.machine(args, name='hmp') as vm:
            vm.launch()
            text = vm.cmd('human-monitor-command',
                          command_line='info dseg')
        live = shapes(text.splitlines())
        want = shapes(line for line in example
                      if "host's guest segment" not in line)
        self.assertEqual(live, want, text)

    def test_qmp_feature_off(self):
        args = guests.args('dseg_msr', cpu='max', extra_args=['-S'])
        with self.machine(args, name='qmp') as vm:
            vm.launch()
            info = vm.cmd('query-dseg')[0]
            self.assertFalse(info['enabled'])
            self.assertEqual(info['filter']['words'], [0, 0, 0, 0])


if __name__ == '__main__':
    testing.main()
