/*
 * Translation experiment guest: one workload (lib/workload.h) under one
 * of the six translation modes of docs/specs/direct-segments.rst, with
 * 4 KiB pages everywhere so that each mode's walk has its textbook cost.
 * scripts/dseg-experiment.py runs it once per mode and reads the counters
 * of the workload loop alone (docs/devel/dseg-experiment.rst).
 *
 * Command line (QEMU -append):
 *
 *   mode=M        base-native (default), native-direct, base-virtualised,
 *                 guest-direct, vmm-direct or dual-direct
 *   kind=K        gups (default), chase or scan
 *   size_mb=N     table size in MiB (default 64)
 *   iters=N       loop iterations (default: lib/workload.h's)
 *   seed=N        random seed (default 1)
 *
 * The table always sits at linear address TABLE_VA.
 *
 * Native modes run the workload in host mode on page tables built here:
 * the whole of RAM identity-mapped and the table mapped at TABLE_VA, all
 * with 4 KiB pages, so every fill walks 4 levels.  Native direct adds a
 * guest segment over the table.
 *
 * Virtualised modes run it in a VM under nested paging.  The VM has one
 * block of RAM, gPA [0, GUEST_TABLE_GPA + size), that the nested tables
 * map with 4 KiB pages to one host block at a non-zero offset:
 *
 *   [0, 16 MiB)                 a private copy of this image (code, data,
 *                               stacks), at its link addresses
 *   [16 MiB, GUEST_TABLE_GPA)   the VM's page tables (4 KiB pages)
 *   [GUEST_TABLE_GPA, ...)      the table
 *
 * Because the VM runs a copy, the image region is not one-to-one in host
 * memory (unlike lib/svm.h's other users); the VM gets its parameters in
 * the copy and returns results through svm_call().  Guest direct gives
 * the VM a guest segment (through the VMCB) over the table, VMM direct a
 * VMM segment over all of its RAM, page tables included, and dual direct
 * both.  The image is outside the guest segment, so the VM's own code and
 * stack fills take the mode's walk path.
 *
 * Checkpoints "start" and "end" enclose the workload loop only: set-up and
 * checksum run before and after them (in the VM for virtualised modes).
 * The guest ends with "experiment: checksum 0x<hex>" and exit status 0.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "svm.h"
#include "workload.h"

#define TABLE_VA            0x4000000000ull     /* 256 GiB */
#define GUEST_PT_GPA        SVM_IMAGE_REGION
#define GUEST_TABLE_GPA     (32ull << 20)
#define MAX_SIZE_MB         1024

/* Translation modes: where the workload runs and which segments it has. */
struct mode {
    const char *name;
    bool vm;                /* in a VM under nested paging */
    bool guest_segment;     /* guest segment over the table */
    bool vmm_segment;       /* VMM segment over all guest RAM */
};

static const struct mode modes[] = {
    { "base-native",      false, false, false },
    { "native-direct",    false, true,  false },
    { "base-virtualised", true,  false, false },
    { "guest-direct",     true,  true,  false },
    { "vmm-direct",       true,  false, true  },
    { "dual-direct",      true,  true,  true  },
};

/*
 * The workload.  In virtualised modes the VM reads its own copy, taken
 * when the host copies the image into guest RAM.
 */
static struct workload work;

/* The host's page tables and the pool they come from. */
static struct pt host_pt;
static struct page_pool host_pt_pool;

static uint64_t table_bytes(void)
{
    return work.words * sizeof(uint64_t);
}

/*
 * Switches the host to its own tables: all RAM identity-mapped with 4 KiB
 * pages, so that every native fill (the host's own too) walks 4 levels.
 */
static void enter_host_tables(void)
{
    /*
     * One page-table page per 2 MiB of RAM and of the table (which native
     * modes map later), plus the upper levels.
     */
    uint64_t pages = (guest_ram_end() + table_bytes()) / PAGE_2M + 16;

    pool_init(&host_pt_pool, pages_alloc(pages, PAGE_4K), pages * PAGE_4K);
    pt_init(&host_pt, paging_levels(), &host_pt_pool, 0);
    pt_map_range(&host_pt, 0, 0, guest_ram_end(), PAGE_4K, PTE_RW);
    write_cr3(host_pt.root);
}

static void run_native(const struct mode *m, uint64_t *loop_result)
{
    uint64_t pa = pages_alloc(table_bytes() / PAGE_4K, PAGE_2M);

    printf("experiment: table VA 0x%llx -> PA 0x%lx\n", TABLE_VA, pa);
    pt_map_range(&host_pt, TABLE_VA, pa, table_bytes(), PAGE_4K, PTE_RW);
    if (m->guest_segment &&
        dseg_set(DSEG_G, TABLE_VA, TABLE_VA + table_bytes(),
                 pa - TABLE_VA) != NO_EXCEPTION) {
        panic("cannot arm the guest segment");
    }
    workload_prepare(&work);

    /* Start the window with an empty TLB, as VMRUN does in a VM. */
    write_cr3(host_pt.root);
    checkpoint("start");
    *loop_result = workload_loop(&work);
    checkpoint("end");

    if (m->guest_segment) {
        dseg_disarm(DSEG_G);
    }
}

/* VM functions (they run on the VM's copy of @work). */
static uint64_t vm_prepare(uint64_t arg)
{
    workload_prepare(&work);
    return arg;
}

static uint64_t vm_loop(uint64_t arg __attribute__((unused)))
{
    return workload_loop(&work);
}

static uint64_t vm_checksum(uint64_t loop_result)
{
    return workload_checksum(&work, loop_result);
}

static uint64_t vm_call(struct svm_vm *vm, svm_guest_fn fn, uint64_t arg)
{
    uint64_t ret;

    if (!svm_call(vm, fn, arg, &ret)) {
        panic("the VM did not complete its call");
    }
    return ret;
}

static uint64_t run_virtualised(const struct mode *m, uint64_t *loop_result)
{
    const uint64_t ram = GUEST_TABLE_GPA + table_bytes();
    static struct svm_vm vm;
    struct page_pool gpt_pool;
    struct pt npt, gpt;
    uint64_t host, sum;

    if (!svm_available() || !svm_npt_available()) {
        panic("mode %s needs SVM with nested paging", m->name);
    }
    host = pages_alloc(ram / PAGE_4K, PAGE_2M);
    printf("experiment: guest RAM gPA [0, 0x%lx) -> hPA 0x%lx; table VA "
           "0x%llx -> gPA 0x%llx\n", ram, host, TABLE_VA, GUEST_TABLE_GPA);

    npt_init(&npt, paging_levels());
    npt_map_range(&npt, 0, host, ram, PAGE_4K);

    /* Guest tables in guest RAM: walker address = hPA - host. */
    pool_init(&gpt_pool, host + GUEST_PT_GPA, GUEST_TABLE_GPA - GUEST_PT_GPA);
    pt_init(&gpt, paging_levels(), &gpt_pool, -host);
    pt_map_range(&gpt, 0, 0, SVM_IMAGE_REGION, PAGE_4K, PTE_RW);
    pt_map_range(&gpt, TABLE_VA, GUEST_TABLE_GPA, table_bytes(), PAGE_4K,
                 PTE_RW);

    svm_enable();
    svm_vm_init(&vm);
    svm_set_cr3(&vm, &gpt);
    svm_set_npt(&vm, &npt);
    if (m->guest_segment) {
        vmcb_set_dseg(&vm, TABLE_VA, TABLE_VA + table_bytes(),
                      GUEST_TABLE_GPA - TABLE_VA);
    }
    if (m->vmm_segment &&
        dseg_set(DSEG_V, 0, ram, host) != NO_EXCEPTION) {
        panic("cannot arm the VMM segment");
    }

    /*
     * The VM's image region: a copy of the host's (all but the first page,
     * which holds nothing the VM uses), taken last so that it holds @work
     * as set now.
     */
    for (uint64_t a = PAGE_4K; a < SVM_IMAGE_REGION; a += 8) {
        write64(host + a, read64(a));   /* word by word: faster in TCG */
    }

    vm_call(&vm, vm_prepare, 0);
    checkpoint("start");
    *loop_result = vm_call(&vm, vm_loop, 0);
    checkpoint("end");
    sum = vm_call(&vm, vm_checksum, *loop_result);

    if (m->vmm_segment) {
        dseg_disarm(DSEG_V);
    }
    return sum;
}

static const struct mode *find_mode(const char *name)
{
    for (unsigned i = 0; i < ARRAY_SIZE(modes); i++) {
        if (!strncmp(name, modes[i].name, strlen(modes[i].name) + 1)) {
            return &modes[i];
        }
    }
    panic("unknown mode '%s'", name);
}

int guest_main(const char *cmdline)
{
    char mode_name[24] = "base-native", kind[16] = "gups";
    uint64_t size_mb = cmdline_get_u64(cmdline, "size_mb", 64);
    const struct mode *m;
    uint64_t loop_result, sum;

    cmdline_get(cmdline, "mode", mode_name, sizeof(mode_name));
    cmdline_get(cmdline, "kind", kind, sizeof(kind));
    m = find_mode(mode_name);
    if (!workload_kind_parse(kind, &work.kind)) {
        panic("unknown workload kind '%s'", kind);
    }
    if (!size_mb || size_mb > MAX_SIZE_MB) {
        panic("size_mb=%lu: must be 1 to %d", size_mb, MAX_SIZE_MB);
    }
    work.table = (uint64_t *)(uintptr_t)TABLE_VA;
    work.words = (size_mb << 20) / sizeof(uint64_t);
    work.seed = cmdline_get_u64(cmdline, "seed", 1);
    work.iters = cmdline_get_u64(cmdline, "iters",
                                 workload_default_iters(work.kind,
                                                        work.words));
    if (!work.seed) {
        panic("seed must be non-zero");
    }
    if ((m->guest_segment || m->vmm_segment) && !dseg_available()) {
        panic("mode %s needs direct segments (-cpu ...,+dseg)", m->name);
    }
    printf("experiment: mode %s kind %s size_mb %lu iters %lu seed %lu, "
           "%d-level paging, 4 KiB pages\n", m->name, kind, size_mb,
           work.iters, work.seed, paging_levels());

    enter_host_tables();
    if (m->vm) {
        sum = run_virtualised(m, &loop_result);
    } else {
        run_native(m, &loop_result);
        sum = workload_checksum(&work, loop_result);
    }
    printf("experiment: checksum 0x%lx\n", sum);
    return 0;
}
