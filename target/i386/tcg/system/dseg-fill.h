/*
 * Direct-segment translation for x86 (qemu-dseg): the hooks of the TLB
 * fill path (excp_helper.c).  Their common cases are inline, so that a
 * fill that uses no segment pays a few loads and increments; the rest is
 * in dseg.c.  dseg_fill_begin/end bracket the fill of a virtual address;
 * the others run inside it.  Nothing here runs on a TLB hit.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TARGET_I386_TCG_SYSTEM_DSEG_FILL_H
#define TARGET_I386_TCG_SYSTEM_DSEG_FILL_H

#include "trace.h"

bool dseg_translate_guest_hit(CPUX86State *env, uint64_t *addr);
bool dseg_translate_nested_hit(CPUX86State *env, uint64_t *addr);
void dseg_count_guest_pte(CPUX86State *env, uint64_t gpa, int lg_page_size);
void dseg_count_final(CPUX86State *env, uint64_t gpa, int lg_page_size);

static inline bool dseg_virtual_idx(int mmu_idx)
{
    return mmu_idx != MMU_NESTED_IDX && mmu_idx != MMU_PHYS_IDX;
}

static inline bool dseg_nested(CPUX86State *env)
{
    return env->hflags2 & HF2_NPT_MASK;
}

static inline void dseg_fill_begin(CPUX86State *env, int mmu_idx)
{
    if (dseg_virtual_idx(mmu_idx)) {
        env->dseg.fill = (DSegFill) { .active = true };
    }
}

static inline void dseg_fill_end(CPUX86State *env, int mmu_idx)
{
    DSegFill *f = &env->dseg.fill;
    bool nested = dseg_nested(env);

    if (!dseg_virtual_idx(mmu_idx) || !f->active) {
        return;
    }
    f->active = false;
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
    return dseg_range_contains(&env->dseg.guest, *addr) &&
           dseg_translate_guest_hit(env, addr);
}

/* The VMM segment step of a gPA; true when it translated *@addr. */
static inline bool dseg_translate_nested(CPUX86State *env, uint64_t *addr)
{
    return dseg_range_contains(&env->dseg.vmm, *addr) &&
           dseg_translate_nested_hit(env, addr);
}

/* A page-table entry at @addr was read by a walk through @ptw_idx. */
static inline void dseg_count_pte(CPUX86State *env, int ptw_idx,
                                  uint64_t addr, int lg_page_size)
{
    DSegFill *f = &env->dseg.fill;

    if (ptw_idx == MMU_NESTED_IDX) {
        dseg_count_guest_pte(env, addr, lg_page_size);
    } else if (dseg_nested(env)) {
        f->nested_refs++;
    } else {
        f->guest_refs++;
        f->arch_refs++;
    }
}

#endif /* TARGET_I386_TCG_SYSTEM_DSEG_FILL_H */
