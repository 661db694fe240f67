/*
 * Direct-segment translation for x86 (qemu-dseg): the debugger's view,
 * and the walker that it and the TLB model (dseg-tlb.c) share.
 *
 * gdbstub and the monitor (x, memsave, gva2gpa...) translate a virtual
 * address through cpu_get_phys_page_attrs_debug().  With the feature on,
 * this applies the segments exactly where a TLB fill does, and so reads
 * the memory that the CPU would: the guest segment before the guest walk,
 * and in guest mode with nested paging the nested step (VMM segment and
 * filter, else the nested walk) for the address of every guest entry and
 * for the final gPA.  It sets no accessed or dirty bit, raises nothing and
 * counts nothing.  See "The debugger's view" in
 * docs/specs/direct-segments.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "cpu.h"

/* 4-level or 5-level long-mode tables. */
static int dseg_debug_levels(bool la57)
{
    return la57 ? 5 : 4;
}

static bool dseg_debug_nested_step(CPUX86State *env, uint64_t gpa,
                                   uint64_t *hpa);

uint64_t dseg_phys(CPUX86State *env, uint64_t pa)
{
    return pa & (uint64_t)(int64_t)x86_get_a20_mask(env);
}

bool dseg_walk(CPUX86State *env, const DSegWalker *w, uint64_t root,
               int levels, uint64_t addr, DSegWalkLeaf *leaf)
{
    uint64_t table = root & PG_ADDRESS_MASK;

    for (int shift = 12 + 9 * (levels - 1); shift >= 12; shift -= 9) {
        uint64_t entry = table + (((addr >> shift) & 0x1ff) << 3);
        uint64_t pte;
        bool is_leaf;

        if (!w->entry_pa) {
            entry = dseg_phys(env, entry);
        } else if (!w->entry_pa(env, w->opaque, entry, &entry)) {
            return false;
        }
        pte = x86_ldq_phys(env_cpu(env), entry);
        if (!(pte & PG_PRESENT_MASK)) {
            return false;
        }
        is_leaf = shift == 12 ||
                  ((shift == 21 || shift == 30) && (pte & PG_PSE_MASK));
        if (w->read) {
            w->read(env, w->opaque, entry, is_leaf);
        }
        if (is_leaf) {
            uint64_t page_mask = (1ull << shift) - 1;

            leaf->out = (pte & PG_ADDRESS_MASK & ~page_mask) |
                        (addr & page_mask);
            leaf->pte = pte;
            leaf->shift = shift;
            return true;
        }
        table = pte & PG_ADDRESS_MASK;
    }
    g_assert_not_reached();
}

/*
 * Is @addr canonical in the current paging mode (CR4.LA57, not CPUID)?
 * A fill checks this before the guest segment and the walk.
 */
static bool dseg_debug_canonical(CPUX86State *env, uint64_t addr)
{
    int64_t sext = (int64_t)addr >> (env->cr[4] & CR4_LA57_MASK ? 56 : 47);

    return sext == 0 || sext == -1;
}

static bool dseg_debug_entry_pa(CPUX86State *env, void *opaque,
                                uint64_t gpa, uint64_t *hpa)
{
    return dseg_debug_nested_step(env, gpa, hpa);
}

/*
 * Walk long-mode tables of @levels levels rooted at @root for @addr.  A
 * guest walk (@guest) translates a linear address and the address of each
 * of its entries is a gPA, which goes through the nested step; the nested
 * walk translates a gPA, as a fill's does from the bits its tables index
 * (a gPA may be wider when MAXPHYADDR is above 48), and reads its entries
 * at their hPA.  False when @addr is not mapped.
 */
static bool dseg_debug_walk(CPUX86State *env, uint64_t root, int levels,
                            bool guest, uint64_t addr, uint64_t *out)
{
    const DSegWalker w = { .entry_pa = guest ? dseg_debug_entry_pa : NULL };
    DSegWalkLeaf leaf;

    if (guest && !dseg_debug_canonical(env, addr)) {
        return false;
    }
    if (!dseg_walk(env, &w, root, levels, addr, &leaf)) {
        return false;
    }
    *out = guest ? leaf.out : dseg_phys(env, leaf.out);
    return true;
}

/* The hPA of @gpa, as a fill's nested step makes it. */
static bool dseg_debug_nested_step(CPUX86State *env, uint64_t gpa,
                                   uint64_t *hpa)
{
    DSegState *ds = &env->dseg;

    if (dseg_vmm_step(ds, env->hflags & HF_SMM_MASK, gpa) == DSEG_VMM_HIT) {
        *hpa = dseg_phys(env, gpa + ds->vmm.offset);
        return true;
    }
    return dseg_debug_walk(env, env->nested_cr3,
                           dseg_debug_levels(env->nested_pg_mode &
                                             PG_MODE_LA57),
                           false, gpa, hpa);
}

/* The guest segment's translation of @addr, if it applies and hits. */
static bool dseg_debug_guest_segment(CPUX86State *env, uint64_t addr,
                                     uint64_t *out)
{
    DSegState *ds = &env->dseg;

    if (!dseg_guest_segment_applies(env) ||
        !dseg_debug_canonical(env, addr) ||
        !dseg_range_contains(&ds->guest, addr)) {
        return false;
    }
    *out = addr + ds->guest.offset;
    return true;
}

bool dseg_debug_translate(CPUX86State *env, vaddr addr, hwaddr *paddr)
{
    uint64_t gpa, pa;

    if (!dseg_has_feature(env)) {
        return false;
    }
    if (!(env->hflags & HF_GUEST_MASK)) {
        /* Host mode: the guest segment, else upstream's walk. */
        if (!dseg_debug_guest_segment(env, addr, &pa)) {
            return false;
        }
        *paddr = dseg_phys(env, pa) & TARGET_PAGE_MASK;
        return true;
    }
    if (!(env->hflags2 & HF2_NPT_MASK)) {
        return false;   /* no segment translates: upstream's walk */
    }
    if (!(env->nested_pg_mode & PG_MODE_LMA) ||
        ((env->cr[0] & CR0_PG_MASK) && !(env->hflags & HF_LMA_MASK))) {
        return false;   /* legacy nested or guest paging: upstream's view */
    }
    if (dseg_debug_guest_segment(env, addr, &gpa)) {
        /* guest direct */
    } else if (!(env->cr[0] & CR0_PG_MASK)) {
        gpa = addr;
    } else if (!dseg_debug_walk(env, env->cr[3],
                                dseg_debug_levels(env->cr[4] & CR4_LA57_MASK),
                                true, addr, &gpa)) {
        *paddr = -1;
        return true;
    }
    *paddr = dseg_debug_nested_step(env, gpa, &pa) ? pa & TARGET_PAGE_MASK
                                                   : -1;
    return true;
}
