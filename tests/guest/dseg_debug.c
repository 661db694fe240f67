/*
 * The debugger's view: test_dseg_debug.py reads memory with gdb and the
 * monitor at checkpoints and compares it with what the CPU read.
 *
 * Tagged pages P, Q, R, S and U.  Natively the guest segment maps linear
 * page P to Q ("native").  In a VM ("guest-mode"), whose guest tables map
 * the low 4 GiB one-to-one and linear T (4 GiB) to gPA T, and whose nested
 * tables map the low 4 GiB one-to-one and gPA T to U: the VMM segment maps
 * gPA P to hPA Q, the VM's guest copy maps linear R to gPA S.  Then the
 * filter escapes P ("escaped"), so P is the nested walk's again.  At each
 * checkpoint the guest has just read every page through the CPU and says
 * which page each load came from; the debugger must read the same.
 *
 * Two more, where the fill decides what the debugger must not: natively,
 * a guest segment at N = 2^47, valid because CPUID has LA57 but not
 * canonical with 4-level paging, so that a load there raises #GP and the
 * debugger finds nothing mapped ("noncanonical"); and in the VM, with
 * MAXPHYADDR 52, a guest copy that maps R to gPA 2^48 + S, which the
 * 4-level nested walk translates from its low 48 bits, to S ("high-gpa").
 * And natively a guest segment that maps P to Q + 1 MiB ("a20"), where the
 * test turns A20 off while the guest waits: the debugger must then find
 * P at Q, as a fill would, and at Q + 1 MiB once A20 is on again.  (The
 * guest itself never runs with A20 off: its image lies above 1 MiB.)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define T_VA            0x100000000ull  /* 4 GiB: above the 1:1 map */
#define N_VA            (1ull << 47)    /* canonical only with LA57 */
#define HIGH_GPA        (1ull << 48)
#define A20_BIT         (1ull << 20)

static uint64_t p_pa, q_pa, r_pa, s_pa, u_pa;
static struct svm_vm vm;
static struct pt hpt, npt;

/* Where the CPU's loads at P, R and T came from. */
static struct {
    uint64_t p, r, t;
} seen;

/* VM: load P, R and T, then a checkpoint in guest mode. */
static uint64_t vm_checkpoint(uint64_t arg)
{
    seen.p = mem_origin(read64(p_pa + 8));
    seen.r = mem_origin(read64(r_pa + 8));
    seen.t = mem_origin(read64(T_VA + 8));
    checkpoint("%s", (const char *)(uintptr_t)arg);
    return 0;
}

static void run_vm_checkpoint(const char *name, uint64_t p_want)
{
    uint64_t ret;
    bool ran;

    ran = svm_call(&vm, vm_checkpoint, (uint64_t)(uintptr_t)name, &ret);
    ok(ran && seen.p == p_want && seen.r == s_pa + 8 && seen.t == u_pa + 8,
       "%s: the VM read P at 0x%lx, R at 0x%lx, T at 0x%lx", name, seen.p,
       seen.r, seen.t);
}

int guest_main(const char *cmdline)
{
    (void)cmdline;
    if (!ok_svm_cpu(true)) {
        return tap_done();
    }
    p_pa = tagged_page_alloc();
    q_pa = tagged_page_alloc();
    r_pa = tagged_page_alloc();
    s_pa = tagged_page_alloc();
    u_pa = tagged_page_alloc();
    diag("P 0x%lx Q 0x%lx R 0x%lx S 0x%lx T 0x%llx U 0x%lx", p_pa, q_pa,
         r_pa, s_pa, T_VA, u_pa);

    if (dseg_set(DSEG_G, p_pa, p_pa + PAGE_4K, q_pa - p_pa) !=
        NO_EXCEPTION) {
        panic("cannot program the guest segment");
    }
    seen.p = mem_origin(read64(p_pa + 8));
    ok_eq(seen.p, q_pa + 8, "host mode: P in the guest segment, at Q");
    checkpoint("native");
    if (ok(cpu_has_la57() && !(read_cr4() & CR4_LA57) &&
           dseg_set(DSEG_G, N_VA, N_VA + PAGE_4K, q_pa - N_VA) ==
           NO_EXCEPTION,
           "4-level paging, CPUID LA57: a guest segment at 2^47 is valid")) {
        checkpoint("noncanonical");
    }
    if (q_pa & A20_BIT) {
        panic("Q (0x%lx) has bit 20 set", q_pa);
    }
    if (dseg_set(DSEG_G, p_pa, p_pa + PAGE_4K, (q_pa | A20_BIT) - p_pa) !=
        NO_EXCEPTION) {
        panic("cannot program the guest segment");
    }
    checkpoint("a20");
    dseg_disarm(DSEG_G);

    svm_vm_init_host(&vm, &hpt, &npt);
    pt_map(&hpt, T_VA, T_VA, PAGE_4K, PTE_RW);
    npt_map(&npt, T_VA, u_pa, PAGE_4K);
    /* NMIs are the VM's own: they end its checkpoints. */
    svm_set_exception_intercepts(&vm, ~(1u << EXC_NMI));
    svm_set_intercept(&vm, SVM_INTERCEPT_HLT, false);
    if (dseg_set(DSEG_V, p_pa, p_pa + PAGE_4K, q_pa - p_pa) !=
        NO_EXCEPTION) {
        panic("cannot program the VMM segment");
    }
    vmcb_set_dseg(&vm, r_pa, r_pa + PAGE_4K, s_pa - r_pa);
    run_vm_checkpoint("guest-mode", q_pa + 8);
    wrmsr(MSR_DSEG_FILTER_INSERT, p_pa);
    run_vm_checkpoint("escaped", p_pa + 8);
    wrmsr(MSR_DSEG_FILTER_CLEAR, 0);
    vmcb_set_dseg(&vm, r_pa, r_pa + PAGE_4K, HIGH_GPA + s_pa - r_pa);
    run_vm_checkpoint("high-gpa", q_pa + 8);
    dseg_disarm(DSEG_V);
    return tap_done();
}
