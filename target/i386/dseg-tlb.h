/*
 * The modelled translation hierarchy of qemu-dseg, on the CPU's side: what
 * each vCPU's TLBs and walk caches (dseg-tlb-model.[ch]) see, how a miss
 * is translated and counted, and the architectural events that invalidate.
 * The accesses come from the dseg-tlb TCG plugin (contrib/plugins), which
 * passes them to the entry points that include/qemu/qemu-plugin.h declares
 * (qemu_plugin_dseg_tlb_*).  See docs/devel/dseg-tlb-model.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TARGET_I386_DSEG_TLB_H
#define TARGET_I386_DSEG_TLB_H

#include "dseg-core.h"

/* Counters of one translation path, for the L1 misses that it served. */
typedef struct DSegTlbPathCounters {
    uint64_t misses;    /* L1 misses the L2 did not serve */
    uint64_t refs;      /* memory references after the walk caches */
} DSegTlbPathCounters;

/* The counters of one vCPU's model; written by its thread alone. */
typedef struct DSegTlbCounters {
    uint64_t accesses;          /* data accesses (loads and stores) */
    uint64_t fetches;           /* instruction fetches, one per page run */
    uint64_t l1d_misses;
    uint64_t l1i_misses;
    uint64_t l2_hits;
    uint64_t unmapped;          /* misses the model's walk found unmapped */
    uint64_t unmodelled;        /* accesses under legacy (non-long) paging */
    DSegTlbPathCounters path[DSEG_PATH__MAX];
} DSegTlbCounters;

typedef struct DSegTlb DSegTlb;

/* Is the model on (the dseg-tlb plugin started it)? */
bool dseg_tlb_enabled(void);

/* Its geometry in words, and the costs of the linear cycle model. */
const char *dseg_tlb_geometry(void);
const char *dseg_tlb_preset(void);
uint64_t dseg_tlb_l2_cycles(void);
uint64_t dseg_tlb_ref_cycles(void);

/* Cycles of @l1_misses L1 misses and @refs walk references. */
uint64_t dseg_tlb_cycles(uint64_t l1_misses, uint64_t refs);

struct CPUArchState;

/*
 * The counters of the vCPU of @env, NULL while its model has seen nothing
 * (or the model is off).  Read them from another thread with qatomic_read.
 */
const DSegTlbCounters *dseg_tlb_counters(struct CPUArchState *env);
void dseg_tlb_reset_counters(struct CPUArchState *env);

/*
 * Architectural events, each a no-op while the model is off:
 * a MOV to CR0, CR3 or CR4 of @val (before it takes effect), INVLPG,
 * INVLPGA (@asid from ECX), a successful VMRUN (after its checks, with
 * the guest copy of the guest segment loaded: the VMCB's ASID and
 * TLB_CONTROL) and #VMEXIT, which both drop what the guest segment
 * translated, an accepted WRMSR to a guest-segment register (after it
 * takes effect), and an event that invalidates the whole hierarchy (a
 * WRMSR to the other DSEG MSRs, SMM entry and RSM, a reset).  After a
 * migration or loadvm (dseg_tlb_post_load) the model starts empty, in the
 * loaded VM's ASID.
 */
void dseg_tlb_write_cr(struct CPUArchState *env, int reg, uint64_t val);
void dseg_tlb_invlpg(struct CPUArchState *env, uint64_t addr);
void dseg_tlb_invlpga(struct CPUArchState *env, uint64_t addr,
                      uint32_t asid);
void dseg_tlb_vmrun(struct CPUArchState *env);
void dseg_tlb_vmexit(struct CPUArchState *env);
void dseg_tlb_guest_segment_write(struct CPUArchState *env);
void dseg_tlb_flush_all(struct CPUArchState *env);
void dseg_tlb_post_load(struct CPUArchState *env);

#endif /* TARGET_I386_DSEG_TLB_H */
