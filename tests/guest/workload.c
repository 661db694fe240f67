/*
 * Memory workloads with fixed seeds, for benchmarks and the translation
 * experiment.  Command line (QEMU -append), all optional:
 *
 *   kind=gups|chase|scan   random read-modify-write (default), pointer
 *                          chase over a random cyclic permutation, or a
 *                          sequential scan
 *   size_mb=N              table size in MiB (default 64)
 *   iters=N                updates, chase steps or scan passes
 *   seed=N                 random seed (default 1)
 *   base=ADDR              physical address of the table (default 64 MiB)
 *
 * The guest runs in its boot mapping (identity, 2 MiB pages) and prints
 * "workload <kind> ... checksum 0x<hex>" before it exits with status 0.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"

/* xorshift64*: small, fast and deterministic. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Random read-modify-write of 8-byte words (HPCC RandomAccess style). */
static uint64_t gups(uint64_t *t, uint64_t n, uint64_t iters, uint64_t seed)
{
    uint64_t sum = 0;

    for (uint64_t i = 0; i < n; i++) {
        t[i] = i;
    }
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t r = rng_next(&seed);

        t[r % n] ^= r;
    }
    for (uint64_t i = 0; i < n; i++) {
        sum += t[i] * (i | 1);
    }
    return sum;
}

/* Follow a random cyclic permutation (Sattolo) of 64-byte slots. */
static uint64_t chase(uint64_t *t, uint64_t n, uint64_t iters, uint64_t seed)
{
    const uint64_t stride = 8;      /* words per 64-byte slot */
    uint64_t slots = n / stride, pos = 0, sum = 0;

    for (uint64_t i = 0; i < slots; i++) {
        t[i * stride] = i;
    }
    for (uint64_t i = slots - 1; i > 0; i--) {
        uint64_t j = rng_next(&seed) % i;
        uint64_t tmp = t[i * stride];

        t[i * stride] = t[j * stride];
        t[j * stride] = tmp;
    }
    for (uint64_t i = 0; i < iters; i++) {
        pos = t[pos * stride];
        sum += pos;
    }
    return sum;
}

static uint64_t scan(uint64_t *t, uint64_t n, uint64_t iters, uint64_t seed)
{
    uint64_t sum = 0;

    for (uint64_t i = 0; i < n; i++) {
        t[i] = i ^ seed;
    }
    for (uint64_t pass = 0; pass < iters; pass++) {
        for (uint64_t i = 0; i < n; i++) {
            sum += t[i];
        }
    }
    return sum;
}

int guest_main(const char *cmdline)
{
    char kind[16] = "gups";
    uint64_t size_mb = cmdline_get_u64(cmdline, "size_mb", 64);
    uint64_t seed = cmdline_get_u64(cmdline, "seed", 1);
    uint64_t base = cmdline_get_u64(cmdline, "base", 64 << 20);
    uint64_t *table = (uint64_t *)(uintptr_t)base;
    uint64_t n = (size_mb << 20) / sizeof(uint64_t);
    uint64_t iters, sum;

    cmdline_get(cmdline, "kind", kind, sizeof(kind));
    if (!seed || !size_mb || base + (size_mb << 20) > (4ull << 30)) {
        panic("seed must be non-zero and the table inside the low 4 GiB");
    }
    if (!strncmp(kind, "gups", sizeof(kind))) {
        iters = cmdline_get_u64(cmdline, "iters", n);
        sum = gups(table, n, iters, seed);
    } else if (!strncmp(kind, "chase", sizeof(kind))) {
        iters = cmdline_get_u64(cmdline, "iters", n);
        sum = chase(table, n, iters, seed);
    } else if (!strncmp(kind, "scan", sizeof(kind))) {
        iters = cmdline_get_u64(cmdline, "iters", 4);
        sum = scan(table, n, iters, seed);
    } else {
        panic("unknown workload kind '%s'", kind);
    }
    printf("workload %s size_mb %lu iters %lu seed %lu checksum %#lx\n",
           kind, size_mb, iters, seed, sum);
    return 0;
}
