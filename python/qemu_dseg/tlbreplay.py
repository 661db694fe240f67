"""Replay a trace of the modelled TLB hierarchy on an independent model.

The fork's model (target/i386/dseg-tlb-model.c) records every operation
on a vCPU's TLBs, page walk cache and nested TLB with the trace events
dseg_tlb_* (QEMU's log backend: ``-trace 'dseg_tlb_*' -D FILE``).  This
module implements the same rules again, written from the specification
(docs/specs/direct-segments.rst, "The modelled translation hierarchy")
and docs/devel/dseg-tlb-model.rst, not from the C: every set is a list of
its entries, most recently used first.  replay() applies the trace's
fills and invalidations and checks that every lookup, walk-cache read
and nested-TLB lookup has the outcome that the fork recorded.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import dataclasses
import re

SIZES = ('4k', '2m', '1g')
HIT_L1, HIT_L2, MISS = 0, 1, 2
PCID_BITS = 12


def size_shift(size):
    return 12 + 9 * size


def asid(ctx):
    return ctx >> PCID_BITS


@dataclasses.dataclass
class Array:
    entries: int
    ways: int
    sizes: frozenset

    def __post_init__(self):
        count = self.entries // self.ways if self.entries else 0
        self.sets = [[] for _ in range(count)]

    def set_of(self, key):
        return self.sets[key % len(self.sets)]


@dataclasses.dataclass
class Entry:
    key: int
    size: int
    ctx: int
    glob: bool = False
    direct: bool = False


def parse_array(words, tlb):
    count, _, sizes = words.partition(':')
    entries, _, ways = count.partition('x')
    entries = int(entries)
    sizes = frozenset(SIZES.index(s) for s in sizes.split('+')) if tlb \
        else frozenset(range(3))
    return Array(entries, int(ways) if ways else entries, sizes)


def parse_geometry(words):
    """{part: (arrays, smash) for TLBs, Array or None for the caches}."""
    geom = {'l1d': ([], False), 'l1i': ([], False), 'l2': ([], False),
            'l2i': ([], False), 'pwc': None, 'ntlb': None}
    for part in words.split(','):
        key, _, value = part.partition('=')
        if key in ('pwc', 'ntlb'):
            geom[key] = None if value == '0' else parse_array(value, False)
            continue
        items = [] if value == '0' else value.split('/')
        smash = bool(items) and items[-1] == 'smash'
        if smash:
            items.pop()
        geom[key] = ([parse_array(a, True) for a in items], smash)
    return geom


class Hierarchy:
    """One vCPU's TLBs and walk caches."""

    def __init__(self, words):
        g = parse_geometry(words)
        self.tlbs = {k: g[k] for k in ('l1d', 'l1i', 'l2', 'l2i')}
        self.pwc = g['pwc']
        self.ntlb = g['ntlb']

    # A TLB: its arrays probed in order, each at every size it holds.

    @staticmethod
    def matches(e, ctx):
        return e.ctx == ctx or (e.glob and asid(e.ctx) == asid(ctx))

    def find(self, part, ctx, addr):
        for a in self.tlbs[part][0]:
            for size in sorted(a.sizes):
                key = addr >> size_shift(size)
                s = a.set_of(key)
                for i, e in enumerate(s):
                    if e.key == key and e.size == size and \
                            self.matches(e, ctx):
                        s.insert(0, s.pop(i))
                        return e
        return None

    @staticmethod
    def insert(a, new):
        s = a.set_of(new.key)
        for i, e in enumerate(s):
            if (e.key, e.size, e.ctx) == (new.key, new.size, new.ctx):
                del s[i]
                break
        else:
            if len(s) == a.ways:
                s.pop()
        s.insert(0, new)

    def fill_tlb(self, part, ctx, addr, size, glob, direct):
        arrays, smash = self.tlbs[part]
        for s in range(size, -1, -1):
            for a in arrays:
                if s in a.sizes:
                    self.insert(a, Entry(addr >> size_shift(s), s, ctx, glob,
                                         direct))
                    return
            if not smash:
                return

    def l2_of(self, fetch):
        return 'l2i' if fetch and self.tlbs['l2i'][0] else 'l2'

    def lookup(self, fetch, ctx, addr):
        l1 = 'l1i' if fetch else 'l1d'
        if self.find(l1, ctx, addr):
            return HIT_L1
        e = self.find(self.l2_of(fetch), ctx, addr)
        if not e:
            return MISS
        self.fill_tlb(l1, e.ctx, addr, e.size, e.glob, e.direct)
        return HIT_L2

    def fill(self, fetch, ctx, addr, size, glob, l2, direct):
        if l2:
            self.fill_tlb(self.l2_of(fetch), ctx, addr, size, glob, direct)
        self.fill_tlb('l1i' if fetch else 'l1d', ctx, addr, size, glob,
                      direct)

    # The walk caches: exact tags; the nested TLB's is the ASID's.

    def cache_find(self, a, key, size, ctx):
        if a is None:
            return False
        s = a.set_of(key)
        for i, e in enumerate(s):
            if (e.key, e.size, e.ctx) == (key, size, ctx):
                s.insert(0, s.pop(i))
                return True
        return False

    def pwc_read(self, ctx, pa):
        if self.cache_find(self.pwc, pa >> 3, 0, ctx):
            return True
        if self.pwc is not None:
            self.insert(self.pwc, Entry(pa >> 3, 0, ctx))
        return False

    def ntlb_lookup(self, ctx, gpa):
        nctx = asid(ctx) << PCID_BITS
        return any(self.cache_find(self.ntlb, gpa >> size_shift(s), s, nctx)
                   for s in range(3))

    def ntlb_fill(self, ctx, gpa, size):
        if self.ntlb is not None:
            self.insert(self.ntlb, Entry(gpa >> size_shift(size), size,
                                         asid(ctx) << PCID_BITS))

    # Invalidations.

    def drop(self, tlb_rule, cache_rule, ntlb_rule):
        arrays = [a for arrays, _ in self.tlbs.values() for a in arrays]
        for rule, group in ((tlb_rule, arrays), (cache_rule, [self.pwc]),
                            (ntlb_rule, [self.ntlb])):
            for a in group:
                if a is None or rule is None:
                    continue
                for s in a.sets:
                    s[:] = [e for e in s if not rule(e)]

    def flush(self, what, ctx, addr, end):
        if what == 'nonglobal':
            self.drop(lambda e: e.ctx == ctx and not e.glob,
                      lambda e: e.ctx == ctx, None)
        elif what == 'page':
            self.drop(lambda e: self.matches(e, ctx) and
                      e.key == addr >> size_shift(e.size),
                      lambda e: e.ctx == ctx, None)
        elif what == 'asid':
            def same(e):
                return asid(e.ctx) == asid(ctx)
            self.drop(same, same, same)
        elif what == 'direct':
            self.drop(lambda e: e.direct, None, None)
        elif what == 'segment':
            # A guest segment's change: what it made, and what the
            # address space's ASID maps in its new range [addr, end).
            def segment(e):
                first = e.key << size_shift(e.size)
                last = first + (1 << size_shift(e.size)) - 1
                return e.direct or (asid(e.ctx) == asid(ctx) and
                                    first < end and last >= addr)
            self.drop(segment, None, None)
        elif what == 'all':
            self.drop(lambda e: True, lambda e: True, lambda e: True)
        else:
            raise ValueError(f'unknown invalidation {what!r}')


_EVENT = re.compile(r'dseg_tlb_(\w+) cpu (\d+) (.*)$')
_FIELD = re.compile(r'(\w+) (0x[0-9a-f]+|-?\d+)')


@dataclasses.dataclass
class Replay:
    operations: int = 0
    outcomes: dict = dataclasses.field(default_factory=dict)
    flushes: dict = dataclasses.field(default_factory=dict)
    mismatch_count: int = 0
    mismatches: list = dataclasses.field(default_factory=list)


def replay(words, lines, keep=10):
    """Replay trace LINES on models of geometry WORDS (one per vCPU).

    Returns a Replay: the operations replayed, the count of each outcome
    (('lookup', 0..2), ('pwc', bool), ('ntlb', bool)), the count of each
    invalidation, the number of mismatches and the first KEEP of them
    (line, recorded, ours)."""
    models = {}
    r = Replay()
    for line in lines:
        m = _EVENT.search(line)
        if not m:
            continue
        op, cpu, rest = m.group(1), int(m.group(2)), m.group(3)
        f = {k: int(v, 0) for k, v in _FIELD.findall(rest)}
        h = models.setdefault(cpu, Hierarchy(words))
        r.operations += 1
        if op == 'lookup':
            got, want = h.lookup(f['fetch'], f['ctx'], f['addr']), f['hit']
        elif op == 'pwc':
            got, want = h.pwc_read(f['ctx'], f['pa']), bool(f['hit'])
        elif op == 'ntlb':
            got, want = h.ntlb_lookup(f['ctx'], f['gpa']), bool(f['hit'])
        elif op == 'fill':
            h.fill(f['fetch'], f['ctx'], f['addr'], f['size'],
                   bool(f['global']), bool(f['l2']), bool(f['direct']))
            continue
        elif op == 'ntlb_fill':
            h.ntlb_fill(f['ctx'], f['gpa'], f['size'])
            continue
        elif op == 'flush':
            what = rest.split()[0]
            h.flush(what, f['ctx'], f['addr'], f['end'])
            r.flushes[what] = r.flushes.get(what, 0) + 1
            continue
        else:
            raise ValueError(f'unknown trace event dseg_tlb_{op}')
        r.outcomes[op, want] = r.outcomes.get((op, want), 0) + 1
        if got != want:
            r.mismatch_count += 1
            if len(r.mismatches) < keep:
                r.mismatches.append((line.strip(), want, got))
    return r
