/*
 * Direct-segment state across a migration (see test_dseg_migrate.py).
 *
 * mode=full (the default): programs the guest segment, the VMM segment and
 * the escape filter (the values below, which the test also knows), then
 * stores a pattern word into each page of the guest segment in counter
 * window "write" (after "begin-write") and stops at "migrate".  There the
 * test saves the VM to a file and loads it into a new QEMU, where the
 * guest resumes: it loads the pattern back through the segment (counter
 * window "readback", which starts with the load, as counters are not
 * migrated), then checks its DSEG registers and filter, the pattern at the
 * physical target and the decoys, and that new stores through the segment
 * land at BASE + OFFSET.  Each window touches each segment page once.
 *
 * The page tables map the segment's linear range (and the page at LIMIT)
 * to decoy pages, so an access that missed the segment would show.
 *
 * mode=idle: touches no DSEG MSR, stops at "idle" (the test migrates it
 * into a QEMU without the feature) and then checks that the DSEG MSRs
 * behave as CPUID says.
 *
 * mode=vm: touches no DSEG MSR either, but stops at "vm-idle" inside a VM
 * with nested paging, where every DSEG register is zero and the host's
 * copy of the guest segment is saved; after the checkpoint the VM exits
 * and the guest checks that it resumed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define PATTERN         0x5041540000000000ull
#define NEW_DATA        0x4e45570000000000ull
#define SEG_PAGES       16

/* Guest segment: upper-half linear range onto TGT_PA. */
#define SEG_BASE        0xffff888000000000ull
#define SEG_LIMIT       (SEG_BASE + SEG_PAGES * PAGE_4K)
#define TGT_PA          0x0a000000ull
#define SEG_OFFSET      (TGT_PA - SEG_BASE)
/* Decoys: what the page tables map [SEG_BASE, SEG_LIMIT + 4K) to. */
#define DEC_PA          0x0a100000ull

/* VMM segment (used in guest mode only; here it must just survive). */
#define V_BASE          0x40000000ull
#define V_LIMIT         0x80000000ull
#define V_OFFSET        0xc0000000ull

/* Filter geometry of the test's -cpu (the defaults). */
#define FILTER_CFG      0x408ull

static const uint64_t filter_pages[] = {
    0x40001000, 0x40005000, 0x12345000,
};

static struct dseg_filter_model filter;

/* Word of page @i that holds the pattern, and the one for new data. */
static uint64_t pattern_off(unsigned i)
{
    return (i * 0x108) & 0xff8;
}

static uint64_t new_off(unsigned i)
{
    return 0x800 + i * 8;
}

static void setup_memory(void)
{
    struct pt hpt;

    mem_fill_tags(TGT_PA, SEG_PAGES);
    mem_fill_tags(DEC_PA, SEG_PAGES + 1);
    host_pt_init(&hpt);
    pt_map_range(&hpt, SEG_BASE, DEC_PA, (SEG_PAGES + 1) * PAGE_4K,
                 PAGE_4K, PTE_RW);
    write_cr3(hpt.root);
}

/* Whether the filter MSRs hold exactly the model's words. */
static bool filter_matches(void)
{
    unsigned words = (1u << filter.geom.bits_log2) / 64;
    bool same = true;

    for (unsigned w = 0; w < words; w++) {
        same &= rdmsr(MSR_DSEG_FILTER_BITS(w)) == filter.words[w];
    }
    return same;
}

static bool seg_is(struct dseg_seg s, uint64_t base, uint64_t limit,
                   uint64_t offset)
{
    return s.base == base && s.limit == limit && s.offset == offset;
}

/* Everything the test saves: both segments and the filter. */
static void program_dseg(void)
{
    struct dseg_filter_geom geom = dseg_filter_geometry();

    ok(dseg_set(DSEG_G, SEG_BASE, SEG_LIMIT, SEG_OFFSET) == NO_EXCEPTION,
       "guest segment armed");
    ok(dseg_set(DSEG_V, V_BASE, V_LIMIT, V_OFFSET) == NO_EXCEPTION,
       "VMM segment armed");
    dseg_model_init(&filter, &geom);
    for (unsigned i = 0; i < ARRAY_SIZE(filter_pages); i++) {
        wrmsr(MSR_DSEG_FILTER_INSERT, filter_pages[i]);
        dseg_model_insert(&filter, filter_pages[i]);
    }
    ok(filter_matches(), "%zu pages in the escape filter",
       ARRAY_SIZE(filter_pages));
}

/* One store (or load, checked) per segment page: a counter window. */
static void write_pattern(void)
{
    for (unsigned i = 0; i < SEG_PAGES; i++) {
        write64(SEG_BASE + i * PAGE_4K + pattern_off(i), PATTERN | i);
    }
}

static bool read_pattern(void)
{
    bool right = true;

    for (unsigned i = 0; i < SEG_PAGES; i++) {
        right &= read64(SEG_BASE + i * PAGE_4K + pattern_off(i)) ==
                 (PATTERN | i);
    }
    return right;
}

/* The pattern is at TGT_PA, and the decoys hold their tags. */
static bool pattern_in_memory(void)
{
    bool right = true;

    for (unsigned i = 0; i < SEG_PAGES; i++) {
        uint64_t off = i * PAGE_4K + pattern_off(i);

        right &= read64(TGT_PA + off) == (PATTERN | i) &&
                 read64(DEC_PA + off) == mem_tag(DEC_PA + off);
    }
    return right;
}

/* New stores through the segment land at BASE + OFFSET (from RDMSR). */
static void check_new_stores(void)
{
    struct dseg_seg g = dseg_get(DSEG_G);
    uint64_t target = g.base + g.offset;
    bool right = true;

    for (unsigned i = 0; i < SEG_PAGES; i++) {
        write64(SEG_BASE + i * PAGE_4K + new_off(i), NEW_DATA | i);
    }
    for (unsigned i = 0; i < SEG_PAGES; i++) {
        uint64_t off = i * PAGE_4K + new_off(i);

        right &= read64(target + off) == (NEW_DATA | i) &&
                 read64(DEC_PA + off) == mem_tag(DEC_PA + off);
    }
    ok_eq(target, TGT_PA, "BASE_G + OFFSET_G is the target after migration");
    ok(right, "new stores through the segment land at BASE + OFFSET only");
    ok_eq(read64(SEG_LIMIT + 8), mem_tag(DEC_PA + SEG_PAGES * PAGE_4K + 8),
          "the page at LIMIT still takes the page walk");
}

static int run_full(void)
{
    bool readback;

    if (!ok(dseg_available(), "CPU has DSEG")) {
        return tap_done();
    }
    setup_memory();
    program_dseg();
    checkpoint("begin-write");
    write_pattern();
    checkpoint("migrate");
    /* From here on, the guest runs in the destination QEMU. */
    readback = read_pattern();
    checkpoint("readback");

    ok(readback, "the pattern reads back through the segment");
    ok(seg_is(dseg_get(DSEG_G), SEG_BASE, SEG_LIMIT, SEG_OFFSET),
       "guest segment registers survive the migration");
    ok(seg_is(dseg_get(DSEG_V), V_BASE, V_LIMIT, V_OFFSET),
       "VMM segment registers survive the migration");
    ok_eq(rdmsr(MSR_DSEG_FILTER_CFG), FILTER_CFG, "filter geometry");
    ok(filter_matches(), "escape filter bits survive the migration");
    ok(pattern_in_memory(), "the pattern is at the target, not the decoys");
    check_new_stores();
    return tap_done();
}

static int run_idle(void)
{
    uint64_t v;
    int vector;

    diag("before: dseg %s", dseg_available() ? "on" : "off");
    checkpoint("idle");
    diag("after: dseg %s", dseg_available() ? "on" : "off");
    vector = rdmsr_safe(MSR_DSEG_LIMIT_G, &v);
    if (dseg_available()) {
        ok(vector == NO_EXCEPTION && v == 0, "LIMIT_G reads 0");
    } else {
        ok_eq(vector, EXC_GP, "without the feature, RDMSR LIMIT_G is #GP");
    }
    return tap_done();
}

/* VM: a checkpoint in guest mode. */
static uint64_t vm_idle(uint64_t arg)
{
    checkpoint("vm-idle");
    return arg;
}

static int run_vm(void)
{
    struct svm_vm vm;
    struct pt hpt, npt;
    struct dseg_seg copy;
    uint64_t ret = 0;
    bool ran;

    svm_vm_init_host(&vm, &hpt, &npt);
    /* NMIs are the VM's own: they end its checkpoint. */
    svm_set_exception_intercepts(&vm, ~(1u << EXC_NMI));
    svm_set_intercept(&vm, SVM_INTERCEPT_HLT, false);
    ran = svm_call(&vm, vm_idle, 0x1d1e, &ret);
    ok(ran && ret == 0x1d1e, "the VM resumed after its checkpoint");
    copy = vmcb_get_dseg(&vm);
    ok(!copy.base && !copy.limit && !copy.offset,
       "its guest copy in the VMCB is still zero");
    return tap_done();
}

int guest_main(const char *cmdline)
{
    char mode[16] = "full";

    cmdline_get(cmdline, "mode", mode, sizeof(mode));
    if (!strncmp(mode, "idle", sizeof(mode))) {
        return run_idle();
    }
    if (!strncmp(mode, "vm", sizeof(mode))) {
        return run_vm();
    }
    if (strncmp(mode, "full", sizeof(mode))) {
        panic("mode=%s: must be full, idle or vm", mode);
    }
    return run_full();
}
