/*
 * Two vCPUs with different guest segments at the same time (MTTCG).
 *
 * Each CPU c (0 = the BSP, 1 = the AP) owns a region of REGION_PAGES pages
 * at SEG_VA(c).  The shared page tables map both regions with 4 KiB pages
 * to decoy pages DEC_PA(c); CPU c's guest segment maps its own region to
 * target pages TGT_PA(c).  So CPU c reaches TGT_PA(c) through its region
 * and, by the page walk, DEC_PA(1 - c) through the other CPU's region: the
 * same linear address means a different page on the two CPUs.  Every word
 * starts out as MEM_TAG | its own physical address; CPU c stores only to word
 * WORD(c) of a page, so the stores of the two CPUs never overlap.
 *
 * Counter windows (test_dseg_smp.py checks query-dseg of both CPUs):
 *   "both"     CPU c stores once to each of K_c pages of its region (the
 *              segment) and W_c pages of the other region (the walk),
 *              alternating the two kinds, in lock step with the other
 *              CPU: neither CPU starts step j + 1 before the other has
 *              done step j (or all of its steps).  CPU 1's walk store to
 *              page p of region 0 thus follows CPU 0's segment store to
 *              the same linear address within one step.
 *   "ap-only"  CPU 1 alone, on pages from AP_ONLY_FIRST up; CPU 0 waits.
 * Each is preceded by "begin-<name>", where the test resets the counters.
 * After each window both CPUs check where their stores landed (through the
 * physical addresses, their segment and the walk) and their registers.
 *
 * Checkpoints with two CPUs: only the BSP stops at a checkpoint (an AP
 * gets no NMI, see lib/smp.h).  The AP runs the operations the BSP posts
 * in struct sync and parks in between in a spin-wait on sync.seq, which
 * does no TLB fill: its code, stack and the sync page are already in its
 * TLB.  The BSP takes a checkpoint only while the AP is parked, so the
 * counters of both CPUs are still when the test reads them.
 *
 * Command line: k0=, k1=, w0=, w1= (window "both"), k2=, w2= (window
 * "ap-only"): page counts, defaults 24, 40, 6, 10, 12, 4.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "smp.h"
#include "tap.h"

#define NR_CPUS         2
#define STAMP           0x5347000000000000ull
#define REGION_PAGES    128
#define REGION_SIZE     (REGION_PAGES * PAGE_4K)
#define AP_ONLY_FIRST   64      /* first page of window "ap-only" */

/* Linear regions and their physical pages (below 256 MiB of RAM). */
#define SEG_VA(c)       (0x4000000000ull + (c) * 0x800000000ull)
#define TGT_PA(c)       (0x08000000ull + (c) * 0x100000ull)
#define DEC_PA(c)       (0x08200000ull + (c) * 0x100000ull)
#define WORD(c)         (0x80 + 8 * (c))

enum window {
    WIN_BOTH,
    WIN_AP_ONLY,
    NR_WINDOWS,
};

static const char *const window_name[NR_WINDOWS] = { "both", "ap-only" };

/* Pages each CPU touches in a window. */
struct plan {
    unsigned first;                     /* first page of the regions */
    unsigned seg[NR_CPUS];              /* through the own segment */
    unsigned walk[NR_CPUS];             /* through the walk */
};

/* What a CPU found after a window. */
struct report {
    bool regs;              /* RDMSR shows its own guest segment */
    bool seg_phys;          /* segment stores are at TGT_PA(own) only */
    bool walk_phys;         /* walk stores are at DEC_PA(other) only */
    bool seg_virt;          /* ... and read back through the segment */
    bool walk_virt;         /* ... and through the walk */
};

enum ap_op {
    OP_SETUP,
    OP_WINDOW,
    OP_VERIFY,
};

/*
 * Shared by the two CPUs, in a page of its own.  Its fields are volatile:
 * each CPU polls what the other writes.
 */
static struct sync {
    volatile uint32_t seq;              /* BSP: number of the posted op */
    volatile uint32_t op, win;          /* BSP: the op and its window */
    volatile uint32_t ap_done;          /* AP: number of the last op done */
    volatile uint32_t progress[NR_CPUS];    /* steps done in the window */
    volatile uint32_t ap_apic_id;
    volatile bool ap_regs_were_zero, ap_armed;  /* volatile: see above */
    struct report report[NR_CPUS];
} sync __attribute__((aligned(4096)));

static struct plan plans[NR_WINDOWS];
static struct pt hpt;

static uint64_t stamp(unsigned c, unsigned w, bool walk, unsigned page)
{
    return STAMP | (uint64_t)c << 40 | (uint64_t)w << 32 |
           (uint64_t)walk << 16 | page;
}

static void setup_memory(void)
{
    host_pt_init(&hpt);
    for (unsigned c = 0; c < NR_CPUS; c++) {
        mem_fill_tags(TGT_PA(c), REGION_PAGES);
        mem_fill_tags(DEC_PA(c), REGION_PAGES);
        pt_map_range(&hpt, SEG_VA(c), DEC_PA(c), REGION_SIZE, PAGE_4K,
                     PTE_RW);
    }
    write_cr3(hpt.root);
}

/* Arms CPU @c's guest segment over its region; returns success. */
static bool arm_own_segment(unsigned c)
{
    return dseg_set(DSEG_G, SEG_VA(c), SEG_VA(c) + REGION_SIZE,
                    TGT_PA(c) - SEG_VA(c)) == NO_EXCEPTION;
}

static unsigned plan_steps(const struct plan *pl, unsigned c)
{
    return pl->seg[c] + pl->walk[c];
}

/*
 * Step @j of CPU @c in window @w: one store.  Segment and walk stores
 * alternate while both kinds are left: seg 0, walk 0, seg 1, walk 1, ...
 */
static void step(unsigned c, unsigned w, unsigned j)
{
    const struct plan *pl = &plans[w];
    unsigned pairs = pl->seg[c] < pl->walk[c] ? pl->seg[c] : pl->walk[c];
    bool walk;
    unsigned i;

    if (j < 2 * pairs) {
        walk = j & 1;
        i = j / 2;
    } else {
        walk = pl->walk[c] > pl->seg[c];
        i = j - pairs;
    }
    write64(SEG_VA(walk ? 1 - c : c) + (pl->first + i) * PAGE_4K + WORD(c),
            stamp(c, w, walk, pl->first + i));
}

/* CPU @c's part of window @w, in lock step with the other CPU. */
static void run_window(unsigned c, unsigned w)
{
    unsigned other = 1 - c;
    unsigned steps = plan_steps(&plans[w], c);
    unsigned other_steps = plan_steps(&plans[w], other);

    for (unsigned j = 0; j < steps; j++) {
        unsigned want = j + 1 < other_steps ? j + 1 : other_steps;

        step(c, w, j);
        sync.progress[c] = j + 1;
        while (sync.progress[other] < want) {
            cpu_relax();
        }
    }
}

/*
 * The @n stores of CPU @c in window @w through its segment (@walk false)
 * or through the walk: pages from plans[w].first of the region of @owner,
 * word WORD(@c).  Checks that they reached @pa and left the same word of
 * @other_pa untouched or, with @virt, reads them back through the region.
 */
static bool check_stores(unsigned c, unsigned w, bool walk, unsigned n,
                         bool virt)
{
    unsigned owner = walk ? 1 - c : c;
    uint64_t pa = walk ? DEC_PA(owner) : TGT_PA(owner);
    uint64_t other_pa = walk ? TGT_PA(owner) : DEC_PA(owner);
    bool right = true;

    for (unsigned p = plans[w].first; p < plans[w].first + n; p++) {
        uint64_t off = p * PAGE_4K + WORD(c);
        uint64_t want = stamp(c, w, walk, p);

        if (virt) {
            right &= read64(SEG_VA(owner) + off) == want;
        } else {
            right &= read64(pa + off) == want &&
                     read64(other_pa + off) == mem_tag(other_pa + off);
        }
    }
    return right;
}

/* CPU @c's checks after window @w. */
static void verify(unsigned c, unsigned w)
{
    const struct plan *pl = &plans[w];
    struct dseg_seg g = dseg_get(DSEG_G);

    sync.report[c] = (struct report) {
        .regs = g.base == SEG_VA(c) && g.limit == SEG_VA(c) + REGION_SIZE &&
                g.offset == TGT_PA(c) - SEG_VA(c),
        .seg_phys = check_stores(c, w, false, pl->seg[c], false),
        .walk_phys = check_stores(c, w, true, pl->walk[c], false),
        .seg_virt = check_stores(c, w, false, pl->seg[c], true),
        .walk_virt = check_stores(c, w, true, pl->walk[c], true),
    };
}

/* The AP's first op: the shared page tables and its own segment. */
static void ap_setup(void)
{
    struct dseg_seg g;

    write_cr3(hpt.root);
    g = dseg_get(DSEG_G);
    sync.ap_regs_were_zero = !g.base && !g.limit && !g.offset;
    sync.ap_apic_id = smp_apic_id();
    sync.ap_armed = arm_own_segment(1);
}

/* The AP: runs the posted ops, parked in between. */
static void ap_main(void *arg __attribute__((unused)))
{
    uint32_t done = 0;

    for (;;) {
        sync.ap_done = done;
        while (sync.seq == done) {
            cpu_relax();
        }
        done = sync.seq;
        switch (sync.op) {
        case OP_SETUP:
            ap_setup();
            break;
        case OP_WINDOW:
            run_window(1, sync.win);
            break;
        case OP_VERIFY:
            verify(1, sync.win);
            break;
        }
    }
}

/* Posts @op for window @w to the AP. */
static void ap_post(enum ap_op op, enum window w)
{
    sync.op = op;
    sync.win = w;
    asm volatile("" : : : "memory");
    sync.seq = sync.seq + 1;
}

/* Waits until the AP has done the last posted op and parks. */
static void ap_wait(void)
{
    while (sync.ap_done != sync.seq) {
        cpu_relax();
    }
}

static void report_window(enum window w)
{
    const char *name = window_name[w];

    for (unsigned c = 0; c < NR_CPUS; c++) {
        const struct report *r = &sync.report[c];
        const struct plan *pl = &plans[w];

        ok(r->regs, "%s: cpu %u still has its own guest segment", name, c);
        ok(r->seg_phys, "%s: cpu %u: %u segment stores at its TGT only",
           name, c, pl->seg[c]);
        ok(r->walk_phys, "%s: cpu %u: %u walk stores at the other DEC only",
           name, c, pl->walk[c]);
        ok(r->seg_virt && r->walk_virt,
           "%s: cpu %u reads them back through its segment and the walk",
           name, c);
    }
}

/* Counter window @w: both CPUs run it, then check their stores. */
static void window(enum window w)
{
    const char *name = window_name[w];

    sync.progress[0] = sync.progress[1] = 0;
    checkpoint("begin-%s", name);
    ap_post(OP_WINDOW, w);
    run_window(0, w);
    ap_wait();
    checkpoint("%s", name);

    ap_post(OP_VERIFY, w);
    verify(0, w);
    ap_wait();
    report_window(w);
}

static unsigned plan_arg(const char *cmdline, const char *key, unsigned dflt,
                         unsigned max)
{
    uint64_t v = cmdline_get_u64(cmdline, key, dflt);

    if (v > max) {
        panic("%s=%lu: at most %u", key, v, max);
    }
    return v;
}

static void parse_plans(const char *cmdline)
{
    const unsigned half = AP_ONLY_FIRST;
    const unsigned rest = REGION_PAGES - AP_ONLY_FIRST;

    plans[WIN_BOTH] = (struct plan) {
        .first = 0,
        .seg = { plan_arg(cmdline, "k0", 24, half),
                 plan_arg(cmdline, "k1", 40, half) },
        .walk = { plan_arg(cmdline, "w0", 6, half),
                  plan_arg(cmdline, "w1", 10, half) },
    };
    plans[WIN_AP_ONLY] = (struct plan) {
        .first = AP_ONLY_FIRST,
        .seg = { 0, plan_arg(cmdline, "k2", 12, rest) },
        .walk = { 0, plan_arg(cmdline, "w2", 4, rest) },
    };
}

int guest_main(const char *cmdline)
{
    parse_plans(cmdline);
    diag("%d-level paging, BSP APIC ID %u", paging_levels(), smp_apic_id());
    if (!ok(dseg_available(), "CPU has DSEG")) {
        return tap_done();
    }
    setup_memory();
    ok(arm_own_segment(0), "cpu 0 arms its guest segment");
    if (!ok(smp_start_ap(1, ap_main, NULL), "the AP with APIC ID 1 starts")) {
        return tap_done();
    }
    ap_post(OP_SETUP, 0);
    ap_wait();
    ok_eq(sync.ap_apic_id, 1, "the AP runs with APIC ID 1");
    ok(sync.ap_regs_were_zero,
       "cpu 1's guest segment is 0 while cpu 0's is armed");
    ok(sync.ap_armed, "cpu 1 arms its guest segment");

    window(WIN_BOTH);
    window(WIN_AP_ONLY);
    return tap_done();
}
