/*
 * A model of a translation hierarchy (qemu-dseg): the parts that need no
 * QEMU headers.
 *
 * QEMU's softmmu TLB is an emulator's cache, not a CPU's: it is flushed
 * whole at every CR3 write, direct-mapped, split by MMU index and has no
 * paging-structure caches.  This model is what a CPU would have: L1
 * instruction and data TLBs and an L2 TLB, each made of set-associative
 * arrays that hold given page sizes, with LRU replacement and entries
 * tagged by address space (ASID and PCID) and the global bit; a page walk
 * cache of non-leaf page-table entries keyed by their physical address;
 * and a nested TLB of guest-physical pages.  It decides hits, misses and
 * what an invalidation drops; the caller (the fork) decides which accesses
 * it sees and what a miss walks.  See docs/devel/dseg-tlb-model.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TARGET_I386_DSEG_TLB_MODEL_H
#define TARGET_I386_DSEG_TLB_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Page sizes: 4 KiB, 2 MiB, 1 GiB; a TLB array holds a mask of them. */
typedef enum TlbmSize {
    TLBM_4K,
    TLBM_2M,
    TLBM_1G,
    TLBM_NR_SIZES,
} TlbmSize;

#define TLBM_SIZE_MASK(s)   (1u << (s))
#define TLBM_ALL_SIZES      ((1u << TLBM_NR_SIZES) - 1)

static inline unsigned tlbm_size_shift(TlbmSize s)
{
    return 12 + 9 * s;
}

/*
 * An address space: the ASID (0 for the host, an SVM guest's otherwise)
 * and the PCID within it.  A global entry matches every PCID of its ASID.
 */
#define TLBM_PCID_BITS      12
#define TLBM_CTX(asid, pcid) (((uint32_t)(asid) << TLBM_PCID_BITS) | (pcid))
#define TLBM_CTX_ASID(ctx)  ((ctx) >> TLBM_PCID_BITS)

/*
 * One set-associative array: @entries in @ways ways (@ways == @entries:
 * fully associative; @entries == 0: absent), holding the page sizes in
 * the mask @sizes.  Sets are indexed by the page number modulo their
 * count.
 */
typedef struct TlbmArrayGeom {
    uint32_t entries;
    uint32_t ways;
    uint8_t sizes;
} TlbmArrayGeom;

#define TLBM_MAX_ARRAYS     3

/*
 * A TLB: arrays probed together.  A translation of a size that no array
 * holds is kept at the largest smaller size that one holds if @smash (as
 * AMD's TLBs keep a 1 GiB page's 2 MiB part), and not kept otherwise.
 */
typedef struct TlbmTlbGeom {
    TlbmArrayGeom array[TLBM_MAX_ARRAYS];
    bool smash;
} TlbmTlbGeom;

typedef struct TlbmGeom {
    TlbmTlbGeom l1d;
    TlbmTlbGeom l1i;
    TlbmTlbGeom l2;     /* unified, or the data side when l2i has arrays */
    TlbmTlbGeom l2i;    /* the instruction side of a split L2 */
    TlbmArrayGeom pwc;  /* page walk cache: non-leaf entries */
    TlbmArrayGeom ntlb; /* nested TLB: guest-physical pages */
} TlbmGeom;

typedef struct TlbmEntry {
    uint64_t key;       /* page number, or entry address / 8 */
    uint64_t stamp;     /* last use, for LRU; 0: invalid */
    uint32_t ctx;
    uint8_t size;
    bool global;
    bool direct;        /* a guest segment made the translation */
} TlbmEntry;

typedef struct TlbmArray {
    TlbmArrayGeom geom;
    uint32_t sets;
    uint32_t set_mask;  /* sets - 1 if a power of two, else 0 */
    TlbmEntry *entry;   /* sets * ways, set-major */
} TlbmArray;

typedef struct TlbmTlb {
    TlbmArray array[TLBM_MAX_ARRAYS];
    bool smash;
} TlbmTlb;

/*
 * The front of an L1: per 4 KiB page (folded onto TLBM_FRONT_SLOTS slots)
 * and address space, the entry that the last lookup of that page found
 * there, with the set it is in.  It is what a lookup would find again as
 * long as that L1 has not changed since but for refreshed entries (its
 * generation); if it is also its set's most recently used, the lookup
 * would change nothing, and tlbm_front_hit() answers it without one.
 */
#define TLBM_FRONT_SLOTS    64

typedef struct TlbmFront {
    uint64_t page;
    uint32_t ctx;
    uint32_t ways;
    uint64_t gen;
    const struct TlbmEntry *entry;
    const struct TlbmEntry *set;
} TlbmFront;

typedef struct TlbmModel {
    TlbmTlb l1d;
    TlbmTlb l1i;
    TlbmTlb l2;
    TlbmTlb l2i;
    TlbmArray pwc;
    TlbmArray ntlb;
    uint64_t clock;
    /*
     * Per L1 [fetch], counts its fills and the invalidations of TLBs: what
     * its lookups can find changes with nothing else.  A slot of gen 0 is
     * empty.
     */
    uint64_t gen[2];
    TlbmFront front[2][TLBM_FRONT_SLOTS];   /* [fetch] */
} TlbmModel;

/*
 * Would tlbm_lookup() of @addr find it in the L1 and change nothing?  If
 * so the caller may skip the lookup: the model's state is the same.
 */
static inline bool tlbm_front_hit(const TlbmModel *m, bool fetch,
                                  uint32_t ctx, uint64_t addr)
{
    uint64_t page = addr >> 12;
    const TlbmFront *f = &m->front[fetch][page % TLBM_FRONT_SLOTS];

    if (f->page != page || f->ctx != ctx || f->gen != m->gen[fetch]) {
        return false;
    }
    for (uint32_t w = 0; w < f->ways; w++) {
        if (f->set[w].stamp > f->entry->stamp) {
            return false;
        }
    }
    return true;
}

/* Where a lookup found its translation. */
typedef enum TlbmHit {
    TLBM_HIT_L1,
    TLBM_HIT_L2,        /* and the L1 is filled from it */
    TLBM_MISS,
} TlbmHit;

/*
 * Check @g: NULL if it is a geometry the model can hold, else a message
 * (static storage) saying what is wrong.
 */
const char *tlbm_geom_error(const TlbmGeom *g);

/*
 * A geometry in words, as options give it.  A TLB is one to three arrays
 * joined by '/', each ENTRIES[xWAYS]:SIZES, SIZES being 4k, 2m and 1g
 * joined by '+' and WAYS, when left out, ENTRIES (fully associative); a
 * last element "smash" makes the TLB smash.  A walk cache (pwc, ntlb) is
 * ENTRIES[xWAYS]; "0" leaves any of them out.  For example:
 *   l1d=64x4:4k/32x4:2m/4:1g  l2=1536x12:4k+2m/smash  pwc=32
 */
#define TLBM_MAX_ENTRIES    (1u << 20)

/*
 * Set the part of @g that @key names (l1d, l1i, l2, l2i, pwc or ntlb) from
 * @value: NULL, or what is wrong (static storage), with @g unchanged.
 */
const char *tlbm_geom_set(TlbmGeom *g, const char *key, const char *value);

/*
 * Set all of @g from @words, PART=VALUE parts joined by ',' (parts left
 * out are absent), checked by tlbm_geom_error(): NULL, or what is wrong,
 * with @g unchanged.
 */
const char *tlbm_geom_parse(TlbmGeom *g, const char *words);

/* A real core's geometry in words, and where its figures come from. */
typedef struct TlbmPreset {
    const char *name;
    const char *source;
    const char *geom;
} TlbmPreset;

/* The presets, up to one whose name is NULL; tlbm_preset() finds one. */
extern const TlbmPreset tlbm_presets[];
const TlbmPreset *tlbm_preset(const char *name);

/* How many entries the arrays of geometry @g hold in all. */
size_t tlbm_entries(const TlbmGeom *g);

/*
 * Set up @m empty with geometry @g, which tlbm_geom_error() accepts, on
 * @storage, tlbm_entries(@g) entries that the caller owns.
 */
void tlbm_init(TlbmModel *m, const TlbmGeom *g, TlbmEntry *storage);

/*
 * Look @addr up for an instruction fetch (@fetch) or a data access in
 * address space @ctx: the L1, then the L2.  An L2 hit fills the L1.
 */
TlbmHit tlbm_lookup(TlbmModel *m, bool fetch, uint32_t ctx, uint64_t addr);

/* The same, with the size of the L1 entry that hit in *@l1_size. */
TlbmHit tlbm_lookup_size(TlbmModel *m, bool fetch, uint32_t ctx,
                         uint64_t addr, TlbmSize *l1_size);

/*
 * Keep the translation of @addr, a page of @size, after a miss: in the L1
 * of the access's side, and in the L2 too if @l2 (a walk or the nested
 * TLB made some of it; what segments alone made fills the L1 alone).
 * @direct: a guest segment made it (tlbm_flush_direct() drops it), which
 * an L1 entry that an L2 hit refills keeps.
 */
void tlbm_fill(TlbmModel *m, bool fetch, uint32_t ctx, uint64_t addr,
               TlbmSize size, bool global, bool l2, bool direct);

/*
 * A walk reads the non-leaf entry at physical address @pa in address
 * space @ctx: true if the page walk cache holds it (no memory reference);
 * else it is cached now.
 */
bool tlbm_pwc_read(TlbmModel *m, uint32_t ctx, uint64_t pa);

/*
 * The nested TLB: does it translate guest-physical @gpa for the ASID of
 * @ctx (its PCID does not matter)?  Filling keeps the nested page of @size
 * that holds it.
 */
bool tlbm_ntlb_lookup(TlbmModel *m, uint32_t ctx, uint64_t gpa);
void tlbm_ntlb_fill(TlbmModel *m, uint32_t ctx, uint64_t gpa, TlbmSize size);

/*
 * Invalidations:
 *   tlbm_flush_nonglobal: a CR3 write: @ctx's non-global TLB entries and
 *       its page walk cache entries;
 *   tlbm_flush_page: INVLPG: the TLB entries of @ctx (and the global ones
 *       of its ASID) that map @addr, of any size, and @ctx's page walk
 *       cache entries;
 *   tlbm_flush_asid: every entry of one ASID, global ones and the nested
 *       TLB's included;
 *   tlbm_flush_direct: the translations a guest segment made (the fills
 *       with @direct), of every address space;
 *   tlbm_flush_segment: a guest segment's change: those, and the TLB
 *       entries of @asid that map a linear address in [@base, @limit);
 *   tlbm_flush_all: everything.
 * Neither a CR3 write nor INVLPG drops nested TLB entries.
 */
void tlbm_flush_nonglobal(TlbmModel *m, uint32_t ctx);
void tlbm_flush_page(TlbmModel *m, uint32_t ctx, uint64_t addr);
void tlbm_flush_asid(TlbmModel *m, uint32_t asid);
void tlbm_flush_direct(TlbmModel *m);
void tlbm_flush_segment(TlbmModel *m, uint32_t asid, uint64_t base,
                        uint64_t limit);
void tlbm_flush_all(TlbmModel *m);

#endif /* TARGET_I386_DSEG_TLB_MODEL_H */
