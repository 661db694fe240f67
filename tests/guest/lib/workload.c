/*
 * qemu-dseg test guests: memory workloads with fixed seeds.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "workload.h"

/* Words per 64-byte slot of the pointer chase. */
#define CHASE_STRIDE    8

static const char *const kind_names[] = {
    [WORKLOAD_GUPS] = "gups",
    [WORKLOAD_CHASE] = "chase",
    [WORKLOAD_SCAN] = "scan",
};

/* xorshift64*: small, fast and deterministic. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

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
    uint64_t seed = w->seed;
    uint64_t slots = w->words / CHASE_STRIDE;

    switch (w->kind) {
    case WORKLOAD_GUPS:
        for (uint64_t i = 0; i < w->words; i++) {
            t[i] = i;
        }
        break;
    case WORKLOAD_CHASE:
        /* Sattolo's shuffle: one cycle through every slot. */
        for (uint64_t i = 0; i < slots; i++) {
            t[i * CHASE_STRIDE] = i;
        }
        for (uint64_t i = slots - 1; i > 0; i--) {
            uint64_t j = rng_next(&seed) % i;
            uint64_t tmp = t[i * CHASE_STRIDE];

            t[i * CHASE_STRIDE] = t[j * CHASE_STRIDE];
            t[j * CHASE_STRIDE] = tmp;
        }
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
    uint64_t n = w->words, seed = w->seed, pos = 0, sum = 0;

    switch (w->kind) {
    case WORKLOAD_GUPS:
        for (uint64_t i = 0; i < w->iters; i++) {
            uint64_t r = rng_next(&seed);

            t[r % n] ^= r;
        }
        break;
    case WORKLOAD_CHASE:
        for (uint64_t i = 0; i < w->iters; i++) {
            pos = t[pos * CHASE_STRIDE];
            sum += pos;
        }
        break;
    case WORKLOAD_SCAN:
        for (uint64_t pass = 0; pass < w->iters; pass++) {
            for (uint64_t i = 0; i < n; i++) {
                sum += t[i];
            }
        }
        break;
    }
    return sum;
}

uint64_t workload_checksum(const struct workload *w, uint64_t loop_result)
{
    uint64_t sum = 0;

    if (w->kind != WORKLOAD_GUPS) {
        return loop_result;
    }
    for (uint64_t i = 0; i < w->words; i++) {
        sum += w->table[i] * (i | 1);
    }
    return sum;
}
