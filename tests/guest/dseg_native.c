/*
 * Native direct-segment guest: the guest segment in host mode.
 *
 * Every test page is filled with words that hold their own physical
 * address (| MEM_TAG), so a load tells which physical word a linear address
 * reached.  The test range [T_VA - 4K, T_VA + (N + 1) * 4K) is mapped by
 * 4 KiB pages to the "walk" pages; the guest segment maps its pages to
 * other, "segment" pages.
 *
 * Checks: translation at BASE - 4K, BASE, LIMIT - 4K, LIMIT; an access
 * straddling LIMIT; #PF only on the walked part; pages absent from the
 * page tables; permissions, NX and A/D bits ignored inside the segment;
 * the upper canonical half; TLB invalidation by DSEG WRMSRs.  Counter
 * windows (see test_dseg_native.py): "native-walk-4k", "native-walk-2m",
 * "native-walk-1g" and "native-direct", each of N pages, each preceded by
 * a "begin-..." checkpoint.
 *
 * Command line: pages=N (default 16, at most 64).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "tap.h"

#define MAX_PAGES       64
#define T_VA            0x4000000000ull     /* 4 KiB test pages */
#define U_VA            0x5000000000ull     /* not in the page tables */
#define VA_2M           0x6000000000ull     /* one 2 MiB page */
#define VA_1G           0x8000000000ull     /* one 1 GiB page */
#define HIGH_VA         0xffff800000000000ull
#define LOW_VA_57       0x0000800000000000ull   /* canonical with LA57 */

static struct pt hpt;
static uint64_t npages;
static uint64_t walk_pa;        /* N + 2 pages: T_VA - 4K ... T_VA + N*4K */
static uint64_t seg_pa;         /* N pages: the segment's target */
static uint64_t seg2_pa;        /* N pages: another target */
static uint64_t spare_pa;       /* 1 page */
static uint64_t big_pa;         /* 2 MiB, 2 MiB aligned */

/* Walk page of test page @i (-1 ... N). */
static uint64_t walk_page(int64_t i)
{
    return walk_pa + (i + 1) * PAGE_4K;
}

static uint64_t t_va(int64_t i)
{
    return T_VA + i * PAGE_4K;
}

static void setup_memory(void)
{
    walk_pa = pages_alloc(npages + 2, PAGE_4K);
    seg_pa = pages_alloc(npages, PAGE_4K);
    seg2_pa = pages_alloc(npages, PAGE_4K);
    spare_pa = page_alloc();
    big_pa = pages_alloc(PAGE_2M / PAGE_4K, PAGE_2M);
    mem_fill_tags(walk_pa, npages + 2);
    mem_fill_tags(seg_pa, npages);
    mem_fill_tags(seg2_pa, npages);
    mem_fill_tags(spare_pa, 1);
    mem_fill_tags(big_pa, PAGE_2M / PAGE_4K);

    host_pt_init(&hpt);
    pt_map_range(&hpt, t_va(-1), walk_page(-1), (npages + 2) * PAGE_4K,
                 PAGE_4K, PTE_RW);
    pt_map(&hpt, VA_2M, big_pa, PAGE_2M, PTE_RW);
    pt_map(&hpt, VA_1G, 0, PAGE_1G, PTE_RW);
    write_cr3(hpt.root);
}

/* Arms the guest segment [@base, @limit) onto @target. */
static void arm(uint64_t base, uint64_t limit, uint64_t target)
{
    if (dseg_set(DSEG_G, base, limit, target - base) != NO_EXCEPTION) {
        panic("cannot arm the guest segment [0x%lx, 0x%lx)", base, limit);
    }
}

/* Arms the guest segment over test pages [0, N) onto @target. */
static void arm_test_segment(uint64_t target)
{
    arm(T_VA, t_va(npages), target);
}

static void check_edges(void)
{
    bool all = true;

    arm_test_segment(seg_pa);
    ok_eq(mem_origin(read64(t_va(-1) + 8)), walk_page(-1) + 8,
          "BASE - 4K: page walk");
    ok_eq(mem_origin(read64(t_va(0) + 8)), seg_pa + 8, "BASE: segment");
    ok_eq(mem_origin(read64(t_va(npages - 1) + 0xff8)),
          seg_pa + (npages - 1) * PAGE_4K + 0xff8, "LIMIT - 8: segment");
    ok_eq(mem_origin(read64(t_va(npages))), walk_page(npages),
          "LIMIT: page walk");
    for (uint64_t i = 0; i < npages; i++) {
        all &= mem_origin(read64(t_va(i) + 0x100)) ==
               seg_pa + i * PAGE_4K + 0x100;
    }
    ok(all, "all %lu segment pages: BASE + OFFSET", npages);

    write64(t_va(1) + 0x200, 0x1234);
    ok(read64(seg_pa + PAGE_4K + 0x200) == 0x1234 &&
       mem_origin(read64(walk_page(1) + 0x200)) == walk_page(1) + 0x200,
       "a store through the segment reaches the segment's target only");
    write64(seg_pa + PAGE_4K + 0x200, mem_tag(seg_pa + PAGE_4K + 0x200));
}

/* An access across LIMIT: segment below, page walk above. */
static void check_straddle(void)
{
    uint64_t last = seg_pa + (npages - 1) * PAGE_4K + 0xff8;
    uint64_t want = (read64(last) >> 32) | (read64(walk_page(npages)) << 32);
    uint64_t *pte = pt_lookup(&hpt, t_va(npages), NULL);
    uint64_t saved = *pte, v;
    int vector;

    arm_test_segment(seg_pa);
    ok_eq(read64(t_va(npages) - 4), want,
          "8-byte load across LIMIT: segment, then page walk");
    *pte = 0;
    invlpg(t_va(npages));
    vector = read64_safe(t_va(npages) - 4, &v);
    ok(vector == EXC_PF && trap_fixup_cr2 == t_va(npages),
       "across LIMIT onto an unmapped page: #PF at LIMIT (vector %d, "
       "CR2 0x%lx)", vector, trap_fixup_cr2);
    ok(read64_safe(t_va(npages) - 8, &v) == NO_EXCEPTION &&
       mem_origin(v) == last, "the last segment word does not fault");
    *pte = saved;
    invlpg(t_va(npages));
}

/* No #PF, permission or A/D bit inside the segment. */
static void check_permissions(void)
{
    static const uint8_t ret42[] = { 0xb8, 0x2a, 0, 0, 0, 0xc3 };
    uint64_t *pte = pt_lookup(&hpt, t_va(2), NULL);
    uint64_t saved = *pte, v;
    int (*fn)(void) = (int (*)(void))(uintptr_t)(t_va(2) + 0x400);

    arm(U_VA, U_VA + PAGE_4K, spare_pa);
    ok_eq(mem_origin(read64(U_VA + 0x10)), spare_pa + 0x10,
          "segment page absent from the page tables: no #PF");

    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
    asm volatile("mov %0, %%cr0" : : "r"(read_cr0() | CR0_WP));
    *pte = (saved & ~(PTE_RW | PTE_A | PTE_D)) | PTE_NX;
    invlpg(t_va(2));
    arm_test_segment(seg_pa);
    ok(write64_safe(t_va(2) + 0x300, 0x77) == NO_EXCEPTION &&
       read64(seg_pa + 2 * PAGE_4K + 0x300) == 0x77,
       "store to a read-only PTE's page inside the segment");
    memcpy((void *)(uintptr_t)(seg_pa + 2 * PAGE_4K + 0x400), ret42,
           sizeof(ret42));
    ok_eq(fn(), 42, "code runs from an NX PTE's page inside the segment");
    ok_eq(*pte & (PTE_A | PTE_D), 0, "no A/D bit set inside the segment");
    dseg_disarm(DSEG_G);
    ok(read64_safe(t_va(2), &v) == NO_EXCEPTION && (*pte & PTE_A) &&
       write64_safe(t_va(2), 0) == EXC_PF && trap_fixup_error_code == 3,
       "outside the segment the same PTE is read-only and gets A");
    *pte = saved;
    invlpg(t_va(2));
    mem_fill_tags(seg_pa + 2 * PAGE_4K, 1);
}

/* The upper canonical half, and the LA57-only lower range. */
static void check_canonical_ranges(void)
{
    uint64_t v;
    int vector;

    arm(HIGH_VA, HIGH_VA + PAGE_4K, spare_pa);
    ok_eq(mem_origin(read64(HIGH_VA + 0x20)), spare_pa + 0x20,
          "upper-half segment with a wrapping OFFSET");
    if (!cpu_has_la57()) {
        dseg_disarm(DSEG_G);
        return;
    }
    arm(LOW_VA_57, LOW_VA_57 + PAGE_4K, spare_pa);
    vector = read64_safe(LOW_VA_57 + 0x28, &v);
    if (paging_levels() == 5) {
        ok(vector == NO_EXCEPTION && mem_origin(v) == spare_pa + 0x28,
           "segment at 2^47 with 5-level paging");
    } else {
        ok_eq(vector, EXC_GP, "segment at 2^47 with 4-level paging: #GP");
    }
    dseg_disarm(DSEG_G);
}

/*
 * Remaps test page 3 to the spare page without INVLPG, writes @val to
 * @msr and checks that the next load sees the new mapping.
 */
static void check_invalidation(const char *what, uint32_t msr, uint64_t val)
{
    uint64_t *pte = pt_lookup(&hpt, t_va(3), NULL);
    uint64_t saved = *pte;
    bool stale;

    read64(t_va(3));
    *pte = spare_pa | (saved & ~PTE_ADDR_MASK);
    stale = mem_origin(read64(t_va(3))) == walk_page(3);
    wrmsr(msr, val);
    ok_eq(mem_origin(read64(t_va(3))), spare_pa,
          "WRMSR %s invalidates the TLB%s", what,
          stale ? "" : " (no stale entry seen before)");
    *pte = saved;
    invlpg(t_va(3));
}

static void check_tlb(void)
{
    dseg_disarm(DSEG_G);
    ok_eq(mem_origin(read64(t_va(4))), walk_page(4), "disarmed: page walk");
    arm_test_segment(seg_pa);
    ok_eq(mem_origin(read64(t_va(4))), seg_pa + 4 * PAGE_4K,
          "armed after a walk of the page: segment");
    arm_test_segment(seg2_pa);
    ok_eq(mem_origin(read64(t_va(4))), seg2_pa + 4 * PAGE_4K,
          "new OFFSET: new target");
    dseg_disarm(DSEG_G);
    ok_eq(mem_origin(read64(t_va(4))), walk_page(4), "disarmed again: walk");

    check_invalidation("FILTER_INSERT", MSR_DSEG_FILTER_INSERT, 0x5000);
    check_invalidation("FILTER_CLEAR", MSR_DSEG_FILTER_CLEAR, 0);
    check_invalidation("LIMIT_G = 0", MSR_DSEG_LIMIT_G, 0);
    check_invalidation("LIMIT_V = 0", MSR_DSEG_LIMIT_V, 0);
}

/* Loads one word of each of N 4 KiB pages from @va; checks the origin. */
static bool touch(uint64_t va, uint64_t pa)
{
    bool right = true;

    for (uint64_t i = 0; i < npages; i++) {
        right &= mem_origin(read64(va + i * PAGE_4K + 0x30)) ==
                 pa + i * PAGE_4K + 0x30;
    }
    return right;
}

/*
 * Counter window @name: N page-walk fills at @va while the image (code,
 * stack, data) is in a guest segment with OFFSET 0, so that its own fills
 * are native-direct.
 */
static void walk_window(const char *name, uint64_t va, uint64_t pa)
{
    bool right;

    arm(0, PAGE_POOL_START, 0);
    checkpoint("begin-%s", name);
    right = touch(va, pa);
    checkpoint("%s", name);
    dseg_disarm(DSEG_G);
    ok(right, "window %s: %lu pages translated by their PTEs", name, npages);
}

static void check_windows(void)
{
    bool right;

    walk_window("native-walk-4k", T_VA, walk_page(0));
    walk_window("native-walk-2m", VA_2M, big_pa);
    walk_window("native-walk-1g", VA_1G + big_pa, big_pa);

    arm_test_segment(seg_pa);
    checkpoint("begin-native-direct");
    right = touch(T_VA, seg_pa);
    checkpoint("native-direct");
    dseg_disarm(DSEG_G);
    ok(right, "window native-direct: %lu pages translated by the segment",
       npages);
}

int guest_main(const char *cmdline)
{
    npages = cmdline_get_u64(cmdline, "pages", 16);
    if (npages < 8 || npages > MAX_PAGES) {
        panic("pages=%lu: must be 8 to %d", npages, MAX_PAGES);
    }
    diag("%d-level paging, %lu pages per window", paging_levels(), npages);
    if (!ok(dseg_available(), "CPU has DSEG")) {
        return tap_done();
    }
    setup_memory();
    check_edges();
    check_straddle();
    check_permissions();
    check_canonical_ranges();
    check_tlb();
    check_windows();
    return tap_done();
}
