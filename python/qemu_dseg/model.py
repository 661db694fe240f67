"""The counters of docs/specs/direct-segments.rst and a model of their values.

The translation paths and modes, the escape filter's hash functions and
the arch-refs reference model, written independently of the emulator so
that tests and experiments can compute the values query-dseg must report,
and assert_counters(), the one check of a whole counter set.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from typing import NamedTuple

MASK64 = (1 << 64) - 1
PAGE_4K = 1 << 12
PAGE_2M = 1 << 21
PAGE_1G = 1 << 30

# The translation paths of a TLB fill, in query-dseg's order; the first
# two are taken in host mode, the others in guest mode.
PATHS = ('native-walk', 'native-direct', 'walk-2d', 'guest-direct',
         'vmm-direct', 'dual-direct')
GUEST_MODE_PATHS = PATHS[2:]
# The reference counters of every path, and the event counters.
REF_FIELDS = ('fills', 'guest-refs', 'nested-refs', 'arch-refs')
EVENTS = ('guest-segment-hits', 'vmm-segment-hits', 'filter-probes',
          'filter-hits')


class Mode(NamedTuple):
    """A translation mode of the paper: the path its fills take and what
    it is made of.  A virtualised mode runs its workload in a guest (of
    the thin test hypervisor, tests/guest/thinvmm/, under Linux); the
    guest segment is the segment of the guest dimension (the native one
    in native direct, the guest's own in guest and dual direct: the
    workload's memory is a primary region); the VMM segment maps the
    guest's RAM (VMM and dual direct)."""
    name: str               # as the test guests and the experiment name it
    label: str              # for people
    path: str               # the query-dseg path of its workload's fills
    virtualised: bool
    guest_segment: bool
    vmm_segment: bool

    @property
    def segments(self):
        """Whether it needs direct segments (-cpu ...,+dseg)."""
        return self.guest_segment or self.vmm_segment


MODES = (
    Mode('base-native', 'base native', 'native-walk', False, False, False),
    Mode('native-direct', 'native direct', 'native-direct', False, True,
         False),
    Mode('base-virtualised', 'base virtualised', 'walk-2d', True, False,
         False),
    Mode('guest-direct', 'guest direct', 'guest-direct', True, True, False),
    Mode('vmm-direct', 'VMM direct', 'vmm-direct', True, False, True),
    Mode('dual-direct', 'dual direct', 'dual-direct', True, True, True),
)
MODE_BY_NAME = {m.name: m for m in MODES}


# --- segment registers ------------------------------------------------------

BASE, LIMIT, OFFSET = 'base', 'limit', 'offset'


def canonical(x, va_bits):
    """Whether X is canonical for linear addresses of VA_BITS bits."""
    top = x >> (va_bits - 1)
    return top in (0, MASK64 >> (va_bits - 1))


def segment_valid(base, limit, offset, linear, va_bits, pa_bits):
    """The spec's validity rules 1-3 for a whole register state: LINEAR
    for the guest segment (canonical width VA_BITS), else the VMM
    segment; PA_BITS is MAXPHYADDR."""
    pa_top = 1 << pa_bits
    if (base | limit | offset) & (PAGE_4K - 1):
        return False
    if linear:
        if not canonical(base, va_bits) or \
                (limit and not canonical(limit - 1, va_bits)):
            return False
    elif base >= pa_top or limit > pa_top:
        return False
    if limit == 0:
        return True
    if base > limit:
        return False
    if base < limit:
        if linear and base >> 63 != (limit - 1) >> 63:
            return False
        if (base + offset & MASK64) + (limit - base) > pa_top:
            return False
    return True


class Segment:
    """A segment's registers as WRMSR leaves them (reset: all zero)."""

    def __init__(self, linear, va_bits, pa_bits):
        self.regs = {BASE: 0, LIMIT: 0, OFFSET: 0}
        self.linear, self.va_bits, self.pa_bits = linear, va_bits, pa_bits

    def write(self, reg, value):
        """A WRMSR of REG: whether it is accepted (else it #GPs and
        changes nothing)."""
        cand = dict(self.regs, **{reg: value})
        if not segment_valid(cand[BASE], cand[LIMIT], cand[OFFSET],
                             self.linear, self.va_bits, self.pa_bits):
            return False
        self.regs = cand
        return True

    def translate(self, addr):
        """(ADDR + OFFSET) mod 2^64 if the segment matches ADDR, else
        None."""
        r = self.regs
        if r[BASE] <= addr < r[LIMIT]:
            return addr + r[OFFSET] & MASK64
        return None


# --- the escape filter ----------------------------------------------------

def splitmix64(x):
    """Output of splitmix64 for input X (the spec's definition)."""
    z = x * 0x9E3779B97F4A7C15 & MASK64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & MASK64
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & MASK64
    return z ^ (z >> 31)


def multiplier(i):
    """M[i] of hash function i."""
    return splitmix64(i + 1) | 1


def filter_hashes(gpa, bits, hashes):
    """The filter bits that the page of GPA selects."""
    log2 = bits.bit_length() - 1
    page = gpa >> 12
    return [(page * multiplier(i) & MASK64) >> (64 - log2)
            for i in range(hashes)]


def filter_words(gpas, bits=256, hashes=4):
    """The FILTER_BITS words after inserting every address in GPAS."""
    words = [0] * (bits // 64)
    for gpa in gpas:
        for bit in filter_hashes(gpa, bits, hashes):
            words[bit // 64] |= 1 << (bit % 64)
    return words


def filter_reports(words, gpa, bits=256, hashes=4):
    """Whether a filter holding WORDS reports the page of GPA."""
    return all(words[b // 64] >> (b % 64) & 1
               for b in filter_hashes(gpa, bits, hashes))


# --- the reference model --------------------------------------------------

def walk_len(levels, page_size=PAGE_4K):
    """L: entries a walk of LEVELS levels reads to a leaf of PAGE_SIZE."""
    return levels - {PAGE_4K: 0, PAGE_2M: 1, PAGE_1G: 2}[page_size]


def arch_refs_nested(guest_len, pt_nested_len, final_nested_len):
    """arch-refs of one guest-mode fill.

    GUEST_LEN guest entries are read (0 when the guest segment hit), each
    at a gPA whose nested cost is PT_NESTED_LEN (0 when VMM-segment
    translated); the final gPA costs FINAL_NESTED_LEN.
    """
    return guest_len * (1 + pt_nested_len) + final_nested_len


# --- checking a counter set -----------------------------------------------

class _Any:
    """A wildcard for assert_counters: any value is right."""

    def __repr__(self):
        return 'ANY'


ANY = _Any()


def assert_counters(counters, expect, where=''):
    """Check a query-dseg counter set against EXPECT, exactly.

    EXPECT maps a path to {field: value} and an event to its value; every
    field and event it does not name must be 0, and ANY (for a whole path
    or one value) accepts whatever the counter holds.  Raises an
    AssertionError that lists every counter that differs.
    """
    unknown = set(expect) - set(PATHS) - set(EVENTS)
    if unknown:
        raise ValueError(f'assert_counters: no counters {sorted(unknown)}')
    wrong = []
    for path in PATHS:
        want = expect.get(path, {})
        if want is ANY:
            continue
        unknown = set(want) - set(REF_FIELDS)
        if unknown:
            raise ValueError(f'assert_counters: {path} has no fields '
                             f'{sorted(unknown)}')
        for field in REF_FIELDS:
            w = want.get(field, 0)
            if w is not ANY and counters[path][field] != w:
                wrong.append(f'{path} {field} {counters[path][field]}, '
                             f'expected {w}')
    for event in EVENTS:
        w = expect.get(event, 0)
        if w is not ANY and counters[event] != w:
            wrong.append(f'{event} {counters[event]}, expected {w}')
    if wrong:
        raise AssertionError(f'{where + ": " if where else ""}counters '
                             f'differ: ' + '; '.join(wrong))

