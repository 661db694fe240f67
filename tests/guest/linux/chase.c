/*
 * chase: the pointer chase of tests/guest/lib/kernels.h as a Linux
 * program, with its table in a primary region or in ordinary memory.
 *
 * Usage: chase [--region] [--window] [MIB [STEPS [SEED]]]
 *   MIB     table size in MiB (default 256)
 *   STEPS   loads of the chase (default 1048576)
 *   SEED    xorshift64* seed, non-zero (default 1)
 *   --region, --window  as for gups
 *
 * Prints "CHASE mib M steps N seed S table region|anon checksum 0x...".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

int main(int argc, char **argv)
{
    int region = 0, window = 0;
    uint64_t args[3] = { 256, 1 << 20, 1 };

    table_args(argc, argv, &region, &window, args);
    size_t slots = (args[0] << 20) / (8 * CHASE_SLOT_WORDS);
    uint64_t steps = args[1], seed = args[2], sum;
    uint64_t *t = table_alloc(slots * 8 * CHASE_SLOT_WORDS, region);

    if (!t || !seed || slots < 2) {
        printf("CHASE-FAIL table: %s\n", !t ? strerror(errno) :
               "seed must be non-zero and the table at least 128 bytes");
        return 1;
    }
    chase_prepare(t, slots, seed);
    if (table_window_start(window, "CHASE")) {
        return 1;
    }
    sum = chase_loop(t, steps);
    table_window_end(window);
    printf("CHASE mib %" PRIu64 " steps %" PRIu64 " seed %" PRIu64
           " table %s checksum 0x%016" PRIx64 "\n", args[0], steps, seed,
           region ? "region" : "anon", sum);
    return 0;
}
