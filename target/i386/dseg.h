/*
 * Direct-segment translation for x86 (qemu-dseg): CPU state and hooks.
 *
 * The architecture is specified in docs/specs/direct-segments.rst; the
 * QEMU-independent parts live in dseg-core.[ch].
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TARGET_I386_DSEG_H
#define TARGET_I386_DSEG_H

#include "dseg-core.h"
#include "dseg-abi.h"
#include "dseg-tlb.h"

/* Has the CPU of @env the feature?  (A macro: CPUX86State comes later.) */
#define dseg_has_feature(env) \
    (((env)->features[FEAT_8000_0001_ECX] & CPUID_EXT3_DSEG) != 0)

/* The MSRs that exist: the registers and the filter words. */
#define MSR_DSEG_FIRST              MSR_DSEG_BASE_G
#define MSR_DSEG_LAST \
    (MSR_DSEG_FILTER_BITS0 + DSEG_FILTER_WORDS - 1)

/* Defaults of the filter geometry properties (the paper's filter). */
#define DSEG_FILTER_DEFAULT_BITS    (1u << DSEG_FILTER_DEFAULT_BITS_LOG2)

/*
 * DSEG state as a migration stream carries it (vmstate_dseg): staged here
 * on both sides, so that a stream is checked whole before it replaces the
 * CPU's state.
 */
typedef struct DSegMigration {
    DSegRange guest;
    DSegRange host_guest;
    bool host_guest_saved;
    DSegRange vmm;
    uint8_t filter_bits_log2;
    uint8_t filter_hashes;
    uint64_t filter_words[DSEG_FILTER_WORDS];
} DSegMigration;

typedef struct DSegState {
    /* Architectural state, cleared by a CPU reset. */
    DSegRange guest;            /* current copy of the guest segment */
    DSegRange host_guest;       /* host copy, saved while a guest runs */
    bool host_guest_saved;
    DSegRange vmm;
    DSegFilter filter;

    /* Geometry properties: dseg-filter-bits, dseg-filter-hashes. */
    uint32_t filter_bits;
    uint32_t filter_hashes;

    /* Emulator statistics, kept across resets (query-dseg). */
    DSegCounters counters;
    DSegFill fill;

    /* Migration staging, meaningful only while saving or loading. */
    DSegMigration migration;

    /*
     * Set by hw/i386/dseg-window.c in the vCPU that wrote a window mark,
     * until the VM runs again: it then takes no interrupt before it stops.
     */
    bool window_stopped;

    /*
     * The modelled translation hierarchy (dseg-tlb.c), made on first use
     * while the dseg-tlb plugin has it on; kept across resets, not
     * migrated.
     */
    DSegTlb *tlb;
} DSegState;

/*
 * The VMM segment's rule for a nested step's gPA (the spec's "When each
 * segment applies"), the one that fills, the nested TLB and the
 * debugger's view share: outside the segment or in SMM it does not apply;
 * inside, the escape filter may send the page back to the nested walk.
 */
typedef enum DSegVmmStep {
    DSEG_VMM_MISS,          /* not in the segment, or in SMM */
    DSEG_VMM_ESCAPED,       /* in the segment, but the filter reports it */
    DSEG_VMM_HIT,           /* translated: hPA = gPA + OFFSET_V */
} DSegVmmStep;

static inline DSegVmmStep dseg_vmm_step(const DSegState *ds, bool smm,
                                        uint64_t gpa)
{
    if (!dseg_range_contains(&ds->vmm, gpa) || smm) {
        return DSEG_VMM_MISS;
    }
    if (!ds->filter.empty && dseg_filter_test(&ds->filter, gpa)) {
        return DSEG_VMM_ESCAPED;
    }
    return DSEG_VMM_HIT;
}

struct CPUArchState;

/* CPU lifecycle. */
bool dseg_realize(X86CPU *cpu, Error **errp);
unsigned dseg_va_bits(struct CPUArchState *env);
unsigned dseg_pa_bits(struct CPUArchState *env);
void dseg_reset(struct CPUArchState *env);
int dseg_cpu_post_load(struct CPUArchState *env);
extern const VMStateDescription vmstate_dseg;

/* MSR access (TCG); return false for an MSR that is not ours. */
bool dseg_is_msr(uint32_t msr);
void dseg_wrmsr(struct CPUArchState *env, uint32_t msr, uint64_t val,
                uintptr_t ra);
uint64_t dseg_rdmsr(struct CPUArchState *env, uint32_t msr, uintptr_t ra);

/*
 * The guest segment's rule (the spec's "When each segment applies"), the
 * one that fills and the debugger's view share: it applies in long mode
 * with paging on, outside SMM, and in guest mode only with nested paging.
 * Whether a linear address lies in it is the caller's test.
 */
bool dseg_guest_segment_applies(struct CPUArchState *env);

/*
 * The debugger's view (cpu_get_phys_page_attrs_debug): true when the
 * segments decide the translation of @addr, with the page's physical
 * address, or -1 when it is not mapped, in *@paddr; false for upstream's
 * walk.
 */
bool dseg_debug_translate(struct CPUArchState *env, vaddr addr,
                          hwaddr *paddr);

/*
 * One walk of long-mode tables of @levels levels rooted at @root for
 * @addr, as a fill reads them, ignoring permissions and setting no
 * accessed or dirty bit: the walker that the debugger's view and the TLB
 * model share.  Each entry's address goes through @entry_pa (a 2-D walk's
 * nested step, which may fail) or, without it, the A20 gate; @read, if
 * any, sees every entry read at its final address.  On success, the
 * leaf's output address (before the A20 gate), entry and page shift.
 */
typedef struct DSegWalker {
    bool (*entry_pa)(struct CPUArchState *env, void *opaque, uint64_t gpa,
                     uint64_t *pa);
    void (*read)(struct CPUArchState *env, void *opaque, uint64_t pa,
                 bool leaf);
    void *opaque;
} DSegWalker;

typedef struct DSegWalkLeaf {
    uint64_t out;
    uint64_t pte;
    unsigned shift;
} DSegWalkLeaf;

bool dseg_walk(struct CPUArchState *env, const DSegWalker *w, uint64_t root,
               int levels, uint64_t addr, DSegWalkLeaf *leaf);

/* A physical address as the CPU uses it: through the A20 gate. */
uint64_t dseg_phys(struct CPUArchState *env, uint64_t pa);

/* SVM world switches. */
void dseg_vmrun(struct CPUArchState *env, uintptr_t ra);
void dseg_vmexit(struct CPUArchState *env);

/* SMM entry and RSM. */
void dseg_smm_switch(struct CPUArchState *env);

#endif /* TARGET_I386_DSEG_H */
