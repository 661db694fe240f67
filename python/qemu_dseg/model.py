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
    """A translation mode of the paper and the path its fills take."""
    name: str               # as the test guests and the experiment name it
    label: str              # for people
    path: str               # the query-dseg path of its workload's fills
    virtualised: bool
    segments: bool          # needs direct segments (-cpu ...,+dseg)


MODES = (
    Mode('base-native', 'base native', 'native-walk', False, False),
    Mode('native-direct', 'native direct', 'native-direct', False, True),
    Mode('base-virtualised', 'base virtualised', 'walk-2d', True, False),
    Mode('guest-direct', 'guest direct', 'guest-direct', True, True),
    Mode('vmm-direct', 'VMM direct', 'vmm-direct', True, True),
    Mode('dual-direct', 'dual direct', 'dual-direct', True, True),
)
MODE_BY_NAME = {m.name: m for m in MODES}


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

