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

#define MSR_DSEG_BASE_G         0xc0011f00
#define MSR_DSEG_LIMIT_G        0xc0011f01
#define MSR_DSEG_OFFSET_G       0xc0011f02
#define MSR_DSEG_BASE_V         0xc0011f04
#define MSR_DSEG_LIMIT_V        0xc0011f05
#define MSR_DSEG_OFFSET_V       0xc0011f06
#define MSR_DSEG_FILTER_CFG     0xc0011f08
#define MSR_DSEG_FILTER_INSERT  0xc0011f09
#define MSR_DSEG_FILTER_CLEAR   0xc0011f0a
#define MSR_DSEG_FILTER_BITS(w) (0xc0011f40 + (w))
#define DSEG_FILTER_MAX_WORDS   64
/* The whole MSR block that belongs to DSEG, registers or not. */
#define MSR_DSEG_BLOCK_FIRST    0xc0011f00
#define MSR_DSEG_BLOCK_LAST     0xc0011f7f

/* The guest copy of the G registers in the VMCB. */
#define VMCB_DSEG_BASE_G        0xc00
#define VMCB_DSEG_LIMIT_G       0xc08
#define VMCB_DSEG_OFFSET_G      0xc10

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

#endif /* DSEG_H */
