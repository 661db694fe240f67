/*
 * The modelled TLB hierarchy under nested paging, and on the segment
 * paths (tests/functional/test_tlb_model.py states the predictions and
 * checks them).
 *
 * The host runs on global 2 MiB pages with CR4.PGE; the VM (ASID 1) on
 * guest tables whose image mapping is global too, so that neither side's
 * code and stack miss in a window.  The guest maps region A (PAGES
 * non-global 4 KiB pages) to a data region D; the guest tables live in a
 * pool of their own.  The nested tables map the image with 2 MiB pages,
 * and the pool and D, each in a 2 MiB region of its own, with 4 KiB
 * pages, one-to-one.
 *
 * Each window is one block of assembly in the VM (its IOPM lets the
 * window port through): the opening mark, a CR3 write (the same root)
 * unless the window says not, PASSES passes reading one word of every
 * page of A, and the closing mark.  Marks 2k, 2k + 1, in order:
 *   0  VMRUN flushes the VM's ASID (TLB_CONTROL); no CR3 write
 *   2  another VMRUN that flushes nothing; no CR3 write
 *   4  A again
 *   6  the guest segment (VMCB) maps A to D; no CR3 write
 *   8  the same in another VMRUN; no CR3 write
 *  10  the VMM segment (WRMSR) covers D, the guest segment is off
 *  12  A again
 *  14  both segments
 * and then in the host, whose tables map region H to D with non-global
 * 4 KiB pages, without CR3 writes:
 *  16  its guest segment (WRMSR) maps H
 *  18  the segment off again
 *  20  the segment maps a range beside H
 *  22  the segment maps H again
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define PASSES          3
#define PAGES           32
#define A_VA            0x8000000000ull /* a guest PML4 entry of its own */
#define H_VA            0x8000000000ull /* the host's region */
#define BESIDE_VA       0x8040000000ull /* a range of the host's beside it */
#define POOL_PAGES      64

static struct svm_vm vm;
static struct pt hpt, gpt, npt;
static struct page_pool gpt_pool;
static uint64_t d_pa;

/* One window over PAGES pages at @va; a CR3 write first if @cr3. */
static void window(uint32_t mark, uint64_t va, bool cr3)
{
    dseg_page_window(mark, va, PAGES, PASSES, cr3, 0);
}

/* VM: @arg is the mark, with bit 31 set for a window without CR3 write. */
static uint64_t vm_window(uint64_t arg)
{
    window(arg & 0xffff, A_VA, !(arg >> 31));
    return arg;
}

static void vm_run_window(uint32_t mark, bool cr3, uint8_t tlb_control)
{
    uint64_t ret;

    *(volatile uint8_t *)vmcb_ptr(&vm, VMCB_TLB_CONTROL) = tlb_control;
    ok(svm_call(&vm, vm_window, mark | (cr3 ? 0 : 1u << 31), &ret),
       "window %u in the VM", mark);
}

/* Let the VM reach the window port without an exit. */
static void iopm_allow_window(void)
{
    uint8_t *iopm = (uint8_t *)(uintptr_t)vm.iopm;

    for (unsigned port = DSEG_WINDOW_PORT; port < DSEG_WINDOW_PORT + 4; port++) {
        iopm[port / 8] &= ~(1u << (port % 8));
    }
}

int guest_main(const char *cmdline)
{
    int levels = paging_levels();
    uint64_t pool_pa;

    (void)cmdline;
    if (!ok_svm_cpu(true)) {
        return tap_done();
    }
    pt_init(&hpt, levels, pool_default(), 0);
    pt_map_range(&hpt, 0, 0, 4ull << 30, PAGE_2M, PTE_RW | PTE_G);
    write_cr4(read_cr4() | CR4_PGE);
    write_cr3(hpt.root);

    pool_pa = pages_alloc(POOL_PAGES, PAGE_2M);
    d_pa = pages_alloc(PAGES, PAGE_2M);
    pt_map_range(&hpt, H_VA, d_pa, PAGES * PAGE_4K, PAGE_4K, PTE_RW);
    pool_init(&gpt_pool, pool_pa, POOL_PAGES * PAGE_4K);
    pt_init(&gpt, levels, &gpt_pool, 0);
    pt_map_range(&gpt, 0, 0, SVM_IMAGE_REGION, PAGE_2M, PTE_RW | PTE_G);
    pt_map_range(&gpt, A_VA, d_pa, PAGES * PAGE_4K, PAGE_4K, PTE_RW);
    npt_init(&npt, levels);
    npt_map_range(&npt, 0, 0, SVM_IMAGE_REGION, PAGE_2M);
    npt_map_range(&npt, pool_pa, pool_pa, POOL_PAGES * PAGE_4K, PAGE_4K);
    npt_map_range(&npt, d_pa, d_pa, PAGES * PAGE_4K, PAGE_4K);

    svm_enable();
    svm_vm_init(&vm);       /* takes the host's CR4, PGE included */
    svm_set_cr3(&vm, &gpt);
    svm_set_npt(&vm, &npt);
    iopm_allow_window();

    vm_run_window(0, false, SVM_TLB_CONTROL_FLUSH_ASID);
    vm_run_window(2, false, SVM_TLB_CONTROL_NONE);
    vm_run_window(4, true, SVM_TLB_CONTROL_NONE);
    vmcb_set_dseg(&vm, A_VA, A_VA + PAGES * PAGE_4K, d_pa - A_VA);
    vm_run_window(6, false, SVM_TLB_CONTROL_NONE);
    vm_run_window(8, false, SVM_TLB_CONTROL_NONE);
    vmcb_set_dseg(&vm, 0, 0, 0);
    ok(dseg_set(DSEG_V, d_pa, d_pa + PAGES * PAGE_4K, 0) == NO_EXCEPTION,
       "VMM segment over D");
    vm_run_window(10, true, SVM_TLB_CONTROL_NONE);
    vm_run_window(12, true, SVM_TLB_CONTROL_NONE);
    vmcb_set_dseg(&vm, A_VA, A_VA + PAGES * PAGE_4K, d_pa - A_VA);
    vm_run_window(14, true, SVM_TLB_CONTROL_NONE);
    dseg_disarm(DSEG_V);

    ok(dseg_set(DSEG_G, H_VA, H_VA + PAGES * PAGE_4K, d_pa - H_VA) ==
       NO_EXCEPTION, "host's guest segment over H");
    window(16, H_VA, false);
    dseg_disarm(DSEG_G);
    window(18, H_VA, false);
    ok(dseg_set(DSEG_G, BESIDE_VA, BESIDE_VA + PAGES * PAGE_4K,
                d_pa - BESIDE_VA) == NO_EXCEPTION,
       "host's guest segment beside H");
    window(20, H_VA, false);
    ok(dseg_set(DSEG_G, H_VA, H_VA + PAGES * PAGE_4K, d_pa - H_VA) ==
       NO_EXCEPTION, "host's guest segment over H again");
    window(22, H_VA, false);
    dseg_disarm(DSEG_G);
    return tap_done();
}
