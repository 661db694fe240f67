/*
 * Direct-segment translation for x86 (qemu-dseg): TCG side.
 *
 * MSR access, the guest and VMM segment steps of a TLB fill, the
 * VMRUN/#VMEXIT switch of the guest segment and the per-path counters.
 * Everything here runs on TLB fills and MSR accesses only; nothing is
 * added to the softmmu TLB hit path.  See docs/specs/direct-segments.rst.
 *
 * Counters are only written by the vCPU's own thread (fills and MSR
 * accesses run there), so they stay exact under MTTCG.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "cpu.h"
#include "exec/cputlb.h"
#include "exec/page-protection.h"
#include "tcg/helper-tcg.h"
#include "dseg-fill.h"

static bool dseg_in_guest(CPUX86State *env)
{
    return env->hflags & HF_GUEST_MASK;
}

/*
 * Entries that the nested walk of a gPA reads to a nested page of
 * 2^@lg_page_size bytes.  Without PAE in the host's paging mode at VMRUN
 * (paging off), the nested walk reads none: nested_pg_mode never holds
 * PG_MODE_PG, so mmu_translate() takes a gPA as its hPA.
 */
unsigned dseg_nested_walk_refs(CPUX86State *env, int lg_page_size)
{
    int mode = env->nested_pg_mode;
    unsigned levels;

    if (!(mode & PG_MODE_PAE)) {
        return 0;
    }
    if (!(mode & PG_MODE_LMA)) {
        levels = 3;
    } else {
        levels = mode & PG_MODE_LA57 ? 5 : 4;
    }
    return dseg_walk_refs(levels, 9, lg_page_size);
}

/* slow paths of the translation hooks (dseg-fill.h) */

bool dseg_translate_guest_hit(CPUX86State *env, uint64_t *addr)
{
    DSegState *ds = &env->dseg;

    if (!dseg_guest_segment_applies(env)) {
        return false;
    }
    *addr += ds->guest.offset;
    ds->counters.guest_seg_hits++;
    ds->fill.guest_direct = true;
    return true;
}

/* The escape filter reported a gPA in the VMM segment: it takes the walk. */
void dseg_count_escape(CPUX86State *env, uint64_t gpa)
{
    env->dseg.counters.filter_probes++;
    env->dseg.counters.filter_hits++;
    trace_dseg_filter_hit(gpa);
}

/* MSRs */

bool dseg_is_msr(uint32_t msr)
{
    return msr >= MSR_DSEG_FIRST && msr <= MSR_DSEG_LAST;
}

static G_NORETURN void dseg_msr_fault(CPUX86State *env, uint32_t msr,
                                      uint64_t val, bool write, uintptr_t ra)
{
    trace_dseg_msr_fault(msr, val, write);
    raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
}

/* Host-only registers: the VMM segment and the escape filter. */
static bool dseg_host_only(uint32_t msr)
{
    return msr >= MSR_DSEG_BASE_V;
}

void dseg_wrmsr(CPUX86State *env, uint32_t msr, uint64_t val, uintptr_t ra)
{
    DSegState *ds = &env->dseg;
    bool linear = msr <= MSR_DSEG_OFFSET_G;
    DSegRange *r = linear ? &ds->guest : &ds->vmm;

    if (!dseg_has_feature(env) || (dseg_host_only(msr) && dseg_in_guest(env))) {
        dseg_msr_fault(env, msr, val, true, ra);
    }
    switch (msr) {
    case MSR_DSEG_BASE_G ... MSR_DSEG_OFFSET_G:
    case MSR_DSEG_BASE_V ... MSR_DSEG_OFFSET_V: {
        DSegReg reg = msr - (linear ? MSR_DSEG_BASE_G : MSR_DSEG_BASE_V);

        if (!dseg_range_write_valid(r, reg, val, linear, dseg_va_bits(env),
                                    dseg_pa_bits(env))) {
            dseg_msr_fault(env, msr, val, true, ra);
        }
        dseg_range_write(r, reg, val);
        break;
    }
    case MSR_DSEG_FILTER_INSERT:
        if (val >> dseg_pa_bits(env)) {
            dseg_msr_fault(env, msr, val, true, ra);
        }
        dseg_filter_insert(&ds->filter, val);
        trace_dseg_filter_insert(val);
        break;
    case MSR_DSEG_FILTER_CLEAR:
        if (val) {
            dseg_msr_fault(env, msr, val, true, ra);
        }
        dseg_filter_clear(&ds->filter);
        break;
    default:
        dseg_msr_fault(env, msr, val, true, ra);
    }
    trace_dseg_wrmsr(msr, val);
    /*
     * No translation made under the old registers may survive: QEMU's TLB
     * does not know which translations a segment made, so it is flushed
     * whole; the model drops what the spec names.
     */
    tlb_flush(env_cpu(env));
    if (linear) {
        dseg_tlb_guest_segment_write(env);
    } else {
        dseg_tlb_flush_all(env);
    }
}

uint64_t dseg_rdmsr(CPUX86State *env, uint32_t msr, uintptr_t ra)
{
    DSegState *ds = &env->dseg;
    unsigned words = (1u << ds->filter.bits_log2) / 64;

    if (!dseg_has_feature(env) || (dseg_host_only(msr) && dseg_in_guest(env))) {
        dseg_msr_fault(env, msr, 0, false, ra);
    }
    switch (msr) {
    case MSR_DSEG_BASE_G ... MSR_DSEG_OFFSET_G:
        return dseg_range_read(&ds->guest, msr - MSR_DSEG_BASE_G);
    case MSR_DSEG_BASE_V ... MSR_DSEG_OFFSET_V:
        return dseg_range_read(&ds->vmm, msr - MSR_DSEG_BASE_V);
    case MSR_DSEG_FILTER_CFG:
        return ds->filter.bits_log2 | (ds->filter.nr_hashes << 8);
    case MSR_DSEG_FILTER_BITS0 ... MSR_DSEG_LAST:
        if (msr - MSR_DSEG_FILTER_BITS0 < words) {
            return ds->filter.bits[msr - MSR_DSEG_FILTER_BITS0];
        }
        /* fall through */
    default:
        dseg_msr_fault(env, msr, 0, false, ra);
    }
}

/* SVM world switches */

/*
 * Called by VMRUN after every other consistency check (the last is the
 * EVENTINJ check, svm_event_inj_invalid()) and before the injection: it
 * checks the VMCB's guest copy (a failure is VMRUN's VMEXIT_INVALID) and
 * switches to it.  A VMRUN that fails any check thus switches nothing,
 * and its #VMEXIT writes no DSEG bytes.
 */
void dseg_vmrun(CPUX86State *env, uintptr_t ra)
{
    CPUState *cs = env_cpu(env);
    DSegState *ds = &env->dseg;
    DSegRange guest;

    if (!dseg_has_feature(env)) {
        dseg_tlb_vmrun(env);
        return;
    }
    guest = (DSegRange) {
        .base = x86_ldq_phys(cs, env->vm_vmcb + VMCB_DSEG_BASE_G),
        .limit = x86_ldq_phys(cs, env->vm_vmcb + VMCB_DSEG_LIMIT_G),
        .offset = x86_ldq_phys(cs, env->vm_vmcb + VMCB_DSEG_OFFSET_G),
    };
    if (!dseg_range_valid(&guest, true, dseg_va_bits(env),
                          dseg_pa_bits(env))) {
        cpu_vmexit(env, SVM_EXIT_ERR, 0, ra);
    }
    trace_dseg_vmrun(guest.base, guest.limit, guest.offset);
    ds->host_guest = ds->guest;
    ds->host_guest_saved = true;
    ds->guest = guest;
    /*
     * QEMU's TLB has no ASIDs; the modelled one keeps each world's
     * entries apart by ASID, as AMD's does, so TLB_CONTROL alone flushes.
     */
    tlb_flush(cs);
    dseg_tlb_vmrun(env);
}

void dseg_vmexit(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);
    DSegState *ds = &env->dseg;

    dseg_tlb_vmexit(env);
    if (!ds->host_guest_saved) {
        return;
    }
    x86_stq_phys(cs, env->vm_vmcb + VMCB_DSEG_BASE_G, ds->guest.base);
    x86_stq_phys(cs, env->vm_vmcb + VMCB_DSEG_LIMIT_G, ds->guest.limit);
    x86_stq_phys(cs, env->vm_vmcb + VMCB_DSEG_OFFSET_G, ds->guest.offset);
    trace_dseg_vmexit(ds->guest.base, ds->guest.limit, ds->guest.offset);
    ds->guest = ds->host_guest;
    ds->host_guest = (DSegRange) { 0 };
    ds->host_guest_saved = false;
    tlb_flush(cs);
}

/*
 * SMM entry and RSM: no translation made on one side may be used on the
 * other (spec: "When each segment applies").  Upstream flushes only when
 * the paging bits change; a CPU without the feature keeps its behaviour.
 */
void dseg_smm_switch(CPUX86State *env)
{
    if (dseg_has_feature(env)) {
        tlb_flush(env_cpu(env));
    }
    dseg_tlb_flush_all(env);
}
