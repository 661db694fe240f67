/*
 * Direct-segment translation: register rules and the escape filter (a
 * Bloom filter of pages).
 *
 * Hash i of page number p is the top bits_log2 bits of the 64-bit product
 * p * M[i] (multiply-shift hashing).  The multipliers are published in
 * docs/specs/direct-segments.rst so that software can compute the bits a
 * page sets.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include "dseg-core.h"

static bool canonical(uint64_t addr, unsigned va_bits)
{
    int64_t high = (int64_t)addr >> (va_bits - 1);

    return high == 0 || high == -1;
}

static bool dseg_value_valid(DSegReg reg, uint64_t val, bool linear,
                             unsigned va_bits, unsigned pa_bits)
{
    const uint64_t pa_top = 1ull << pa_bits;

    if (val & ~DSEG_PAGE_MASK) {
        return false;
    }
    switch (reg) {
    case DSEG_REG_BASE:
        return linear ? canonical(val, va_bits) : val < pa_top;
    case DSEG_REG_LIMIT:
        return val == 0 ||
               (linear ? canonical(val - 1, va_bits) : val <= pa_top);
    default:
        return true;
    }
}

bool dseg_range_valid(const DSegRange *r, bool linear, unsigned va_bits,
                      unsigned pa_bits)
{
    const uint64_t pa_top = 1ull << pa_bits;
    uint64_t target;

    if (!dseg_value_valid(DSEG_REG_BASE, r->base, linear, va_bits, pa_bits) ||
        !dseg_value_valid(DSEG_REG_LIMIT, r->limit, linear, va_bits,
                          pa_bits) ||
        !dseg_value_valid(DSEG_REG_OFFSET, r->offset, linear, va_bits,
                          pa_bits)) {
        return false;
    }
    if (r->limit == 0 || r->limit == r->base) {
        return true;
    }
    if (r->limit < r->base) {
        return false;
    }
    /* A linear segment may not span the non-canonical hole. */
    if (linear && ((r->base ^ (r->limit - 1)) >> 63)) {
        return false;
    }
    /* The target, taken modulo 2^64, lies below 2^pa_bits. */
    target = r->base + r->offset;
    return target < pa_top && r->limit - r->base <= pa_top - target;
}

void dseg_range_write(DSegRange *r, DSegReg reg, uint64_t val)
{
    switch (reg) {
    case DSEG_REG_BASE:
        r->base = val;
        break;
    case DSEG_REG_LIMIT:
        r->limit = val;
        break;
    case DSEG_REG_OFFSET:
        r->offset = val;
        break;
    }
}

uint64_t dseg_range_read(const DSegRange *r, DSegReg reg)
{
    switch (reg) {
    case DSEG_REG_BASE:
        return r->base;
    case DSEG_REG_LIMIT:
        return r->limit;
    default:
        return r->offset;
    }
}

bool dseg_range_write_valid(const DSegRange *r, DSegReg reg, uint64_t val,
                            bool linear, unsigned va_bits, unsigned pa_bits)
{
    DSegRange candidate = *r;

    dseg_range_write(&candidate, reg, val);
    return dseg_range_valid(&candidate, linear, va_bits, pa_bits);
}

/* splitmix64(i + 1) | 1 for i = 0..7, see the spec. */
const uint64_t dseg_filter_multipliers[DSEG_FILTER_MAX_HASHES] = {
    0xe220a8397b1dcdafull,
    0x6e789e6aa1b965f5ull,
    0x06c45d188009454full,
    0xf88bb8a8724c81edull,
    0x1b39896a51a8749bull,
    0x53cb9f0c747ea2ebull,
    0x2c829abe1f4532e1ull,
    0xc584133ac916ab3dull,
};

bool dseg_filter_geometry_valid(unsigned bits_log2, unsigned nr_hashes)
{
    return bits_log2 >= DSEG_FILTER_MIN_BITS_LOG2 &&
           bits_log2 <= DSEG_FILTER_MAX_BITS_LOG2 &&
           nr_hashes >= 1 && nr_hashes <= DSEG_FILTER_MAX_HASHES;
}

void dseg_filter_init(DSegFilter *f, unsigned bits_log2, unsigned nr_hashes)
{
    memset(f, 0, sizeof(*f));
    f->bits_log2 = bits_log2;
    f->nr_hashes = nr_hashes;
    f->empty = true;
}

void dseg_filter_clear(DSegFilter *f)
{
    memset(f->bits, 0, sizeof(f->bits));
    f->empty = true;
}

void dseg_filter_update_empty(DSegFilter *f)
{
    f->empty = true;
    for (unsigned i = 0; i < DSEG_FILTER_WORDS; i++) {
        if (f->bits[i]) {
            f->empty = false;
        }
    }
}

void dseg_filter_insert(DSegFilter *f, uint64_t addr)
{
    uint64_t pfn = addr >> DSEG_PAGE_BITS;

    for (unsigned i = 0; i < f->nr_hashes; i++) {
        unsigned bit = dseg_filter_hash(f, i, pfn);

        f->bits[bit / 64] |= 1ull << (bit % 64);
    }
    f->empty = false;
}
