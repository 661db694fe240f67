/*
 * Memory workloads with fixed seeds, for benchmarks (lib/workload.h holds
 * the kernels; experiment.c runs them under each translation mode).
 * Command line (QEMU -append), all optional:
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
#include "workload.h"

int guest_main(const char *cmdline)
{
    char kind[16] = "gups";
    uint64_t size_mb = cmdline_get_u64(cmdline, "size_mb", 64);
    uint64_t base = cmdline_get_u64(cmdline, "base", 64 << 20);
    struct workload w = {
        .table = (uint64_t *)(uintptr_t)base,
        .words = (size_mb << 20) / sizeof(uint64_t),
        .seed = cmdline_get_u64(cmdline, "seed", 1),
    };
    uint64_t sum;

    cmdline_get(cmdline, "kind", kind, sizeof(kind));
    if (!w.seed || !size_mb || base + (size_mb << 20) > (4ull << 30)) {
        panic("seed must be non-zero and the table inside the low 4 GiB");
    }
    if (!workload_kind_parse(kind, &w.kind)) {
        panic("unknown workload kind '%s'", kind);
    }
    w.iters = cmdline_get_u64(cmdline, "iters",
                              workload_default_iters(w.kind, w.words));
    workload_prepare(&w);
    sum = workload_checksum(&w, workload_loop(&w));
    printf("workload %s size_mb %lu iters %lu seed %lu checksum 0x%lx\n",
           kind, size_mb, w.iters, w.seed, sum);
    return 0;
}
