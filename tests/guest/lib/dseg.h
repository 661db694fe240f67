/*
 * qemu-dseg test guests: direct-segment registers and the escape filter
 * (docs/specs/direct-segments.rst).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef DSEG_H
#define DSEG_H

#include "libguest.h"
#include "svm.h"

/* The registers, their VMCB copy and CPUID bit: the one definition. */
#include "../../../target/i386/dseg-abi.h"

#define MSR_DSEG_FILTER_BITS(w) (MSR_DSEG_FILTER_BITS0 + (w))
#define DSEG_FILTER_MAX_WORDS   64

struct dseg_seg {
    uint64_t base, limit, offset;
};

/* The G or V register triple. */
enum dseg_which {
    DSEG_G,
    DSEG_V,
};

/* CPUID Fn8000_0001_ECX[31]. */
bool dseg_available(void);

/* MSR number of BASE (+0), LIMIT (+1) or OFFSET (+2) of @which. */
static inline uint32_t dseg_msr(enum dseg_which which, unsigned reg)
{
    return (which == DSEG_G ? MSR_DSEG_BASE_G : MSR_DSEG_BASE_V) + reg;
}

/*
 * Programs a segment in the documented order (LIMIT 0, BASE, OFFSET,
 * LIMIT); returns the vector of the first faulting WRMSR or NO_EXCEPTION.
 */
int dseg_set(enum dseg_which which, uint64_t base, uint64_t limit,
             uint64_t offset);
/* Disarms a segment (LIMIT 0). */
void dseg_disarm(enum dseg_which which);
/* Reads the three registers with RDMSR. */
struct dseg_seg dseg_get(enum dseg_which which);

/* The guest copy in a VMCB. */
void vmcb_set_dseg(struct svm_vm *vm, uint64_t base, uint64_t limit,
                   uint64_t offset);
struct dseg_seg vmcb_get_dseg(const struct svm_vm *vm);

/* Escape filter geometry from DSEG_FILTER_CFG. */
struct dseg_filter_geom {
    unsigned bits_log2;
    unsigned hashes;
};
struct dseg_filter_geom dseg_filter_geometry(void);

/* Multiplier M[i] of hash i: splitmix64(i + 1) | 1. */
uint64_t dseg_filter_multiplier(unsigned i);
/* Filter bit that hash @i selects for the page of gPA @addr. */
unsigned dseg_filter_hash(const struct dseg_filter_geom *g, unsigned i,
                          uint64_t addr);

/* A software model of the filter, to predict the MSR bits and lookups. */
struct dseg_filter_model {
    struct dseg_filter_geom geom;
    uint64_t words[DSEG_FILTER_MAX_WORDS];
};
void dseg_model_init(struct dseg_filter_model *m,
                     const struct dseg_filter_geom *g);
void dseg_model_insert(struct dseg_filter_model *m, uint64_t addr);
bool dseg_model_reports(const struct dseg_filter_model *m, uint64_t addr);

/*
 * One counter window (DSEG_WINDOW_PORT) over pages, in one block of
 * assembly that touches no other data: the opening mark @mark, a CR3
 * write (the same root) if @cr3, INVLPG of @invlpg unless it is 0, @passes
 * passes reading one word of each of the @pages pages at @va, and the
 * closing mark @mark + 1.
 */
void dseg_page_window(uint32_t mark, uint64_t va, uint64_t pages,
                      uint64_t passes, bool cr3, uint64_t invlpg);

#endif /* DSEG_H */
