/*
 * gups: the GUPS workload of tests/guest/lib/workload.c as a Linux
 * program, with its table in a primary region or in ordinary memory.
 *
 * Usage: gups [--region] [--window] [MIB [ITERS [SEED]]]
 *   MIB     table size in MiB (default 256)
 *   ITERS   updates (default 1048576)
 *   SEED    xorshift64* seed, non-zero (default 1)
 *   --region  put the table in the process's primary region (libdseg);
 *             otherwise in anonymous memory kept off huge pages, so that
 *             both are mapped with 4 KiB pages
 *   --window  mark the update loop alone as a counter window: marks 1 and
 *             2 on the isa-dseg-window device (the VM stops at each)
 *
 * Prints "GUPS mib M iters N seed S table region|anon checksum 0x...": the
 * checksum is sum(t[i] * (i | 1)) mod 2^64 over the final table.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "libdseg.h"
#include "table.h"

int main(int argc, char **argv)
{
    int region = 0, window = 0;
    uint64_t args[3] = { 256, 1 << 20, 1 };

    table_args(argc, argv, &region, &window, args);
    size_t words = (args[0] << 20) / 8;
    uint64_t iters = args[1], seed = args[2], state = seed, sum = 0;
    uint64_t *t = table_alloc(words * 8, region);

    if (!t || !seed) {
        printf("GUPS-FAIL table: %s\n", t ? "seed must be non-zero" :
               strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < words; i++) {
        t[i] = i;
    }
    if (window && dseg_window_mark(1)) {
        printf("GUPS-FAIL window: %s\n", strerror(errno));
        return 1;
    }
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t r = xorshift64star(&state);

        t[r % words] ^= r;
    }
    if (window) {
        dseg_window_mark(2);
    }
    for (size_t i = 0; i < words; i++) {
        sum += t[i] * (i | 1);
    }
    printf("GUPS mib %" PRIu64 " iters %" PRIu64 " seed %" PRIu64
           " table %s checksum 0x%016" PRIx64 "\n", args[0], iters, seed,
           region ? "region" : "anon", sum);
    return 0;
}
