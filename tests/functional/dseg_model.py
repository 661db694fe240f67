"""Reference model of direct segments for the functional tests.

The escape filter's hash functions and the arch-refs reference model of
docs/specs/direct-segments.rst, written independently of the emulator so
that tests can compute the values query-dseg must report.

SPDX-License-Identifier: GPL-2.0-or-later
"""

MASK64 = (1 << 64) - 1
PAGE_4K = 1 << 12
PAGE_2M = 1 << 21
PAGE_1G = 1 << 30

PATHS = ('native-walk', 'native-direct', 'walk-2d', 'guest-direct',
         'vmm-direct', 'dual-direct')


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
