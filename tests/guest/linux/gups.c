/*
 * gups: the GUPS kernel of tests/guest/lib/kernels.h as a Linux program,
 * with its table in a primary region or in ordinary memory.
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
 * Prints "GUPS mib M iters N seed S table region|anon checksum 0x...".
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
    uint64_t iters = args[1], seed = args[2];
    uint64_t *t = table_alloc(words * 8, region);

    if (!t || !seed) {
        printf("GUPS-FAIL table: %s\n", t ? "seed must be non-zero" :
               strerror(errno));
        return 1;
    }
    gups_prepare(t, words);
    if (table_window_start(window, "GUPS")) {
        return 1;
    }
    gups_loop(t, words, iters, seed);
    table_window_end(window);
    printf("GUPS mib %" PRIu64 " iters %" PRIu64 " seed %" PRIu64
           " table %s checksum 0x%016" PRIx64 "\n", args[0], iters, seed,
           region ? "region" : "anon", gups_checksum(t, words));
    return 0;
}
