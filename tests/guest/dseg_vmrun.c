/*
 * VMRUN/#VMEXIT guest: the two copies of the guest segment and DSEG MSR
 * access in guest mode.
 *
 * The VM runs on the host's own page tables under nested tables that map
 * the low 4 GiB one-to-one, so guest-virtual, guest-physical and
 * host-physical addresses of the test pages agree.
 *
 * Checks: VMRUN loads the guest copy from the VMCB and #VMEXIT stores it
 * back while the host copy survives; VMRUN refuses invalid guest copies
 * (also without nested paging), and switches nothing when it fails any of
 * its other consistency checks; without nested paging the guest copy is
 * not used for translation; host-only MSRs #GP in the VM unless
 * intercepted, intercepted DSEG MSRs #VMEXIT(MSR).  With the feature off
 * (dseg=0 on the command line) VMRUN and #VMEXIT leave the VMCB bytes
 * 0xC00-0xC17 alone and the VM's DSEG MSR accesses #GP.
 *
 * Checkpoints: "guest-mode" (taken inside the VM) and "host-mode", for
 * test_dseg_vmrun.py to compare query-dseg with the values below.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define X_VA            0x4000000000ull     /* one test page */

/* The host's and the VM's guest segments (test_dseg_vmrun.py uses them). */
#define HOST_BASE       0x1000000000ull
#define HOST_LIMIT      0x1000200000ull
#define GUEST_BASE      0x2000000000ull
#define GUEST_LIMIT     0x2000100000ull
#define NEW_BASE        0x3000000000ull
#define NEW_LIMIT       0x3000001000ull
#define VMM_BASE        0x80000000ull
#define VMM_LIMIT       0x80100000ull

static struct svm_vm vm;
static struct pt hpt, npt;
static uint64_t walk_pa, seg_pa, host_target, guest_target;

/* DSEG MSRs probed from the VM. */
static const uint32_t probe_msrs[] = {
    MSR_DSEG_BASE_G, MSR_DSEG_LIMIT_G, MSR_DSEG_OFFSET_G,
    MSR_DSEG_BASE_V, MSR_DSEG_LIMIT_V, MSR_DSEG_OFFSET_V,
    MSR_DSEG_FILTER_CFG, MSR_DSEG_FILTER_INSERT, MSR_DSEG_FILTER_CLEAR,
    MSR_DSEG_FILTER_BITS(0),
};
#define NR_PROBES       ARRAY_SIZE(probe_msrs)
#define NR_G_MSRS       3

/* Results of the VM functions, shared with the host. */
static struct {
    uint64_t val[NR_PROBES];
    int rd_vector[NR_PROBES];
    int wr_vector[NR_PROBES];
    struct dseg_seg seg;
    int vector;
} vm_out;

/* VM: RDMSR, then WRMSR of the value read, of every probed MSR. */
static uint64_t vm_probe_msrs(uint64_t arg)
{
    for (unsigned i = 0; i < NR_PROBES; i++) {
        vm_out.val[i] = 0;
        vm_out.rd_vector[i] = rdmsr_safe(probe_msrs[i], &vm_out.val[i]);
        vm_out.wr_vector[i] = wrmsr_safe(probe_msrs[i], vm_out.val[i]);
    }
    return arg;
}

/* VM: programs its guest segment as @arg points to. */
static uint64_t vm_set_g(uint64_t arg)
{
    const struct dseg_seg *s = (const struct dseg_seg *)(uintptr_t)arg;

    vm_out.vector = dseg_set(DSEG_G, s->base, s->limit, s->offset);
    return 0;
}

/* VM: LIMIT_G <- @arg. */
static uint64_t vm_set_limit_g(uint64_t arg)
{
    vm_out.vector = wrmsr_safe(MSR_DSEG_LIMIT_G, arg);
    return 0;
}

/* VM: a test checkpoint taken in guest mode. */
static uint64_t vm_checkpoint(uint64_t arg)
{
    checkpoint("guest-mode");
    return arg;
}

static uint64_t vm_load(uint64_t arg)
{
    return read64(arg);
}

static void setup(void)
{
    walk_pa = page_alloc();
    seg_pa = page_alloc();
    host_target = seg_pa - 0x1000;
    guest_target = seg_pa;
    mem_fill_tags(walk_pa, 1);
    mem_fill_tags(seg_pa, 1);
    svm_vm_init_host(&vm, &hpt, &npt);
    pt_map(&hpt, X_VA, walk_pa, PAGE_4K, PTE_RW);
    /* #GP and NMIs are the VM's own: rdmsr_safe() and checkpoints. */
    svm_set_exception_intercepts(&vm, ~(1u << EXC_GP | 1u << EXC_NMI));
}

static bool seg_equal(struct dseg_seg s, uint64_t base, uint64_t limit,
                      uint64_t offset)
{
    return s.base == base && s.limit == limit && s.offset == offset;
}

static void set_host_g(uint64_t base, uint64_t limit, uint64_t target)
{
    if (dseg_set(DSEG_G, base, limit, target - base) != NO_EXCEPTION) {
        panic("cannot program the host's guest segment");
    }
}

/* Guest copy in, guest copy out, host copy kept. */
static void check_copies(void)
{
    const struct dseg_seg new = {
        NEW_BASE, NEW_LIMIT, guest_target - NEW_BASE,
    };
    uint64_t ret;
    bool ran;

    set_host_g(HOST_BASE, HOST_LIMIT, host_target);
    vmcb_set_dseg(&vm, GUEST_BASE, GUEST_LIMIT, guest_target - GUEST_BASE);
    ran = svm_call(&vm, vm_probe_msrs, 0, &ret);
    ok(ran && vm_out.rd_vector[0] == NO_EXCEPTION &&
       vm_out.val[0] == GUEST_BASE && vm_out.val[1] == GUEST_LIMIT &&
       vm_out.val[2] == guest_target - GUEST_BASE,
       "RDMSR in the VM reads the guest copy from the VMCB");
    ok(seg_equal(dseg_get(DSEG_G), HOST_BASE, HOST_LIMIT,
                 host_target - HOST_BASE), "the host copy survives a run");

    ran = svm_call(&vm, vm_set_g, (uint64_t)(uintptr_t)&new, &ret);
    ok(ran && vm_out.vector == NO_EXCEPTION &&
       seg_equal(vmcb_get_dseg(&vm), new.base, new.limit, new.offset),
       "#VMEXIT stores the VM's new guest copy at VMCB 0xC00-0xC17");
    ok(seg_equal(dseg_get(DSEG_G), HOST_BASE, HOST_LIMIT,
                 host_target - HOST_BASE),
       "the host copy survives the VM's WRMSRs");

    vmcb_set_dseg(&vm, GUEST_BASE, GUEST_LIMIT, guest_target - GUEST_BASE);
    ran = svm_call(&vm, vm_set_limit_g, GUEST_BASE - PAGE_4K, &ret);
    ok(ran && vm_out.vector == EXC_GP &&
       seg_equal(vmcb_get_dseg(&vm), GUEST_BASE, GUEST_LIMIT,
                 guest_target - GUEST_BASE),
       "invalid WRMSR in the VM: #GP, the guest copy keeps its values");
}

/* The translation of X_VA switches with the copies. */
static void check_switch(void)
{
    uint64_t ret;
    bool ran;

    set_host_g(X_VA, X_VA + PAGE_4K, seg_pa);
    ok_eq(mem_origin(read64(X_VA + 8)), seg_pa + 8, "host: X in its segment");
    vmcb_set_dseg(&vm, 0, 0, 0);
    ran = svm_call(&vm, vm_load, X_VA + 8, &ret);
    ok(ran && mem_origin(ret) == walk_pa + 8,
       "VM without a segment: X by the page walk");
    ok_eq(mem_origin(read64(X_VA + 8)), seg_pa + 8,
          "host after #VMEXIT: X in its segment again");
    dseg_disarm(DSEG_G);
    vmcb_set_dseg(&vm, X_VA, X_VA + PAGE_4K, seg_pa - X_VA);
    ok_eq(mem_origin(read64(X_VA + 8)), walk_pa + 8, "host: X by the walk");
    ran = svm_call(&vm, vm_load, X_VA + 8, &ret);
    ok(ran && mem_origin(ret) == seg_pa + 8, "VM: X in its segment");
    ok_eq(mem_origin(read64(X_VA + 8)), walk_pa + 8,
          "host after #VMEXIT: X by the walk again");
}

/* VMRUN of @bad must fail and change neither copy. */
static void check_invalid(const struct dseg_seg *bad, bool npt_on,
                          const char *why)
{
    struct svm_vm scratch;
    uint64_t code;

    set_host_g(HOST_BASE, HOST_LIMIT, host_target);
    svm_vm_init(&scratch);
    svm_set_cr3(&scratch, &hpt);
    svm_set_npt(&scratch, npt_on ? &npt : NULL);
    vmcb_set_dseg(&scratch, bad->base, bad->limit, bad->offset);
    svm_prepare_call(&scratch, vm_load, X_VA);
    code = svm_run(&scratch);
    ok(code == SVM_EXIT_INVALID &&
       seg_equal(vmcb_get_dseg(&scratch), bad->base, bad->limit,
                 bad->offset) &&
       seg_equal(dseg_get(DSEG_G), HOST_BASE, HOST_LIMIT,
                 host_target - HOST_BASE),
       "VMRUN%s with %s: VMEXIT_INVALID, nothing changed",
       npt_on ? "" : " without NPT", why);
    if (code != SVM_EXIT_INVALID) {
        svm_report_exit(&scratch);
    }
}

static void check_vmrun_checks(void)
{
    const uint64_t top = 1ull << cpu_phys_addr_bits();
    const uint64_t half = 1ull << (cpu_has_la57() ? 56 : 47);
    struct {
        struct dseg_seg seg;
        const char *why;
    } bad[] = {
        { { 0x1000800, 0x2000000, 0 }, "unaligned BASE" },
        { { 0x1000000, 0x2000000, 0x10 }, "unaligned OFFSET" },
        { { 0x1000800, 0, 0 }, "unaligned BASE, LIMIT 0" },
        { { 0x2000000, 0x1000000, 0 }, "LIMIT below BASE" },
        { { 0, 0, 0 }, "non-canonical BASE, LIMIT 0" },
        { { 0, 0, 0 }, "target above 2^MAXPHYADDR" },
    };

    bad[4].seg.base = half;
    bad[5].seg = (struct dseg_seg) { 0x1000000, 0x1002000, top - 0x1001000 };
    for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
        check_invalid(&bad[i].seg, true, bad[i].why);
    }
    check_invalid(&bad[3].seg, false, bad[3].why);
    dseg_disarm(DSEG_G);
}

/*
 * VMRUN's other consistency checks come first: a VMRUN that fails one of
 * them, with a valid guest copy, switches nothing either.  Each case gives
 * its guest copy a base of its own, LATE_BASE(i), so test_dseg_vmrun.py
 * can check in the trace that none was switched to, and LATE_BASE(n) is
 * the control, a VMRUN that succeeds.
 */
#define LATE_BASE(i)    (0x5000000000ull + ((uint64_t)(i) << 32))

static void check_late_checks(void)
{
    const unsigned phys_bits = cpu_phys_addr_bits();
    static const struct {
        unsigned field;
        uint64_t set, clear;
        const char *why;
    } bad[] = {
        { VMCB_CR0, 1ull << 29, 1ull << 30, "CR0.NW without CR0.CD" },
        { VMCB_CR3, 0, 0, "CR3 above MAXPHYADDR" },
        { VMCB_CR4, 1ull << 63, 0, "a reserved CR4 bit" },
        { VMCB_DR7, 1ull << 32, 0, "a reserved DR7 bit" },
        { VMCB_DR6, 1ull << 32, 0, "a reserved DR6 bit" },
        { VMCB_EFER, 0, EFER_SVME, "EFER.SVME clear" },
        { VMCB_EVENTINJ, SVM_EVTINJ_V | SVM_EVTINJ_TYPE_EXCP | EXC_NMI, ~0ull,
          "EVENTINJ of exception vector 2" },
        { VMCB_EVENTINJ, SVM_EVTINJ_V | 1u << 8, ~0ull,
          "EVENTINJ of a reserved type" },
    };
    const unsigned n = ARRAY_SIZE(bad);
    struct svm_vm scratch;
    uint64_t code, base, ret;
    bool ran;

    set_host_g(HOST_BASE, HOST_LIMIT, host_target);
    for (unsigned i = 0; i < n; i++) {
        base = LATE_BASE(i);
        svm_vm_init(&scratch);
        svm_set_cr3(&scratch, &hpt);
        svm_set_npt(&scratch, &npt);
        vmcb_set_dseg(&scratch, base, base + PAGE_4K, seg_pa - base);
        svm_prepare_call(&scratch, vm_load, base + 8);
        vmcb_set(&scratch, bad[i].field,
                 (vmcb_get(&scratch, bad[i].field) & ~bad[i].clear) |
                 (bad[i].field == VMCB_CR3 ? 1ull << phys_bits : bad[i].set));
        code = svm_run(&scratch);
        ok(code == SVM_EXIT_INVALID &&
           seg_equal(vmcb_get_dseg(&scratch), base, base + PAGE_4K,
                     seg_pa - base) &&
           seg_equal(dseg_get(DSEG_G), HOST_BASE, HOST_LIMIT,
                     host_target - HOST_BASE),
           "VMRUN with a valid guest copy and %s: VMEXIT_INVALID, "
           "nothing changed", bad[i].why);
        if (code != SVM_EXIT_INVALID) {
            svm_report_exit(&scratch);
        }
    }
    base = LATE_BASE(n);
    vmcb_set_dseg(&vm, base, base + PAGE_4K, seg_pa - base);
    ran = svm_call(&vm, vm_load, base + 8, &ret);
    ok(ran && mem_origin(ret) == seg_pa + 8,
       "control: the same VMRUN with nothing bad runs in its segment");
    diag("late-check bases 0x%llx..0x%llx, control 0x%llx", LATE_BASE(0),
         LATE_BASE(n - 1), LATE_BASE(n));
    dseg_disarm(DSEG_G);
}

/* Without nested paging the guest copy is loaded but never translates. */
static void check_no_npt(void)
{
    uint64_t ret;
    bool ran;

    svm_set_npt(&vm, NULL);
    vmcb_set_dseg(&vm, X_VA, X_VA + PAGE_4K, seg_pa - X_VA);
    ran = svm_call(&vm, vm_load, X_VA + 8, &ret);
    ok(ran && mem_origin(ret) == walk_pa + 8,
       "VM without nested paging: its guest segment does not translate");
    ran = svm_call(&vm, vm_probe_msrs, 0, &ret);
    ok(ran && vm_out.val[0] == X_VA && vm_out.val[1] == X_VA + PAGE_4K,
       "VM without nested paging: RDMSR reads its guest copy");
    svm_set_npt(&vm, &npt);
}

/* Runs vm_probe_msrs(); counts (and skips) the MSR exits it causes. */
static bool probe_with_exits(unsigned *exits, bool *right)
{
    svm_prepare_call(&vm, vm_probe_msrs, 0);
    *exits = 0;
    *right = true;
    for (;;) {
        uint64_t code = svm_run_loop(&vm);
        unsigned i = *exits / 2;

        if (code != SVM_EXIT_MSR) {
            return code == SVM_EXIT_VMMCALL;
        }
        *right &= i < NR_PROBES && vm.gprs.rcx == probe_msrs[i] &&
                  vmcb_get(&vm, VMCB_EXIT_INFO1) == (*exits & 1);
        (*exits)++;
        svm_skip(&vm, 2);
    }
}

static void check_guest_msrs(void)
{
    uint64_t ret, bits0;
    bool ran, right = true;
    unsigned exits;

    if (dseg_set(DSEG_V, VMM_BASE, VMM_LIMIT, 0) != NO_EXCEPTION) {
        panic("cannot arm the VMM segment");
    }
    wrmsr(MSR_DSEG_FILTER_INSERT, 0x12345000);
    bits0 = rdmsr(MSR_DSEG_FILTER_BITS(0));
    vmcb_set_dseg(&vm, GUEST_BASE, GUEST_LIMIT, guest_target - GUEST_BASE);

    ran = svm_call(&vm, vm_probe_msrs, 0, &ret);
    for (unsigned i = NR_G_MSRS; i < NR_PROBES; i++) {
        right &= vm_out.rd_vector[i] == EXC_GP &&
                 vm_out.wr_vector[i] == EXC_GP;
    }
    ok(ran && right, "host-only MSRs: #GP in the VM, both directions");
    ok(seg_equal(dseg_get(DSEG_V), VMM_BASE, VMM_LIMIT, 0) &&
       rdmsr(MSR_DSEG_FILTER_BITS(0)) == bits0,
       "the VM changed neither the VMM segment nor the filter");
    right = true;
    for (unsigned i = 0; i < NR_G_MSRS; i++) {
        right &= vm_out.rd_vector[i] == NO_EXCEPTION &&
                 vm_out.wr_vector[i] == NO_EXCEPTION;
    }
    ok(ran && right, "G MSRs: RDMSR and WRMSR in the VM");

    svm_set_intercept(&vm, SVM_INTERCEPT_MSR, false);
    ran = svm_call(&vm, vm_probe_msrs, 0, &ret);
    right = true;
    for (unsigned i = NR_G_MSRS; i < NR_PROBES; i++) {
        right &= vm_out.rd_vector[i] == EXC_GP &&
                 vm_out.wr_vector[i] == EXC_GP;
    }
    ok(ran && right, "no MSR intercept at all: host-only MSRs still #GP");
    svm_set_intercept(&vm, SVM_INTERCEPT_MSR, true);

    for (unsigned i = 0; i < NR_PROBES; i++) {
        svm_intercept_msr(&vm, probe_msrs[i], true, true);
    }
    ran = probe_with_exits(&exits, &right);
    ok(ran && right && exits == 2 * NR_PROBES,
       "MSRPM bits set: every DSEG MSR access is #VMEXIT(MSR) (%u exits)",
       exits);
    for (unsigned i = 0; i < NR_PROBES; i++) {
        svm_intercept_msr(&vm, probe_msrs[i], false, false);
    }
    wrmsr(MSR_DSEG_FILTER_CLEAR, 0);
}

/* Checkpoints in guest and host mode for test_dseg_vmrun.py. */
static void checkpoints(void)
{
    uint64_t ret;
    bool ran;

    set_host_g(HOST_BASE, HOST_LIMIT, host_target);
    if (dseg_set(DSEG_V, VMM_BASE, VMM_LIMIT, 0) != NO_EXCEPTION) {
        panic("cannot arm the VMM segment");
    }
    vmcb_set_dseg(&vm, GUEST_BASE, GUEST_LIMIT, guest_target - GUEST_BASE);
    diag("host target 0x%lx, guest target 0x%lx", host_target, guest_target);
    svm_set_intercept(&vm, SVM_INTERCEPT_HLT, false);
    ran = svm_call(&vm, vm_checkpoint, 0, &ret);
    svm_set_intercept(&vm, SVM_INTERCEPT_HLT, true);
    ok(ran, "VM resumed after its checkpoint (NMI delivered in the VM)");
    checkpoint("host-mode");
    dseg_disarm(DSEG_G);
    dseg_disarm(DSEG_V);
}

/* Feature off: the VMCB's DSEG bytes are neither read nor written. */
static void check_feature_off(void)
{
    uint64_t ret;
    bool ran, right = true;

    vmcb_set_dseg(&vm, 0x123, 0x1, 0x456);
    ran = svm_call(&vm, vm_probe_msrs, 0, &ret);
    ok(ran && seg_equal(vmcb_get_dseg(&vm), 0x123, 0x1, 0x456),
       "feature off: VMRUN ignores and #VMEXIT keeps VMCB 0xC00-0xC17");
    for (unsigned i = 0; i < NR_PROBES; i++) {
        right &= vm_out.rd_vector[i] == EXC_GP &&
                 vm_out.wr_vector[i] == EXC_GP;
    }
    ok(ran && right, "feature off: every DSEG MSR #GPs in the VM");
}

int guest_main(const char *cmdline)
{
    bool on = cmdline_get_u64(cmdline, "dseg", 1);

    if (!ok(svm_available() && svm_npt_available() &&
            dseg_available() == on, "CPU has SVM, NPT%s", on ? ", DSEG" :
            " and no DSEG")) {
        return tap_done();
    }
    setup();
    if (!on) {
        check_feature_off();
        checkpoint("feature-off");
        return tap_done();
    }
    check_copies();
    check_switch();
    check_vmrun_checks();
    check_late_checks();
    check_no_npt();
    check_guest_msrs();
    checkpoints();
    return tap_done();
}
