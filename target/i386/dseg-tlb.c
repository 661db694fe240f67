/*
 * The modelled translation hierarchy of qemu-dseg, on the CPU's side.
 *
 * Every guest access that the dseg-tlb plugin passes on is looked up in
 * the vCPU's modelled TLBs (dseg-tlb-model.c) in the current address
 * space: the ASID of the running SVM guest, or 0 for the host (TCG has no
 * PCID, so the PCID is always 0).  On an L1 miss the direct segments are
 * consulted beside the L2 TLB, in the lookup order of the paper's hardware:
 *
 *  - the guest segment, where it applies and holds the address, gives the
 *    gPA (the hPA in host mode) with no walk; in guest mode with nested
 *    paging the gPA then takes its nested step; the translation fills the
 *    L1, and the L2 too unless segments alone made it;
 *  - else the L2 TLB; on an L2 miss the page walk, whose translation fills
 *    the L2 and the L1.
 *
 * A nested step (the address of each guest entry, and the final gPA) is
 * the VMM segment's where it translates the gPA and the escape filter lets
 * it (dseg_vmm_step, the rule fills use), else the nested TLB's, else the
 * nested walk's.  Every memory reference is counted after the walk caches:
 * the page walk cache holds non-leaf entries by their (host-)physical
 * address, guest and nested entries apart; a leaf entry always costs one.
 * The walk itself reads the tables like the debugger's view, with no side
 * effects; only its cost goes through the caches.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "cpu.h"
#include "svm.h"
#include "dseg-tlb-model.h"
#include "dseg-tlb.h"
#include "trace.h"
#ifdef CONFIG_PLUGIN
#include "exec/memopidx.h"
#include "qemu/qemu-plugin.h"
#endif

/*
 * The nested dimension's walk-cache entries: PCID 1 of the guest's ASID.
 * A guest's own entries are always PCID 0 (TCG has no PCID), so a guest
 * CR3 write or INVLPG, which drops PCID 0's, keeps the nested ones, and an
 * ASID flush drops both.
 */
#define DSEG_TLB_GUEST_PCID     0
#define DSEG_TLB_NESTED_PCID    1

/* The VMCB's TLB_CONTROL values (AMD APM volume 2, 15.16.1). */
#define DSEG_TLB_CONTROL_FLUSH_ALL          1
#define DSEG_TLB_CONTROL_FLUSH_ASID         3
#define DSEG_TLB_CONTROL_FLUSH_ASID_LOCAL   7

/* The ASIDs the model tells apart; VMRUN's is taken modulo this. */
#define DSEG_TLB_ASID_BITS      (32 - TLBM_PCID_BITS)

/* The model's configuration, set once by the plugin before any vCPU runs. */
static struct {
    bool enabled;
    TlbmGeom geom;
    char *geometry;
    char *preset;
    uint64_t l2_cycles;
    uint64_t ref_cycles;
} dseg_tlb_config;

/* Defaults: see "The cycle model" in docs/devel/dseg-tlb-model.rst. */
#define DSEG_TLB_DEFAULT_PRESET     "skylake"
#define DSEG_TLB_DEFAULT_CACHES     "pwc=32,ntlb=32"
#define DSEG_TLB_DEFAULT_L2_CYCLES  7
#define DSEG_TLB_DEFAULT_REF_CYCLES 20

struct DSegTlb {
    TlbmModel m;
    DSegTlbCounters c;
    uint32_t guest_asid;    /* of the guest VMRUN entered last */
    uint64_t tb_pc;         /* linear address of the running TB */
    int cpu;                /* the vCPU's index, for the trace events */
    TlbmEntry storage[];
};

bool dseg_tlb_enabled(void)
{
    return dseg_tlb_config.enabled;
}

const char *dseg_tlb_geometry(void)
{
    return dseg_tlb_config.geometry;
}

const char *dseg_tlb_preset(void)
{
    return dseg_tlb_config.preset;
}

uint64_t dseg_tlb_l2_cycles(void)
{
    return dseg_tlb_config.l2_cycles;
}

uint64_t dseg_tlb_ref_cycles(void)
{
    return dseg_tlb_config.ref_cycles;
}

/*
 * The linear model: every L1 miss pays the L2 lookup (which the segments
 * are checked beside), every walk reference its memory access.
 */
uint64_t dseg_tlb_cycles(uint64_t l1_misses, uint64_t refs)
{
    return l1_misses * dseg_tlb_config.l2_cycles +
           refs * dseg_tlb_config.ref_cycles;
}

/* The vCPU's model, made on first use; NULL while the model is off. */
static __attribute__((noinline))
DSegTlb *dseg_tlb_make(CPUX86State *env)
{
    DSegTlb *t;

    if (!dseg_tlb_config.enabled) {
        return NULL;
    }
    t = g_malloc0(sizeof(*t) +
                  tlbm_entries(&dseg_tlb_config.geom) * sizeof(TlbmEntry));
    tlbm_init(&t->m, &dseg_tlb_config.geom, t->storage);
    t->cpu = env_cpu(env)->cpu_index;
    qatomic_store_release(&env->dseg.tlb, t);
    return t;
}

static inline DSegTlb *dseg_tlb_get(CPUX86State *env)
{
    DSegTlb *t = qatomic_load_acquire(&env->dseg.tlb);

    return likely(t) ? t : dseg_tlb_make(env);
}

const DSegTlbCounters *dseg_tlb_counters(CPUX86State *env)
{
    DSegTlb *t = qatomic_load_acquire(&env->dseg.tlb);

    return t ? &t->c : NULL;
}

void dseg_tlb_reset_counters(CPUX86State *env)
{
    DSegTlb *t = qatomic_load_acquire(&env->dseg.tlb);

    if (t) {
        t->c = (DSegTlbCounters) { 0 };
    }
}

/*
 * The model's operations, each with its trace event (dseg_tlb_*), so that
 * a trace replays on another implementation
 * (tests/functional/test_tlb_model.py).
 */
static TlbmHit dseg_tlb_lookup(DSegTlb *t, bool fetch, uint32_t ctx,
                               uint64_t addr)
{
    TlbmHit hit = tlbm_lookup(&t->m, fetch, ctx, addr);

    trace_dseg_tlb_lookup(t->cpu, fetch, ctx, addr, hit);
    return hit;
}

static void dseg_tlb_fill(DSegTlb *t, bool fetch, uint32_t ctx,
                          uint64_t addr, TlbmSize size, bool global, bool l2,
                          bool direct)
{
    trace_dseg_tlb_fill(t->cpu, fetch, ctx, addr, size, global, l2, direct);
    tlbm_fill(&t->m, fetch, ctx, addr, size, global, l2, direct);
}

static bool dseg_tlb_pwc_read(DSegTlb *t, uint32_t ctx, uint64_t pa)
{
    bool hit = tlbm_pwc_read(&t->m, ctx, pa);

    trace_dseg_tlb_pwc(t->cpu, ctx, pa, hit);
    return hit;
}

static bool dseg_tlb_ntlb_lookup(DSegTlb *t, uint32_t ctx, uint64_t gpa)
{
    bool hit = tlbm_ntlb_lookup(&t->m, ctx, gpa);

    trace_dseg_tlb_ntlb(t->cpu, ctx, gpa, hit);
    return hit;
}

static void dseg_tlb_ntlb_fill(DSegTlb *t, uint32_t ctx, uint64_t gpa,
                               TlbmSize size)
{
    trace_dseg_tlb_ntlb_fill(t->cpu, ctx, gpa, size);
    tlbm_ntlb_fill(&t->m, ctx, gpa, size);
}

static void dseg_tlb_flush_nonglobal(DSegTlb *t, uint32_t ctx)
{
    trace_dseg_tlb_flush(t->cpu, "nonglobal", ctx, 0, 0);
    tlbm_flush_nonglobal(&t->m, ctx);
}

static void dseg_tlb_flush_page(DSegTlb *t, uint32_t ctx, uint64_t addr)
{
    trace_dseg_tlb_flush(t->cpu, "page", ctx, addr, 0);
    tlbm_flush_page(&t->m, ctx, addr);
}

static void dseg_tlb_flush_asid(DSegTlb *t, uint32_t asid)
{
    trace_dseg_tlb_flush(t->cpu, "asid", TLBM_CTX(asid, 0), 0, 0);
    tlbm_flush_asid(&t->m, asid);
}

static void dseg_tlb_flush_direct(DSegTlb *t)
{
    trace_dseg_tlb_flush(t->cpu, "direct", 0, 0, 0);
    tlbm_flush_direct(&t->m);
}

static void dseg_tlb_flush_segment(DSegTlb *t, uint32_t asid,
                                   const DSegRange *guest)
{
    trace_dseg_tlb_flush(t->cpu, "segment", TLBM_CTX(asid, 0), guest->base,
                         guest->limit);
    tlbm_flush_segment(&t->m, asid, guest->base, guest->limit);
}

static void dseg_tlb_flush_everything(DSegTlb *t)
{
    trace_dseg_tlb_flush(t->cpu, "all", 0, 0, 0);
    tlbm_flush_all(&t->m);
}

static uint32_t dseg_tlb_asid(CPUX86State *env, DSegTlb *t)
{
    return env->hflags & HF_GUEST_MASK ? t->guest_asid : 0;
}

static uint32_t dseg_tlb_ctx(CPUX86State *env, DSegTlb *t)
{
    return TLBM_CTX(dseg_tlb_asid(env, t), DSEG_TLB_GUEST_PCID);
}

/* Nested paging is on: translations are two-dimensional. */
static bool dseg_tlb_nested(CPUX86State *env)
{
    return (env->hflags & HF_GUEST_MASK) && (env->hflags2 & HF2_NPT_MASK);
}

/* How the current mode translates a linear address. */
typedef enum DSegTlbMode {
    DSEG_TLB_UNTRANSLATED,  /* paging off, no nested paging */
    DSEG_TLB_UNMODELLED,    /* legacy (non-long-mode) paging in a dimension */
    DSEG_TLB_MODELLED,
} DSegTlbMode;

static DSegTlbMode dseg_tlb_mode(CPUX86State *env)
{
    bool paging = env->cr[0] & CR0_PG_MASK;

    if (dseg_tlb_nested(env)) {
        return (env->nested_pg_mode & PG_MODE_LMA) &&
               (!paging || (env->hflags & HF_LMA_MASK)) ?
               DSEG_TLB_MODELLED : DSEG_TLB_UNMODELLED;
    }
    if (!paging) {
        return DSEG_TLB_UNTRANSLATED;
    }
    return env->hflags & HF_LMA_MASK ? DSEG_TLB_MODELLED
                                     : DSEG_TLB_UNMODELLED;
}

/* What a translation has found and cost so far. */
typedef struct DSegTlbWalk {
    TlbmSize size;      /* the smallest page on the way */
    bool global;
    bool final_direct;  /* the VMM segment translated the final gPA */
    uint32_t refs;
} DSegTlbWalk;

static bool dseg_tlb_nested_step(CPUX86State *env, DSegTlb *t, uint32_t ctx,
                                 uint64_t gpa, uint64_t *hpa, bool *direct,
                                 TlbmSize *size, uint32_t *refs);

/* One dimension's walk as dseg_walk() runs it for the model. */
typedef struct DSegTlbWalker {
    DSegTlb *t;
    uint32_t ctx;       /* the translation's address space */
    uint32_t pwc_ctx;   /* the walk cache's tag of this dimension */
    bool charge;
    DSegTlbWalk *w;
} DSegTlbWalker;

/* A guest entry's gPA takes its nested step, which charges its own. */
static bool dseg_tlb_entry_pa(CPUX86State *env, void *opaque, uint64_t gpa,
                              uint64_t *hpa)
{
    DSegTlbWalker *k = opaque;
    TlbmSize size;
    bool direct;

    return dseg_tlb_nested_step(env, k->t, k->ctx, gpa, hpa, &direct, &size,
                                &k->w->refs);
}

/* Each entry read costs a reference, unless the walk cache holds it. */
static void dseg_tlb_entry_read(CPUX86State *env, void *opaque, uint64_t pa,
                                bool leaf)
{
    DSegTlbWalker *k = opaque;

    if (k->charge && (leaf || !dseg_tlb_pwc_read(k->t, k->pwc_ctx, pa))) {
        k->w->refs++;
    }
}

/*
 * Walk the long-mode tables of @levels levels at @root for @addr.  In a
 * guest walk of a two-dimensional translation (@guest2d) every entry's
 * address is a gPA that takes its nested step first.  With @charge, each
 * entry read costs a reference unless it is a non-leaf entry that the page
 * walk cache holds for @pwc_ctx.  False when @addr is not mapped.
 */
static bool dseg_tlb_walk(CPUX86State *env, DSegTlb *t, uint64_t root,
                          int levels, bool guest2d, uint32_t ctx,
                          uint32_t pwc_ctx, bool charge, uint64_t addr,
                          uint64_t *out, DSegTlbWalk *w)
{
    DSegTlbWalker k = {
        .t = t, .ctx = ctx, .pwc_ctx = pwc_ctx, .charge = charge, .w = w,
    };
    const DSegWalker walker = {
        .entry_pa = guest2d ? dseg_tlb_entry_pa : NULL,
        .read = dseg_tlb_entry_read,
        .opaque = &k,
    };
    DSegWalkLeaf leaf;

    if (!dseg_walk(env, &walker, root, levels, addr, &leaf)) {
        return false;
    }
    *out = leaf.out;
    w->size = MIN(w->size, (TlbmSize)((leaf.shift - 12) / 9));
    w->global = (leaf.pte & PG_GLOBAL_MASK) && (env->cr[4] & CR4_PGE_MASK);
    return true;
}

static int dseg_tlb_levels(bool la57)
{
    return la57 ? 5 : 4;
}

/*
 * The nested step of @gpa for a translation in address space @ctx: the
 * VMM segment's (*@direct), else the nested walk's, which adds its
 * references to *@refs only when the nested TLB does not hold @gpa.  The
 * hPA in *@hpa, and the nested page's size in *@size.
 */
static bool dseg_tlb_nested_step(CPUX86State *env, DSegTlb *t, uint32_t ctx,
                                 uint64_t gpa, uint64_t *hpa, bool *direct,
                                 TlbmSize *size, uint32_t *refs)
{
    DSegState *ds = &env->dseg;
    DSegTlbWalk nested = { .size = TLBM_1G };
    bool cached;

    *direct = dseg_has_feature(env) &&
              dseg_vmm_step(ds, env->hflags & HF_SMM_MASK, gpa) ==
              DSEG_VMM_HIT;
    if (*direct) {
        *hpa = dseg_phys(env, gpa + ds->vmm.offset);
        *size = TLBM_1G;
        return true;
    }
    cached = dseg_tlb_ntlb_lookup(t, ctx, gpa);
    if (!dseg_tlb_walk(env, t, env->nested_cr3,
                       dseg_tlb_levels(env->nested_pg_mode & PG_MODE_LA57),
                       false, ctx,
                       TLBM_CTX(TLBM_CTX_ASID(ctx), DSEG_TLB_NESTED_PCID),
                       !cached, gpa, hpa, &nested)) {
        return false;
    }
    *hpa = dseg_phys(env, *hpa);
    if (!cached) {
        dseg_tlb_ntlb_fill(t, ctx, gpa, nested.size);
    }
    *refs += nested.refs;
    *size = nested.size;
    return true;
}

/*
 * The page that the VMM segment's translation of @gpa maps, within a guest
 * page of @size: the guest page if the segment holds all of it and the
 * escape filter is empty, else 4 KiB (the filter and the segment's bounds
 * are 4 KiB-granular, so a larger entry could cover an escaped page or
 * one outside the segment).
 */
static TlbmSize dseg_tlb_vmm_page(const DSegState *ds, uint64_t gpa,
                                  TlbmSize size)
{
    uint64_t mask = (1ull << tlbm_size_shift(size)) - 1;
    uint64_t first = gpa & ~mask;

    if (size != TLBM_4K && ds->filter.empty &&
        dseg_range_contains(&ds->vmm, first) &&
        dseg_range_contains(&ds->vmm, first + mask)) {
        return size;
    }
    return TLBM_4K;
}

/* An L2 miss, or an L1 miss that a segment may serve: translate and fill. */
static void dseg_tlb_translate(CPUX86State *env, DSegTlb *t, bool fetch,
                               uint32_t ctx, uint64_t addr)
{
    DSegState *ds = &env->dseg;
    bool nested = dseg_tlb_nested(env);
    DSegTlbWalk w = { .size = TLBM_1G };
    bool guest_direct = dseg_has_feature(env) &&
                        dseg_guest_segment_applies(env) &&
                        dseg_range_contains(&ds->guest, addr);
    DSegTlbPathCounters *p;
    uint64_t gpa, hpa;

    if (guest_direct) {
        gpa = addr + ds->guest.offset;
        w.size = TLBM_4K;
    } else if (!(env->cr[0] & CR0_PG_MASK)) {
        gpa = addr;         /* a nested guest with its paging off */
    } else if (!dseg_tlb_walk(env, t, env->cr[3],
                              dseg_tlb_levels(env->cr[4] & CR4_LA57_MASK),
                              nested, ctx, ctx, true, addr, &gpa, &w)) {
        t->c.unmapped++;
        return;
    }
    if (nested) {
        TlbmSize nested_size;

        if (!dseg_tlb_nested_step(env, t, ctx, gpa, &hpa, &w.final_direct,
                                  &nested_size, &w.refs)) {
            t->c.unmapped++;
            return;
        }
        if (w.final_direct) {
            nested_size = dseg_tlb_vmm_page(&env->dseg, gpa, w.size);
        }
        w.size = MIN(w.size, nested_size);
    }
    p = &t->c.path[dseg_path(nested, guest_direct, w.final_direct)];
    p->misses++;
    p->refs += w.refs;
    dseg_tlb_fill(t, fetch, ctx, addr, w.size, w.global && !guest_direct,
                  !guest_direct || (nested && !w.final_direct),
                  guest_direct);
}

/* An access that the L1's front did not answer: look it up. */
static __attribute__((noinline))
void dseg_tlb_lookup_access(CPUX86State *env, DSegTlb *t, bool fetch,
                            uint32_t ctx, uint64_t addr)
{
    switch (dseg_tlb_lookup(t, fetch, ctx, addr)) {
    case TLBM_HIT_L1:
        return;
    case TLBM_HIT_L2:
        t->c.l2_hits++;
        break;
    case TLBM_MISS:
        dseg_tlb_translate(env, t, fetch, ctx, addr);
        break;
    }
    if (fetch) {
        t->c.l1i_misses++;
    } else {
        t->c.l1d_misses++;
    }
}

/*
 * One access (@fetch: an instruction fetch) to linear address @addr: the
 * path every access takes, inlined into the plugin's callbacks.
 */
static inline void dseg_tlb_access(CPUX86State *env, DSegTlb *t, bool fetch,
                                   uint64_t addr)
{
    uint32_t ctx;

    switch (dseg_tlb_mode(env)) {
    case DSEG_TLB_UNTRANSLATED:
        return;
    case DSEG_TLB_UNMODELLED:
        t->c.unmodelled++;
        return;
    case DSEG_TLB_MODELLED:
        break;
    }
    ctx = dseg_tlb_ctx(env, t);
    if (fetch) {
        t->c.fetches++;
    } else {
        t->c.accesses++;
    }
    if (!tlbm_front_hit(&t->m, fetch, ctx, addr)) {
        dseg_tlb_lookup_access(env, t, fetch, ctx, addr);
    }
}

/* Invalidations */

void dseg_tlb_write_cr(CPUX86State *env, int reg, uint64_t val)
{
    DSegTlb *t = dseg_tlb_get(env);
    uint64_t changed;

    if (!t) {
        return;
    }
    switch (reg) {
    case 0:
        changed = (env->cr[0] ^ val) & (CR0_PG_MASK | CR0_WP_MASK);
        break;
    case 3:
        dseg_tlb_flush_nonglobal(t, dseg_tlb_ctx(env, t));
        return;
    case 4:
        changed = (env->cr[4] ^ val) &
                  (CR4_PGE_MASK | CR4_PAE_MASK | CR4_PSE_MASK |
                   CR4_PCIDE_MASK | CR4_SMEP_MASK | CR4_LA57_MASK);
        break;
    default:
        return;
    }
    if (changed) {
        dseg_tlb_flush_asid(t, dseg_tlb_asid(env, t));
    }
}

void dseg_tlb_invlpg(CPUX86State *env, uint64_t addr)
{
    DSegTlb *t = dseg_tlb_get(env);

    if (t) {
        dseg_tlb_flush_page(t, dseg_tlb_ctx(env, t), addr);
    }
}

void dseg_tlb_invlpga(CPUX86State *env, uint64_t addr, uint32_t asid)
{
    DSegTlb *t = dseg_tlb_get(env);

    if (t) {
        dseg_tlb_flush_page(t, TLBM_CTX(asid % (1u << DSEG_TLB_ASID_BITS),
                                        DSEG_TLB_GUEST_PCID), addr);
    }
}

/* The running VM's ASID, from its VMCB. */
static uint32_t dseg_tlb_vmcb_asid(CPUX86State *env)
{
    uint32_t asid = x86_ldl_phys(env_cpu(env),
                                 env->vm_vmcb + offsetof(struct vmcb,
                                                         control.asid));

    return asid % (1u << DSEG_TLB_ASID_BITS);
}

void dseg_tlb_vmrun(CPUX86State *env)
{
    DSegTlb *t = dseg_tlb_get(env);
    CPUState *cs = env_cpu(env);

    if (!t) {
        return;
    }
    t->guest_asid = dseg_tlb_vmcb_asid(env);
    /* The guest copy just loaded may differ from the VM's last one. */
    dseg_tlb_flush_segment(t, t->guest_asid, &env->dseg.guest);
    switch (x86_ldub_phys(cs, env->vm_vmcb + offsetof(struct vmcb,
                                                       control.tlb_ctl))) {
    case DSEG_TLB_CONTROL_FLUSH_ALL:
        dseg_tlb_flush_everything(t);
        break;
    case DSEG_TLB_CONTROL_FLUSH_ASID:
        dseg_tlb_flush_asid(t, t->guest_asid);
        break;
    case DSEG_TLB_CONTROL_FLUSH_ASID_LOCAL:
        dseg_tlb_flush_nonglobal(t, TLBM_CTX(t->guest_asid,
                                             DSEG_TLB_GUEST_PCID));
        break;
    }
}

void dseg_tlb_vmexit(CPUX86State *env)
{
    DSegTlb *t = dseg_tlb_get(env);

    if (t) {
        dseg_tlb_flush_direct(t);
    }
}

void dseg_tlb_post_load(CPUX86State *env)
{
    DSegTlb *t = dseg_tlb_get(env);

    if (t) {
        dseg_tlb_flush_everything(t);
        if (env->hflags & HF_GUEST_MASK) {
            t->guest_asid = dseg_tlb_vmcb_asid(env);
        }
    }
}

void dseg_tlb_guest_segment_write(CPUX86State *env)
{
    DSegTlb *t = dseg_tlb_get(env);

    if (t) {
        dseg_tlb_flush_segment(t, dseg_tlb_asid(env, t), &env->dseg.guest);
    }
}

void dseg_tlb_flush_all(CPUX86State *env)
{
    DSegTlb *t = dseg_tlb_get(env);

    if (t) {
        dseg_tlb_flush_everything(t);
    }
}

/* Starting the model: the plugin's options */

/* Set the model up from @options (PART=VALUE joined by ','); or say why not. */
static char *dseg_tlb_configure(const char *options)
{
    g_auto(GStrv) parts = g_strsplit(options, ",", -1);
    g_autoptr(GString) words = g_string_new(NULL);
    const char *preset_name = DSEG_TLB_DEFAULT_PRESET;
    const TlbmPreset *preset;
    uint64_t l2_cycles = DSEG_TLB_DEFAULT_L2_CYCLES;
    uint64_t ref_cycles = DSEG_TLB_DEFAULT_REF_CYCLES;
    TlbmGeom g;
    const char *err;

    for (char **p = parts; *p; p++) {
        if (g_str_has_prefix(*p, "preset=")) {
            preset_name = *p + strlen("preset=");
        }
    }
    preset = tlbm_preset(preset_name);
    if (!preset) {
        g_autoptr(GString) names = g_string_new(NULL);

        for (const TlbmPreset *q = tlbm_presets; q->name; q++) {
            g_string_append_printf(names, "%s%s", names->len ? ", " : "",
                                   q->name);
        }
        return g_strdup_printf("preset '%s' is not one of %s", preset_name,
                               names->str);
    }
    g_string_append_printf(words, "%s,%s", preset->geom,
                           DSEG_TLB_DEFAULT_CACHES);
    err = tlbm_geom_parse(&g, words->str);
    g_assert(!err);
    for (char **p = parts; *p; p++) {
        g_autofree char *key = NULL;
        const char *eq = strchr(*p, '=');
        uint64_t *cost = NULL;

        if (!**p || g_str_has_prefix(*p, "preset=")) {
            continue;
        }
        if (!eq) {
            return g_strdup_printf("'%s' is not PART=VALUE", *p);
        }
        key = g_strndup(*p, eq - *p);
        if (!strcmp(key, "l2-cycles")) {
            cost = &l2_cycles;
        } else if (!strcmp(key, "ref-cycles")) {
            cost = &ref_cycles;
        }
        if (cost) {
            char *end;

            errno = 0;
            *cost = g_ascii_strtoull(eq + 1, &end, 10);
            if (errno || end == eq + 1 || *end || eq[1] == '-' ||
                *cost > UINT32_MAX) {
                return g_strdup_printf("%s: '%s' is not a number of cycles "
                                       "up to %u", key, eq + 1, UINT32_MAX);
            }
            continue;
        }
        err = tlbm_geom_set(&g, key, eq + 1);
        if (err) {
            return g_strdup_printf("%s: %s", *p, err);
        }
        g_string_append_printf(words, ",%s", *p);
    }
    err = tlbm_geom_error(&g);
    if (err) {
        return g_strdup_printf("geometry %s: %s", words->str, err);
    }
    dseg_tlb_config.geom = g;
    dseg_tlb_config.geometry = g_string_free(g_steal_pointer(&words), false);
    dseg_tlb_config.preset = g_strdup(preset->name);
    dseg_tlb_config.l2_cycles = l2_cycles;
    dseg_tlb_config.ref_cycles = ref_cycles;
    dseg_tlb_config.enabled = true;
    return NULL;
}

#ifdef CONFIG_PLUGIN
/*
 * The entry points of the dseg-tlb plugin, declared in
 * include/qemu/qemu-plugin.h.  The callbacks run on the vCPU's thread, in
 * the middle of its translation block, with current_cpu the vCPU.
 */

char *qemu_plugin_dseg_tlb_start(const char *options)
{
    if (dseg_tlb_config.enabled) {
        return g_strdup("the model is already on (load the plugin once)");
    }
    return dseg_tlb_configure(options);
}

/*
 * An access of a helper through a physical MMU index (VMRUN's and
 * #VMEXIT's VMCB and host save area, VMLOAD, VMSAVE) translates nothing:
 * the model does not see it.
 */
void qemu_plugin_dseg_tlb_mem(unsigned int vcpu_index,
                              qemu_plugin_meminfo_t info, uint64_t vaddr,
                              void *userdata)
{
    CPUX86State *env = cpu_env(current_cpu);
    DSegTlb *t = dseg_tlb_get(env);
    unsigned mmu_idx = get_mmuidx(info);
    uint64_t last = vaddr + memop_size(get_memop(info)) - 1;

    if (unlikely(!t || mmu_idx == MMU_PHYS_IDX ||
                 mmu_idx == MMU_NESTED_IDX)) {
        return;
    }
    dseg_tlb_access(env, t, false, vaddr);
    if (unlikely((vaddr ^ last) & TARGET_PAGE_MASK)) {
        dseg_tlb_access(env, t, false, last);
    }
}

void qemu_plugin_dseg_tlb_tb(unsigned int vcpu_index, void *userdata)
{
    CPUX86State *env = cpu_env(current_cpu);
    DSegTlb *t = dseg_tlb_get(env);

    if (unlikely(!t)) {
        return;
    }
    /*
     * With CF_PCREL, EIP is up to date at the start of every TB; the
     * linear address as cpu_get_tb_cpu_state() makes it.
     */
    t->tb_pc = env->hflags & HF_CS64_MASK ? env->eip :
               (uint32_t)(env->segs[R_CS].base + env->eip);
    dseg_tlb_access(env, t, true, t->tb_pc);
}

void qemu_plugin_dseg_tlb_page(unsigned int vcpu_index, void *userdata)
{
    CPUX86State *env = cpu_env(current_cpu);
    DSegTlb *t = dseg_tlb_get(env);

    if (likely(t)) {
        dseg_tlb_access(env, t, true, t->tb_pc + (uintptr_t)userdata);
    }
}
#endif
