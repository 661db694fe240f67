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

    g_assert_true(dseg_range_enabled(&r));
    g_assert_false(dseg_range_contains(&r, r.base - 1));
    g_assert_true(dseg_range_contains(&r, r.base));
    g_assert_true(dseg_range_contains(&r, r.limit - 1));
    g_assert_false(dseg_range_contains(&r, r.limit));
}

static void test_range_empty(void)
{
    DSegRange r = { .base = 0x400000, .limit = 0x400000 };

    g_assert_false(dseg_range_enabled(&r));
    g_assert_false(dseg_range_contains(&r, 0x400000));
    r.limit = 0;
    g_assert_false(dseg_range_enabled(&r));
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
    g_test_add_func("/dseg/filter/false-positives-and-clear",
                    test_filter_false_positives_and_clear);
    return g_test_run();
}
