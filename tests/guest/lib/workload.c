/*
 * qemu-dseg test guests: memory workloads with fixed seeds.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "workload.h"
#include "kernels.h"

static const char *const kind_names[] = {
    [WORKLOAD_GUPS] = "gups",
    [WORKLOAD_CHASE] = "chase",
    [WORKLOAD_SCAN] = "scan",
};

bool workload_kind_parse(const char *name, enum workload_kind *kind)
{
    for (unsigned k = 0; k < ARRAY_SIZE(kind_names); k++) {
        if (!strncmp(name, kind_names[k], strlen(kind_names[k]) + 1)) {
            *kind = k;
            return true;
        }
    }
    return false;
}

const char *workload_kind_name(enum workload_kind kind)
{
    return kind < ARRAY_SIZE(kind_names) ? kind_names[kind] : "?";
}

uint64_t workload_default_iters(enum workload_kind kind, uint64_t words)
{
    return kind == WORKLOAD_SCAN ? 4 : words;
}

void workload_prepare(const struct workload *w)
{
    uint64_t *t = w->table;

    switch (w->kind) {
    case WORKLOAD_GUPS:
        gups_prepare(t, w->words);
        break;
    case WORKLOAD_CHASE:
        chase_prepare(t, w->words / CHASE_SLOT_WORDS, w->seed);
        break;
    case WORKLOAD_SCAN:
        for (uint64_t i = 0; i < w->words; i++) {
            t[i] = i ^ w->seed;
        }
        break;
    }
}

uint64_t workload_loop(const struct workload *w)
{
    uint64_t *t = w->table;
    uint64_t sum = 0;

    switch (w->kind) {
    case WORKLOAD_GUPS:
        gups_loop(t, w->words, w->iters, w->seed);
        break;
    case WORKLOAD_CHASE:
        sum = chase_loop(t, w->iters);
        break;
    case WORKLOAD_SCAN:
        for (uint64_t pass = 0; pass < w->iters; pass++) {
            for (uint64_t i = 0; i < w->words; i++) {
                sum += t[i];
            }
        }
        break;
    }
    return sum;
}

uint64_t workload_checksum(const struct workload *w, uint64_t loop_result)
{
    if (w->kind != WORKLOAD_GUPS) {
        return loop_result;
    }
    return gups_checksum(w->table, w->words);
}
