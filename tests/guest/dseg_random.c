/*
 * Randomized guest: random valid and invalid segment, filter, VMCB and
 * page-table states, random accesses, and a report of everything it did
 * and saw; test_dseg_random.py compares each result and each case's
 * counters with a Python model of the spec (qemu_dseg.model).
 *
 * Memory: linear pages LIN_VA + i (i = 0..63) map with 4 KiB pages to
 * TEST_PA + lin_perm(i), natively; in a VM, to gPA TEST_PA + lin_perm(i),
 * whose nested entries map gPA page TEST_PA + j to hPA HOST_PA +
 * npt_perm(j).  The VM's other memory (below 256 MiB) is mapped one to one
 * with 2 MiB nested pages.  Both pools, with a pool's size of memory on
 * either side, are tagged (MEM_TAG | own address).
 *
 * Each case, from a splitmix64 stream seeded with seed= (cases= of them):
 *   native  a few linear pages are made not present; the guest segment is
 *           programmed (LIMIT 0, BASE, OFFSET, LIMIT) with random values
 *           over the linear window, valid or not; ACCESSES reads at random
 *           linear addresses, each after INVLPG; checkpoint.
 *   vm      a few nested entries of the pool are made not present; the
 *           VMM segment is programmed over the gPA window, the filter
 *           cleared and given random pages, the VMCB's guest copy set to
 *           random values; ACCESSES reads, each in its own VMRUN;
 *           checkpoint.
 * Report lines, "R <case> <what> ...", in order (see the test); "done"
 * follows each checkpoint.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define LIN_VA          0x4000000000ull
#define TEST_PA         0x18000000ull       /* 384 MiB */
#define HOST_PA         0x1c000000ull       /* 448 MiB */
#define LOW_MAP         0x10000000ull       /* the VM's 1:1 memory */
#define PAGES           64
#define WINDOW_LO       (-8)                /* pages around the pools */
#define WINDOW_PAGES    (PAGES + 16)
#define ACCESSES        12
#define ABSENT          4                   /* pages made not present */
#define INSERTS         3                   /* filter inserts */

static uint64_t rng;
static struct pt hpt, npt;
static struct svm_vm vm;

static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
    return rnd() % n;
}

/* The fixed permutations (test_dseg_random.py has the same). */
static unsigned lin_perm(unsigned i)
{
    return (i * 29 + 7) % PAGES;
}

static unsigned npt_perm(unsigned j)
{
    return (j * 37 + 11) % PAGES;
}

/* A page address in the window around @pool. */
static uint64_t window_page(uint64_t pool)
{
    return pool + (WINDOW_LO + (int64_t)rnd_below(WINDOW_PAGES)) * PAGE_4K;
}

/*
 * Random values for a segment over the window around @lo whose target
 * range lies in the pool at @tlo; one in two gets one bad value.
 */
static struct dseg_seg random_segment(uint64_t lo, uint64_t tlo, bool linear)
{
    uint64_t start = rnd_below(PAGES), len = 1 + rnd_below(PAGES - start);
    uint64_t tstart = rnd_below(PAGES - len + 1);
    struct dseg_seg s = {
        .base = lo + start * PAGE_4K,
        .limit = lo + (start + len) * PAGE_4K,
    };

    s.offset = tlo + tstart * PAGE_4K - s.base;
    switch (rnd_below(16)) {
    case 0:
        s.base |= 0x800;                            /* rule 1 */
        break;
    case 1:
        s.offset += 1ull << 52;                     /* rule 3c */
        break;
    case 2:
        s.limit = s.base - PAGE_4K;                 /* rule 3a */
        break;
    case 3:
        s.limit = 0;                                /* disarmed */
        break;
    case 4:
        s.limit = s.base;                           /* armed, empty */
        break;
    case 5:                                         /* rule 2 */
        s.base = linear ? 0x0000800000000000ull : 1ull << 52;
        break;
    case 6:
        s.offset -= PAGE_4K * (tstart + 1);         /* below the pool */
        break;
    case 7:
        s.limit |= 0x10;                            /* rule 1 */
        break;
    default:
        break;
    }
    return s;
}

/*
 * Disarms @which and leaves BASE at @safe_base: a BASE write that then
 * faults keeps a base inside the window, so no segment ever covers the
 * guest's own code, data or tables.
 */
static void reset(unsigned c, enum dseg_which which, uint64_t safe_base)
{
    const char w = which == DSEG_G ? 'G' : 'V';

    wrmsr(dseg_msr(which, 1), 0);
    wrmsr(dseg_msr(which, 0), safe_base);
    printf("R %u wrmsr %c L 0x0 0\nR %u wrmsr %c B 0x%lx 0\n", c, w, c, w,
           safe_base);
}

/* Programs @which as the spec's sequence does, reporting every WRMSR. */
static void program(unsigned c, enum dseg_which which, struct dseg_seg s)
{
    static const unsigned order[] = { 1, 0, 2, 1 };
    const uint64_t val[] = { s.base, s.limit, s.offset };

    for (unsigned k = 0; k < ARRAY_SIZE(order); k++) {
        unsigned reg = order[k];
        uint64_t v = k == 0 ? 0 : val[reg];
        int vector = wrmsr_safe(dseg_msr(which, reg), v);

        printf("R %u wrmsr %c %c 0x%lx %d\n", c, which == DSEG_G ? 'G' : 'V',
               "BLO"[reg], v, vector == NO_EXCEPTION ? 0 : vector);
    }
}

/* Makes ABSENT random pages of @pt's 4 KiB map at @base not present. */
static void make_absent(unsigned c, const char *what, struct pt *pt,
                        uint64_t base, uint64_t **saved_at, uint64_t *saved)
{
    for (unsigned k = 0; k < ABSENT; k++) {
        unsigned i = rnd_below(PAGES);

        saved_at[k] = pt_entry(pt, base + i * PAGE_4K, 1);
        saved[k] = *saved_at[k];
        *saved_at[k] &= ~PTE_P;
        printf("R %u absent %s %u\n", c, what, i);
    }
}

static void restore(uint64_t **saved_at, const uint64_t *saved)
{
    for (int k = ABSENT - 1; k >= 0; k--) {
        *saved_at[k] = saved[k];
    }
}

static uint64_t random_la(void)
{
    return window_page(LIN_VA) + 8 * rnd_below(PAGE_4K / 8);
}

static void report_read(unsigned c, const char *mode, uint64_t la,
                        int vector, uint64_t val)
{
    if (vector == NO_EXCEPTION) {
        printf("R %u read %s 0x%lx val 0x%lx\n", c, mode, la, val);
    } else {
        printf("R %u read %s 0x%lx exc %d\n", c, mode, la, vector);
    }
}

static void case_native(unsigned c)
{
    uint64_t *saved_at[ABSENT], saved[ABSENT];

    make_absent(c, "lin", &hpt, LIN_VA, saved_at, saved);
    program(c, DSEG_G, random_segment(LIN_VA, TEST_PA, true));
    for (unsigned k = 0; k < ACCESSES; k++) {
        uint64_t la = random_la(), val = 0;
        int vector;

        invlpg(la);
        vector = read64_safe(la, &val);
        report_read(c, "native", la, vector, val);
    }
    checkpoint("case-%u-native", c);
    printf("R %u done native\n", c);
    reset(c, DSEG_G, LIN_VA);
    restore(saved_at, saved);
}

/* VM: one read, reported through the shared block. */
static struct {
    int vector;
    uint64_t val;
} vm_out;

static uint64_t vm_read(uint64_t la)
{
    vm_out.val = 0;
    vm_out.vector = read64_safe(la, &vm_out.val);
    return 0;
}

static void case_vm(unsigned c)
{
    uint64_t *saved_at[ABSENT], saved[ABSENT];
    struct dseg_seg g;

    make_absent(c, "npt", &npt, TEST_PA, saved_at, saved);
    program(c, DSEG_V, random_segment(TEST_PA, HOST_PA, false));
    wrmsr(MSR_DSEG_FILTER_CLEAR, 0);
    printf("R %u clear\n", c);
    for (unsigned k = 0; k < INSERTS; k++) {
        uint64_t gpa = window_page(TEST_PA);

        wrmsr(MSR_DSEG_FILTER_INSERT, gpa);
        printf("R %u insert 0x%lx\n", c, gpa);
    }
    g = random_segment(LIN_VA, TEST_PA, true);
    vmcb_set_dseg(&vm, g.base, g.limit, g.offset);
    printf("R %u vmcb 0x%lx 0x%lx 0x%lx\n", c, g.base, g.limit, g.offset);
    for (unsigned k = 0; k < ACCESSES; k++) {
        uint64_t la = random_la(), code;

        svm_prepare_call(&vm, vm_read, la);
        code = svm_run(&vm);
        if (code == SVM_EXIT_VMMCALL) {
            report_read(c, "vm", la, vm_out.vector, vm_out.val);
        } else if (code == SVM_EXIT_NPF) {
            printf("R %u read vm 0x%lx npf 0x%lx\n", c, la,
                   vmcb_get(&vm, VMCB_EXIT_INFO2));
        } else if (code == SVM_EXIT_INVALID) {
            printf("R %u read vm 0x%lx invalid\n", c, la);
        } else {
            printf("R %u read vm 0x%lx exit 0x%lx\n", c, la, code);
        }
    }
    checkpoint("case-%u-vm", c);
    printf("R %u done vm\n", c);
    reset(c, DSEG_V, TEST_PA);
    restore(saved_at, saved);
}

static void setup(void)
{
    /* The pools and a pool's size on either side: where targets land. */
    mem_fill_tags(TEST_PA - PAGES * PAGE_4K, 3 * PAGES);
    mem_fill_tags(HOST_PA - PAGES * PAGE_4K, 3 * PAGES);
    host_pt_init(&hpt);
    for (unsigned i = 0; i < PAGES; i++) {
        pt_map(&hpt, LIN_VA + i * PAGE_4K, TEST_PA + lin_perm(i) * PAGE_4K,
               PAGE_4K, PTE_RW);
    }
    write_cr3(hpt.root);

    npt_init(&npt, 4);
    npt_map_range(&npt, 0, 0, LOW_MAP, PAGE_2M);
    for (unsigned j = 0; j < PAGES; j++) {
        npt_map(&npt, TEST_PA + j * PAGE_4K, HOST_PA + npt_perm(j) * PAGE_4K,
                PAGE_4K);
    }
    svm_enable();
    svm_vm_init(&vm);
    svm_set_cr3(&vm, &hpt);
    svm_set_npt(&vm, &npt);
    /* #PF is the VM's own (read64_safe()). */
    svm_set_exception_intercepts(&vm, ~(1u << EXC_PF));
}

int guest_main(const char *cmdline)
{
    uint64_t seed = cmdline_get_u64(cmdline, "seed", 1);
    unsigned cases = cmdline_get_u64(cmdline, "cases", 8);

    if (!ok(svm_available() && svm_npt_available() && dseg_available() &&
            paging_levels() == 4 && guest_ram_end() >= HOST_PA +
            2 * PAGES * PAGE_4K, "CPU has SVM, NPT, DSEG, 4-level paging; "
            "RAM above 0x%llx", HOST_PA + 2 * PAGES * PAGE_4K)) {
        return tap_done();
    }
    rng = seed;
    diag("seed %lu, %u cases", seed, cases);
    printf("R cpu la57 %d maxphyaddr %u\n", cpu_has_la57(),
           cpu_phys_addr_bits());
    setup();
    reset(0, DSEG_G, LIN_VA);
    reset(0, DSEG_V, TEST_PA);
    checkpoint("begin");        /* the first window starts here */
    for (unsigned c = 0; c < cases; c++) {
        case_native(c);
        case_vm(c);
    }
    printf("R end\n");
    return tap_done();
}
