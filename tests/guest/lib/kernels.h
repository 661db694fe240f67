/*
 * qemu-dseg test programs: the memory kernels that the bare-metal guests
 * (lib/workload.c) and the Linux programs (linux/gups.c, linux/chase.c)
 * share, so that both compute the same results from the same seed.
 *
 * Freestanding: only <stdint.h>, everything static inline.  Each kernel
 * works on a table of 64-bit words:
 *
 *   gups   random read-modify-write of words (HPCC RandomAccess style):
 *          t[i] = i, then t[r % words] ^= r for r from xorshift64*; its
 *          checksum is sum(t[i] * (i | 1)) mod 2^64 over the final table
 *   chase  pointer chase over 64-byte slots that form one random cycle
 *          (Sattolo's shuffle): the first word of each slot holds the
 *          index of the next, so every load depends on the one before;
 *          its checksum is the sum of the indices visited, mod 2^64
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef KERNELS_H
#define KERNELS_H

#include <stdint.h>

/* Words per 64-byte slot of the pointer chase. */
#define CHASE_SLOT_WORDS        8

/* xorshift64*: small, fast and deterministic; @state must not be zero. */
static inline uint64_t xorshift64star(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dull;
}

static inline void gups_prepare(uint64_t *t, uint64_t words)
{
    for (uint64_t i = 0; i < words; i++) {
        t[i] = i;
    }
}

static inline void gups_loop(uint64_t *t, uint64_t words, uint64_t iters,
                             uint64_t seed)
{
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t r = xorshift64star(&seed);

        t[r % words] ^= r;
    }
}

static inline uint64_t gups_checksum(const uint64_t *t, uint64_t words)
{
    uint64_t sum = 0;

    for (uint64_t i = 0; i < words; i++) {
        sum += t[i] * (i | 1);
    }
    return sum;
}

/* The cycle through @slots slots of @t, shuffled from @seed. */
static inline void chase_prepare(uint64_t *t, uint64_t slots, uint64_t seed)
{
    for (uint64_t i = 0; i < slots; i++) {
        t[i * CHASE_SLOT_WORDS] = i;
    }
    for (uint64_t i = slots; i-- > 1;) {
        uint64_t j = xorshift64star(&seed) % i;
        uint64_t v = t[i * CHASE_SLOT_WORDS];

        t[i * CHASE_SLOT_WORDS] = t[j * CHASE_SLOT_WORDS];
        t[j * CHASE_SLOT_WORDS] = v;
    }
}

/* @steps loads of the chase from slot 0; returns its checksum. */
static inline uint64_t chase_loop(const uint64_t *t, uint64_t steps)
{
    uint64_t at = 0, sum = 0;

    for (uint64_t i = 0; i < steps; i++) {
        at = t[at * CHASE_SLOT_WORDS];
        sum += at;
    }
    return sum;
}

#endif /* KERNELS_H */
