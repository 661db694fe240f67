/*
 * The table of the Linux workload programs (gups.c and chase.c, which run
 * the kernels of ../lib/kernels.h, bfs.c and cg.c): in a primary region or
 * in anonymous memory kept off huge pages, so that both are mapped with
 * 4 KiB pages.  A program that needs several arrays carves them out of
 * its one table (a process has at most one primary region).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TABLE_H
#define TABLE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "libdseg.h"
#include "../lib/kernels.h"

/* SIZE bytes of zeroed memory, in the primary region if REGION; NULL and
 * errno on failure. */
static inline uint64_t *table_alloc(size_t size, int region)
{
    void *p;

    if (region) {
        return dseg_region_alloc(size);
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
    madvise(p, size, MADV_NOHUGEPAGE);
    return p;
}

/* SIZE bytes of a table as table_carve() takes them: 8-byte aligned. */
static inline uint64_t table_round(uint64_t size)
{
    return (size + 7) & ~(uint64_t)7;
}

/* The next SIZE bytes at *AT, which moves past them. */
static inline void *table_carve(char **at, uint64_t size)
{
    void *p = *at;

    *at += table_round(size);
    return p;
}

/* The checksum's start, and H with X mixed in (FNV-1a's constants). */
#define TABLE_MIX_START 0xcbf29ce484222325ull

static inline uint64_t table_mix(uint64_t h, uint64_t x)
{
    return (h ^ x) * 0x100000001b3ull;
}

/*
 * The window's start, dseg-window mark 1, if WINDOW: 0, or -1 after the
 * line "TAG-FAIL window: why".
 */
static inline int table_window_start(int window, const char *tag)
{
    if (window && dseg_window_mark(1)) {
        printf("%s-FAIL window: %s\n", tag, strerror(errno));
        return -1;
    }
    return 0;
}

/* The window's end, mark 2, if WINDOW. */
static inline void table_window_end(int window)
{
    if (window) {
        dseg_window_mark(2);
    }
}

/*
 * The command line "[--region] [--window] [MIB [COUNT [SEED]]]": sets
 * *REGION and *WINDOW; ARGS keeps its defaults for what is not given.
 */
static inline void table_args(int argc, char **argv, int *region,
                              int *window, uint64_t args[3])
{
    int n = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--region")) {
            *region = 1;
        } else if (!strcmp(argv[i], "--window")) {
            *window = 1;
        } else if (n < 3) {
            args[n++] = strtoull(argv[i], NULL, 0);
        }
    }
}

#endif /* TABLE_H */
