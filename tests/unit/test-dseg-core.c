/*
 * Unit tests of the direct-segment core (target/i386/dseg-core.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>

#include "dseg-core.h"

#define PAGE 4096ull

/* The spec's definition of the multipliers, computed independently. */
static uint64_t splitmix64(uint64_t x)
{
    uint64_t z = x * 0x9E3779B97F4A7C15ull;

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned popcount_filter(const DSegFilter *f)
{
    unsigned n = 0;

    for (unsigned i = 0; i < DSEG_FILTER_WORDS; i++) {
        n += __builtin_popcountll(f->bits[i]);
    }
    return n;
}

static void test_range_edges(void)
{
    DSegRange r = { .base = 0x200000, .limit = 0x600000, .offset = 0x1000 };

    g_assert_false(dseg_range_contains(&r, r.base - 1));
    g_assert_true(dseg_range_contains(&r, r.base));
    g_assert_true(dseg_range_contains(&r, r.limit - 1));
    g_assert_false(dseg_range_contains(&r, r.limit));
}

static void test_range_empty(void)
{
    DSegRange r = { .base = 0x400000, .limit = 0x400000 };

    g_assert_false(dseg_range_contains(&r, 0x400000));
    r.limit = 0;
    g_assert_false(dseg_range_contains(&r, 0));
    g_assert_false(dseg_range_contains(&r, 0x400000));
}

static void test_range_top_of_address_space(void)
{
    DSegRange r = { .base = 0xffff800000000000ull,
                    .limit = 0xfffffffffffff000ull };

    g_assert_true(dseg_range_contains(&r, 0xfffffffffffff000ull - 1));
    g_assert_false(dseg_range_contains(&r, 0xfffffffffffff000ull));
    g_assert_false(dseg_range_contains(&r, UINT64_MAX));
}

static void test_filter_multipliers(void)
{
    for (unsigned i = 0; i < DSEG_FILTER_MAX_HASHES; i++) {
        g_assert_cmphex(dseg_filter_multiplier(i), ==,
                        splitmix64(i + 1) | 1);
    }
}

static void test_filter_geometry(void)
{
    g_assert_true(dseg_filter_geometry_valid(DSEG_FILTER_DEFAULT_BITS_LOG2,
                                             DSEG_FILTER_DEFAULT_HASHES));
    g_assert_true(dseg_filter_geometry_valid(6, 1));
    g_assert_true(dseg_filter_geometry_valid(12, 8));
    g_assert_false(dseg_filter_geometry_valid(5, 4));
    g_assert_false(dseg_filter_geometry_valid(13, 4));
    g_assert_false(dseg_filter_geometry_valid(8, 0));
    g_assert_false(dseg_filter_geometry_valid(8, 9));
}

/* Inserting a page sets exactly the bits the published hashes select. */
static void test_filter_bit_positions(void)
{
    const uint64_t addr = 0x12345000;
    DSegFilter f, expect;

    dseg_filter_init(&f, 8, 4);
    dseg_filter_init(&expect, 8, 4);
    dseg_filter_insert(&f, addr + 0x123);
    for (unsigned i = 0; i < 4; i++) {
        uint64_t bit = ((addr >> 12) * (splitmix64(i + 1) | 1)) >> 56;

        expect.bits[bit / 64] |= 1ull << (bit % 64);
    }
    g_assert_cmpmem(f.bits, sizeof(f.bits), expect.bits, sizeof(expect.bits));
    g_assert_cmpuint(popcount_filter(&f), >=, 1);
    g_assert_cmpuint(popcount_filter(&f), <=, 4);
}

/* A Bloom filter has no false negatives, at every geometry. */
static void test_filter_no_false_negatives(void)
{
    for (unsigned log2 = DSEG_FILTER_MIN_BITS_LOG2;
         log2 <= DSEG_FILTER_MAX_BITS_LOG2; log2++) {
        for (unsigned k = 1; k <= DSEG_FILTER_MAX_HASHES; k++) {
            GRand *rand = g_rand_new_with_seed(log2 * 100 + k);
            uint64_t pages[32];
            DSegFilter f;

            dseg_filter_init(&f, log2, k);
            for (unsigned i = 0; i < G_N_ELEMENTS(pages); i++) {
                pages[i] = ((uint64_t)g_rand_int(rand) << 32 |
                            g_rand_int(rand)) & DSEG_PAGE_MASK;
                dseg_filter_insert(&f, pages[i]);
            }
            for (unsigned i = 0; i < G_N_ELEMENTS(pages); i++) {
                g_assert_true(dseg_filter_test(&f, pages[i]));
                g_assert_true(dseg_filter_test(&f, pages[i] + PAGE - 1));
            }
            /* Bits beyond the geometry stay clear. */
            for (unsigned w = (1u << log2) / 64; w < DSEG_FILTER_WORDS; w++) {
                g_assert_cmphex(f.bits[w], ==, 0);
            }
            g_rand_free(rand);
        }
    }
}

/* Few false positives for a few pages in the default filter; none after
 * clearing. */
static void test_filter_false_positives_and_clear(void)
{
    DSegFilter f;
    unsigned hits = 0;

    dseg_filter_init(&f, DSEG_FILTER_DEFAULT_BITS_LOG2,
                     DSEG_FILTER_DEFAULT_HASHES);
    for (uint64_t p = 0; p < 8; p++) {
        dseg_filter_insert(&f, (0x100000 + p * 0x1000) * PAGE);
    }
    for (uint64_t p = 0; p < 100000; p++) {
        hits += dseg_filter_test(&f, (0x200000 + p) * PAGE);
    }
    /* Theory: (1 - e^(-32/256))^4 = 0.02%; allow ten times that. */
    g_assert_cmpuint(hits, <, 200);

    dseg_filter_clear(&f);
    g_assert_cmpuint(popcount_filter(&f), ==, 0);
    g_assert_false(dseg_filter_test(&f, 0x100000 * PAGE));
    g_assert_cmpuint(f.bits_log2, ==, DSEG_FILTER_DEFAULT_BITS_LOG2);
    g_assert_cmpuint(f.nr_hashes, ==, DSEG_FILTER_DEFAULT_HASHES);
}

/*
 * The empty flag follows the bits: set by init and clear, dropped by an
 * insert, recomputed after the bits are written directly (migration).  A
 * filter whose bits are set but whose flag still says empty would let
 * escaped pages through the segment.
 */
static void test_filter_empty(void)
{
    DSegFilter f;
    uint64_t page = 0x12345 * PAGE;

    dseg_filter_init(&f, DSEG_FILTER_DEFAULT_BITS_LOG2,
                     DSEG_FILTER_DEFAULT_HASHES);
    g_assert_true(f.empty);
    g_assert_false(dseg_filter_test(&f, page));
    dseg_filter_insert(&f, page);
    g_assert_false(f.empty);
    g_assert_true(dseg_filter_test(&f, page));
    dseg_filter_clear(&f);
    g_assert_true(f.empty);
    g_assert_false(dseg_filter_test(&f, page));

    /* Bits written as a migration stream does. */
    for (unsigned i = 0; i < DSEG_FILTER_WORDS; i++) {
        f.bits[i] = ~0ull;
    }
    dseg_filter_update_empty(&f);
    g_assert_false(f.empty);
    g_assert_true(dseg_filter_test(&f, page));
    memset(f.bits, 0, sizeof(f.bits));
    f.bits[DSEG_FILTER_WORDS - 1] = 1;
    dseg_filter_update_empty(&f);
    g_assert_false(f.empty);
    f.bits[DSEG_FILTER_WORDS - 1] = 0;
    dseg_filter_update_empty(&f);
    g_assert_true(f.empty);
}

#define VA48    48
#define PA40    40

static bool valid_g(uint64_t base, uint64_t limit, uint64_t offset)
{
    DSegRange r = { base, limit, offset };

    return dseg_range_valid(&r, true, VA48, PA40);
}

static bool valid_v(uint64_t base, uint64_t limit, uint64_t offset)
{
    DSegRange r = { base, limit, offset };

    return dseg_range_valid(&r, false, VA48, PA40);
}

static void test_valid_alignment(void)
{
    g_assert_true(valid_g(0x1000, 0x3000, 0x1000));
    g_assert_false(valid_g(0x1001, 0x3000, 0));
    g_assert_false(valid_g(0x1000, 0x3800, 0));
    g_assert_false(valid_g(0x1000, 0x3000, 0x10));
    g_assert_false(valid_v(0x800, 0, 0));
}

static void test_valid_disarmed(void)
{
    /* LIMIT 0 disarms: base and offset are only checked on their own. */
    g_assert_true(valid_g(0x7fff00000000, 0, 0xfff0000000000000ull));
    g_assert_false(valid_g(0x800000000000ull, 0, 0));  /* non-canonical */
    g_assert_true(valid_v((1ull << PA40) - 0x1000, 0, 0));
    g_assert_false(valid_v(1ull << PA40, 0, 0));
}

static void test_valid_order(void)
{
    g_assert_true(valid_g(0x5000, 0x5000, 0));     /* empty, armed */
    g_assert_false(valid_g(0x6000, 0x5000, 0));    /* LIMIT < BASE */
    g_assert_false(valid_v(0x6000, 0x5000, 0));
}

static void test_valid_canonical(void)
{
    const uint64_t hi = 0xffff800000000000ull;

    /* The lower half may end at 2^47, the upper half at the last page. */
    g_assert_true(valid_g(0x7fffc0000000ull, 0x800000000000ull,
                          0x40000000 - 0x7fffc0000000ull));
    g_assert_true(valid_g(hi, hi + 0x40000000, 0x40000000 - hi));
    g_assert_false(valid_g(0x7fffc0000000ull, hi + 0x1000, 0));
    g_assert_false(valid_g(0x800000000000ull, 0x800000001000ull, 0));
    g_assert_false(valid_g(0x1000, 0x800000001000ull, 0));
}

static void test_valid_target_width(void)
{
    const uint64_t top = 1ull << PA40;

    g_assert_true(valid_v(0, 0x100000, top - 0x100000));
    g_assert_false(valid_v(0, 0x100000, top - 0xff000));
    /* Negative offsets wrap modulo 2^64 and must not go below zero. */
    g_assert_true(valid_v(0x200000, 0x300000, -(uint64_t)0x200000));
    g_assert_false(valid_v(0x200000, 0x300000, -(uint64_t)0x201000));
    g_assert_true(valid_v(top - 0x1000, top, 0));
    g_assert_false(valid_v(top - 0x1000, top + 0x1000, 0));
}

/* A write is checked against the other two registers. */
static void test_write_valid(void)
{
    DSegRange r = { 0x200000, 0x400000, 0x1000000 };

    g_assert_true(dseg_range_write_valid(&r, DSEG_REG_LIMIT, 0, false,
                                         VA48, PA40));
    g_assert_false(dseg_range_write_valid(&r, DSEG_REG_LIMIT, 0x100000,
                                          false, VA48, PA40));
    g_assert_false(dseg_range_write_valid(&r, DSEG_REG_BASE, 0x500000,
                                          false, VA48, PA40));
    g_assert_false(dseg_range_write_valid(&r, DSEG_REG_OFFSET,
                                          (1ull << PA40) - 0x100000,
                                          false, VA48, PA40));
    dseg_range_write(&r, DSEG_REG_OFFSET, 0x2000);
    g_assert_cmphex(dseg_range_read(&r, DSEG_REG_OFFSET), ==, 0x2000);
    g_assert_cmphex(dseg_range_read(&r, DSEG_REG_BASE), ==, 0x200000);
    g_assert_cmphex(dseg_range_read(&r, DSEG_REG_LIMIT), ==, 0x400000);
}

static void test_walk_refs(void)
{
    g_assert_cmpuint(dseg_walk_refs(4, 9, 12), ==, 4);
    g_assert_cmpuint(dseg_walk_refs(4, 9, 21), ==, 3);
    g_assert_cmpuint(dseg_walk_refs(4, 9, 30), ==, 2);
    g_assert_cmpuint(dseg_walk_refs(5, 9, 12), ==, 5);
    g_assert_cmpuint(dseg_walk_refs(3, 9, 21), ==, 2);
    g_assert_cmpuint(dseg_walk_refs(2, 10, 12), ==, 2);
    g_assert_cmpuint(dseg_walk_refs(2, 10, 22), ==, 1);
}

/* The per-PTE model of the spec gives (n+1)(m+1)-1 for a full 2D walk. */
static void test_2d_model(void)
{
    for (unsigned n = 4; n <= 5; n++) {
        for (unsigned m = 4; m <= 5; m++) {
            unsigned refs = 0;

            for (unsigned level = 0; level < n; level++) {
                refs += 1 + dseg_walk_refs(m, 9, 12);
            }
            refs += dseg_walk_refs(m, 9, 12);
            g_assert_cmpuint(refs, ==, (n + 1) * (m + 1) - 1);
        }
    }
}

static void test_paths_and_counters(void)
{
    DSegCounters c = { 0 };
    DSegFill f = { .guest_refs = 4, .nested_refs = 20, .arch_refs = 24 };

    g_assert_cmpint(dseg_path(false, false, false), ==,
                    DSEG_PATH_NATIVE_WALK);
    g_assert_cmpint(dseg_path(false, true, false), ==,
                    DSEG_PATH_NATIVE_DIRECT);
    g_assert_cmpint(dseg_path(true, false, false), ==, DSEG_PATH_2D_WALK);
    g_assert_cmpint(dseg_path(true, true, false), ==,
                    DSEG_PATH_GUEST_DIRECT);
    g_assert_cmpint(dseg_path(true, false, true), ==, DSEG_PATH_VMM_DIRECT);
    g_assert_cmpint(dseg_path(true, true, true), ==, DSEG_PATH_DUAL_DIRECT);

    dseg_counters_add_fill(&c, &f, true);
    dseg_counters_add_fill(&c, &f, true);
    g_assert_cmpuint(c.path[DSEG_PATH_2D_WALK].fills, ==, 2);
    g_assert_cmpuint(c.path[DSEG_PATH_2D_WALK].guest_refs, ==, 8);
    g_assert_cmpuint(c.path[DSEG_PATH_2D_WALK].nested_refs, ==, 40);
    g_assert_cmpuint(c.path[DSEG_PATH_2D_WALK].arch_refs, ==, 48);
    g_assert_cmpuint(c.path[DSEG_PATH_NATIVE_WALK].fills, ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dseg/range/edges", test_range_edges);
    g_test_add_func("/dseg/range/empty", test_range_empty);
    g_test_add_func("/dseg/range/top", test_range_top_of_address_space);
    g_test_add_func("/dseg/filter/multipliers", test_filter_multipliers);
    g_test_add_func("/dseg/filter/geometry", test_filter_geometry);
    g_test_add_func("/dseg/filter/bit-positions", test_filter_bit_positions);
    g_test_add_func("/dseg/filter/no-false-negatives",
                    test_filter_no_false_negatives);
    g_test_add_func("/dseg/filter/empty", test_filter_empty);
    g_test_add_func("/dseg/filter/false-positives-and-clear",
                    test_filter_false_positives_and_clear);
    g_test_add_func("/dseg/valid/alignment", test_valid_alignment);
    g_test_add_func("/dseg/valid/disarmed", test_valid_disarmed);
    g_test_add_func("/dseg/valid/order", test_valid_order);
    g_test_add_func("/dseg/valid/canonical", test_valid_canonical);
    g_test_add_func("/dseg/valid/target-width", test_valid_target_width);
    g_test_add_func("/dseg/valid/write", test_write_valid);
    g_test_add_func("/dseg/model/walk-refs", test_walk_refs);
    g_test_add_func("/dseg/model/2d", test_2d_model);
    g_test_add_func("/dseg/model/paths-and-counters",
                    test_paths_and_counters);
    return g_test_run();
}
