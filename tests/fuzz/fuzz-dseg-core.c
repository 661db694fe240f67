/*
 * libFuzzer target for the direct-segment core (target/i386/dseg-core.c):
 * the register validity rules, the escape filter and the reference model
 * of arch-refs.  scripts/fuzz.sh builds it with clang's -fsanitize=fuzzer
 * (plus ASan and UBSan) and runs it; see docs/devel/dseg-testing.rst.
 *
 * The first input byte picks a part; the rest drives it.  Each invariant
 * is an assertion, written from docs/specs/direct-segments.rst rather
 * than from the code under test:
 *
 * - registers: a write is accepted exactly when the spec's rules 1-3,
 *   evaluated here with exact 128-bit integers, accept the candidate
 *   state; an accepted armed state maps every address it contains below
 *   2^MAXPHYADDR, with no wrap-around, and a guest segment only
 *   canonical addresses of one half;
 * - filter: the geometry range; no false negatives for any inserted page
 *   (at any offset in it), before and after more inserts; hash values in
 *   range; the empty flag agrees with the bits; a cleared filter reports
 *   nothing; the multipliers are splitmix64(i + 1) | 1;
 * - model: for random paging depths, page sizes, VMM-segment hits and
 *   guest-segment hits, a fill accounted with dseg_walk_refs() and
 *   dseg_counters_add_fill() lands on the spec's path with the spec's
 *   arch-refs, A = sum over guest entries of (1 + N(p_j)) + N(final).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <stdio.h>
#include <stdlib.h>

#include "dseg-core.h"

#define CHECK(cond)                                                       \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,    \
                    __LINE__, #cond);                                     \
            abort();                                                      \
        }                                                                 \
    } while (0)

typedef unsigned __int128 u128;

typedef struct Input {
    const uint8_t *p;
    size_t n;
} Input;

/* The next @bytes bytes of input as a little-endian number (0 past the end). */
static uint64_t take(Input *in, unsigned bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < bytes && in->n; i++, in->p++, in->n--) {
        v |= (uint64_t)*in->p << (8 * i);
    }
    return v;
}

/* A 64-bit value that is often at an edge: page-aligned, near 2^k. */
static uint64_t take_addr(Input *in)
{
    uint64_t kind = take(in, 1), v = take(in, 8);
    unsigned k = (kind >> 2) & 63;

    switch (kind & 3) {
    case 0:
        return v;
    case 1:
        return v & ~0xfffull;
    case 2:
        return ((1ull << k) + (int8_t)(v & 0xff) * 4096ull);
    default:
        return -(1ull << k) + (int8_t)(v & 0xff) * 4096ull;
    }
}

/* --- registers -------------------------------------------------------- */

static bool ref_canonical(uint64_t x, unsigned w)
{
    uint64_t top = x >> (w - 1);

    return top == 0 || top == (~0ull >> (w - 1));
}

/* Rules 1-3 of "Validity rules" for a whole register state. */
static bool ref_valid(const DSegRange *r, bool linear, unsigned w,
                      unsigned maxpa)
{
    const u128 pa_top = (u128)1 << maxpa;

    if ((r->base | r->limit | r->offset) & 0xfff) {
        return false;
    }
    if (linear) {
        if (!ref_canonical(r->base, w) ||
            (r->limit && !ref_canonical(r->limit - 1, w))) {
            return false;
        }
    } else if (r->base >= pa_top || r->limit > pa_top) {
        return false;
    }
    if (r->limit == 0) {
        return true;
    }
    if (r->base > r->limit) {
        return false;
    }
    if (r->base < r->limit) {
        uint64_t t = r->base + r->offset;

        if (linear && (r->base >> 63) != ((r->limit - 1) >> 63)) {
            return false;
        }
        if ((u128)t + (r->limit - r->base) > pa_top) {
            return false;
        }
    }
    return true;
}

/* An accepted armed state maps @a, if it contains it, inside the PA space. */
static void check_maps(const DSegRange *r, bool linear, unsigned w,
                       unsigned maxpa, uint64_t a)
{
    bool in = r->limit && r->base <= a && a < r->limit;

    CHECK(dseg_range_contains(r, a) == in);
    if (in) {
        CHECK((u128)(uint64_t)(a + r->offset) < ((u128)1 << maxpa));
        CHECK((uint64_t)(a + r->offset) - (uint64_t)(r->base + r->offset) ==
              a - r->base);
        CHECK(!linear || ref_canonical(a, w));
    }
}

static void fuzz_registers(Input *in)
{
    uint64_t cfg = take(in, 1);
    const bool linear = cfg & 1;
    const unsigned w = cfg & 2 ? 57 : 48;
    const unsigned maxpa = 32 + (cfg >> 2) % 21;      /* 32 to 52 */
    DSegRange r = { 0 };

    while (in->n) {
        DSegReg reg = take(in, 1) % 3;
        uint64_t val = take_addr(in);
        DSegRange cand = r;
        bool accepted;

        dseg_range_write(&cand, reg, val);
        accepted = dseg_range_write_valid(&r, reg, val, linear, w, maxpa);
        CHECK(accepted == ref_valid(&cand, linear, w, maxpa));
        CHECK(accepted == dseg_range_valid(&cand, linear, w, maxpa));
        if (!accepted) {
            continue;
        }
        dseg_range_write(&r, reg, val);
        CHECK(dseg_range_read(&r, reg) == val);
        if (r.base < r.limit) {
            uint64_t span = r.limit - r.base;

            check_maps(&r, linear, w, maxpa, r.base);
            check_maps(&r, linear, w, maxpa, r.limit - 1);
            check_maps(&r, linear, w, maxpa, r.base + take(in, 8) % span);
        }
        check_maps(&r, linear, w, maxpa, r.limit);
        check_maps(&r, linear, w, maxpa, r.base - 1);
    }
}

/* --- filter ----------------------------------------------------------- */

/* The spec's splitmix64 ("The hash functions"). */
static uint64_t splitmix64(uint64_t x)
{
    x *= 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static bool bits_zero(const DSegFilter *f)
{
    for (unsigned i = 0; i < DSEG_FILTER_WORDS; i++) {
        if (f->bits[i]) {
            return false;
        }
    }
    return true;
}

#define MAX_INSERTS 64

static void fuzz_filter(Input *in)
{
    unsigned bits_log2 = take(in, 1) % 16, hashes = take(in, 1) % 10;
    uint64_t inserted[MAX_INSERTS];
    unsigned n = 0;
    DSegFilter f;

    for (unsigned i = 0; i < DSEG_FILTER_MAX_HASHES; i++) {
        CHECK(dseg_filter_multiplier(i) == (splitmix64(i + 1) | 1));
    }
    CHECK(dseg_filter_geometry_valid(bits_log2, hashes) ==
          (bits_log2 >= 6 && bits_log2 <= 12 && hashes >= 1 && hashes <= 8));
    if (!dseg_filter_geometry_valid(bits_log2, hashes)) {
        return;
    }
    dseg_filter_init(&f, bits_log2, hashes);
    CHECK(f.empty && bits_zero(&f) && !dseg_filter_test(&f, take(in, 8)));
    while (in->n) {
        uint64_t op = take(in, 1), a = take_addr(in);

        if (op == 0xff) {
            dseg_filter_clear(&f);
            n = 0;
            CHECK(f.empty && bits_zero(&f) && !dseg_filter_test(&f, a));
            continue;
        }
        if (n < MAX_INSERTS) {
            dseg_filter_insert(&f, a);
            inserted[n++] = a;
        }
        for (unsigned i = 0; i < f.nr_hashes; i++) {
            CHECK(dseg_filter_hash(&f, i, a >> 12) < (1u << bits_log2));
        }
        for (unsigned i = 0; i < n; i++) {
            CHECK(dseg_filter_test(&f, inserted[i]));
            CHECK(dseg_filter_test(&f, inserted[i] ^ (op & 0xfff)));
        }
        CHECK(f.empty == bits_zero(&f));
        for (unsigned i = 1u << (bits_log2 - 6); i < DSEG_FILTER_WORDS; i++) {
            CHECK(f.bits[i] == 0);      /* nothing beyond the geometry */
        }
        f.empty = !f.empty;
        dseg_filter_update_empty(&f);
        CHECK(f.empty == bits_zero(&f));
    }
}

/* --- the reference model of arch-refs ------------------------------------ */

/* Entries a long-mode walk of @levels levels reads to a leaf of 4 KiB,
 * 2 MiB or 1 GiB (@size 0, 1, 2). */
static unsigned ref_walk_len(unsigned levels, unsigned size)
{
    return levels - size;
}

static void fuzz_model(Input *in)
{
    uint64_t cfg = take(in, 2);
    const unsigned n = cfg & 1 ? 5 : 4;          /* guest levels */
    const unsigned m = cfg & 2 ? 5 : 4;          /* nested levels */
    const bool nested = cfg & 4, guest_direct = cfg & 8;
    const bool final_direct = nested && (cfg & 16);
    const unsigned leaf = (cfg >> 5) % 3;        /* guest leaf size */
    const unsigned entries = guest_direct ? 0 : ref_walk_len(n, leaf);
    DSegCounters c = { 0 };
    DSegFill f = { .active = true, .guest_direct = guest_direct,
                   .final_direct = final_direct };
    bool all_4k = leaf == 0, all_direct = true, none_direct = true;
    uint64_t want = 0;
    DSegPath path;

    CHECK(dseg_walk_refs(n, 9, 12 + 9 * leaf) == ref_walk_len(n, leaf));
    CHECK(dseg_walk_refs(2, 10, 12 + 10 * (leaf & 1)) == 2 - (leaf & 1));
    for (unsigned j = 0; j < entries; j++) {
        uint64_t e = take(in, 1);
        bool direct = nested && (e & 1);
        unsigned size = (e >> 1) % 3;

        if (!nested) {
            f.arch_refs += 1;
            want += 1;
            continue;
        }
        f.arch_refs += 1 + (direct ? 0 : dseg_walk_refs(m, 9, 12 + 9 * size));
        want += 1 + (direct ? 0 : ref_walk_len(m, size));
        all_4k &= size == 0 || direct;
        all_direct &= direct;
        none_direct &= !direct;
    }
    if (nested && !final_direct) {
        unsigned size = take(in, 1) % 3;

        f.arch_refs += dseg_walk_refs(m, 9, 12 + 9 * size);
        want += ref_walk_len(m, size);
        all_4k &= size == 0;
    }
    dseg_counters_add_fill(&c, &f, nested);

    if (!nested) {
        path = guest_direct ? DSEG_PATH_NATIVE_DIRECT : DSEG_PATH_NATIVE_WALK;
    } else if (guest_direct) {
        path = final_direct ? DSEG_PATH_DUAL_DIRECT : DSEG_PATH_GUEST_DIRECT;
    } else {
        path = final_direct ? DSEG_PATH_VMM_DIRECT : DSEG_PATH_2D_WALK;
    }
    for (unsigned p = 0; p < DSEG_PATH__MAX; p++) {
        CHECK(c.path[p].fills == (p == path));
        CHECK(c.path[p].arch_refs == (p == path ? f.arch_refs : 0));
    }
    CHECK(f.arch_refs == want);

    /*
     * The closed forms of the spec's table, 4 KiB pages everywhere, with
     * the guest's tables all outside the VMM segment or all inside it.
     */
    if (all_4k && (all_direct || none_direct)) {
        switch (path) {
        case DSEG_PATH_NATIVE_WALK:
            CHECK(want == n);
            break;
        case DSEG_PATH_2D_WALK:
            CHECK(want == (all_direct ? n + m : n * m + n + m));
            break;
        case DSEG_PATH_GUEST_DIRECT:
            CHECK(want == m);
            break;
        case DSEG_PATH_VMM_DIRECT:
            CHECK(want == (all_direct ? n : n * m + n));
            break;
        default:
            CHECK(want == 0);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Input in = { data, size };

    switch (take(&in, 1) % 3) {
    case 0:
        fuzz_registers(&in);
        break;
    case 1:
        fuzz_filter(&in);
        break;
    default:
        fuzz_model(&in);
        break;
    }
    return 0;
}
