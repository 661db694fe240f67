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

/* The three registers of a segment, in MSR order. */
typedef enum DSegReg {
    DSEG_REG_BASE,
    DSEG_REG_LIMIT,
    DSEG_REG_OFFSET,
} DSegReg;

/*
 * Is @r a valid register state?  @linear: the segment translates linear
 * addresses (canonical within @va_bits), else physical ones (below
 * 2^@pa_bits).  Its target must lie below 2^@pa_bits.  A zero LIMIT
 * disarms the segment, and only the single-value rules apply then.
 */
bool dseg_range_valid(const DSegRange *r, bool linear, unsigned va_bits,
                      unsigned pa_bits);

/* Would writing @val to register @reg of @r leave a valid state? */
bool dseg_range_write_valid(const DSegRange *r, DSegReg reg, uint64_t val,
                            bool linear, unsigned va_bits, unsigned pa_bits);

void dseg_range_write(DSegRange *r, DSegReg reg, uint64_t val);
uint64_t dseg_range_read(const DSegRange *r, DSegReg reg);

/*
 * Page-table entries a walk reads: a table of @levels levels, each
 * translating @level_bits address bits, down to a leaf that maps
 * 2^@page_bits bytes (12 for 4 KiB).
 */
static inline unsigned dseg_walk_refs(unsigned levels, unsigned level_bits,
                                      unsigned page_bits)
{
    return levels - (page_bits - DSEG_PAGE_BITS) / level_bits;
}

/* Translation paths of a TLB fill (docs/specs/direct-segments.rst). */
typedef enum DSegPath {
    DSEG_PATH_NATIVE_WALK,
    DSEG_PATH_NATIVE_DIRECT,
    DSEG_PATH_2D_WALK,
    DSEG_PATH_GUEST_DIRECT,
    DSEG_PATH_VMM_DIRECT,
    DSEG_PATH_DUAL_DIRECT,
    DSEG_PATH__MAX,
} DSegPath;

/*
 * The path of a fill: @nested: the CPU runs a guest with nested paging;
 * @guest_direct: the guest segment translated the address; @final_direct:
 * the VMM segment translated the final guest-physical address.
 */
static inline DSegPath dseg_path(bool nested, bool guest_direct,
                                 bool final_direct)
{
    if (!nested) {
        return guest_direct ? DSEG_PATH_NATIVE_DIRECT : DSEG_PATH_NATIVE_WALK;
    }
    if (guest_direct) {
        return final_direct ? DSEG_PATH_DUAL_DIRECT : DSEG_PATH_GUEST_DIRECT;
    }
    return final_direct ? DSEG_PATH_VMM_DIRECT : DSEG_PATH_2D_WALK;
}

typedef struct DSegPathCounters {
    uint64_t fills;
    uint64_t guest_refs;
    uint64_t nested_refs;
    uint64_t arch_refs;
} DSegPathCounters;

typedef struct DSegCounters {
    DSegPathCounters path[DSEG_PATH__MAX];
    uint64_t guest_seg_hits;
    uint64_t vmm_seg_hits;
    uint64_t filter_probes;
    uint64_t filter_hits;
} DSegCounters;

/* What the TLB fill in progress has done so far. */
typedef struct DSegFill {
    bool active;
    bool guest_direct;
    bool final_direct;
    uint32_t guest_refs;
    uint32_t nested_refs;
    uint32_t arch_refs;
} DSegFill;

/* Account a completed fill to its path. */
static inline void dseg_counters_add_fill(DSegCounters *c, const DSegFill *f,
                                          bool nested)
{
    DSegPathCounters *p = &c->path[dseg_path(nested, f->guest_direct,
                                             f->final_direct)];

    p->fills++;
    p->guest_refs += f->guest_refs;
    p->nested_refs += f->nested_refs;
    p->arch_refs += f->arch_refs;
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
    /* No bit set; derived from bits, see dseg_filter_update_empty(). */
    bool empty;
} DSegFilter;

/* The multipliers of the hash functions (odd: each hash is a bijection). */
extern const uint64_t dseg_filter_multipliers[DSEG_FILTER_MAX_HASHES];

static inline uint64_t dseg_filter_multiplier(unsigned i)
{
    return dseg_filter_multipliers[i];
}

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

/* Recompute f->empty after f->bits were written directly (migration). */
void dseg_filter_update_empty(DSegFilter *f);

/*
 * Does the filter report the page of @addr?  An empty filter answers at
 * once; otherwise up to nr_hashes bit tests.
 */
static inline bool dseg_filter_test(const DSegFilter *f, uint64_t addr)
{
    uint64_t pfn = addr >> DSEG_PAGE_BITS;

    if (f->empty) {
        return false;
    }
    for (unsigned i = 0; i < f->nr_hashes; i++) {
        unsigned bit = dseg_filter_hash(f, i, pfn);

        if (!(f->bits[bit / 64] & (1ull << (bit % 64)))) {
            return false;
        }
    }
    return true;
}

#endif /* TARGET_I386_DSEG_CORE_H */
