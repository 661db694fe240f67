/*
 * DSEG MSR guest: enumeration, reset values, WRMSR validity rules, access
 * rights and the escape filter's bits, all in host mode.
 *
 * Command line:
 *   dseg=0|1          whether the CPU is expected to have the feature
 *                     (default 1); with 0 every DSEG MSR must #GP
 *   filter_bits=N     expected filter geometry (default 256 bits, 4 hashes)
 *   filter_hashes=N
 *
 * With the feature on, the guest ends with checkpoint "state" after
 * programming the registers and filter that test_dseg_msr.py expects to
 * see through query-dseg (see program_known_state()).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "tap.h"

#define GP                  EXC_GP
#define OK                  NO_EXCEPTION
#define PAGE                0x1000ull

/* MSR numbers of the DSEG block that name no register: #GP. */
static const uint32_t reserved_msrs[] = {
    0xc0011f03, 0xc0011f07, 0xc0011f0b, 0xc0011f3f,
};

static unsigned phys_bits;          /* MAXPHYADDR */
static unsigned canon_bits;         /* canonical width: 57 or 48 */

static const char *seg_name(enum dseg_which which)
{
    return which == DSEG_G ? "G" : "V";
}

static const char *reg_name(unsigned reg)
{
    static const char *const names[] = { "BASE", "LIMIT", "OFFSET" };

    return names[reg];
}

/*
 * WRMSR @val to register @reg of segment @which; checks the vector and
 * that the register then holds @val (accepted) or its old value (#GP).
 */
static void check_write(enum dseg_which which, unsigned reg, uint64_t val,
                        int want, const char *why)
{
    uint32_t msr = dseg_msr(which, reg);
    uint64_t old = rdmsr(msr);
    int got = wrmsr_safe(msr, val);
    uint64_t now = rdmsr(msr);
    uint64_t expect = got == OK ? val : old;

    if (!ok(got == want && now == expect, "%s_%s <- 0x%lx: %s (%s)",
            reg_name(reg), seg_name(which), val,
            want == OK ? "accepted" : "#GP", why)) {
        diag("vector %d, register 0x%lx (was 0x%lx)", got, now, old);
    }
}

/* Programs a segment that must be accepted (setup of a check). */
static void setup(enum dseg_which which, uint64_t base, uint64_t limit,
                  uint64_t offset)
{
    if (dseg_set(which, base, limit, offset) != OK) {
        panic("setup of %s [0x%lx, 0x%lx) + 0x%lx faulted", seg_name(which),
              base, limit, offset);
    }
}

static void check_reset_state(void)
{
    struct dseg_filter_geom geom = dseg_filter_geometry();
    bool zero = true;

    for (unsigned which = DSEG_G; which <= DSEG_V; which++) {
        struct dseg_seg s = dseg_get(which);

        ok(!s.base && !s.limit && !s.offset, "%s segment resets to 0",
           seg_name(which));
    }
    for (unsigned w = 0; w < 1u << (geom.bits_log2 - 6); w++) {
        zero &= rdmsr(MSR_DSEG_FILTER_BITS(w)) == 0;
    }
    ok(zero, "filter resets to empty");
}

/* Rule 1: every register takes 4 KiB aligned values only. */
static void check_alignment(enum dseg_which which)
{
    dseg_disarm(which);
    for (unsigned reg = 0; reg < 3; reg++) {
        check_write(which, reg, 0x100800, GP, "bits 11:0 set");
        check_write(which, reg, 0x1, GP, "bit 0 set");
    }
}

/* Rule 2a: G BASE canonical, LIMIT 0 or LIMIT - 1 canonical. */
static void check_g_ranges(void)
{
    uint64_t half = 1ull << (canon_bits - 1);

    setup(DSEG_G, 0, 0, 0);
    check_write(DSEG_G, 0, half, GP, "non-canonical BASE");
    check_write(DSEG_G, 0, 1ull << 63, GP, "non-canonical BASE");
    check_write(DSEG_G, 0, -half, OK, "first upper-half BASE");
    check_write(DSEG_G, 0, half - PAGE, OK, "last lower-half page");
    check_write(DSEG_G, 2, -(half - PAGE), OK, "OFFSET to gPA 0");
    check_write(DSEG_G, 1, half + PAGE, GP, "LIMIT - 1 non-canonical");
    check_write(DSEG_G, 1, half, OK, "LIMIT at the end of the lower half");
    check_write(DSEG_G, 1, 0, OK, "LIMIT 0 disarms");
    check_write(DSEG_G, 2, 0xfffffffffffff000ull, OK,
                "OFFSET has no range rule");
}

/* Rule 2b: V BASE < 2^MAXPHYADDR, LIMIT <= 2^MAXPHYADDR. */
static void check_v_ranges(void)
{
    uint64_t top = 1ull << phys_bits;

    setup(DSEG_V, 0, 0, 0);
    check_write(DSEG_V, 0, top, GP, "BASE at 2^MAXPHYADDR");
    check_write(DSEG_V, 0, top - PAGE, OK, "BASE below 2^MAXPHYADDR");
    check_write(DSEG_V, 1, top + PAGE, GP, "LIMIT above 2^MAXPHYADDR");
    check_write(DSEG_V, 1, top, OK, "LIMIT at 2^MAXPHYADDR");
    check_write(DSEG_V, 1, 0, OK, "LIMIT 0 disarms");
    check_write(DSEG_V, 2, 0xfffffffffffff000ull, OK,
                "OFFSET has no range rule");
}

/* Rule 3a: BASE <= LIMIT when armed; BASE == LIMIT is an empty segment. */
static void check_order(enum dseg_which which)
{
    setup(which, 0x100000, 0x102000, 0);
    check_write(which, 0, 0x104000, GP, "BASE above the armed LIMIT");
    check_write(which, 1, 0xff000, GP, "LIMIT below BASE");
    check_write(which, 1, 0x100000, OK, "LIMIT == BASE (empty)");
    check_write(which, 0, 0x101000, GP, "BASE above LIMIT == old BASE");
}

/* Rule 3b: G BASE and LIMIT - 1 in the same canonical half. */
static void check_halves(void)
{
    uint64_t half = 1ull << (canon_bits - 1);

    setup(DSEG_G, half - PAGE, 0, 0);
    check_write(DSEG_G, 1, -half + PAGE, GP, "BASE and LIMIT - 1 in "
                "different halves");
}

/* Rule 3c: the target range fits below 2^MAXPHYADDR, without wrapping. */
static void check_target(enum dseg_which which)
{
    uint64_t top = 1ull << phys_bits;

    setup(which, 0, 0, top - PAGE);
    check_write(which, 1, 2 * PAGE, GP, "target crosses 2^MAXPHYADDR");
    check_write(which, 1, PAGE, OK, "target ends at 2^MAXPHYADDR");
    check_write(which, 2, top, GP, "armed: OFFSET moves target out");
    check_write(which, 0, PAGE, OK, "armed: BASE == LIMIT, no target");
    setup(which, 0, 0, -PAGE);
    check_write(which, 1, 2 * PAGE, GP, "target wraps around 2^64");
    setup(which, 0x200000, 0, -0x200000ull);
    check_write(which, 1, 0x200000 + top + PAGE, GP, "segment larger "
                "than 2^MAXPHYADDR");
}

/* The worked example and counter-example of the spec. */
static void check_spec_example(void)
{
    const uint64_t base = 0xffff888000000000ull;

    setup(DSEG_G, 0, 0, 0);
    check_write(DSEG_G, 0, base, OK, "spec example step 2");
    check_write(DSEG_G, 2, 0x0000778040000000ull, OK, "spec example step 3");
    check_write(DSEG_G, 1, 0xffff888040000000ull, OK, "spec example step 4");
    setup(DSEG_G, base, 0, 0xffff887fc0000000ull);
    check_write(DSEG_G, 1, 0xffff888040000000ull, GP,
                "spec counter-example: OFFSET the wrong way round");
}

static void check_segments(void)
{
    for (unsigned which = DSEG_G; which <= DSEG_V; which++) {
        check_alignment(which);
        check_order(which);
        check_target(which);
    }
    check_g_ranges();
    check_v_ranges();
    check_halves();
    check_spec_example();
    dseg_disarm(DSEG_G);
    dseg_disarm(DSEG_V);
}

/* Whether every BITS MSR matches the model. */
static bool filter_matches(const struct dseg_filter_model *m)
{
    bool same = true;

    for (unsigned w = 0; w < 1u << (m->geom.bits_log2 - 6); w++) {
        uint64_t got = rdmsr(MSR_DSEG_FILTER_BITS(w));

        if (got != m->words[w]) {
            diag("FILTER_BITS_%u: got 0x%lx, want 0x%lx", w, got,
                 m->words[w]);
            same = false;
        }
    }
    return same;
}

static void check_filter_access(unsigned words)
{
    uint64_t v;
    bool all_gp = true;

    for (unsigned w = words; w < DSEG_FILTER_MAX_WORDS; w++) {
        all_gp &= rdmsr_safe(MSR_DSEG_FILTER_BITS(w), &v) == GP;
    }
    ok(all_gp, "RDMSR of FILTER_BITS_w, w >= %u: #GP", words);
    ok_eq(wrmsr_safe(MSR_DSEG_FILTER_BITS(0), 0), GP,
          "WRMSR of FILTER_BITS_0 (RO): #GP");
    ok_eq(wrmsr_safe(MSR_DSEG_FILTER_CFG, rdmsr(MSR_DSEG_FILTER_CFG)), GP,
          "WRMSR of FILTER_CFG (RO): #GP");
    ok_eq(rdmsr_safe(MSR_DSEG_FILTER_INSERT, &v), GP,
          "RDMSR of FILTER_INSERT (WO): #GP");
    ok_eq(rdmsr_safe(MSR_DSEG_FILTER_CLEAR, &v), GP,
          "RDMSR of FILTER_CLEAR (WO): #GP");
    ok_eq(wrmsr_safe(MSR_DSEG_FILTER_CLEAR, 1), GP,
          "WRMSR of FILTER_CLEAR with 1: #GP");
}

/* The example of the spec: gPA 0x12345000 in the default geometry. */
static void check_filter_spec_example(void)
{
    wrmsr(MSR_DSEG_FILTER_CLEAR, 0);
    wrmsr(MSR_DSEG_FILTER_INSERT, 0x12345000);
    ok(rdmsr(MSR_DSEG_FILTER_BITS(0)) == 0x40100 &&
       rdmsr(MSR_DSEG_FILTER_BITS(1)) == 0 &&
       rdmsr(MSR_DSEG_FILTER_BITS(2)) == 0 &&
       rdmsr(MSR_DSEG_FILTER_BITS(3)) == 0x0000000400010000ull,
       "spec example: gPA 0x12345000 sets bits 8, 18, 208, 226");
}

/* INSERT @addr, which must be accepted; keeps @m in step. */
static bool insert(struct dseg_filter_model *m, uint64_t addr)
{
    if (wrmsr_safe(MSR_DSEG_FILTER_INSERT, addr) != OK) {
        diag("INSERT of 0x%lx faulted", addr);
        return false;
    }
    dseg_model_insert(m, addr);
    return true;
}

static void check_filter(unsigned bits, unsigned hashes)
{
    struct dseg_filter_geom geom = dseg_filter_geometry();
    struct dseg_filter_model model;
    uint64_t addr = 0x12345000;
    bool accepted = true;

    ok_eq(rdmsr(MSR_DSEG_FILTER_CFG), (uint64_t)(__builtin_ctz(bits) |
                                                 hashes << 8),
          "FILTER_CFG: %u bits, %u hashes", bits, hashes);
    check_filter_access(bits / 64);

    dseg_model_init(&model, &geom);
    for (unsigned i = 0; i < 12; i++) {
        accepted &= insert(&model, addr);
        addr = (addr * 0x9e3779b97f4a7c15ull + 0x1000) &
               ((1ull << phys_bits) - PAGE);
    }
    ok(accepted && filter_matches(&model),
       "12 inserts set the bits of the hash formula");
    accepted = insert(&model, 0x87654abc);
    ok(accepted && filter_matches(&model), "INSERT ignores bits 11:0");
    ok(wrmsr_safe(MSR_DSEG_FILTER_INSERT, 0xfedcba9876543000ull) == GP &&
       filter_matches(&model),
       "INSERT of an address above 2^MAXPHYADDR: #GP, filter unchanged");
    ok(wrmsr_safe(MSR_DSEG_FILTER_CLEAR, 0) == OK, "CLEAR with 0");
    dseg_model_init(&model, &geom);
    ok(filter_matches(&model), "CLEAR empties the filter");
    if (bits == 256 && hashes == 4) {
        check_filter_spec_example();
    }
    wrmsr(MSR_DSEG_FILTER_CLEAR, 0);
}

/* The DSEG block's numbers that name no register raise #GP both ways. */
static void check_reserved_msrs(void)
{
    bool all_gp = true;

    for (unsigned i = 0; i < ARRAY_SIZE(reserved_msrs); i++) {
        uint64_t v = 0;
        int rd = rdmsr_safe(reserved_msrs[i], &v);
        int wr = wrmsr_safe(reserved_msrs[i], 0x1000);

        if (rd != GP || wr != GP) {
            diag("MSR 0x%x: RDMSR vector %d, WRMSR vector %d",
                 reserved_msrs[i], rd, wr);
            all_gp = false;
        }
    }
    ok(all_gp, "unassigned MSRs in C001_1F00-C001_1F3F raise #GP");
}

/* Every DSEG MSR, both directions. */
static void check_feature_off(void)
{
    uint32_t msrs[9 + DSEG_FILTER_MAX_WORDS];
    unsigned n = 0;
    bool all_gp = true;

    for (uint32_t msr = MSR_DSEG_BASE_G; msr <= MSR_DSEG_FILTER_CLEAR;
         msr++) {
        if (msr != 0xc0011f03 && msr != 0xc0011f07) {
            msrs[n++] = msr;
        }
    }
    for (unsigned w = 0; w < DSEG_FILTER_MAX_WORDS; w++) {
        msrs[n++] = MSR_DSEG_FILTER_BITS(w);
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t v;
        int rd = rdmsr_safe(msrs[i], &v), wr = wrmsr_safe(msrs[i], 0);

        if (rd != GP || wr != GP) {
            diag("MSR 0x%x: RDMSR vector %d, WRMSR vector %d", msrs[i], rd,
                 wr);
            all_gp = false;
        }
    }
    ok(all_gp, "feature off: RDMSR and WRMSR of all %u DSEG MSRs #GP", n);
}

/* Registers and filter that test_dseg_msr.py checks through QMP. */
static void program_known_state(void)
{
    setup(DSEG_G, 0xffff888000000000ull, 0xffff888040000000ull,
          0x0000778040000000ull);
    setup(DSEG_V, 0x40000000, 0x80000000, 0xc0000000);
    wrmsr(MSR_DSEG_FILTER_INSERT, 0x40001000);
    wrmsr(MSR_DSEG_FILTER_INSERT, 0x12345000);
    checkpoint("state");
}

int guest_main(const char *cmdline)
{
    bool on = cmdline_get_u64(cmdline, "dseg", 1);
    unsigned bits = cmdline_get_u64(cmdline, "filter_bits", 256);
    unsigned hashes = cmdline_get_u64(cmdline, "filter_hashes", 4);

    phys_bits = cpu_phys_addr_bits();
    canon_bits = cpu_has_la57() ? 57 : 48;
    diag("MAXPHYADDR %u, canonical width %u", phys_bits, canon_bits);
    ok_eq(dseg_available(), on, "CPUID Fn8000_0001_ECX[31] (DSEG)");
    check_reserved_msrs();
    if (!on) {
        check_feature_off();
        return tap_done();
    }
    check_reset_state();
    check_segments();
    check_filter(bits, hashes);
    program_known_state();
    return tap_done();
}
