/*
 * Direct-segment translation: the parts that need no QEMU headers.
 *
 * A direct segment maps the page-aligned range [base, limit) to
 * [base + offset, limit + offset) with no page walk.  An escape filter, a
 * Bloom filter of page numbers, sends chosen pages inside a segment back
 * to the ordinary walk.  See docs/specs/direct-segments.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TARGET_I386_DSEG_CORE_H
#define TARGET_I386_DSEG_CORE_H

#include <stdbool.h>
#include <stdint.h>

#define DSEG_PAGE_BITS          12
#define DSEG_PAGE_MASK          (~(uint64_t)0 << DSEG_PAGE_BITS)

/* One segment: base inclusive, limit exclusive; limit <= base is empty. */
typedef struct DSegRange {
    uint64_t base;
    uint64_t limit;
    uint64_t offset;
} DSegRange;

static inline bool dseg_range_contains(const DSegRange *r, uint64_t addr)
{
    return addr >= r->base && addr < r->limit;
}

static inline bool dseg_range_enabled(const DSegRange *r)
{
    return r->limit > r->base;
}

/*
 * Escape filter geometry limits.  The filter has 2^bits_log2 bits and
 * applies nr_hashes multiply-shift hashes to a page number.
 */
#define DSEG_FILTER_MIN_BITS_LOG2   6
#define DSEG_FILTER_MAX_BITS_LOG2   12
#define DSEG_FILTER_MAX_HASHES      8
#define DSEG_FILTER_WORDS           (1u << (DSEG_FILTER_MAX_BITS_LOG2 - 6))

/* Default geometry: the 256-bit, 4-hash filter of the MICRO 2014 paper. */
#define DSEG_FILTER_DEFAULT_BITS_LOG2   8
#define DSEG_FILTER_DEFAULT_HASHES      4

typedef struct DSegFilter {
    uint64_t bits[DSEG_FILTER_WORDS];
    uint8_t bits_log2;
    uint8_t nr_hashes;
} DSegFilter;

/* Multiplier of hash function @i (odd, so each hash is a bijection). */
uint64_t dseg_filter_multiplier(unsigned i);

/* Bit index that hash @i selects for page number @pfn. */
static inline unsigned dseg_filter_hash(const DSegFilter *f, unsigned i,
                                        uint64_t pfn)
{
    return (pfn * dseg_filter_multiplier(i)) >> (64 - f->bits_log2);
}

bool dseg_filter_geometry_valid(unsigned bits_log2, unsigned nr_hashes);
void dseg_filter_init(DSegFilter *f, unsigned bits_log2, unsigned nr_hashes);
void dseg_filter_clear(DSegFilter *f);
void dseg_filter_insert(DSegFilter *f, uint64_t addr);
bool dseg_filter_test(const DSegFilter *f, uint64_t addr);

#endif /* TARGET_I386_DSEG_CORE_H */
