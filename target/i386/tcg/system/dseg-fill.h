/*
 * Direct-segment translation for x86 (qemu-dseg): the hooks of the TLB
 * fill path (excp_helper.c).  Their common cases are inline, so that a
 * fill that uses no segment pays a few loads and increments; the rest is
 * in dseg.c.  dseg_fill_begin/end bracket the fill of a virtual address;
 * the others run inside it.  Nothing here runs on a TLB hit.
 *
 * A segment translation costs what the hardware's does: a compare and an
 * add.  The guest segment replaces the guest walk; every nested step of a
 * fill (a guest entry's gPA, the final gPA) tries the VMM segment first,
 * and a gPA that it translates is used at its hPA at once, never through
 * QEMU's nested TLB (MMU_NESTED_IDX).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TARGET_I386_TCG_SYSTEM_DSEG_FILL_H
#define TARGET_I386_TCG_SYSTEM_DSEG_FILL_H

#include "trace.h"

bool dseg_translate_guest_hit(CPUX86State *env, uint64_t *addr);
void dseg_count_escape(CPUX86State *env, uint64_t gpa);
unsigned dseg_nested_walk_refs(CPUX86State *env, int lg_page_size);

static inline bool dseg_virtual_idx(int mmu_idx)
{
    return mmu_idx != MMU_NESTED_IDX && mmu_idx != MMU_PHYS_IDX;
}

static inline bool dseg_nested(CPUX86State *env)
{
    return env->hflags2 & HF2_NPT_MASK;
}

/* Neither segment applies in system management mode. */
static inline bool dseg_smm(CPUX86State *env)
{
    return env->hflags & HF_SMM_MASK;
}

/*
 * A fill of QEMU's nested (gPA) TLB: true when the VMM segment translates
 * *@addr.  Fills of virtual addresses never bring a segment-translated gPA
 * here (dseg_nested_step); what comes is escaped or outside the segment,
 * or an access such as a virtualised VMLOAD that uses MMU_NESTED_IDX
 * itself.  Not counted: it is no nested step of a fill.
 */
static inline bool dseg_translate_nested(CPUX86State *env, uint64_t *addr)
{
    DSegState *ds = &env->dseg;

    if (dseg_vmm_step(ds, dseg_smm(env), *addr) != DSEG_VMM_HIT) {
        return false;
    }
    *addr += ds->vmm.offset;
    return true;
}

/*
 * Only a CPU with the feature counts, and only its fills of virtual
 * addresses are active.  Without the feature the segments are disarmed
 * for good (their MSRs fault), so every hook tests that its fill is
 * inactive first, once per walk or step: the fill path is upstream's
 * but for those tests.
 */
static inline bool dseg_fill_active(CPUX86State *env)
{
    return env->dseg.fill.active;
}

static inline void dseg_fill_begin(CPUX86State *env, int mmu_idx)
{
    if (dseg_has_feature(env) && dseg_virtual_idx(mmu_idx)) {
        env->dseg.fill = (DSegFill) { .active = true };
    }
}

static inline void dseg_fill_end(CPUX86State *env, int mmu_idx)
{
    DSegFill *f = &env->dseg.fill;
    bool nested;

    if (!f->active || !dseg_virtual_idx(mmu_idx)) {
        return;
    }
    f->active = false;
    nested = dseg_nested(env);
    if (!nested && !(env->cr[0] & CR0_PG_MASK)) {
        return;     /* no translation: paging is off */
    }
    dseg_counters_add_fill(&env->dseg.counters, f, nested);
    trace_dseg_fill(dseg_path(nested, f->guest_direct, f->final_direct),
                    mmu_idx, f->guest_refs, f->nested_refs, f->arch_refs);
}

/* The guest segment step; true when it translated *@addr. */
static inline bool dseg_translate_guest(CPUX86State *env, uint64_t *addr)
{
    return dseg_fill_active(env) &&
           dseg_range_contains(&env->dseg.guest, *addr) &&
           dseg_translate_guest_hit(env, addr);
}

/*
 * The nested step of gPA *@addr in a fill: true when the VMM segment
 * translated it into an hPA, which the fill then uses with no nested walk
 * and no nested TLB; false when the ordinary nested walk translates it
 * (through QEMU's nested TLB).  Counts the filter probe and its outcome.
 */
static inline bool dseg_nested_step(CPUX86State *env, uint64_t *addr)
{
    DSegState *ds = &env->dseg;
    DSegVmmStep step = dseg_vmm_step(ds, dseg_smm(env), *addr);

    if (likely(step == DSEG_VMM_HIT)) {
        ds->counters.filter_probes++;
        *addr += ds->vmm.offset;
        ds->counters.vmm_seg_hits++;
        return true;
    }
    if (unlikely(step == DSEG_VMM_ESCAPED)) {
        dseg_count_escape(env, *addr);
    }
    return false;
}

/*
 * The address at which a walk through @walk_idx reads the entry at *@addr,
 * and the MMU index to read it through: a guest entry whose gPA the VMM
 * segment translates is read at its hPA, the way a native walk reads.
 */
static inline int dseg_pte_step(CPUX86State *env, int walk_idx,
                                uint64_t *addr, bool *direct)
{
    *direct = walk_idx == MMU_NESTED_IDX && dseg_nested_step(env, addr);
    return *direct ? MMU_PHYS_IDX : walk_idx;
}

/*
 * A walk through @walk_idx reads a paging-structure entry: guest-refs and
 * nested-refs count the reads actually made, so an entry that a walk
 * re-reads after a failed accessed/dirty-bit update counts again.
 */
static inline void dseg_count_read(CPUX86State *env, int walk_idx)
{
    DSegFill *f = &env->dseg.fill;

    if (walk_idx == MMU_NESTED_IDX || !dseg_nested(env)) {
        f->guest_refs++;
    } else {
        f->nested_refs++;
    }
}

/*
 * The architectural references of a guest (or native) entry that a walk
 * through @walk_idx is about to read; @direct: its gPA was VMM-segment
 * translated, else its nested translation maps a page of 2^@lg_page_size
 * bytes.  Entries of nested walks cost nothing here: the entry of the
 * guest walk that needed them, or the final step, pays the nested walk.
 */
static inline void dseg_count_pte(CPUX86State *env, int walk_idx,
                                  bool direct, int lg_page_size)
{
    DSegFill *f = &env->dseg.fill;

    if (walk_idx == MMU_NESTED_IDX) {
        f->arch_refs += 1 + (direct ? 0 : dseg_nested_walk_refs(
                                 env, lg_page_size));
    } else if (!dseg_nested(env)) {
        f->arch_refs++;
    }
}

/*
 * arch-refs is computed from the translation as completed: a walk that
 * restarts from its root (after a failed accessed/dirty-bit update of its
 * leaf) takes back what it had added.  dseg_walk_begin() is called when a
 * walk begins, dseg_walk_restart() at every start with its result.
 */
static inline uint32_t dseg_walk_begin(CPUX86State *env)
{
    return env->dseg.fill.arch_refs;
}

static inline void dseg_walk_restart(CPUX86State *env, uint32_t arch_refs)
{
    env->dseg.fill.arch_refs = arch_refs;
}

/*
 * The final nested step of a fill: true when the VMM segment translated
 * *@gpa into an hPA, so no nested TLB lookup or nested walk is needed.
 */
static inline bool dseg_final_step(CPUX86State *env, uint64_t *gpa)
{
    if (!dseg_nested_step(env, gpa)) {
        return false;
    }
    env->dseg.fill.final_direct = true;
    return true;
}

/*
 * The final gPA of a fill went through the nested walk (or the nested
 * TLB), to a nested page of 2^@lg_page_size bytes.
 */
static inline void dseg_count_final(CPUX86State *env, int lg_page_size)
{
    DSegFill *f = &env->dseg.fill;

    if (f->active) {
        f->arch_refs += dseg_nested_walk_refs(env, lg_page_size);
    }
}

#endif /* TARGET_I386_TCG_SYSTEM_DSEG_FILL_H */
