#!/usr/bin/env python3
"""Random segment, filter, VMCB and page-table states against the spec.

The guest (tests/guest/dseg_random.c) draws its cases from a seed: random
valid and invalid guest and VMM segments, escape-filter pages, VMCB
guest copies and not-present guest and nested entries, and random reads,
natively and in a VM.  It reports every WRMSR, every state and every
read's result, and stops at a checkpoint after each half of a case.  This
test replays the report on the model of the spec (qemu_dseg.model) and
checks, exactly, every WRMSR's outcome, every read's value or fault, and
each half-case's counters.

Seeds: QEMU_DSEG_SEED (default 1) and QEMU_DSEG_CASES (default 64);
a failure prints the command that replays it.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
import re

from qemu_dseg import guests, model, testing
from qemu_dseg.model import ANY, MASK64, PAGE_4K

# tests/guest/dseg_random.c's layout.
LIN_VA = 0x4000000000
TEST_PA = 0x18000000
HOST_PA = 0x1c000000
LOW_MAP = 0x10000000
PAGES = 64
MEM_TAG = 0x7a67000000000000
TAGGED = ((TEST_PA - PAGES * PAGE_4K, TEST_PA + 2 * PAGES * PAGE_4K),
          (HOST_PA - PAGES * PAGE_4K, HOST_PA + 2 * PAGES * PAGE_4K))
EXC_PF = 14

# Walk lengths: the image and the host's memory are mapped with 1 GiB
# guest pages and 2 MiB nested pages, the test pages with 4 KiB pages.
IMAGE_NATIVE = model.walk_len(4, model.PAGE_1G)
IMAGE_2D = model.arch_refs_nested(IMAGE_NATIVE, model.walk_len(4, model.PAGE_2M),
                                  model.walk_len(4, model.PAGE_2M))
PT_NESTED = model.walk_len(4, model.PAGE_2M)    # a guest table's gPA
FINAL_NESTED = model.walk_len(4, PAGE_4K)       # a test page's gPA
WALK = model.walk_len(4, PAGE_4K)


def lin_perm(i):
    return (i * 29 + 7) % PAGES


def npt_perm(j):
    return (j * 37 + 11) % PAGES


def tagged(pa):
    """The word the guest reads at PA: its tag, if the pools hold it."""
    assert any(lo <= pa < hi for lo, hi in TAGGED), f'untagged {pa:#x}'
    return MEM_TAG | pa


class Half:
    """One half of a case: what the model expects of its reads and its
    counter window."""

    def __init__(self):
        self.n = {path: 0 for path in model.PATHS}
        self.events = {e: 0 for e in model.EVENTS}

    def fill(self, path):
        self.n[path] += 1


class Model:
    """The guest's machine, replayed from its report."""

    def __init__(self, va_bits, pa_bits):
        self.g = model.Segment(True, va_bits, pa_bits)
        self.v = model.Segment(False, va_bits, pa_bits)
        self.va_bits, self.pa_bits = va_bits, pa_bits
        self.absent = {'lin': set(), 'npt': set()}
        self.inserted = []
        self.copy = None

    def native_read(self, half, la):
        pa = self.g.translate(la)
        if pa is not None:
            half.events['guest-segment-hits'] += 1
            half.fill('native-direct')
            return f'val {tagged(pa):#x}'
        i = (la - LIN_VA) // PAGE_4K
        if not 0 <= i < PAGES or i in self.absent['lin']:
            return f'exc {EXC_PF}'
        half.fill('native-walk')
        return f'val {tagged(TEST_PA + lin_perm(i) * PAGE_4K + la % PAGE_4K):#x}'

    def nested_walk(self, gpa):
        """hPA of GPA by the nested tables, or None (#NPF)."""
        if gpa < LOW_MAP:
            return gpa
        j = (gpa - TEST_PA) // PAGE_4K
        if not 0 <= j < PAGES or j in self.absent['npt']:
            return None
        return HOST_PA + npt_perm(j) * PAGE_4K + gpa % PAGE_4K

    def vm_read(self, half, la):
        base, limit, offset = self.copy
        if not model.segment_valid(base, limit, offset, True, self.va_bits,
                                   self.pa_bits):
            return 'invalid'
        guest_direct = base <= la < limit
        if guest_direct:
            half.events['guest-segment-hits'] += 1
            gpa = la + offset & MASK64
        else:
            i = (la - LIN_VA) // PAGE_4K
            if not 0 <= i < PAGES:
                return f'exc {EXC_PF}'
            gpa = TEST_PA + lin_perm(i) * PAGE_4K + la % PAGE_4K
        hpa = self.v.translate(gpa)
        if hpa is not None:
            half.events['filter-probes'] += 1
            words = model.filter_words(self.inserted)
            if model.filter_reports(words, gpa):
                half.events['filter-hits'] += 1
                hpa = None
            else:
                half.events['vmm-segment-hits'] += 1
        final_direct = hpa is not None
        if not final_direct:
            hpa = self.nested_walk(gpa)
            if hpa is None:
                return f'npf {gpa:#x}'
        half.fill({(False, False): 'walk-2d', (True, False): 'guest-direct',
                   (False, True): 'vmm-direct',
                   (True, True): 'dual-direct'}[guest_direct, final_direct])
        return f'val {tagged(hpa):#x}'


def expected_counters(half, counters, vm):
    """The counter set the model predicts for HALF.  The fills of the
    image (and of the host between VMRUNs) are counted too: their number
    is not the model's, but their refs per fill are, so the number is
    taken from COUNTERS."""
    n = half.n
    host_fills = max(counters['native-walk']['fills'] - n['native-walk'], 0)
    expect = dict(half.events)
    expect['native-walk'] = {
        'fills': host_fills + n['native-walk'],
        'guest-refs': IMAGE_NATIVE * host_fills + WALK * n['native-walk'],
        'arch-refs': IMAGE_NATIVE * host_fills + WALK * n['native-walk'],
    }
    expect['native-direct'] = {'fills': n['native-direct']}
    if not vm:
        return expect
    image_fills = max(counters['walk-2d']['fills'] - n['walk-2d'], 0)
    expect['walk-2d'] = {
        'fills': image_fills + n['walk-2d'],
        'guest-refs': IMAGE_NATIVE * image_fills + WALK * n['walk-2d'],
        'nested-refs': ANY,
        'arch-refs': IMAGE_2D * image_fills + model.arch_refs_nested(
            WALK, PT_NESTED, FINAL_NESTED) * n['walk-2d'],
    }
    expect['guest-direct'] = {
        'fills': n['guest-direct'],
        'nested-refs': FINAL_NESTED * n['guest-direct'],
        'arch-refs': FINAL_NESTED * n['guest-direct'],
    }
    expect['vmm-direct'] = {
        'fills': n['vmm-direct'],
        'guest-refs': WALK * n['vmm-direct'],
        'nested-refs': ANY,
        'arch-refs': model.arch_refs_nested(WALK, PT_NESTED, 0) *
        n['vmm-direct'],
    }
    expect['dual-direct'] = {'fills': n['dual-direct']}
    return expect


_LINE = re.compile(r'^R (.*?)\r?$', re.M)


class DsegRandomTest(testing.TestCase):

    maxDiff = None

    def test_random_cases(self):
        seed = int(os.environ.get('QEMU_DSEG_SEED', '1'))
        cases = int(os.environ.get('QEMU_DSEG_CASES', '64'))
        replay = (f'QEMU_DSEG_SEED={seed} QEMU_DSEG_CASES={cases} '
                  f'scripts/check.sh dseg_random')
        print(f'# seed {seed}, {cases} cases; replay: {replay}')
        windows = {}

        def at_checkpoint(name):
            windows[name] = vm.counter_window()[0]['counters']

        args = guests.args('dseg_random', append=f'seed={seed} cases={cases}',
                           cpu='max,+dseg', memory='512M')
        with self.machine(args, name='dseg_random') as vm:
            vm.launch()
            status = vm.serve_checkpoints(at_checkpoint, 300)
            console = vm.console()
        self.assert_guest_passed(status, console)
        self.check_report(_LINE.findall(console), windows, replay)

    def check_report(self, lines, windows, replay):
        cpu = re.fullmatch(r'cpu la57 (\d) maxphyaddr (\d+)', lines[0])
        self.assertIsNotNone(cpu, lines[:1])
        self.assertEqual(lines[-1], 'end', 'the guest did not finish')
        m = Model(57 if cpu.group(1) == '1' else 48, int(cpu.group(2)))
        half = Half()
        reads = wrmsrs = halves = 0
        seen = {}           # outcomes, to show what the seed covered
        for line in lines[1:-1]:
            case, what, *rest = line.split()
            where = f'{replay}\ncase {case}: {line}'
            if what == 'wrmsr':
                seg = m.g if rest[0] == 'G' else m.v
                reg = {'B': model.BASE, 'L': model.LIMIT,
                       'O': model.OFFSET}[rest[1]]
                accepted = seg.write(reg, int(rest[2], 16))
                self.assertEqual(int(rest[3]), 0 if accepted else 13, where)
                wrmsrs += 1
                if not accepted:
                    seen['#GP'] = seen.get('#GP', 0) + 1
            elif what == 'absent':
                m.absent[rest[0]].add(int(rest[1]))
            elif what == 'clear':
                m.inserted = []
            elif what == 'insert':
                m.inserted.append(int(rest[0], 16))
            elif what == 'vmcb':
                m.copy = tuple(int(x, 16) for x in rest)
            elif what == 'read':
                la, got = int(rest[1], 16), ' '.join(rest[2:])
                want = (m.native_read(half, la) if rest[0] == 'native'
                        else m.vm_read(half, la))
                self.assertEqual(got, want, where)
                reads += 1
                outcome = got.split()[0]
                seen[outcome] = seen.get(outcome, 0) + 1
            elif what == 'done':
                for k, v in list(half.n.items()) + list(half.events.items()):
                    seen[k] = seen.get(k, 0) + v
                name = f'case-{case}-{rest[0]}'
                self.assertIn(name, windows)
                counters = windows[name]
                model.assert_counters(
                    counters,
                    expected_counters(half, counters, rest[0] == 'vm'),
                    f'{replay}\n{name}')
                half = Half()
                m.absent = {'lin': set(), 'npt': set()}
                halves += 1
            else:
                self.fail(f'unknown report line: {line}')
        self.assertEqual(halves + 1, len(windows))     # and 'begin'
        print(f'# {wrmsrs} WRMSRs, {reads} reads and {halves} counter '
              f'windows matched the model')
        print('# covered: ' + ', '.join(f'{k} {v}' for k, v in
                                         sorted(seen.items())))


if __name__ == '__main__':
    testing.main()
