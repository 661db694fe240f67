/*
 * Unit tests of the translation-hierarchy model (target/i386/dseg-tlb-model.c):
 * predictions stated before each run, and random traces replayed on an
 * independent implementation (move-to-front lists) that must agree on
 * every lookup.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <math.h>

#include "dseg-tlb-model.h"

#define K4 0x1000ull
#define M2 0x200000ull
#define G1 0x40000000ull

/* A small hierarchy: L1D 16 entries 4-way (4K) + 4 entries (2M, 1G fully),
 * L1I 8 entries 2-way (4K), L2 64 entries 4-way (4K, 2M), PWC 8, NTLB 8. */
static const TlbmGeom small = {
    .l1d = { .array = {
        { .entries = 16, .ways = 4, .sizes = TLBM_SIZE_MASK(TLBM_4K) },
        { .entries = 4, .ways = 4,
          .sizes = TLBM_SIZE_MASK(TLBM_2M) | TLBM_SIZE_MASK(TLBM_1G) },
    } },
    .l1i = { .array = {
        { .entries = 8, .ways = 2, .sizes = TLBM_SIZE_MASK(TLBM_4K) },
    } },
    .l2 = { .array = {
        { .entries = 64, .ways = 4,
          .sizes = TLBM_SIZE_MASK(TLBM_4K) | TLBM_SIZE_MASK(TLBM_2M) },
    }, .smash = true },
    .pwc = { .entries = 8, .ways = 8 },
    .ntlb = { .entries = 8, .ways = 8, .sizes = TLBM_ALL_SIZES },
};

typedef struct Model {
    TlbmModel m;
    TlbmEntry *storage;
} Model;

static void model_init(Model *t, const TlbmGeom *g)
{
    g_assert_null(tlbm_geom_error(g));
    t->storage = g_new(TlbmEntry, tlbm_entries(g));
    tlbm_init(&t->m, g, t->storage);
}

static void model_free(Model *t)
{
    g_free(t->storage);
}

/* Look @addr up as data; on a miss, fill it as a walk would (L2 too). */
static TlbmHit touch(Model *t, uint32_t ctx, uint64_t addr, TlbmSize size,
                     bool global)
{
    TlbmHit h = tlbm_lookup(&t->m, false, ctx, addr);

    if (h == TLBM_MISS) {
        tlbm_fill(&t->m, false, ctx, addr, size, global, true, false);
    }
    return h;
}

static unsigned pass(Model *t, uint32_t ctx, unsigned pages, bool global,
                     TlbmHit want_at_least)
{
    unsigned worse = 0;

    for (unsigned p = 0; p < pages; p++) {
        worse += touch(t, ctx, p * K4, TLBM_4K, global) > want_at_least;
    }
    return worse;
}

static void test_geometry_errors(void)
{
    TlbmGeom g = small;

    g.l1d.array[0].ways = 3;
    g_assert_nonnull(tlbm_geom_error(&g));
    g = small;
    g.l1d.array[1].sizes |= TLBM_SIZE_MASK(TLBM_4K);
    g_assert_nonnull(tlbm_geom_error(&g));
    g = small;
    g.l1i.array[0].entries = 0;
    g_assert_nonnull(tlbm_geom_error(&g));
    g = small;
    g.l2.array[0].sizes = 0;
    g_assert_nonnull(tlbm_geom_error(&g));
    g = small;
    g.l2.array[1].sizes = TLBM_SIZE_MASK(TLBM_1G);   /* 0 entries */
    g_assert_nonnull(tlbm_geom_error(&g));
    g = small;
    g.l1i.array[0].sizes = TLBM_SIZE_MASK(TLBM_2M);  /* no 4 KiB */
    g_assert_cmpstr(tlbm_geom_error(&g), ==,
                    "the L1 TLBs must hold 4 KiB pages (a segment fills "
                    "them so)");
    g_assert_cmpuint(tlbm_entries(&small), ==, 16 + 4 + 8 + 64 + 8 + 8);
}

/*
 * Prediction: 12 pages (3 per set of the 4-way L1D) miss on the first pass
 * only; a CR3 write makes non-global ones miss again in the L1 and the L2
 * alike, and leaves global ones.
 */
static void test_loop_fits_l1(void)
{
    uint32_t ctx = TLBM_CTX(0, 0);
    Model t;

    model_init(&t, &small);
    g_assert_cmpuint(pass(&t, ctx, 12, false, TLBM_HIT_L2), ==, 12);
    for (int i = 0; i < 5; i++) {
        g_assert_cmpuint(pass(&t, ctx, 12, false, TLBM_HIT_L1), ==, 0);
    }
    tlbm_flush_nonglobal(&t.m, ctx);
    g_assert_cmpuint(pass(&t, ctx, 12, false, TLBM_HIT_L2), ==, 12);

    tlbm_flush_all(&t.m);
    g_assert_cmpuint(pass(&t, ctx, 12, true, TLBM_HIT_L2), ==, 12);
    tlbm_flush_nonglobal(&t.m, ctx);
    g_assert_cmpuint(pass(&t, ctx, 12, true, TLBM_HIT_L1), ==, 0);
    /* Another PCID of the same ASID sees the global entries too. */
    g_assert_cmpuint(pass(&t, TLBM_CTX(0, 7), 12, true, TLBM_HIT_L1), ==, 0);
    model_free(&t);
}

/*
 * Prediction: 5 pages in one 4-way set of the L1D, touched in a cycle,
 * always miss the L1 (LRU) and, after the first pass, always hit the L2.
 */
static void test_lru_cycle(void)
{
    uint32_t ctx = TLBM_CTX(0, 0);
    Model t;

    model_init(&t, &small);
    for (int round = 0; round < 4; round++) {
        for (uint64_t p = 0; p < 5; p++) {
            TlbmHit h = touch(&t, ctx, p * 4 * K4, TLBM_4K, false);

            g_assert_cmpint(h, ==, round ? TLBM_HIT_L2 : TLBM_MISS);
        }
    }
    model_free(&t);
}

/*
 * Prediction: a 2 MiB page covers its 512 4 KiB pages in the L1; a 1 GiB
 * page is kept whole in the L1 and, smashed, as its 2 MiB part in the L2.
 */
static void test_page_sizes(void)
{
    uint32_t ctx = TLBM_CTX(0, 0);
    Model t;

    model_init(&t, &small);
    g_assert_cmpint(touch(&t, ctx, 5 * M2, TLBM_2M, false), ==, TLBM_MISS);
    for (uint64_t a = 5 * M2; a < 6 * M2; a += K4) {
        g_assert_cmpint(tlbm_lookup(&t.m, false, ctx, a), ==, TLBM_HIT_L1);
    }
    g_assert_cmpint(tlbm_lookup(&t.m, false, ctx, 6 * M2), ==, TLBM_MISS);

    tlbm_flush_all(&t.m);
    g_assert_cmpint(touch(&t, ctx, 3 * G1 + 7 * M2, TLBM_1G, false), ==,
                    TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, ctx, 3 * G1), ==, TLBM_HIT_L1);
    /* Evict the L1's entries (4 fully associative) with four 2M pages. */
    for (uint64_t p = 0; p < 4; p++) {
        touch(&t, ctx, 100 * M2 + p * M2, TLBM_2M, false);
    }
    g_assert_cmpint(tlbm_lookup(&t.m, false, ctx, 3 * G1 + 7 * M2 + K4), ==,
                    TLBM_HIT_L2);
    g_assert_cmpint(tlbm_lookup(&t.m, false, ctx, 3 * G1 + 8 * M2), ==,
                    TLBM_MISS);
    model_free(&t);
}

/* Prediction: INVLPG drops the page of every size that maps it, only. */
static void test_invlpg(void)
{
    uint32_t ctx = TLBM_CTX(0, 3);
    Model t;

    model_init(&t, &small);
    touch(&t, ctx, 0x1000, TLBM_4K, false);
    touch(&t, ctx, 0x2000, TLBM_4K, true);
    touch(&t, ctx, 3 * M2, TLBM_2M, false);
    tlbm_flush_page(&t.m, ctx, 0x2000);
    tlbm_flush_page(&t.m, ctx, 3 * M2 + 0x5000);
    g_assert_cmpint(tlbm_lookup(&t.m, false, ctx, 0x1000), ==, TLBM_HIT_L1);
    g_assert_cmpint(tlbm_lookup(&t.m, false, ctx, 0x2000), ==, TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, ctx, 3 * M2), ==, TLBM_MISS);
    model_free(&t);
}

/*
 * Prediction: what a guest segment made with a nested step stays in the
 * L2 after the L1 lost it, and the L1 entry an L2 hit refills from it is
 * still the segment's, which a world switch drops; what segments alone
 * made is gone with the L1 entry.
 */
static void test_guest_direct_l2(void)
{
    uint32_t guest = TLBM_CTX(1, 0);
    Model t;

    model_init(&t, &small);
    tlbm_fill(&t.m, false, guest, 0x7000, TLBM_4K, false, true, true);
    tlbm_fill(&t.m, false, guest, 0x3000, TLBM_4K, false, false, true);
    /* Four walked pages of L1 set 3 evict both. */
    for (uint64_t page = 0xb; page <= 0x17; page += 4) {
        g_assert_cmpint(touch(&t, guest, page << 12, TLBM_4K, false), ==,
                        TLBM_MISS);
    }
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x3000), ==, TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x7000), ==,
                    TLBM_HIT_L2);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x7000), ==,
                    TLBM_HIT_L1);
    tlbm_flush_direct(&t.m);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x7000), ==, TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x17000), ==,
                    TLBM_HIT_L1);
    model_free(&t);
}

/*
 * Prediction: ASIDs keep their entries apart: a guest's (ASID 1) survive
 * the host's CR3 writes and its own flush drops only them; the nested TLB
 * and the PWC go with their ASID.
 */
static void test_asids(void)
{
    uint32_t host = TLBM_CTX(0, 0), guest = TLBM_CTX(1, 0);
    Model t;

    model_init(&t, &small);
    touch(&t, host, 0x1000, TLBM_4K, false);
    touch(&t, guest, 0x1000, TLBM_4K, false);
    tlbm_ntlb_fill(&t.m, guest, 0x123000, TLBM_4K);
    g_assert_false(tlbm_pwc_read(&t.m, guest, 0x9000));
    tlbm_flush_nonglobal(&t.m, host);
    g_assert_cmpint(tlbm_lookup(&t.m, false, host, 0x1000), ==, TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x1000), ==,
                    TLBM_HIT_L1);
    g_assert_true(tlbm_ntlb_lookup(&t.m, guest, 0x123abc));
    /* The nested TLB is per ASID: another PCID of the guest sees it. */
    g_assert_true(tlbm_ntlb_lookup(&t.m, TLBM_CTX(1, 5), 0x123abc));
    g_assert_false(tlbm_ntlb_lookup(&t.m, host, 0x123abc));
    g_assert_true(tlbm_pwc_read(&t.m, guest, 0x9000));

    /* A guest CR3 write drops its PWC entries but not its nested TLB. */
    tlbm_flush_nonglobal(&t.m, guest);
    g_assert_false(tlbm_pwc_read(&t.m, guest, 0x9000));
    g_assert_true(tlbm_ntlb_lookup(&t.m, guest, 0x123abc));

    /*
     * A world switch drops what a guest segment made, alone (the L1 only)
     * or with a nested step (the L2 too), in every ASID, and keeps what
     * walks made.
     */
    touch(&t, guest, 0x1000, TLBM_4K, false);
    tlbm_fill(&t.m, false, guest, 0x5000, TLBM_4K, false, false, true);
    tlbm_fill(&t.m, false, host, 0x6000, TLBM_4K, false, false, true);
    tlbm_fill(&t.m, false, guest, 0x7000, TLBM_4K, false, true, true);
    tlbm_flush_direct(&t.m);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x5000), ==, TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, host, 0x6000), ==, TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x7000), ==, TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x1000), ==,
                    TLBM_HIT_L1);

    /*
     * A guest segment's change drops those too, and the TLB entries of
     * the ASID that map its new range, of any size, global ones
     * included; nothing else.
     */
    tlbm_fill(&t.m, false, guest, 0x5000, TLBM_4K, false, false, true);
    tlbm_fill(&t.m, false, host, 0x400000, TLBM_2M, true, true, false);
    tlbm_fill(&t.m, false, host, 0x900000, TLBM_4K, false, true, false);
    tlbm_fill(&t.m, false, guest, 0x900000, TLBM_4K, false, true, false);
    touch(&t, host, 0x1000, TLBM_4K, false);
    tlbm_flush_segment(&t.m, 0, 0x5ff000, 0x901000);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x5000), ==, TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, host, 0x400000), ==,
                    TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, host, 0x900000), ==,
                    TLBM_MISS);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x900000), ==,
                    TLBM_HIT_L1);
    g_assert_cmpint(tlbm_lookup(&t.m, false, host, 0x1000), ==, TLBM_HIT_L1);
    tlbm_flush_segment(&t.m, 0, 0x901000, 0x901000);
    g_assert_cmpint(tlbm_lookup(&t.m, false, host, 0x1000), ==, TLBM_HIT_L1);

    touch(&t, host, 0x1000, TLBM_4K, true);
    tlbm_flush_asid(&t.m, 1);
    g_assert_cmpint(tlbm_lookup(&t.m, false, guest, 0x1000), ==, TLBM_MISS);
    g_assert_false(tlbm_ntlb_lookup(&t.m, guest, 0x123abc));
    g_assert_cmpint(tlbm_lookup(&t.m, false, host, 0x1000), ==, TLBM_HIT_L1);
    model_free(&t);
}

/*
 * Prediction: walks of neighbouring 4 KiB pages read the same three
 * non-leaf entries, so with the PWC the second walk reads 1 entry (its
 * leaf) where the first read 4.
 */
static void test_pwc_walk(void)
{
    uint32_t ctx = TLBM_CTX(0, 0);
    const uint64_t table[4] = { 0x1000, 0x2000, 0x3000, 0x4000 };
    unsigned refs[2] = { 0, 0 };
    Model t;

    model_init(&t, &small);
    for (unsigned w = 0; w < 2; w++) {
        uint64_t va = 0x7f0000000000ull + w * K4;

        for (unsigned level = 4; level >= 1; level--) {
            unsigned index = (va >> (12 + 9 * (level - 1))) & 511;
            uint64_t pa = table[4 - level] + index * 8;

            refs[w] += level == 1 || !tlbm_pwc_read(&t.m, ctx, pa);
        }
    }
    g_assert_cmpuint(refs[0], ==, 4);
    g_assert_cmpuint(refs[1], ==, 1);
    model_free(&t);
}

/* --- geometry in words, and the presets ---------------------------------- */

/* Field by field: the structs have padding, which memcmp would compare. */
static bool array_equal(const TlbmArrayGeom *a, const TlbmArrayGeom *b)
{
    return a->entries == b->entries && a->ways == b->ways &&
           a->sizes == b->sizes;
}

static bool tlb_equal(const TlbmTlbGeom *a, const TlbmTlbGeom *b)
{
    for (int i = 0; i < TLBM_MAX_ARRAYS; i++) {
        if (!array_equal(&a->array[i], &b->array[i])) {
            return false;
        }
    }
    return a->smash == b->smash;
}

static bool geom_equal(const TlbmGeom *a, const TlbmGeom *b)
{
    return tlb_equal(&a->l1d, &b->l1d) && tlb_equal(&a->l1i, &b->l1i) &&
           tlb_equal(&a->l2, &b->l2) && tlb_equal(&a->l2i, &b->l2i) &&
           array_equal(&a->pwc, &b->pwc) && array_equal(&a->ntlb, &b->ntlb);
}

static TlbmGeom preset(const char *name)
{
    TlbmGeom g;

    g_assert_nonnull(tlbm_preset(name));
    g_assert_null(tlbm_geom_parse(&g, tlbm_preset(name)->geom));
    return g;
}

static void test_geom_words(void)
{
    const TlbmArrayGeom zen_l2 = { 1536, 12, TLBM_SIZE_MASK(TLBM_4K) |
                                             TLBM_SIZE_MASK(TLBM_2M) };
    TlbmGeom g = { 0 }, before;
    static const char *const bad[][2] = {
        { "l1d", "64x5:4k" }, { "l1d", "64:4k+4k" }, { "l1d", "64:8k" },
        { "l1d", "0x4:4k" }, { "l1d", "64x4" }, { "l1d", "smash" },
        { "l1d", "8:4k/8:2m/8:1g/8:4k" }, { "l1d", "64x4:" },
        { "l1d", "2000000:4k" }, { "l1d", "64x4:4k/" }, { "l1d", "-1:4k" },
        { "pwc", "32x3" }, { "pwc", "32:4k" }, { "ntlb", "" },
        { "l3", "64:4k" }, { "l1d", "64:4k+" }, { "l1d", "64:4k/smash/32:2m" },
        { "l1d", "64:4k/smash/smash" },
    };

    g_assert_null(tlbm_geom_set(&g, "l1d", "64x4:4k/32x4:2m/4:1g"));
    g_assert_cmpuint(g.l1d.array[0].entries, ==, 64);
    g_assert_cmpuint(g.l1d.array[0].ways, ==, 4);
    g_assert_cmpuint(g.l1d.array[0].sizes, ==, TLBM_SIZE_MASK(TLBM_4K));
    g_assert_cmpuint(g.l1d.array[2].entries, ==, 4);
    g_assert_cmpuint(g.l1d.array[2].ways, ==, 4);
    g_assert_cmpuint(g.l1d.array[2].sizes, ==, TLBM_SIZE_MASK(TLBM_1G));
    g_assert_false(g.l1d.smash);
    g_assert_null(tlbm_geom_set(&g, "l2", "1536x12:2m+4k/smash"));
    g_assert_true(array_equal(&g.l2.array[0], &zen_l2));
    g_assert_cmpuint(g.l2.array[1].entries, ==, 0);
    g_assert_true(g.l2.smash);
    g_assert_null(tlbm_geom_set(&g, "pwc", "32"));
    g_assert_cmpuint(g.pwc.entries, ==, 32);
    g_assert_cmpuint(g.pwc.ways, ==, 32);
    g_assert_null(tlbm_geom_set(&g, "ntlb", "16x4"));
    g_assert_cmpuint(g.ntlb.ways, ==, 4);
    g_assert_null(tlbm_geom_set(&g, "ntlb", "0"));
    g_assert_cmpuint(g.ntlb.entries, ==, 0);

    before = g;
    for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
        const char *err = tlbm_geom_set(&g, bad[i][0], bad[i][1]);

        if (!err) {
            g_error("%s=%s accepted", bad[i][0], bad[i][1]);
        }
        g_assert_true(geom_equal(&g, &before));
    }

    /* A whole geometry: wrong words, or a geometry the model refuses
     * (no L1I), change nothing. */
    g_assert_nonnull(tlbm_geom_parse(&g, "l1d=64:4k,,l1i=8:4k"));
    g_assert_nonnull(tlbm_geom_parse(&g, "l1d=64:4k,l1i"));
    g_assert_nonnull(tlbm_geom_parse(&g, "l1d=64:4k"));
    g_assert_nonnull(tlbm_geom_parse(&g, "l1d=64:4k,l1i=8:4k,"));
    g_assert_nonnull(tlbm_geom_parse(&g, ""));
    g_assert_true(geom_equal(&g, &before));
    g_assert_null(tlbm_geom_parse(&g, "l1d=64:4k,l1i=8x2:4k,pwc=4"));
    g_assert_cmpuint(g.l2.array[0].entries, ==, 0);
    g_assert_cmpuint(g.pwc.entries, ==, 4);
}

/*
 * The presets say what their sources say (restated here): Sandy Bridge's
 * L2 holds 512 4 KiB entries in 4 ways and no larger page; Skylake's
 * holds 1536 4 KiB or 2 MiB entries in 12 ways and 16 1 GiB ones; Zen
 * has fully associative 64-entry L1s for all sizes and a split L2 that
 * smashes 1 GiB pages.
 */
static void test_presets(void)
{
    TlbmGeom snb = preset("sandy-bridge"), skl = preset("skylake");
    TlbmGeom zen = preset("zen");
    unsigned n = 0;

    for (const TlbmPreset *p = tlbm_presets; p->name; p++, n++) {
        g_assert_nonnull(p->source);
    }
    g_assert_cmpuint(n, ==, 3);
    g_assert_null(tlbm_preset("pentium"));

    g_assert_cmpuint(tlbm_entries(&snb), ==, 64 + 32 + 4 + 128 + 8 + 512);
    g_assert_cmpuint(snb.l2.array[0].ways, ==, 4);
    g_assert_cmpuint(snb.l2.array[0].sizes, ==, TLBM_SIZE_MASK(TLBM_4K));
    g_assert_false(snb.l2.smash);
    g_assert_cmpuint(tlbm_entries(&skl), ==,
                     64 + 32 + 4 + 128 + 8 + 1536 + 16);
    g_assert_cmpuint(skl.l2.array[0].ways, ==, 12);
    g_assert_cmpuint(skl.l1i.array[0].ways, ==, 8);
    g_assert_cmpuint(skl.l2.array[1].sizes, ==, TLBM_SIZE_MASK(TLBM_1G));
    g_assert_cmpuint(tlbm_entries(&zen), ==, 64 + 64 + 1536 + 512);
    g_assert_cmpuint(zen.l1d.array[0].ways, ==, 64);
    g_assert_cmpuint(zen.l1d.array[0].sizes, ==, TLBM_ALL_SIZES);
    g_assert_true(zen.l2.smash && zen.l2i.smash);
    g_assert_cmpuint(zen.l2i.array[0].ways, ==, 8);
}

/*
 * Predictions on Skylake's data side (L1D: 64 4 KiB entries, 16 sets of 4;
 * L2: 1536 entries, 128 sets of 12): a loop over 64 pages misses its first
 * pass only; over 68 pages, sets 0-3 hold 5 pages each, so every pass
 * misses the L1 20 times, all L2 hits.
 */
static void test_skylake_loops(void)
{
    uint32_t ctx = TLBM_CTX(0, 0);
    TlbmGeom skl = preset("skylake");
    Model t;

    model_init(&t, &skl);
    g_assert_cmpuint(pass(&t, ctx, 64, false, TLBM_HIT_L2), ==, 64);
    g_assert_cmpuint(pass(&t, ctx, 64, false, TLBM_HIT_L1), ==, 0);
    tlbm_flush_all(&t.m);
    pass(&t, ctx, 68, false, TLBM_HIT_L2);
    for (int i = 0; i < 3; i++) {
        g_assert_cmpuint(pass(&t, ctx, 68, false, TLBM_HIT_L1), ==, 20);
        g_assert_cmpuint(pass(&t, ctx, 68, false, TLBM_HIT_L2), ==, 0);
    }
    model_free(&t);
}

/*
 * Prediction: uniform random accesses to N = 6144 pages through Skylake's
 * data side walk with probability 1 - 1536/6144 = 0.75 once warm (each
 * L2 set keeps 12 of its 48 pages; the L1 holds a subset of the L2's);
 * over 200,000 accesses the rate is within 0.01 of it.
 */
static void test_skylake_random_rate(void)
{
    GRand *rnd = g_rand_new_with_seed(7);
    uint32_t ctx = TLBM_CTX(0, 0);
    unsigned walks = 0, n = 200000;
    TlbmGeom skl = preset("skylake");
    Model t;

    model_init(&t, &skl);
    for (unsigned i = 0; i < 50000 + n; i++) {
        uint64_t page = g_rand_int_range(rnd, 0, 6144);

        walks += touch(&t, ctx, page * K4, TLBM_4K, false) == TLBM_MISS &&
                 i >= 50000;
    }
    g_assert_cmpfloat(fabs((double)walks / n - 0.75), <, 0.01);
    model_free(&t);
    g_rand_free(rnd);
}

/* --- an independent implementation: move-to-front lists ----------------- */

typedef struct RefEntry {
    uint64_t key;
    uint32_t ctx;
    uint8_t size;
    bool global;
    bool direct;
} RefEntry;

/* One array: per set, a list of its valid entries, most recent first. */
typedef struct RefArray {
    TlbmArrayGeom g;
    GArray **sets;      /* of RefEntry */
} RefArray;

typedef struct Ref {
    RefArray tlb[4][TLBM_MAX_ARRAYS];   /* L1D, L1I, L2, L2I */
    bool smash[4];
} Ref;

static bool ref_match(const RefEntry *e, uint32_t ctx)
{
    return e->ctx == ctx ||
           (e->global && (e->ctx >> TLBM_PCID_BITS) == (ctx >> TLBM_PCID_BITS));
}

static void ref_init(Ref *r, const TlbmGeom *g)
{
    const TlbmTlbGeom *tg[4] = { &g->l1d, &g->l1i, &g->l2, &g->l2i };

    for (int t = 0; t < 4; t++) {
        r->smash[t] = tg[t]->smash;
        for (int i = 0; i < TLBM_MAX_ARRAYS; i++) {
            RefArray *a = &r->tlb[t][i];
            unsigned sets;

            a->g = tg[t]->array[i];
            sets = a->g.entries ? a->g.entries / a->g.ways : 0;
            a->sets = g_new0(GArray *, sets + 1);
            for (unsigned s = 0; s < sets; s++) {
                a->sets[s] = g_array_new(false, false, sizeof(RefEntry));
            }
        }
    }
}

static void ref_free(Ref *r)
{
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < TLBM_MAX_ARRAYS; i++) {
            for (GArray **s = r->tlb[t][i].sets; *s; s++) {
                g_array_free(*s, true);
            }
            g_free(r->tlb[t][i].sets);
        }
    }
}

static GArray *ref_set(RefArray *a, uint64_t key)
{
    return a->sets[key % (a->g.entries / a->g.ways)];
}

/* Find and move to the front; returns the entry or NULL. */
static RefEntry *ref_find(RefArray *a, uint64_t key, int size, uint32_t ctx)
{
    GArray *set;

    if (!a->g.entries || !(a->g.sizes & (1u << size))) {
        return NULL;
    }
    set = ref_set(a, key);
    for (guint i = 0; i < set->len; i++) {
        RefEntry e = g_array_index(set, RefEntry, i);

        if (e.key == key && e.size == size && ref_match(&e, ctx)) {
            g_array_remove_index(set, i);
            g_array_prepend_val(set, e);
            return &g_array_index(set, RefEntry, 0);
        }
    }
    return NULL;
}

static RefEntry *ref_tlb_find(Ref *r, int t, uint32_t ctx, uint64_t addr)
{
    for (int i = 0; i < TLBM_MAX_ARRAYS; i++) {
        for (int s = 0; s < TLBM_NR_SIZES; s++) {
            RefEntry *e = ref_find(&r->tlb[t][i], addr >> (12 + 9 * s), s,
                                   ctx);
            if (e) {
                return e;
            }
        }
    }
    return NULL;
}

/* A fill replaces the entry with its tag, else the set's LRU one. */
static void ref_insert(RefArray *a, RefEntry n)
{
    GArray *set = ref_set(a, n.key);
    guint i;

    for (i = 0; i < set->len; i++) {
        RefEntry *e = &g_array_index(set, RefEntry, i);

        if (e->key == n.key && e->size == n.size && e->ctx == n.ctx) {
            break;
        }
    }
    if (i < set->len) {
        g_array_remove_index(set, i);
    } else if (set->len == a->g.ways) {
        g_array_remove_index(set, set->len - 1);
    }
    g_array_prepend_val(set, n);
}

static void ref_fill(Ref *r, int t, uint32_t ctx, uint64_t addr, int size,
                     bool global, bool direct)
{
    for (int s = size; s >= 0; s--) {
        for (int i = 0; i < TLBM_MAX_ARRAYS; i++) {
            RefArray *a = &r->tlb[t][i];

            if (a->g.entries && (a->g.sizes & (1u << s))) {
                ref_insert(a, (RefEntry) { addr >> (12 + 9 * s), ctx, s,
                                           global, direct });
                return;
            }
        }
        if (!r->smash[t]) {
            return;
        }
    }
}

static TlbmHit ref_lookup(Ref *r, bool fetch, uint32_t ctx, uint64_t addr)
{
    int l1 = fetch ? 1 : 0;
    int l2 = fetch && r->tlb[3][0].g.entries ? 3 : 2;
    RefEntry *e;

    if (ref_tlb_find(r, l1, ctx, addr)) {
        return TLBM_HIT_L1;
    }
    e = ref_tlb_find(r, l2, ctx, addr);
    if (!e) {
        return TLBM_MISS;
    }
    ref_fill(r, l1, e->ctx, addr, e->size, e->global, e->direct);
    return TLBM_HIT_L2;
}

/* Drop from every TLB the entries @drop names. */
static void ref_drop(Ref *r, bool (*drop)(const RefEntry *, uint32_t,
                                          uint64_t, uint64_t),
                     uint32_t ctx, uint64_t addr, uint64_t end)
{
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < TLBM_MAX_ARRAYS; i++) {
            for (GArray **s = r->tlb[t][i].sets; *s; s++) {
                for (guint k = (*s)->len; k-- > 0;) {
                    if (drop(&g_array_index(*s, RefEntry, k), ctx, addr, end)) {
                        g_array_remove_index(*s, k);
                    }
                }
            }
        }
    }
}

static bool ref_drop_nonglobal(const RefEntry *e, uint32_t ctx,
                               uint64_t a G_GNUC_UNUSED,
                               uint64_t end G_GNUC_UNUSED)
{
    return e->ctx == ctx && !e->global;
}

static bool ref_drop_page(const RefEntry *e, uint32_t ctx, uint64_t a,
                          uint64_t end G_GNUC_UNUSED)
{
    return ref_match(e, ctx) && e->key == a >> (12 + 9 * e->size);
}

static bool ref_drop_direct(const RefEntry *e, uint32_t ctx G_GNUC_UNUSED,
                            uint64_t a G_GNUC_UNUSED,
                            uint64_t end G_GNUC_UNUSED)
{
    return e->direct;
}

static bool ref_drop_asid(const RefEntry *e, uint32_t ctx,
                          uint64_t a G_GNUC_UNUSED,
                          uint64_t end G_GNUC_UNUSED)
{
    return (e->ctx >> TLBM_PCID_BITS) == (ctx >> TLBM_PCID_BITS);
}

/* A guest segment's change: its entries, and @ctx's ASID's in [a, end). */
static bool ref_drop_segment(const RefEntry *e, uint32_t ctx, uint64_t a,
                             uint64_t end)
{
    uint64_t first = e->key << (12 + 9 * e->size);
    uint64_t bytes = 1ull << (12 + 9 * e->size);

    return e->direct ||
           (ref_drop_asid(e, ctx, 0, 0) && first < end && a < first + bytes);
}

/* Geometries of the random test: the small one, and a split-L2, fully
 * associative one without smashing. */
static const TlbmGeom split = {
    .l1d = { .array = {
        { .entries = 8, .ways = 8, .sizes = TLBM_ALL_SIZES },
    } },
    .l1i = { .array = {
        { .entries = 4, .ways = 4, .sizes = TLBM_ALL_SIZES },
    } },
    .l2 = { .array = {
        { .entries = 24, .ways = 6, .sizes = TLBM_SIZE_MASK(TLBM_4K) },
        { .entries = 8, .ways = 2, .sizes = TLBM_SIZE_MASK(TLBM_2M) },
    } },
    .l2i = { .array = {
        { .entries = 12, .ways = 3, .sizes = TLBM_SIZE_MASK(TLBM_4K) },
    } },
};

/* A random trace's fill: mostly 4 KiB, now and then global or L1-only. */
typedef struct RandomFill {
    TlbmSize size;
    bool global;
    bool l2;
    bool direct;
} RandomFill;

static RandomFill random_fill(GRand *rnd)
{
    int size = g_rand_int_range(rnd, 0, 8);
    RandomFill f = {
        .size = size < 6 ? TLBM_4K : size < 7 ? TLBM_2M : TLBM_1G,
    };

    f.global = g_rand_int_range(rnd, 0, 8) == 0;
    /* A walk's, a guest segment's with a nested step, or segments' alone. */
    switch (g_rand_int_range(rnd, 0, 4)) {
    case 0:
    case 1:
        f.l2 = true;
        break;
    case 2:
        f.l2 = f.direct = true;
        break;
    default:
        f.direct = true;
        break;
    }
    return f;
}

static void random_trace(const TlbmGeom *g, uint32_t seed)
{
    GRand *rnd = g_rand_new_with_seed(seed);
    unsigned hits[3] = { 0 };
    Model t;
    Ref r;

    model_init(&t, g);
    ref_init(&r, g);
    for (int i = 0; i < 200000; i++) {
        uint32_t ctx = TLBM_CTX(g_rand_int_range(rnd, 0, 2),
                                g_rand_int_range(rnd, 0, 2));
        uint64_t addr = (uint64_t)g_rand_int_range(rnd, 0, 96) * K4 +
                        (uint64_t)g_rand_int_range(rnd, 0, 3) * G1;
        bool fetch = g_rand_int_range(rnd, 0, 4) == 0;
        int op = g_rand_int_range(rnd, 0, 1000);
        TlbmHit got, want;

        if (op < 3) {
            tlbm_flush_nonglobal(&t.m, ctx);
            ref_drop(&r, ref_drop_nonglobal, ctx, 0, 0);
            continue;
        } else if (op < 6) {
            tlbm_flush_page(&t.m, ctx, addr);
            ref_drop(&r, ref_drop_page, ctx, addr, 0);
            continue;
        } else if (op < 7) {
            tlbm_flush_asid(&t.m, TLBM_CTX_ASID(ctx));
            ref_drop(&r, ref_drop_asid, ctx, 0, 0);
            continue;
        } else if (op < 9) {
            tlbm_flush_direct(&t.m);
            ref_drop(&r, ref_drop_direct, ctx, 0, 0);
            continue;
        } else if (op < 11) {
            uint64_t end = addr + (uint64_t)g_rand_int_range(rnd, 0, 1024) *
                           K4;

            tlbm_flush_segment(&t.m, TLBM_CTX_ASID(ctx), addr, end);
            ref_drop(&r, ref_drop_segment, ctx, addr, end);
            continue;
        }
        got = tlbm_lookup(&t.m, fetch, ctx, addr);
        want = ref_lookup(&r, fetch, ctx, addr);
        g_assert_cmpint(got, ==, want);
        hits[got]++;
        if (got == TLBM_MISS) {
            RandomFill f = random_fill(rnd);

            tlbm_fill(&t.m, fetch, ctx, addr, f.size, f.global, f.l2,
                      f.direct);
            ref_fill(&r, fetch ? 1 : 0, ctx, addr, f.size, f.global,
                     f.direct);
            if (f.l2) {
                ref_fill(&r, fetch && r.tlb[3][0].g.entries ? 3 : 2, ctx,
                         addr, f.size, f.global, f.direct);
            }
        }
    }
    /* The trace exercised all three outcomes. */
    g_assert_cmpuint(hits[TLBM_HIT_L1], >, 1000);
    g_assert_cmpuint(hits[TLBM_HIT_L2], >, 1000);
    g_assert_cmpuint(hits[TLBM_MISS], >, 1000);
    ref_free(&r);
    model_free(&t);
    g_rand_free(rnd);
}

/*
 * The front changes nothing: the same random trace on two models, one of
 * which answers from tlbm_front_hit() whenever it can, gives the same
 * outcome at every lookup, and the front answers often.
 */
static void front_trace(const TlbmGeom *g, uint32_t seed)
{
    GRand *rnd = g_rand_new_with_seed(seed);
    unsigned front_hits = 0;
    uint64_t page = 0;
    uint32_t ctx = 0;
    bool fetch = false;
    Model a, b;

    model_init(&a, g);
    model_init(&b, g);
    for (int i = 0; i < 200000; i++) {
        /* Runs on a page, as code and stacks make them, then another. */
        uint64_t addr;
        int op = g_rand_int_range(rnd, 0, 1000);
        TlbmHit got, want;

        if (g_rand_int_range(rnd, 0, 4) == 0) {
            page = (uint64_t)g_rand_int_range(rnd, 0, 40) * K4 +
                   (uint64_t)g_rand_int_range(rnd, 0, 2) * G1;
            ctx = TLBM_CTX(g_rand_int_range(rnd, 0, 2),
                           g_rand_int_range(rnd, 0, 2));
            fetch = g_rand_int_range(rnd, 0, 4) == 0;
        }
        addr = page + (uint64_t)g_rand_int_range(rnd, 0, 512) * 8;
        if (op < 3) {
            tlbm_flush_nonglobal(&a.m, ctx);
            tlbm_flush_nonglobal(&b.m, ctx);
            continue;
        } else if (op < 5) {
            tlbm_flush_page(&a.m, ctx, addr);
            tlbm_flush_page(&b.m, ctx, addr);
            continue;
        } else if (op < 6) {
            tlbm_flush_direct(&a.m);
            tlbm_flush_direct(&b.m);
            continue;
        } else if (op < 7) {
            tlbm_flush_segment(&a.m, TLBM_CTX_ASID(ctx), page, page + 8 * K4);
            tlbm_flush_segment(&b.m, TLBM_CTX_ASID(ctx), page, page + 8 * K4);
            continue;
        }
        if (tlbm_front_hit(&a.m, fetch, ctx, addr)) {
            got = TLBM_HIT_L1;
            front_hits++;
        } else {
            got = tlbm_lookup(&a.m, fetch, ctx, addr);
        }
        want = tlbm_lookup(&b.m, fetch, ctx, addr);
        g_assert_cmpint(got, ==, want);
        if (got == TLBM_MISS) {
            RandomFill f = random_fill(rnd);

            tlbm_fill(&a.m, fetch, ctx, addr, f.size, f.global, f.l2,
                      f.direct);
            tlbm_fill(&b.m, fetch, ctx, addr, f.size, f.global, f.l2,
                      f.direct);
        }
    }
    g_assert_cmpuint(front_hits, >, 10000);
    model_free(&a);
    model_free(&b);
    g_rand_free(rnd);
}

static void test_front_changes_nothing(void)
{
    const TlbmPreset *zen = tlbm_preset("zen");
    TlbmGeom g;

    front_trace(&small, 3);
    front_trace(&split, 4);
    g_assert_null(tlbm_geom_parse(&g, zen->geom));
    front_trace(&g, 5);
}

static void test_random_small(void)
{
    random_trace(&small, 1);
}

static void test_random_split(void)
{
    random_trace(&split, 2);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tlb-model/geometry-errors", test_geometry_errors);
    g_test_add_func("/tlb-model/loop-fits-l1", test_loop_fits_l1);
    g_test_add_func("/tlb-model/lru-cycle", test_lru_cycle);
    g_test_add_func("/tlb-model/page-sizes", test_page_sizes);
    g_test_add_func("/tlb-model/invlpg", test_invlpg);
    g_test_add_func("/tlb-model/asids", test_asids);
    g_test_add_func("/tlb-model/guest-direct-l2", test_guest_direct_l2);
    g_test_add_func("/tlb-model/pwc-walk", test_pwc_walk);
    g_test_add_func("/tlb-model/geom-words", test_geom_words);
    g_test_add_func("/tlb-model/presets", test_presets);
    g_test_add_func("/tlb-model/skylake-loops", test_skylake_loops);
    g_test_add_func("/tlb-model/skylake-random-rate",
                    test_skylake_random_rate);
    g_test_add_func("/tlb-model/random-small", test_random_small);
    g_test_add_func("/tlb-model/front-changes-nothing",
                    test_front_changes_nothing);
    g_test_add_func("/tlb-model/random-split", test_random_split);
    return g_test_run();
}
