/*
 * Direct-segment translation for x86 (qemu-dseg): CPU properties, reset,
 * migration, and the query-dseg / dseg-reset-counters / info dseg
 * monitor commands.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "cpu.h"
#include "migration/vmstate.h"
#include "monitor/hmp-target.h"
#include "monitor/monitor.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-dseg-target.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"

bool dseg_realize(X86CPU *cpu, Error **errp)
{
    DSegState *ds = &cpu->env.dseg;
    uint32_t bits = ds->filter_bits;

    if (!is_power_of_2(bits) ||
        !dseg_filter_geometry_valid(ctz32(bits), ds->filter_hashes)) {
        error_setg(errp, "dseg-filter-bits=%u dseg-filter-hashes=%u: the "
                   "escape filter needs a power of two from %u to %u bits "
                   "and 1 to %u hash functions", bits, ds->filter_hashes,
                   1u << DSEG_FILTER_MIN_BITS_LOG2,
                   1u << DSEG_FILTER_MAX_BITS_LOG2, DSEG_FILTER_MAX_HASHES);
        return false;
    }
    dseg_filter_init(&ds->filter, ctz32(bits), ds->filter_hashes);
    return true;
}

unsigned dseg_va_bits(CPUX86State *env)
{
    return env->features[FEAT_7_0_ECX] & CPUID_7_0_ECX_LA57 ? 57 : 48;
}

unsigned dseg_pa_bits(CPUX86State *env)
{
    return env_archcpu(env)->phys_bits;
}

void dseg_reset(CPUX86State *env)
{
    DSegState *ds = &env->dseg;

    ds->guest = ds->host_guest = ds->vmm = (DSegRange) { 0 };
    ds->host_guest_saved = false;
    dseg_filter_clear(&ds->filter);
    ds->fill.active = false;
    dseg_tlb_flush_all(env);
}

/* migration */

bool dseg_guest_segment_applies(CPUX86State *env)
{
    return (env->hflags & HF_LMA_MASK) && (env->cr[0] & CR0_PG_MASK) &&
           !(env->hflags & HF_SMM_MASK) &&
           (!(env->hflags & HF_GUEST_MASK) || (env->hflags2 & HF2_NPT_MASK));
}

static bool dseg_range_zero(const DSegRange *r)
{
    return !r->base && !r->limit && !r->offset;
}

static bool dseg_state_needed(void *opaque)
{
    DSegState *ds = &X86_CPU(opaque)->env.dseg;

    return !dseg_range_zero(&ds->guest) || !dseg_range_zero(&ds->vmm) ||
           ds->host_guest_saved ||
           !buffer_is_zero(ds->filter.bits, sizeof(ds->filter.bits));
}

static int dseg_state_pre_save(void *opaque)
{
    DSegState *ds = &X86_CPU(opaque)->env.dseg;
    DSegMigration *m = &ds->migration;

    m->guest = ds->guest;
    m->host_guest = ds->host_guest;
    m->host_guest_saved = ds->host_guest_saved;
    m->vmm = ds->vmm;
    m->filter_bits_log2 = ds->filter.bits_log2;
    m->filter_hashes = ds->filter.nr_hashes;
    memcpy(m->filter_words, ds->filter.bits, sizeof(m->filter_words));
    return 0;
}

/*
 * Why a saved host copy (@saved) cannot go with the CPU's mode, or NULL:
 * with the feature on, a CPU has one exactly while it is in guest mode.
 */
static const char *dseg_host_copy_invalid(CPUX86State *env, bool saved)
{
    bool guest = env->hflags & HF_GUEST_MASK;

    if (saved && !guest) {
        return "it has a saved host copy, but the CPU is in host mode";
    }
    if (!saved && guest && dseg_has_feature(env)) {
        return "the CPU is in guest mode, but it has no saved host copy";
    }
    return NULL;
}

/* Why the staged stream state @m cannot be this CPU's, or NULL. */
static const char *dseg_migration_invalid(CPUX86State *env,
                                          const DSegMigration *m)
{
    unsigned va = dseg_va_bits(env), pa = dseg_pa_bits(env);
    unsigned words = 1u << (m->filter_bits_log2 - 6);
    const char *why;

    if (!dseg_range_valid(&m->guest, true, va, pa)) {
        return "its guest segment is not a valid register state";
    }
    if (!dseg_range_valid(&m->host_guest, true, va, pa)) {
        return "its saved host copy is not a valid register state";
    }
    if (!dseg_range_valid(&m->vmm, false, va, pa)) {
        return "its VMM segment is not a valid register state";
    }
    why = dseg_host_copy_invalid(env, m->host_guest_saved);
    if (why) {
        return why;
    }
    if (!buffer_is_zero(m->filter_words + words,
                        sizeof(m->filter_words) - words * 8)) {
        return "it has escape-filter bits beyond its geometry";
    }
    return NULL;
}

/* Check the staged state whole; only then does it become the CPU's. */
static int dseg_state_post_load(void *opaque, int version_id)
{
    X86CPU *cpu = X86_CPU(opaque);
    DSegState *ds = &cpu->env.dseg;
    const DSegMigration *m = &ds->migration;
    const char *why;

    if (!dseg_has_feature(&cpu->env)) {
        error_report("dseg: incoming direct-segment state, but this CPU "
                     "does not have the dseg feature");
        return -EINVAL;
    }
    if (m->filter_bits_log2 != ds->filter.bits_log2 ||
        m->filter_hashes != ds->filter.nr_hashes) {
        error_report("dseg: incoming escape filter has 2^%u bits and %u "
                     "hashes, this CPU is configured for %u bits and %u "
                     "hashes",
                     m->filter_bits_log2, m->filter_hashes, ds->filter_bits,
                     ds->filter_hashes);
        return -EINVAL;
    }
    why = dseg_migration_invalid(&cpu->env, m);
    if (why) {
        error_report("dseg: incoming direct-segment state refused: %s", why);
        return -EINVAL;
    }
    ds->guest = m->guest;
    ds->host_guest = m->host_guest;
    ds->host_guest_saved = m->host_guest_saved;
    ds->vmm = m->vmm;
    memcpy(ds->filter.bits, m->filter_words, sizeof(ds->filter.bits));
    dseg_filter_update_empty(&ds->filter);
    return 0;
}

/*
 * After the whole CPU has loaded (cpu_post_load()): a CPU in guest mode
 * whose stream had no cpu/dseg subsection has no saved host copy either.
 */
int dseg_cpu_post_load(CPUX86State *env)
{
    const char *why = dseg_host_copy_invalid(env,
                                             env->dseg.host_guest_saved);

    if (why) {
        error_report("dseg: incoming CPU state refused: %s", why);
        return -EINVAL;
    }
    dseg_tlb_post_load(env);
    return 0;
}

/*
 * The stream's layout is that of the CPU state itself: three segments, the
 * saved flag between the host copy and the VMM segment, the geometry, the
 * words.
 */
const VMStateDescription vmstate_dseg = {
    .name = "cpu/dseg",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = dseg_state_needed,
    .pre_save = dseg_state_pre_save,
    .post_load = dseg_state_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(env.dseg.migration.guest.base, X86CPU),
        VMSTATE_UINT64(env.dseg.migration.guest.limit, X86CPU),
        VMSTATE_UINT64(env.dseg.migration.guest.offset, X86CPU),
        VMSTATE_UINT64(env.dseg.migration.host_guest.base, X86CPU),
        VMSTATE_UINT64(env.dseg.migration.host_guest.limit, X86CPU),
        VMSTATE_UINT64(env.dseg.migration.host_guest.offset, X86CPU),
        VMSTATE_BOOL(env.dseg.migration.host_guest_saved, X86CPU),
        VMSTATE_UINT64(env.dseg.migration.vmm.base, X86CPU),
        VMSTATE_UINT64(env.dseg.migration.vmm.limit, X86CPU),
        VMSTATE_UINT64(env.dseg.migration.vmm.offset, X86CPU),
        VMSTATE_UINT8(env.dseg.migration.filter_bits_log2, X86CPU),
        VMSTATE_UINT8(env.dseg.migration.filter_hashes, X86CPU),
        VMSTATE_UINT64_ARRAY(env.dseg.migration.filter_words, X86CPU,
                             DSEG_FILTER_WORDS),
        VMSTATE_END_OF_LIST()
    }
};

/* QMP */

static DsegSegment *dseg_segment_info(const DSegRange *r)
{
    DsegSegment *s = g_new0(DsegSegment, 1);

    s->base = r->base;
    s->limit = r->limit;
    s->offset = r->offset;
    return s;
}

/*
 * The core numbers the paths as the QAPI schema orders them, so that the
 * schema's DsegTranslationPath names the core's path counters.
 */
QEMU_BUILD_BUG_ON((int)DSEG_TRANSLATION_PATH__MAX !=
                  (int)DSEG_PATH__MAX);
QEMU_BUILD_BUG_ON((int)DSEG_TRANSLATION_PATH_NATIVE_WALK !=
                  (int)DSEG_PATH_NATIVE_WALK);
QEMU_BUILD_BUG_ON((int)DSEG_TRANSLATION_PATH_NATIVE_DIRECT !=
                  (int)DSEG_PATH_NATIVE_DIRECT);
QEMU_BUILD_BUG_ON((int)DSEG_TRANSLATION_PATH_WALK_2D !=
                  (int)DSEG_PATH_2D_WALK);
QEMU_BUILD_BUG_ON((int)DSEG_TRANSLATION_PATH_GUEST_DIRECT !=
                  (int)DSEG_PATH_GUEST_DIRECT);
QEMU_BUILD_BUG_ON((int)DSEG_TRANSLATION_PATH_VMM_DIRECT !=
                  (int)DSEG_PATH_VMM_DIRECT);
QEMU_BUILD_BUG_ON((int)DSEG_TRANSLATION_PATH_DUAL_DIRECT !=
                  (int)DSEG_PATH_DUAL_DIRECT);

/* The member of @c that holds the counters of @path. */
static DsegPathCounters **dseg_path_member(DsegCounters *c,
                                           DsegTranslationPath path)
{
    switch (path) {
    case DSEG_TRANSLATION_PATH_NATIVE_WALK:
        return &c->native_walk;
    case DSEG_TRANSLATION_PATH_NATIVE_DIRECT:
        return &c->native_direct;
    case DSEG_TRANSLATION_PATH_WALK_2D:
        return &c->walk_2d;
    case DSEG_TRANSLATION_PATH_GUEST_DIRECT:
        return &c->guest_direct;
    case DSEG_TRANSLATION_PATH_VMM_DIRECT:
        return &c->vmm_direct;
    case DSEG_TRANSLATION_PATH_DUAL_DIRECT:
        return &c->dual_direct;
    default:
        g_assert_not_reached();
    }
}

/*
 * The vCPU's thread is the only writer of its counters; other threads
 * read each one atomically.
 */
static DsegPathCounters *dseg_path_info(const DSegPathCounters *c)
{
    DsegPathCounters *p = g_new0(DsegPathCounters, 1);

    p->fills = qatomic_read(&c->fills);
    p->guest_refs = qatomic_read(&c->guest_refs);
    p->nested_refs = qatomic_read(&c->nested_refs);
    p->arch_refs = qatomic_read(&c->arch_refs);
    return p;
}

static DsegCounters *dseg_counters_info(const DSegCounters *c)
{
    DsegCounters *ci = g_new0(DsegCounters, 1);

    for (int p = 0; p < DSEG_TRANSLATION_PATH__MAX; p++) {
        *dseg_path_member(ci, p) = dseg_path_info(&c->path[p]);
    }
    ci->guest_segment_hits = qatomic_read(&c->guest_seg_hits);
    ci->vmm_segment_hits = qatomic_read(&c->vmm_seg_hits);
    ci->filter_probes = qatomic_read(&c->filter_probes);
    ci->filter_hits = qatomic_read(&c->filter_hits);
    return ci;
}

static DsegModelCounters *dseg_model_info(const DSegTlbCounters *c)
{
    DsegModelCounters *mi = g_new0(DsegModelCounters, 1);
    DsegModelPathCountersList **tail = &mi->paths;
    uint64_t refs = 0;

    mi->accesses = qatomic_read(&c->accesses);
    mi->fetches = qatomic_read(&c->fetches);
    mi->l1d_misses = qatomic_read(&c->l1d_misses);
    mi->l1i_misses = qatomic_read(&c->l1i_misses);
    mi->l2_hits = qatomic_read(&c->l2_hits);
    mi->unmapped = qatomic_read(&c->unmapped);
    mi->unmodelled = qatomic_read(&c->unmodelled);
    for (int p = 0; p < DSEG_PATH__MAX; p++) {
        DsegModelPathCounters *pi = g_new0(DsegModelPathCounters, 1);

        pi->path = p;
        pi->misses = qatomic_read(&c->path[p].misses);
        pi->refs = qatomic_read(&c->path[p].refs);
        refs += pi->refs;
        QAPI_LIST_APPEND(tail, pi);
    }
    mi->cycles = dseg_tlb_cycles(mi->l1d_misses + mi->l1i_misses, refs);
    return mi;
}

static DsegCpuInfo *dseg_cpu_info(CPUState *cs)
{
    X86CPU *cpu = X86_CPU(cs);
    DSegState *ds = &cpu->env.dseg;
    DsegCpuInfo *info = g_new0(DsegCpuInfo, 1);
    DsegFilterInfo *fi = g_new0(DsegFilterInfo, 1);
    uint64List **tail = &fi->words;

    info->cpu_index = cs->cpu_index;
    info->qom_path = object_get_canonical_path(OBJECT(cs));
    info->enabled = dseg_has_feature(&cpu->env);
    info->guest_mode = cpu->env.hflags & HF_GUEST_MASK;
    info->guest_segment = dseg_segment_info(&ds->guest);
    info->host_guest_segment = dseg_segment_info(&ds->host_guest);
    info->vmm_segment = dseg_segment_info(&ds->vmm);

    fi->bits = 1u << ds->filter.bits_log2;
    fi->hashes = ds->filter.nr_hashes;
    for (unsigned w = 0; w < fi->bits / 64; w++) {
        QAPI_LIST_APPEND(tail, qatomic_read(&ds->filter.bits[w]));
    }
    info->filter = fi;
    info->counters = dseg_counters_info(&ds->counters);
    if (dseg_tlb_enabled()) {
        static const DSegTlbCounters none;
        const DSegTlbCounters *mc = dseg_tlb_counters(&cpu->env);

        info->model = dseg_model_info(mc ? mc : &none);
    }
    return info;
}

DsegCpuInfoList *qmp_query_dseg(Error **errp)
{
    DsegCpuInfoList *list = NULL, **tail = &list;
    CPUState *cs;

    CPU_FOREACH(cs) {
        QAPI_LIST_APPEND(tail, dseg_cpu_info(cs));
    }
    return list;
}

DsegModelInfo *qmp_query_dseg_model(Error **errp)
{
    DsegModelInfo *info;

    if (!dseg_tlb_enabled()) {
        error_setg(errp, "the modelled TLB hierarchy is off (load the "
                   "dseg-tlb plugin: -plugin .../libdseg-tlb.so)");
        return NULL;
    }
    info = g_new0(DsegModelInfo, 1);
    info->preset = g_strdup(dseg_tlb_preset());
    info->geometry = g_strdup(dseg_tlb_geometry());
    info->l2_cycles = dseg_tlb_l2_cycles();
    info->ref_cycles = dseg_tlb_ref_cycles();
    return info;
}

/* Runs on the vCPU's thread, the only writer of its counters. */
static void dseg_do_reset_counters(CPUState *cs, run_on_cpu_data data)
{
    X86_CPU(cs)->env.dseg.counters = (DSegCounters) { 0 };
    dseg_tlb_reset_counters(&X86_CPU(cs)->env);
}

void qmp_dseg_reset_counters(bool has_cpu_index, int64_t cpu_index,
                             Error **errp)
{
    CPUState *cs;

    if (has_cpu_index) {
        cs = cpu_index >= 0 && cpu_index <= INT_MAX ?
             qemu_get_cpu(cpu_index) : NULL;
        if (!cs) {
            error_setg(errp, "cpu-index %" PRId64 " names no vCPU",
                       cpu_index);
            return;
        }
        run_on_cpu(cs, dseg_do_reset_counters, RUN_ON_CPU_NULL);
        return;
    }
    CPU_FOREACH(cs) {
        run_on_cpu(cs, dseg_do_reset_counters, RUN_ON_CPU_NULL);
    }
}

/* HMP */

static void hmp_dseg_segment(Monitor *mon, const char *name,
                             const DsegSegment *s)
{
    monitor_printf(mon, "  %-20s base 0x%016" PRIx64 "  limit 0x%016" PRIx64
                   "  offset 0x%016" PRIx64 "%s\n", name, s->base, s->limit,
                   s->offset, s->limit > s->base ? "" : "  (empty)");
}

static void hmp_dseg_path(Monitor *mon, const char *name,
                          const DsegPathCounters *p)
{
    monitor_printf(mon, "  %-14s %14" PRIu64 " %14" PRIu64 " %14" PRIu64
                   " %14" PRIu64, name, p->fills, p->guest_refs,
                   p->nested_refs, p->arch_refs);
    if (p->fills) {
        monitor_printf(mon, " %10.2f\n", (double)p->arch_refs / p->fills);
    } else {
        monitor_printf(mon, " %10s\n", "-");
    }
}

/* The modelled hierarchy's counters (query-dseg-model: its geometry). */
static void hmp_dseg_model(Monitor *mon, const DsegModelCounters *m)
{
    monitor_printf(mon, "  model: %" PRIu64 " accesses, %" PRIu64
                   " fetches; L1 misses: data %" PRIu64 ", instruction %"
                   PRIu64 "; L2 hits %" PRIu64 "; %" PRIu64 " cycles\n",
                   m->accesses, m->fetches, m->l1d_misses, m->l1i_misses,
                   m->l2_hits, m->cycles);
    if (m->unmapped || m->unmodelled) {
        monitor_printf(mon, "  model: %" PRIu64 " unmapped, %" PRIu64
                       " unmodelled\n", m->unmapped, m->unmodelled);
    }
    monitor_printf(mon, "  %-14s %14s %14s %10s\n", "model path", "misses",
                   "refs", "refs/miss");
    for (DsegModelPathCountersList *e = m->paths; e; e = e->next) {
        DsegModelPathCounters *p = e->value;

        monitor_printf(mon, "  %-14s %14" PRIu64 " %14" PRIu64,
                       DsegTranslationPath_str(p->path), p->misses, p->refs);
        if (p->misses) {
            monitor_printf(mon, " %10.2f\n", (double)p->refs / p->misses);
        } else {
            monitor_printf(mon, " %10s\n", "-");
        }
    }
}

void hmp_info_dseg(Monitor *mon, const QDict *qdict)
{
    g_autoptr(DsegCpuInfoList) list = qmp_query_dseg(NULL);

    for (DsegCpuInfoList *e = list; e; e = e->next) {
        DsegCpuInfo *i = e->value;
        DsegCounters *c = i->counters;
        unsigned set = 0;

        for (uint64List *w = i->filter->words; w; w = w->next) {
            set += ctpop64(w->value);
        }
        monitor_printf(mon, "CPU %" PRId64 ": direct segments %s, %s mode\n",
                       i->cpu_index, i->enabled ? "on" : "off",
                       i->guest_mode ? "guest" : "host");
        hmp_dseg_segment(mon, "guest segment", i->guest_segment);
        if (i->guest_mode) {
            hmp_dseg_segment(mon, "host's guest segment",
                             i->host_guest_segment);
        }
        hmp_dseg_segment(mon, "VMM segment", i->vmm_segment);
        monitor_printf(mon, "  escape filter        %u bits, %u hashes, "
                       "%u bits set\n", i->filter->bits, i->filter->hashes,
                       set);
        monitor_printf(mon, "  %-14s %14s %14s %14s %14s %10s\n", "path",
                       "fills", "guest-refs", "nested-refs", "arch-refs",
                       "arch/fill");
        for (int p = 0; p < DSEG_TRANSLATION_PATH__MAX; p++) {
            hmp_dseg_path(mon, DsegTranslationPath_str(p),
                          *dseg_path_member(c, p));
        }
        monitor_printf(mon, "  segment hits: guest %" PRIu64 ", VMM %" PRIu64
                       "; escape filter: %" PRIu64 " probes, %" PRIu64
                       " hits\n", c->guest_segment_hits, c->vmm_segment_hits,
                       c->filter_probes, c->filter_hits);
        if (i->model) {
            hmp_dseg_model(mon, i->model);
        }
    }
}
