/*
 * Nested direct-segment guest: the guest segment, the VMM segment and the
 * escape filter under SVM nested paging.
 *
 * A hypervisor runs a 64-bit VM (the image's own functions) and programs
 * the VM's guest segment through the VMCB and the VMM segment and filter
 * through its MSRs.  Host pages are filled with words that hold their own
 * host-physical address (| MEM_TAG), so a load in the VM tells which host word
 * it reached.
 *
 * Guest-physical layout (all mapped by the nested tables with 4 KiB pages
 * unless noted):
 *   [0, 16 MiB)        the image, one-to-one, 2 MiB nested pages
 *   GPT_OUT            guest page tables outside the VMM segment
 *   [VB, VL)           the VMM segment's range: guest page tables (GPT_IN),
 *                      data pages D, a page without nested entry (HOLE)
 *   E, F               data pages and decoys outside the VMM segment
 *   G2M                a 2 MiB guest page on 4 KiB nested pages
 *   E2M                2 MiB nested page; E1G: 1 GiB nested page (hPA 0)
 * The guest page tables map the guest-segment test ranges to the decoys F,
 * so a load that ignored the segment would show it.
 *
 * Counter windows (test_dseg_nested.py checks them): "walk-2d",
 * "walk-2d-g2m", "walk-2d-n2m", "walk-2d-n1g", "guest-direct",
 * "guest-direct-n2m", "vmm-direct", "vmm-direct-pt-out", "dual-direct" and
 * "escape", each touching N pages and preceded by "begin-<name>".
 *
 * Command line: pages=N (default 16, 8 to 64); guest_levels=4|5 (default:
 * the host's depth, which is also the nested depth).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define MARK            0x6d61726b00000000ull
#define MAX_PAGES       64
#define WORD            0x30                /* word touched in each page */

/* Guest-physical layout. */
#define GPT_OUT_GPA     0x03000000ull
#define GPT_PAGES       128
#define VB              0x40000000ull       /* VMM segment [VB, VL) */
#define VSIZE           (8ull << 20)
#define VL              (VB + VSIZE)
#define GPT_IN_GPA      (VB + 0x80000)
#define D_GPA           (VB + (1ull << 20))
#define RO_GPA          (VB + (2ull << 20))
#define HOLE_GPA        (VB + (7ull << 20))
#define E_GPA           0x50000000ull
#define G2M_GPA         0x50400000ull
#define E2M_GPA         0x50600000ull
#define F_GPA           0x51000000ull
#define REGION_PAGES    (MAX_PAGES + 8)
#define NPF_GPA         0x60000000ull
#define E1G_GPA         0x8000000000ull

/* Guest-virtual layout. */
#define WALK_VA         0x100000000ull
#define G2M_VA          0x140000000ull
#define N2M_VA          0x180000000ull
#define N1G_VA          0x1c0000000ull
#define VMM_VA          0x200000000ull
#define GD_VA           0x300000000ull
#define DD_VA           0x340000000ull
#define EDGE_VA         0x380000000ull      /* V edges, then G edges */
#define MISC_VA         0x3c0000000ull      /* single pages */
#define NPF_VA          (MISC_VA + 0x0000)
#define HOLE_VA         (MISC_VA + 0x1000)
#define RO_VA           (MISC_VA + 0x2000)
#define AD_VA           (MISC_VA + 0x3000)
#define STALE_VA        (MISC_VA + 0x4000)

/* Pages of E used by single-page checks (the windows use [0, N)). */
#define E_AD            (MAX_PAGES + 0)
#define E_STALE         (MAX_PAGES + 1)
#define E_STALE2        (MAX_PAGES + 2)
#define E_STALE3        (MAX_PAGES + 3)
#define E_GEDGE         (MAX_PAGES + 4)     /* 2 pages */

static struct svm_vm vm;
static struct pt npt, gpt_out, gpt_in;
static struct page_pool gpt_out_pool, gpt_in_pool;
static uint64_t npages;
static int guest_levels;
static uint64_t h_gpt, h_v, h_e, h_f, h_g2m, h_e2m, h_spare;

/* Work of vm_touch(), shared by host and VM (the image is one-to-one). */
static struct {
    uint64_t va;
    uint64_t count;
    bool write;
    uint64_t val[MAX_PAGES];
} touch_req;

/* Host-physical address that VMM-segment gPA @gpa translates to. */
static uint64_t v_hpa(uint64_t gpa)
{
    return h_v + (gpa - VB);
}

static uint64_t e_hpa(uint64_t i)
{
    return h_e + i * PAGE_4K;
}

/* VM: loads (or stores MARK | i to) one word of each requested page. */
static uint64_t vm_touch(uint64_t arg)
{
    for (uint64_t i = 0; i < touch_req.count; i++) {
        uint64_t va = touch_req.va + i * PAGE_4K + WORD;

        if (touch_req.write) {
            write64(va, MARK | i);
        } else {
            touch_req.val[i] = read64(va);
        }
    }
    return arg;
}

/* Runs vm_touch() over @count pages from @va; false if the VM failed. */
static bool touch(uint64_t va, uint64_t count, bool write)
{
    uint64_t ret;

    touch_req.va = va;
    touch_req.count = count;
    touch_req.write = write;
    return svm_call(&vm, vm_touch, 0, &ret);
}

/* Whether touch_req.val[i] came from host page @hpa + i * @stride. */
static bool loaded_from(uint64_t hpa, uint64_t stride)
{
    for (uint64_t i = 0; i < touch_req.count; i++) {
        if (mem_origin(touch_req.val[i]) != hpa + i * stride + WORD) {
            diag("page %lu: loaded 0x%lx, want host word 0x%lx", i,
                 touch_req.val[i], hpa + i * stride + WORD);
            return false;
        }
    }
    return true;
}

/* Maps @count 4 KiB guest pages from @va to @gpa in both guest tables. */
static void gpt_map(uint64_t va, uint64_t gpa, uint64_t count)
{
    pt_map_range(&gpt_out, va, gpa, count * PAGE_4K, PAGE_4K, PTE_RW);
    pt_map_range(&gpt_in, va, gpa, count * PAGE_4K, PAGE_4K, PTE_RW);
}

static void build_nested_tables(void)
{
    h_gpt = pages_alloc(GPT_PAGES, PAGE_4K);
    h_v = pages_alloc(VSIZE / PAGE_4K, PAGE_4K);
    h_e = pages_alloc(REGION_PAGES, PAGE_4K);
    h_f = pages_alloc(REGION_PAGES, PAGE_4K);
    h_g2m = pages_alloc(PAGE_2M / PAGE_4K, PAGE_4K);
    h_e2m = pages_alloc(PAGE_2M / PAGE_4K, PAGE_2M);
    h_spare = pages_alloc(4, PAGE_4K);
    mem_fill_tags(h_v, VSIZE / PAGE_4K);
    mem_fill_tags(h_e, REGION_PAGES);
    mem_fill_tags(h_f, REGION_PAGES);
    mem_fill_tags(h_g2m, PAGE_2M / PAGE_4K);
    mem_fill_tags(h_e2m, PAGE_2M / PAGE_4K);
    mem_fill_tags(h_spare, 4);

    npt_init(&npt, paging_levels());
    npt_map_range(&npt, 0, 0, SVM_IMAGE_REGION, PAGE_2M);
    npt_map_range(&npt, GPT_OUT_GPA, h_gpt, GPT_PAGES * PAGE_4K, PAGE_4K);
    /* The VMM segment's range, except HOLE, as the spec requires. */
    npt_map_range(&npt, VB, h_v, HOLE_GPA - VB, PAGE_4K);
    npt_map_range(&npt, HOLE_GPA + PAGE_4K, v_hpa(HOLE_GPA + PAGE_4K),
                  VL - HOLE_GPA - PAGE_4K, PAGE_4K);
    /* Just outside it: decoys. */
    npt_map(&npt, VB - PAGE_4K, h_spare, PAGE_4K);
    npt_map(&npt, VL, h_spare + PAGE_4K, PAGE_4K);
    npt_map_range(&npt, E_GPA, h_e, REGION_PAGES * PAGE_4K, PAGE_4K);
    npt_map_range(&npt, F_GPA, h_f, REGION_PAGES * PAGE_4K, PAGE_4K);
    npt_map_range(&npt, G2M_GPA, h_g2m, PAGE_2M, PAGE_4K);
    npt_map(&npt, E2M_GPA, h_e2m, PAGE_2M);
    npt_map(&npt, E1G_GPA, 0, PAGE_1G);

    pool_init(&gpt_out_pool, h_gpt, GPT_PAGES * PAGE_4K);
    pool_init(&gpt_in_pool, v_hpa(GPT_IN_GPA), GPT_PAGES * PAGE_4K);
}

static void build_guest_tables(void)
{
    pt_init(&gpt_out, guest_levels, &gpt_out_pool, GPT_OUT_GPA - h_gpt);
    pt_init(&gpt_in, guest_levels, &gpt_in_pool, VB - h_v);
    svm_map_image(&gpt_out, NULL, 0);
    svm_map_image(&gpt_in, NULL, 0);
    gpt_map(WALK_VA, E_GPA, MAX_PAGES);
    pt_map(&gpt_out, G2M_VA, G2M_GPA, PAGE_2M, PTE_RW);
    pt_map(&gpt_in, G2M_VA, G2M_GPA, PAGE_2M, PTE_RW);
    gpt_map(N2M_VA, E2M_GPA, MAX_PAGES);
    gpt_map(N1G_VA, E1G_GPA + h_e, MAX_PAGES);
    gpt_map(VMM_VA, D_GPA, MAX_PAGES);
    gpt_map(GD_VA, F_GPA, MAX_PAGES);
    gpt_map(DD_VA, F_GPA, MAX_PAGES);
    gpt_map(EDGE_VA, VB - PAGE_4K, 2);
    gpt_map(EDGE_VA + 2 * PAGE_4K, VL - PAGE_4K, 2);
    gpt_map(EDGE_VA + 4 * PAGE_4K, F_GPA, 4);
    gpt_map(HOLE_VA, HOLE_GPA, 1);
    gpt_map(RO_VA, RO_GPA, 1);
    gpt_map(AD_VA, E_GPA + E_AD * PAGE_4K, 1);
    gpt_map(STALE_VA, E_GPA + E_STALE * PAGE_4K, 1);
}

/*
 * VM configuration: guest page tables, the VM's guest segment [@g_base,
 * @g_limit) onto gPA @g_target (@g_limit 0: none) and the VMM segment
 * (armed over [VB, VL) or not).
 */
static void configure(const struct pt *gpt, uint64_t g_base,
                      uint64_t g_limit, uint64_t g_target, bool vmm)
{
    svm_set_cr3(&vm, gpt);
    vmcb_set_dseg(&vm, g_base, g_limit, g_target - g_base);
    if (vmm) {
        if (dseg_set(DSEG_V, VB, VL, h_v - VB) != NO_EXCEPTION) {
            panic("cannot arm the VMM segment");
        }
    } else {
        dseg_disarm(DSEG_V);
    }
}

/* The image in the VM's guest segment, so its fills are guest-direct. */
static void configure_image_direct(const struct pt *gpt, bool vmm)
{
    configure(gpt, 0, SVM_IMAGE_REGION, 0, vmm);
}

/* Counter window @name: N loads from @va must come from @hpa onwards. */
static void window(const char *name, uint64_t va, uint64_t hpa)
{
    bool ran;

    checkpoint("begin-%s", name);
    ran = touch(va, npages, false);
    checkpoint("%s", name);
    ok(ran && loaded_from(hpa, PAGE_4K), "window %s: %lu pages reach "
       "their host pages", name, npages);
}

static void walk_windows(void)
{
    configure_image_direct(&gpt_out, false);
    window("walk-2d", WALK_VA, h_e);
    window("walk-2d-g2m", G2M_VA, h_g2m);
    window("walk-2d-n2m", N2M_VA, h_e2m);
    window("walk-2d-n1g", N1G_VA, h_e);
}

static void direct_windows(void)
{
    /* The VMM segment is armed but does not cover E or E2M. */
    configure(&gpt_out, GD_VA, GD_VA + npages * PAGE_4K, E_GPA, true);
    window("guest-direct", GD_VA, h_e);
    configure(&gpt_out, GD_VA, GD_VA + npages * PAGE_4K, E2M_GPA, true);
    window("guest-direct-n2m", GD_VA, h_e2m);
    configure(&gpt_in, 0, 0, 0, true);
    window("vmm-direct", VMM_VA, v_hpa(D_GPA));
    configure_image_direct(&gpt_out, true);
    window("vmm-direct-pt-out", VMM_VA, v_hpa(D_GPA));
    configure(&gpt_out, DD_VA, DD_VA + npages * PAGE_4K, D_GPA, true);
    window("dual-direct", DD_VA, v_hpa(D_GPA));
}

/*
 * Escape window: D pages 1 and 5 are inserted in the filter and remapped
 * by their nested entries to spare pages; the VM stores to all N pages.
 */
static void escape_window(void)
{
    struct dseg_filter_geom geom = dseg_filter_geometry();
    struct dseg_filter_model model;
    static const uint64_t escaped[] = { 1, 5 };
    uint64_t *npte[2], saved[2], reported = 0;
    bool right = true, ran;

    dseg_model_init(&model, &geom);
    for (unsigned k = 0; k < 2; k++) {
        uint64_t gpa = D_GPA + escaped[k] * PAGE_4K;

        npte[k] = pt_lookup(&npt, gpa, NULL);
        saved[k] = *npte[k];
        *npte[k] = (h_spare + (2 + k) * PAGE_4K) | (saved[k] & 0xfff);
        wrmsr(MSR_DSEG_FILTER_INSERT, gpa);
        dseg_model_insert(&model, gpa);
    }
    for (uint64_t i = 0; i < npages; i++) {
        reported += dseg_model_reports(&model, D_GPA + i * PAGE_4K);
    }
    diag("escape window: D gPA 0x%llx, %lu pages, %lu reported", D_GPA,
         npages, reported);
    configure_image_direct(&gpt_out, true);
    checkpoint("begin-escape");
    ran = touch(VMM_VA, npages, true);
    checkpoint("escape");

    for (uint64_t i = 0; i < npages; i++) {
        uint64_t seg = v_hpa(D_GPA + i * PAGE_4K) + WORD;

        if (i == escaped[0] || i == escaped[1]) {
            uint64_t spare = h_spare + (i == escaped[0] ? 2 : 3) * PAGE_4K;

            right &= read64(spare + WORD) == (MARK | i) &&
                     mem_origin(read64(seg)) == seg;
        } else {
            right &= read64(seg) == (MARK | i);
        }
    }
    ok(ran && right, "escaped pages' stores land in the nested entries' "
       "pages, the others' in the segment's");
    for (unsigned k = 0; k < 2; k++) {
        *npte[k] = saved[k];
    }
    wrmsr(MSR_DSEG_FILTER_CLEAR, 0);
    mem_fill_tags(v_hpa(D_GPA), npages);
}

/* Loads through @va (@count pages) must come from the @hpa pages. */
static void check_loads(uint64_t va, const uint64_t *hpa, uint64_t count,
                        const char *what)
{
    bool right = touch(va, count, false);

    for (uint64_t i = 0; right && i < count; i++) {
        right = mem_origin(touch_req.val[i]) == hpa[i] + WORD;
    }
    ok(right, "%s", what);
}

static void check_edges(void)
{
    const uint64_t v_edges[] = {
        h_spare, v_hpa(VB), v_hpa(VL - PAGE_4K), h_spare + PAGE_4K,
    };
    const uint64_t g_base = EDGE_VA + 5 * PAGE_4K;
    const uint64_t g_edges[] = {
        h_f, e_hpa(E_GEDGE), e_hpa(E_GEDGE + 1), h_f + 3 * PAGE_4K,
    };

    configure(&gpt_out, 0, 0, 0, true);
    check_loads(EDGE_VA, v_edges, 4, "VMM segment: VB - 4K nested walk, "
                "VB and VL - 4K segment, VL nested walk");
    configure(&gpt_out, g_base, g_base + 2 * PAGE_4K,
              E_GPA + E_GEDGE * PAGE_4K, true);
    check_loads(EDGE_VA + 4 * PAGE_4K, g_edges, 4, "guest segment in the "
                "VM: BASE - 4K walk, BASE and LIMIT - 4K segment, LIMIT walk");
}

/* Runs vm_touch() on one page; returns the exit code. */
static uint64_t run_touch_one(uint64_t va, bool write)
{
    touch_req.va = va;
    touch_req.count = 1;
    touch_req.write = write;
    svm_prepare_call(&vm, vm_touch, 0);
    return svm_run_loop(&vm);
}

static void check_npf(uint64_t va, uint64_t gpa, const char *what)
{
    uint64_t code = run_touch_one(va, false);

    ok(code == SVM_EXIT_NPF &&
       (vmcb_get(&vm, VMCB_EXIT_INFO1) &
        (SVM_NPF_GPA_FINAL | SVM_NPF_GPT | SVM_NPF_P)) == SVM_NPF_GPA_FINAL &&
       vmcb_get(&vm, VMCB_EXIT_INFO2) == gpa + WORD,
       "%s: #NPF on the final gPA 0x%lx", what, gpa + WORD);
    if (code != SVM_EXIT_NPF) {
        svm_report_exit(&vm);
    }
}

static void check_faults(void)
{
    uint64_t hole = v_hpa(HOLE_GPA);

    /* Not in the guest page tables, and the gPA not in the nested ones. */
    configure(&gpt_out, NPF_VA, NPF_VA + PAGE_4K, NPF_GPA, true);
    check_npf(NPF_VA, NPF_GPA, "guest-segment hit outside the VMM segment");

    configure(&gpt_out, 0, 0, 0, true);
    check_loads(HOLE_VA, &hole, 1, "VMM segment page without nested entry: "
                "no #NPF");
    wrmsr(MSR_DSEG_FILTER_INSERT, HOLE_GPA);
    check_npf(HOLE_VA, HOLE_GPA, "the same page escaped");
    wrmsr(MSR_DSEG_FILTER_CLEAR, 0);
}

/* Nested permissions and A/D bits do not apply inside the VMM segment. */
static void check_nested_permissions(void)
{
    uint64_t *ro = pt_lookup(&npt, RO_GPA, NULL);
    uint64_t *ad = pt_lookup(&npt, E_GPA + E_AD * PAGE_4K, NULL);
    uint64_t ro_saved = *ro;
    bool ran;

    *ro &= ~(PTE_RW | PTE_A | PTE_D);
    *ad &= ~(PTE_A | PTE_D);
    configure(&gpt_out, 0, 0, 0, true);
    ran = touch(RO_VA, 1, true);
    ok(ran && read64(v_hpa(RO_GPA) + WORD) == MARK,
       "store to a page whose nested entry is read-only, in the segment");
    ok_eq(*ro & (PTE_A | PTE_D), 0, "no nested A/D bit set in the segment");
    ran = touch(AD_VA, 1, false);
    ok(ran && (*ad & PTE_A), "outside the segment the nested walk sets A");
    *ro = ro_saved;
    mem_fill_tags(v_hpa(RO_GPA), 1);
}

/* Work of vm_stale(): targets and the loads after each WRMSR sequence. */
static struct {
    uint64_t offset[2];
    uint64_t val[4];
    int vector;
} stale_req;

/* VM: reprograms its own guest segment over STALE_VA between loads. */
static uint64_t vm_stale(uint64_t arg)
{
    const uint64_t va = STALE_VA + WORD;

    stale_req.val[0] = read64(va);
    for (unsigned k = 0; k < 2; k++) {
        stale_req.vector = dseg_set(DSEG_G, STALE_VA, STALE_VA + PAGE_4K,
                                    stale_req.offset[k]);
        stale_req.val[k + 1] = read64(va);
    }
    wrmsr(MSR_DSEG_LIMIT_G, 0);
    stale_req.val[3] = read64(va);
    return arg;
}

static void check_stale_tlb(void)
{
    uint64_t ret;
    bool ran;

    configure(&gpt_out, 0, 0, 0, true);
    stale_req.offset[0] = E_GPA + E_STALE2 * PAGE_4K - STALE_VA;
    stale_req.offset[1] = E_GPA + E_STALE3 * PAGE_4K - STALE_VA;
    ran = svm_call(&vm, vm_stale, 0, &ret);
    ok(ran && stale_req.vector == NO_EXCEPTION &&
       mem_origin(stale_req.val[0]) == e_hpa(E_STALE) + WORD &&
       mem_origin(stale_req.val[1]) == e_hpa(E_STALE2) + WORD &&
       mem_origin(stale_req.val[2]) == e_hpa(E_STALE3) + WORD &&
       mem_origin(stale_req.val[3]) == e_hpa(E_STALE) + WORD,
       "VM's WRMSRs to its guest segment take effect on the next load");
    ok(vmcb_get(&vm, VMCB_DSEG_BASE_G) == STALE_VA &&
       vmcb_get(&vm, VMCB_DSEG_LIMIT_G) == 0 &&
       vmcb_get(&vm, VMCB_DSEG_OFFSET_G) == stale_req.offset[1],
       "#VMEXIT stores the VM's guest segment in the VMCB");
}

/* A new VMM segment between two runs is used by the second. */
static void check_vmm_change(void)
{
    const uint64_t before = v_hpa(D_GPA), after = e_hpa(E_STALE3);
    bool right;

    configure(&gpt_out, 0, 0, 0, true);
    right = touch(VMM_VA, 1, false) &&
            mem_origin(touch_req.val[0]) == before + WORD;
    if (dseg_set(DSEG_V, D_GPA, D_GPA + PAGE_4K, after - D_GPA) !=
        NO_EXCEPTION) {
        panic("cannot move the VMM segment");
    }
    right &= touch(VMM_VA, 1, false) &&
             mem_origin(touch_req.val[0]) == after + WORD;
    ok(right, "the VM sees a new VMM segment OFFSET on its next run");
}

int guest_main(const char *cmdline)
{
    npages = cmdline_get_u64(cmdline, "pages", 16);
    guest_levels = cmdline_get_u64(cmdline, "guest_levels", paging_levels());
    if (npages < 8 || npages > MAX_PAGES) {
        panic("pages=%lu: must be 8 to %d", npages, MAX_PAGES);
    }
    diag("guest paging %d levels, nested paging %d levels, %lu pages per "
         "window", guest_levels, paging_levels(), npages);
    if (!ok(dseg_available() && svm_available() && svm_npt_available(),
            "CPU has DSEG, SVM and NPT")) {
        return tap_done();
    }
    svm_enable();
    build_nested_tables();
    build_guest_tables();
    svm_vm_init(&vm);
    svm_set_npt(&vm, &npt);

    walk_windows();
    direct_windows();
    escape_window();
    check_edges();
    check_faults();
    check_nested_permissions();
    check_stale_tlb();
    check_vmm_change();
    dseg_disarm(DSEG_V);
    return tap_done();
}
