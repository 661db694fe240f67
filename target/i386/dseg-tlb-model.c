/*
 * A model of a translation hierarchy (qemu-dseg): TLBs, page walk cache
 * and nested TLB.  See dseg-tlb-model.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "dseg-tlb-model.h"

/* Entry address granularity in the page walk cache: one 8-byte entry. */
#define TLBM_PTE_SHIFT  3

static const char *tlbm_array_error(const TlbmArrayGeom *a)
{
    if (!a->entries) {
        return a->sizes ? "an array of 0 entries holds no page size" : NULL;
    }
    if (!a->ways || a->ways > a->entries || a->entries % a->ways) {
        return "an array's ways must divide its entries";
    }
    if (a->sizes & ~TLBM_ALL_SIZES) {
        return "an array holds 4 KiB, 2 MiB and 1 GiB pages only";
    }
    return NULL;
}

static const char *tlbm_tlb_error(const TlbmTlbGeom *t)
{
    uint8_t held = 0;

    for (unsigned i = 0; i < TLBM_MAX_ARRAYS; i++) {
        const TlbmArrayGeom *a = &t->array[i];
        const char *err = tlbm_array_error(a);

        if (err) {
            return err;
        }
        if (!a->entries) {
            continue;
        }
        if (!a->sizes) {
            return "a TLB array holds no page size";
        }
        if (held & a->sizes) {
            return "two arrays of one TLB hold the same page size";
        }
        held |= a->sizes;
    }
    return NULL;
}

static bool tlbm_holds_4k(const TlbmTlbGeom *t)
{
    for (unsigned i = 0; i < TLBM_MAX_ARRAYS; i++) {
        if (t->array[i].sizes & TLBM_SIZE_MASK(TLBM_4K)) {
            return true;
        }
    }
    return false;
}

const char *tlbm_geom_error(const TlbmGeom *g)
{
    const TlbmTlbGeom *tlbs[] = { &g->l1d, &g->l1i, &g->l2, &g->l2i };
    const char *err;

    for (unsigned i = 0; i < ARRAY_SIZE(tlbs); i++) {
        err = tlbm_tlb_error(tlbs[i]);
        if (err) {
            return err;
        }
    }
    if (!g->l1d.array[0].entries || !g->l1i.array[0].entries) {
        return "the L1 TLBs need an array each";
    }
    if (!tlbm_holds_4k(&g->l1d) || !tlbm_holds_4k(&g->l1i)) {
        return "the L1 TLBs must hold 4 KiB pages (a segment fills them so)";
    }
    err = tlbm_array_error(&g->pwc);
    return err ? err : tlbm_array_error(&g->ntlb);
}

/* Geometry in words */

/* Parse a decimal number up to @max from *@s, advancing it; 0 on error. */
static uint32_t tlbm_parse_number(const char **s, uint32_t max)
{
    uint64_t n = 0;

    if (**s < '0' || **s > '9') {
        return 0;
    }
    while (**s >= '0' && **s <= '9') {
        n = n * 10 + (*(*s)++ - '0');
        if (n > max) {
            return 0;
        }
    }
    return n;
}

/* ENTRIES[xWAYS], up to @end. */
static const char *tlbm_parse_array(TlbmArrayGeom *a, const char **s,
                                    const char *end)
{
    a->entries = tlbm_parse_number(s, TLBM_MAX_ENTRIES);
    if (!a->entries) {
        return "an array needs a number of entries from 1 to 1048576";
    }
    a->ways = a->entries;
    if (*s < end && **s == 'x') {
        ++*s;
        a->ways = tlbm_parse_number(s, a->entries);
        if (!a->ways || a->entries % a->ways) {
            return "an array's ways must divide its entries";
        }
    }
    return NULL;
}

static const char *tlbm_parse_sizes(uint8_t *sizes, const char *s,
                                    const char *end)
{
    static const char *const names[TLBM_NR_SIZES] = { "4k", "2m", "1g" };

    *sizes = 0;
    while (s < end) {
        TlbmSize sz;

        for (sz = 0; sz < TLBM_NR_SIZES; sz++) {
            if (!strncmp(s, names[sz], 2)) {
                break;
            }
        }
        if (sz == TLBM_NR_SIZES || (*sizes & TLBM_SIZE_MASK(sz))) {
            return "page sizes are 4k, 2m and 1g, each once, joined by '+'";
        }
        *sizes |= TLBM_SIZE_MASK(sz);
        s += 2;
        if (s < end && (*s++ != '+' || s == end)) {
            return "page sizes are 4k, 2m and 1g, each once, joined by '+'";
        }
    }
    return *sizes ? NULL : "a TLB array needs its page sizes after ':'";
}

static const char *tlbm_parse_tlb(TlbmTlbGeom *t, const char *s)
{
    unsigned n = 0;

    *t = (TlbmTlbGeom) { 0 };
    if (!strcmp(s, "0")) {
        return NULL;
    }
    for (;;) {
        const char *end = s + strcspn(s, "/");
        const char *colon = memchr(s, ':', end - s);
        const char *err;

        if (end - s == 5 && !strncmp(s, "smash", 5) && n && !*end) {
            t->smash = true;
        } else if (n == TLBM_MAX_ARRAYS || !colon) {
            return "a TLB is up to 3 arrays ENTRIES[xWAYS]:SIZES joined by "
                   "'/', and then \"smash\" if it smashes";
        } else {
            err = tlbm_parse_array(&t->array[n], &s, colon);
            if (!err && s != colon) {
                err = "an array is ENTRIES[xWAYS]:SIZES";
            }
            if (!err) {
                err = tlbm_parse_sizes(&t->array[n].sizes, colon + 1, end);
            }
            if (err) {
                return err;
            }
            n++;
        }
        if (!*end) {
            return NULL;
        }
        s = end + 1;
    }
}

static const char *tlbm_parse_cache(TlbmArrayGeom *a, const char *s)
{
    const char *end = s + strlen(s);
    const char *err;

    *a = (TlbmArrayGeom) { 0 };
    if (!strcmp(s, "0")) {
        return NULL;
    }
    err = tlbm_parse_array(a, &s, end);
    if (!err && s != end) {
        err = "a walk cache is ENTRIES[xWAYS]";
    }
    a->sizes = TLBM_ALL_SIZES;
    return err;
}

const char *tlbm_geom_set(TlbmGeom *g, const char *key, const char *value)
{
    TlbmGeom new = *g;
    const char *err;

    if (!strcmp(key, "l1d")) {
        err = tlbm_parse_tlb(&new.l1d, value);
    } else if (!strcmp(key, "l1i")) {
        err = tlbm_parse_tlb(&new.l1i, value);
    } else if (!strcmp(key, "l2")) {
        err = tlbm_parse_tlb(&new.l2, value);
    } else if (!strcmp(key, "l2i")) {
        err = tlbm_parse_tlb(&new.l2i, value);
    } else if (!strcmp(key, "pwc")) {
        err = tlbm_parse_cache(&new.pwc, value);
    } else if (!strcmp(key, "ntlb")) {
        err = tlbm_parse_cache(&new.ntlb, value);
    } else {
        return "the parts of a geometry are l1d, l1i, l2, l2i, pwc and ntlb";
    }
    if (!err) {
        *g = new;
    }
    return err;
}

const char *tlbm_geom_parse(TlbmGeom *g, const char *words)
{
    TlbmGeom new = { 0 };
    char part[256];

    for (;;) {
        size_t len = strcspn(words, ",");
        char *eq;
        const char *err;

        if (len >= sizeof(part)) {
            return "a part of a geometry is too long";
        }
        memcpy(part, words, len);
        part[len] = '\0';
        eq = strchr(part, '=');
        if (!eq) {
            return "a geometry is PART=VALUE parts joined by ','";
        }
        *eq = '\0';
        err = tlbm_geom_set(&new, part, eq + 1);
        if (err) {
            return err;
        }
        if (!words[len]) {
            break;
        }
        words += len + 1;
    }
    if (tlbm_geom_error(&new)) {
        return tlbm_geom_error(&new);
    }
    *g = new;
    return NULL;
}

/* Presets */

/*
 * One thread's share where a core's threads share a TLB.  The walk caches
 * are left out: their sizes are not published (see
 * docs/devel/dseg-tlb-model.rst).
 */
const TlbmPreset tlbm_presets[] = {
    {
        .name = "sandy-bridge",
        .source = "Intel 64 and IA-32 Architectures Optimization Reference "
                  "Manual, Sandy Bridge microarchitecture, TLB parameters",
        .geom = "l1d=64x4:4k/32x4:2m/4:1g,l1i=128x4:4k/8:2m,l2=512x4:4k",
    }, {
        .name = "skylake",
        .source = "Intel 64 and IA-32 Architectures Optimization Reference "
                  "Manual (248966-045), Table 2-15, Skylake client "
                  "microarchitecture TLB parameters",
        .geom = "l1d=64x4:4k/32x4:2m/4:1g,l1i=128x8:4k/8:2m,"
                "l2=1536x12:4k+2m/16x4:1g",
    }, {
        .name = "zen",
        .source = "Software Optimization Guide for AMD Family 17h "
                  "Processors (55723, rev. 3.00), 2.7 Memory Address "
                  "Translation",
        .geom = "l1d=64:4k+2m+1g,l1i=64:4k+2m+1g,l2=1536x12:4k+2m/smash,"
                "l2i=512x8:4k+2m/smash",
    },
    { .name = NULL },
};

const TlbmPreset *tlbm_preset(const char *name)
{
    for (const TlbmPreset *p = tlbm_presets; p->name; p++) {
        if (!strcmp(p->name, name)) {
            return p;
        }
    }
    return NULL;
}

static size_t tlbm_tlb_entries(const TlbmTlbGeom *t)
{
    size_t n = 0;

    for (unsigned i = 0; i < TLBM_MAX_ARRAYS; i++) {
        n += t->array[i].entries;
    }
    return n;
}

size_t tlbm_entries(const TlbmGeom *g)
{
    return tlbm_tlb_entries(&g->l1d) + tlbm_tlb_entries(&g->l1i) +
           tlbm_tlb_entries(&g->l2) + tlbm_tlb_entries(&g->l2i) +
           g->pwc.entries + g->ntlb.entries;
}

static TlbmEntry *tlbm_array_init(TlbmArray *a, const TlbmArrayGeom *g,
                                  TlbmEntry *storage)
{
    a->geom = *g;
    a->sets = g->entries ? g->entries / g->ways : 0;
    a->set_mask = a->sets && !(a->sets & (a->sets - 1)) ? a->sets - 1 : 0;
    a->entry = g->entries ? storage : NULL;
    return storage + g->entries;
}

static TlbmEntry *tlbm_tlb_init(TlbmTlb *t, const TlbmTlbGeom *g,
                                TlbmEntry *storage)
{
    t->smash = g->smash;
    for (unsigned i = 0; i < TLBM_MAX_ARRAYS; i++) {
        storage = tlbm_array_init(&t->array[i], &g->array[i], storage);
    }
    return storage;
}

void tlbm_init(TlbmModel *m, const TlbmGeom *g, TlbmEntry *storage)
{
    memset(m, 0, sizeof(*m));
    memset(storage, 0, tlbm_entries(g) * sizeof(*storage));
    storage = tlbm_tlb_init(&m->l1d, &g->l1d, storage);
    storage = tlbm_tlb_init(&m->l1i, &g->l1i, storage);
    storage = tlbm_tlb_init(&m->l2, &g->l2, storage);
    storage = tlbm_tlb_init(&m->l2i, &g->l2i, storage);
    storage = tlbm_array_init(&m->pwc, &g->pwc, storage);
    tlbm_array_init(&m->ntlb, &g->ntlb, storage);
    m->gen[0] = m->gen[1] = 1;
}

static TlbmEntry *tlbm_set(const TlbmArray *a, uint64_t key)
{
    uint64_t set = a->set_mask || a->sets == 1 ? key & a->set_mask
                                                : key % a->sets;

    return &a->entry[set * a->geom.ways];
}

static bool tlbm_ctx_match(const TlbmEntry *e, uint32_t ctx)
{
    return e->ctx == ctx ||
           (e->global && TLBM_CTX_ASID(e->ctx) == TLBM_CTX_ASID(ctx));
}

/*
 * The valid entry of @a for @key and @size that matches @ctx, the most
 * recently used if several do (@ctx's own and a global one of its ASID);
 * with @exact, only the entry tagged @ctx itself.  NULL if none.
 */
static TlbmEntry *tlbm_array_find(const TlbmArray *a, uint64_t key,
                                  TlbmSize size, uint32_t ctx, bool exact)
{
    TlbmEntry *set, *found = NULL;

    if (!a->sets) {
        return NULL;
    }
    set = tlbm_set(a, key);
    for (uint32_t w = 0; w < a->geom.ways; w++) {
        TlbmEntry *e = &set[w];

        if (e->stamp && e->key == key && e->size == size &&
            (exact ? e->ctx == ctx : tlbm_ctx_match(e, ctx)) &&
            (!found || e->stamp > found->stamp)) {
            found = e;
        }
    }
    return found;
}

/*
 * The entry of @a tagged exactly @key, @size and @ctx, or NULL; and in
 * *@lru the set's least recently used entry (its first invalid one, if it
 * has one).  One pass over the set: a tag is in it at most once, as
 * tlbm_array_insert() keeps it.
 */
static TlbmEntry *tlbm_array_probe(const TlbmArray *a, uint64_t key,
                                   TlbmSize size, uint32_t ctx,
                                   TlbmEntry **lru)
{
    TlbmEntry *set = tlbm_set(a, key);
    TlbmEntry *victim = &set[0];

    for (uint32_t w = 0; w < a->geom.ways; w++) {
        TlbmEntry *e = &set[w];

        if (e->stamp && e->key == key && e->size == size && e->ctx == ctx) {
            return e;
        }
        if (e->stamp < victim->stamp) {
            victim = e;
        }
    }
    *lru = victim;
    return NULL;
}

/*
 * Keep @key in @a, as its most recently used entry: over the entry with
 * the same tag if there is one (true), else over the set's least recently
 * used entry (false).
 */
static bool tlbm_array_insert(TlbmModel *m, TlbmArray *a, uint64_t key,
                              TlbmSize size, uint32_t ctx, bool global,
                              bool direct)
{
    TlbmEntry *lru;
    TlbmEntry *e = tlbm_array_probe(a, key, size, ctx, &lru);

    *(e ? e : lru) = (TlbmEntry) {
        .key = key, .stamp = ++m->clock, .ctx = ctx, .size = size,
        .global = global, .direct = direct,
    };
    return e != NULL;
}

/*
 * Probe every array of @t at every size it holds: the entry that maps
 * @addr for @ctx, its LRU refreshed, or NULL.
 */
static TlbmEntry *tlbm_tlb_find(TlbmModel *m, TlbmTlb *t, uint32_t ctx,
                                uint64_t addr, TlbmArray **found)
{
    for (unsigned i = 0; i < TLBM_MAX_ARRAYS; i++) {
        TlbmArray *a = &t->array[i];

        for (TlbmSize s = 0; s < TLBM_NR_SIZES; s++) {
            TlbmEntry *e;

            if (!(a->geom.sizes & TLBM_SIZE_MASK(s))) {
                continue;
            }
            e = tlbm_array_find(a, addr >> tlbm_size_shift(s), s, ctx, false);
            if (e) {
                e->stamp = ++m->clock;
                *found = a;
                return e;
            }
        }
    }
    return NULL;
}

/*
 * Keep a translation of @size in @t: in the array holding @size, else (if
 * @t smashes) as the largest smaller size an array holds.
 */
static void tlbm_tlb_fill(TlbmModel *m, TlbmTlb *t, uint32_t ctx,
                          uint64_t addr, TlbmSize size, bool global,
                          bool direct)
{
    for (int s = size; s >= 0; s--) {
        for (unsigned i = 0; i < TLBM_MAX_ARRAYS; i++) {
            TlbmArray *a = &t->array[i];

            if (a->sets && (a->geom.sizes & TLBM_SIZE_MASK(s))) {
                tlbm_array_insert(m, a, addr >> tlbm_size_shift(s), s, ctx,
                                  global, direct);
                return;
            }
        }
        if (!t->smash) {
            return;
        }
    }
}

static TlbmTlb *tlbm_l2(TlbmModel *m, bool fetch)
{
    return fetch && m->l2i.array[0].sets ? &m->l2i : &m->l2;
}

TlbmHit tlbm_lookup_size(TlbmModel *m, bool fetch, uint32_t ctx,
                         uint64_t addr, TlbmSize *l1_size)
{
    TlbmTlb *l1 = fetch ? &m->l1i : &m->l1d;
    TlbmArray *a;
    TlbmEntry *e = tlbm_tlb_find(m, l1, ctx, addr, &a);

    if (e) {
        uint64_t page = addr >> 12;

        *l1_size = e->size;
        m->front[fetch][page % TLBM_FRONT_SLOTS] = (TlbmFront) {
            .page = page, .ctx = ctx, .gen = m->gen[fetch], .entry = e,
            .set = tlbm_set(a, e->key), .ways = a->geom.ways,
        };
        return TLBM_HIT_L1;
    }
    e = tlbm_tlb_find(m, tlbm_l2(m, fetch), ctx, addr, &a);
    if (!e) {
        return TLBM_MISS;
    }
    m->gen[fetch]++;
    tlbm_tlb_fill(m, l1, e->ctx, addr, e->size, e->global, e->direct);
    return TLBM_HIT_L2;
}

TlbmHit tlbm_lookup(TlbmModel *m, bool fetch, uint32_t ctx, uint64_t addr)
{
    TlbmSize size;

    return tlbm_lookup_size(m, fetch, ctx, addr, &size);
}

void tlbm_fill(TlbmModel *m, bool fetch, uint32_t ctx, uint64_t addr,
               TlbmSize size, bool global, bool l2, bool direct)
{
    if (l2) {
        tlbm_tlb_fill(m, tlbm_l2(m, fetch), ctx, addr, size, global, direct);
    }
    m->gen[fetch]++;
    tlbm_tlb_fill(m, fetch ? &m->l1i : &m->l1d, ctx, addr, size, global,
                  direct);
}

bool tlbm_pwc_read(TlbmModel *m, uint32_t ctx, uint64_t pa)
{
    return m->pwc.sets &&
           tlbm_array_insert(m, &m->pwc, pa >> TLBM_PTE_SHIFT, TLBM_4K, ctx,
                             false, false);
}

/* Nested translations belong to an ASID, whatever the guest's PCID. */
static uint32_t tlbm_ntlb_ctx(uint32_t ctx)
{
    return TLBM_CTX(TLBM_CTX_ASID(ctx), 0);
}

bool tlbm_ntlb_lookup(TlbmModel *m, uint32_t ctx, uint64_t gpa)
{
    uint32_t nctx = tlbm_ntlb_ctx(ctx);
    TlbmEntry *found = NULL;

    if (m->ntlb.sets == 1) {
        /* One set holds every size: one pass, the smallest page first. */
        for (uint32_t w = 0; w < m->ntlb.geom.ways; w++) {
            TlbmEntry *e = &m->ntlb.entry[w];

            if (e->stamp && e->ctx == nctx &&
                e->key == gpa >> tlbm_size_shift(e->size) &&
                (!found || e->size < found->size)) {
                found = e;
            }
        }
    } else {
        for (TlbmSize s = 0; s < TLBM_NR_SIZES && !found; s++) {
            found = tlbm_array_find(&m->ntlb, gpa >> tlbm_size_shift(s), s,
                                    nctx, true);
        }
    }
    if (found) {
        found->stamp = ++m->clock;
    }
    return found != NULL;
}

void tlbm_ntlb_fill(TlbmModel *m, uint32_t ctx, uint64_t gpa, TlbmSize size)
{
    if (m->ntlb.sets) {
        tlbm_array_insert(m, &m->ntlb, gpa >> tlbm_size_shift(size), size,
                          tlbm_ntlb_ctx(ctx), false, false);
    }
}

/* What an invalidation drops. */
typedef enum TlbmDrop {
    TLBM_DROP_NONE,
    TLBM_DROP_NONGLOBAL,    /* @ctx's non-global entries */
    TLBM_DROP_CTX,          /* @ctx's entries */
    TLBM_DROP_PAGE,         /* the entries that map @addr for @ctx */
    TLBM_DROP_ASID,         /* the entries of @ctx's ASID */
    TLBM_DROP_DIRECT,       /* the entries a direct segment made */
    TLBM_DROP_SEGMENT,      /* those, and @ctx's ASID's in [@addr, @end) */
    TLBM_DROP_ALL,
} TlbmDrop;

/* Whether @e maps a linear address in [@addr, @end). */
static bool tlbm_entry_in(const TlbmEntry *e, uint64_t addr, uint64_t end)
{
    uint64_t first = e->key << tlbm_size_shift(e->size);
    uint64_t last = first | ((UINT64_C(1) << tlbm_size_shift(e->size)) - 1);

    return first < end && last >= addr;
}

static bool tlbm_drops(const TlbmEntry *e, TlbmDrop rule, uint32_t ctx,
                       uint64_t addr, uint64_t end)
{
    switch (rule) {
    case TLBM_DROP_NONGLOBAL:
        return e->ctx == ctx && !e->global;
    case TLBM_DROP_CTX:
        return e->ctx == ctx;
    case TLBM_DROP_PAGE:
        return tlbm_ctx_match(e, ctx) &&
               e->key == addr >> tlbm_size_shift(e->size);
    case TLBM_DROP_ASID:
        return TLBM_CTX_ASID(e->ctx) == TLBM_CTX_ASID(ctx);
    case TLBM_DROP_DIRECT:
        return e->direct;
    case TLBM_DROP_SEGMENT:
        return e->direct ||
               (TLBM_CTX_ASID(e->ctx) == TLBM_CTX_ASID(ctx) &&
                tlbm_entry_in(e, addr, end));
    case TLBM_DROP_ALL:
        return true;
    default:
        return false;
    }
}

static void tlbm_array_drop(TlbmArray *a, TlbmDrop rule, uint32_t ctx,
                            uint64_t addr, uint64_t end)
{
    for (uint32_t i = 0; i < a->geom.entries; i++) {
        if (a->entry[i].stamp &&
            tlbm_drops(&a->entry[i], rule, ctx, addr, end)) {
            a->entry[i].stamp = 0;
        }
    }
}

/* Drop by @tlb in the TLBs, by @pwc in the PWC and by @ntlb in the NTLB. */
static void tlbm_drop(TlbmModel *m, TlbmDrop tlb, TlbmDrop pwc,
                      TlbmDrop ntlb, uint32_t ctx, uint64_t addr,
                      uint64_t end)
{
    TlbmTlb *tlbs[] = { &m->l1d, &m->l1i, &m->l2, &m->l2i };

    if (tlb != TLBM_DROP_NONE) {
        m->gen[0]++;
        m->gen[1]++;
    }
    for (unsigned t = 0; t < ARRAY_SIZE(tlbs); t++) {
        for (unsigned i = 0; i < TLBM_MAX_ARRAYS; i++) {
            tlbm_array_drop(&tlbs[t]->array[i], tlb, ctx, addr, end);
        }
    }
    tlbm_array_drop(&m->pwc, pwc, ctx, addr, end);
    tlbm_array_drop(&m->ntlb, ntlb, ctx, addr, end);
}

void tlbm_flush_nonglobal(TlbmModel *m, uint32_t ctx)
{
    tlbm_drop(m, TLBM_DROP_NONGLOBAL, TLBM_DROP_CTX, TLBM_DROP_NONE,
              ctx, 0, 0);
}

void tlbm_flush_page(TlbmModel *m, uint32_t ctx, uint64_t addr)
{
    tlbm_drop(m, TLBM_DROP_PAGE, TLBM_DROP_CTX, TLBM_DROP_NONE,
              ctx, addr, 0);
}

void tlbm_flush_asid(TlbmModel *m, uint32_t asid)
{
    tlbm_drop(m, TLBM_DROP_ASID, TLBM_DROP_ASID, TLBM_DROP_ASID,
              TLBM_CTX(asid, 0), 0, 0);
}

void tlbm_flush_direct(TlbmModel *m)
{
    tlbm_drop(m, TLBM_DROP_DIRECT, TLBM_DROP_NONE, TLBM_DROP_NONE, 0, 0, 0);
}

void tlbm_flush_segment(TlbmModel *m, uint32_t asid, uint64_t base,
                        uint64_t limit)
{
    tlbm_drop(m, TLBM_DROP_SEGMENT, TLBM_DROP_NONE, TLBM_DROP_NONE,
              TLBM_CTX(asid, 0), base, limit);
}

void tlbm_flush_all(TlbmModel *m)
{
    tlbm_drop(m, TLBM_DROP_ALL, TLBM_DROP_ALL, TLBM_DROP_ALL, 0, 0, 0);
}
