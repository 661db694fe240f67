/*
 * The modelled TLB hierarchy in host mode (tests/functional/
 * test_tlb_model.py states the predictions and checks them).
 *
 * The guest runs on its own tables: [0, 4 GiB) identity-mapped by global
 * 2 MiB pages with CR4.PGE on, so that its code and stack are never
 * missed after the first touch (the Skylake preset's L1 instruction TLB
 * holds no 1 GiB page), and three regions of 4 KiB pages, each in
 * a page table of its own: A (non-global), B (global), C (non-global, a
 * few pages more than the L1 data TLB holds).  Each window is one
 * assembly block: the opening mark, a CR3 write (the same root), an
 * optional INVLPG, PASSES passes reading one word of every page of a
 * region, and the closing mark; it touches no other data.
 *
 * Windows (marks 2k, 2k + 1), in order: A, A, B, B, B after INVLPG of its
 * page 5, C.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "tap.h"

#define PASSES          3
#define A_VA            0x8000000000ull /* 512 GiB: a PML4 entry of its own */
#define B_VA            0x8040000000ull
#define C_VA            0x8080000000ull
#define A_PAGES         32
#define B_PAGES         32
#define C_PAGES         68
#define INVLPG_PAGE     5

static struct pt gpt;

/* One window over @pages pages at @va; INVLPG of @flush first unless 0. */
static void window(uint32_t mark, uint64_t va, uint64_t pages,
                   uint64_t flush)
{
    dseg_page_window(mark, va, pages, PASSES, true, flush);
}

int guest_main(const char *cmdline)
{
    uint64_t pa;

    (void)cmdline;
    pt_init(&gpt, paging_levels(), pool_default(), 0);
    pt_map_range(&gpt, 0, 0, 4ull << 30, PAGE_2M, PTE_RW | PTE_G);
    pa = pages_alloc(A_PAGES + B_PAGES + C_PAGES, PAGE_4K);
    pt_map_range(&gpt, A_VA, pa, A_PAGES * PAGE_4K, PAGE_4K, PTE_RW);
    pa += A_PAGES * PAGE_4K;
    pt_map_range(&gpt, B_VA, pa, B_PAGES * PAGE_4K, PAGE_4K,
                 PTE_RW | PTE_G);
    pa += B_PAGES * PAGE_4K;
    pt_map_range(&gpt, C_VA, pa, C_PAGES * PAGE_4K, PAGE_4K, PTE_RW);
    write_cr4(read_cr4() | CR4_PGE);
    write_cr3(gpt.root);

    window(0, A_VA, A_PAGES, 0);
    window(2, A_VA, A_PAGES, 0);
    window(4, B_VA, B_PAGES, 0);
    window(6, B_VA, B_PAGES, 0);
    window(8, B_VA, B_PAGES, B_VA + INVLPG_PAGE * PAGE_4K);
    window(10, C_VA, C_PAGES, 0);
    ok(true, "six windows run");
    return tap_done();
}
