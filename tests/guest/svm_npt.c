/*
 * SVM nested paging guest: a hypervisor runs a 64-bit VM under nested page
 * tables that map its guest-physical memory to other host-physical pages,
 * and checks where the VM's writes land and what #VMEXITs its faults give.
 *
 * The VM maps (gVA -> gPA -> hPA):
 *   A: 16 4 KiB guest pages, in reverse order, onto 4 KiB nested pages;
 *   B: one 2 MiB guest page onto a 2 MiB nested page;
 *   C: one 4 KiB guest page into a 1 GiB nested page far above RAM;
 * and gVAs whose gPA, or whose guest page table, the nested tables lack.
 *
 * Command line: guest_levels=4|5 (default: the host's paging depth, which
 * is also the nested depth; the -la57 image boots with 5 levels).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define MAGIC           0x5a5a000000000000ull

#define GPT_GPA         0x30000000ull   /* guest page tables */
#define GPT_PAGES       64
#define A_GVA           0x80000000ull
#define A_GPA           0x40000000ull
#define A_PAGES         16
#define B_GVA           0xc0000000ull
#define B_GPA           0x40200000ull
#define C_GVA           0xc0400000ull
#define C_NPT_GPA       0x4000000000ull /* 1 GiB nested page -> hPA 0 */
#define NOGPA_GVA       0xd0000000ull   /* gPA not in the nested tables */
#define NOGPA_GPA       0x50000000ull
#define NOGPT_GVA       0xe0005000ull   /* its page table is not either */
#define NOGPT_TABLE     0x51000000ull
#define NOPTE_GVA       0xf0000000ull   /* not in the guest page tables */
#define STRIDE_2M       0x10000ull      /* pattern stride in region B */

static struct svm_vm vm;
static struct pt npt, gpt;
static struct page_pool gpt_pool;
static uint64_t a_hpa, b_hpa, c_hpa;

static uint64_t pattern(uint64_t gva)
{
    return MAGIC ^ gva;
}

/* VM: writes the pattern through all three mappings. */
static uint64_t vm_fill(uint64_t arg)
{
    printf("# hello from the nested guest (%lu-level paging)\n", arg);
    for (uint64_t i = 0; i < A_PAGES; i++) {
        uint64_t va = A_GVA + i * PAGE_4K;

        write64(va, pattern(va));
        write64(va + PAGE_4K - 8, pattern(va + PAGE_4K - 8));
    }
    for (uint64_t off = 0; off < PAGE_2M; off += STRIDE_2M) {
        write64(B_GVA + off, pattern(B_GVA + off));
    }
    write64(C_GVA + 8, pattern(C_GVA + 8));
    return read64(A_GVA) ^ read64(B_GVA + PAGE_2M - STRIDE_2M);
}

/* VM: loads from @arg. */
static uint64_t vm_read(uint64_t arg)
{
    return read64(arg);
}

/* VM: stores to @arg. */
static uint64_t vm_write(uint64_t arg)
{
    write64(arg, 1);
    return 0;
}

static void build_tables(int guest_levels)
{
    uint64_t gpt_hpa = pages_alloc(GPT_PAGES, PAGE_4K);

    npt_init(&npt, paging_levels());
    pool_init(&gpt_pool, gpt_hpa, GPT_PAGES * PAGE_4K);
    pt_init(&gpt, guest_levels, &gpt_pool, GPT_GPA - gpt_hpa);
    svm_map_image(&gpt, &npt, PAGE_2M);
    npt_map_range(&npt, GPT_GPA, gpt_hpa, GPT_PAGES * PAGE_4K, PAGE_4K);

    a_hpa = pages_alloc(A_PAGES, PAGE_4K);
    for (uint64_t i = 0; i < A_PAGES; i++) {
        pt_map(&gpt, A_GVA + i * PAGE_4K,
               A_GPA + (A_PAGES - 1 - i) * PAGE_4K, PAGE_4K, PTE_RW);
    }
    npt_map_range(&npt, A_GPA, a_hpa, A_PAGES * PAGE_4K, PAGE_4K);

    b_hpa = pages_alloc(PAGE_2M / PAGE_4K, PAGE_2M);
    pt_map(&gpt, B_GVA, B_GPA, PAGE_2M, PTE_RW);
    npt_map(&npt, B_GPA, b_hpa, PAGE_2M);

    c_hpa = page_alloc();
    pt_map(&gpt, C_GVA, C_NPT_GPA + c_hpa, PAGE_4K, PTE_RW);
    npt_map(&npt, C_NPT_GPA, 0, PAGE_1G);

    pt_map(&gpt, NOGPA_GVA, NOGPA_GPA, PAGE_4K, PTE_RW);
    /* A page table at a gPA the nested tables do not map. */
    pt_map(&gpt, NOGPT_GVA, NOGPA_GPA, PAGE_4K, PTE_RW);
    *pt_entry(&gpt, NOGPT_GVA, 2) = NOGPT_TABLE | PTE_P | PTE_RW | PTE_A;
}

/* The table builders' own lookup agrees with the layout. */
static void check_lookup(void)
{
    uint64_t gpa = 0, hpa = 0;

    ok(pt_translate(&gpt, A_GVA + 0x123, &gpa) &&
       gpa == A_GPA + (A_PAGES - 1) * PAGE_4K + 0x123 &&
       pt_translate(&npt, gpa, &hpa) &&
       hpa == a_hpa + (A_PAGES - 1) * PAGE_4K + 0x123 &&
       pt_translate(&npt, C_NPT_GPA + c_hpa, &hpa) && hpa == c_hpa &&
       !pt_translate(&npt, NOGPA_GPA, &hpa),
       "pt_translate() follows the guest and nested tables");
}

static void check_pattern(void)
{
    bool a_ok = true, b_ok = true;

    for (uint64_t i = 0; i < A_PAGES; i++) {
        uint64_t va = A_GVA + i * PAGE_4K;
        uint64_t hpa = a_hpa + (A_PAGES - 1 - i) * PAGE_4K;

        a_ok &= read64(hpa) == pattern(va) &&
                read64(hpa + PAGE_4K - 8) == pattern(va + PAGE_4K - 8);
    }
    ok(a_ok, "4 KiB guest pages on 4 KiB nested pages land at their hPA");
    for (uint64_t off = 0; off < PAGE_2M; off += STRIDE_2M) {
        b_ok &= read64(b_hpa + off) == pattern(B_GVA + off);
    }
    ok(b_ok, "2 MiB guest page on a 2 MiB nested page lands at its hPA");
    ok_eq(read64(c_hpa + 8), pattern(C_GVA + 8),
          "4 KiB guest page in a 1 GiB nested page lands at its hPA");
}

/* Runs @fn(@arg), which must exit with @code; checks the exit info. */
static void check_fault(svm_guest_fn fn, uint64_t arg, uint64_t code,
                        uint64_t info1_mask, uint64_t info1,
                        uint64_t info2, const char *what)
{
    uint64_t got;

    svm_prepare_call(&vm, fn, arg);
    got = svm_run_loop(&vm);
    if (!ok_eq(got, code, "%s: exit code", what)) {
        svm_report_exit(&vm);
    }
    ok_eq(vmcb_get(&vm, VMCB_EXIT_INFO1) & info1_mask, info1,
          "%s: EXITINFO1", what);
    ok_eq(vmcb_get(&vm, VMCB_EXIT_INFO2), info2, "%s: EXITINFO2", what);
}

static void check_faults(void)
{
    const uint64_t npf_mask = SVM_NPF_P | SVM_NPF_RW | SVM_NPF_GPA_FINAL |
                              SVM_NPF_GPT;

    check_fault(vm_read, NOGPA_GVA + 0x128, SVM_EXIT_NPF, npf_mask,
                SVM_NPF_GPA_FINAL, NOGPA_GPA + 0x128,
                "read of an unmapped gPA: #NPF");
    check_fault(vm_write, NOGPA_GVA + 0x230, SVM_EXIT_NPF, npf_mask,
                SVM_NPF_GPA_FINAL | SVM_NPF_RW, NOGPA_GPA + 0x230,
                "write of an unmapped gPA: #NPF");
    check_fault(vm_read, NOGPT_GVA, SVM_EXIT_NPF, npf_mask & ~SVM_NPF_RW,
                SVM_NPF_GPT, NOGPT_TABLE + ((NOGPT_GVA >> 12) & 511) * 8,
                "guest page table at an unmapped gPA: #NPF");
    check_fault(vm_write, NOPTE_GVA + 0x40, SVM_EXIT_EXCP(EXC_PF), 0xf,
                0x2, NOPTE_GVA + 0x40, "write of an unmapped gVA: #PF");
}

/* A VM without nested paging, on the host's own identity tables. */
static void check_no_npt(void)
{
    struct svm_vm plain;
    struct pt host;
    uint64_t page = page_alloc(), ret = 0;

    svm_vm_init(&plain);
    host_pt_init(&host);
    svm_set_cr3(&plain, &host);
    ok(svm_call(&plain, vm_write, page, &ret) && read64(page) == 1,
       "a VM without nested paging writes host memory directly");
}

/*
 * A failed VMRUN (QEMU then stores host state into the VMCB's save area,
 * so the VM is a scratch copy) leaves the host able to run VMs.
 */
static void check_invalid_vmrun(void)
{
    struct svm_vm bad;
    uint64_t ret;

    svm_vm_init(&bad);
    svm_set_cr3(&bad, &gpt);
    svm_set_npt(&bad, &npt);
    *(uint32_t *)vmcb_ptr(&bad, VMCB_ASID) = 0;
    svm_prepare_call(&bad, vm_read, A_GVA);
    ok_eq(svm_run(&bad), SVM_EXIT_INVALID, "VMRUN with ASID 0 fails");
    ok(svm_call(&vm, vm_read, A_GVA, &ret) && ret == pattern(A_GVA),
       "a valid VM runs after the failed VMRUN");
}

int guest_main(const char *cmdline)
{
    int levels = cmdline_get_u64(cmdline, "guest_levels", paging_levels());
    uint64_t ret = 0;

    tap_plan(22);
    diag("host and nested paging: %d levels, guest paging: %d levels",
         paging_levels(), levels);
    if (!ok(svm_available() && svm_npt_available(), "CPU has SVM and NPT")) {
        return tap_done();
    }
    svm_enable();
    build_tables(levels);
    check_lookup();
    svm_vm_init(&vm);
    svm_set_cr3(&vm, &gpt);
    svm_set_npt(&vm, &npt);

    ok(svm_call(&vm, vm_fill, levels, &ret), "VM runs to its VMMCALL");
    ok_eq(ret, pattern(A_GVA) ^ pattern(B_GVA + PAGE_2M - STRIDE_2M),
          "VM reads back its own writes");
    check_pattern();
    check_faults();
    check_no_npt();
    check_invalid_vmrun();
    return tap_done();
}
