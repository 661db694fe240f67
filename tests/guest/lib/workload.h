/*
 * qemu-dseg test guests: memory workloads with fixed seeds.
 *
 * Three kernels over a table of 64-bit words, each split into a set-up
 * pass, the loop that a benchmark or a counter window measures, and a
 * checksum, so that a caller can run the loop alone (for example in a VM,
 * between two checkpoints):
 *
 *   gups, chase   the kernels of lib/kernels.h
 *   scan          sequential passes that sum every word
 *
 * Everything is deterministic: the same kind, size, iterations and seed
 * give the same checksum wherever the table lives.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef WORKLOAD_H
#define WORKLOAD_H

#include "libguest.h"

enum workload_kind {
    WORKLOAD_GUPS,
    WORKLOAD_CHASE,
    WORKLOAD_SCAN,
};

struct workload {
    enum workload_kind kind;
    uint64_t *table;                    /* at the address the loop uses */
    uint64_t words;                     /* table size in 64-bit words */
    uint64_t iters;                     /* updates, chase steps or passes */
    uint64_t seed;                      /* non-zero */
};

/* Kind named @name ("gups", "chase", "scan"); false if there is none. */
bool workload_kind_parse(const char *name, enum workload_kind *kind);
const char *workload_kind_name(enum workload_kind kind);

/*
 * Default iteration count over @words words: one update or chase step per
 * word, or 4 scan passes.
 */
uint64_t workload_default_iters(enum workload_kind kind, uint64_t words);

/* Fills the table (for chase: builds the permutation). */
void workload_prepare(const struct workload *w);

/* The measured loop; its result goes to workload_checksum(). */
uint64_t workload_loop(const struct workload *w);

/* The checksum of a run whose loop returned @loop_result. */
uint64_t workload_checksum(const struct workload *w, uint64_t loop_result);

#endif /* WORKLOAD_H */
