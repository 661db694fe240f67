/*
 * VMRUN racing a rewrite of its VMCB's EVENTINJ by another vCPU (MTTCG).
 *
 * VMRUN refuses an EVENTINJ with a reserved event type (VMEXIT_INVALID)
 * and must then have switched nothing; otherwise it switches to the VM's
 * guest copy of the guest segment and injects the event.  The AP keeps
 * rewriting EVENTINJ: no event, then a valid event of reserved type 7,
 * and again.  The BSP, whose own guest segment maps linear page R to Q,
 * runs the VM ROUNDS times; the VM's guest copy maps R to S, and the VM
 * loads R and exits by VMMCALL.  Each VMRUN must either fail, and leave
 * the BSP's segment its own, or succeed, with the VM reading S through
 * its own copy and the BSP's segment its own again after #VMEXIT.  A
 * VMRUN that decided on one read of EVENTINJ whether to switch and
 * injected after another could let the VM run on the BSP's segment (it
 * reads Q).  Both outcomes must occur, so the race was run.
 *
 * Command line: rounds= (default 4096).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "smp.h"
#include "svm.h"
#include "tap.h"

#define EVENTINJ_RESERVED   (SVM_EVTINJ_V | (7u << 8))

static uint64_t q_pa, r_pa, s_pa;
static struct svm_vm vm;
static struct pt hpt, npt;
static volatile bool ap_stop, ap_running;
static volatile uint64_t ap_writes;

/* VM: where its load at R came from. */
static uint64_t vm_read_r(uint64_t arg __attribute__((unused)))
{
    return mem_origin(read64(r_pa + 8));
}

static void ap_rewrite(void *arg __attribute__((unused)))
{
    volatile uint32_t *eventinj = vmcb_ptr(&vm, VMCB_EVENTINJ);
    uint64_t n = 0;

    ap_running = true;
    while (!ap_stop) {
        *eventinj = 0;
        *eventinj = EVENTINJ_RESERVED;
        n++;
    }
    ap_writes = n;
    ap_running = false;
}

static bool seg_is(struct dseg_seg s, uint64_t base, uint64_t offset)
{
    return s.base == base && s.limit == base + PAGE_4K && s.offset == offset;
}

int guest_main(const char *cmdline)
{
    unsigned rounds = cmdline_get_u64(cmdline, "rounds", 4096);
    unsigned ran = 0, refused = 0, other = 0, on_host_seg = 0, lost = 0;

    if (!ok_svm_cpu(true)) {
        return tap_done();
    }
    q_pa = tagged_page_alloc();
    r_pa = tagged_page_alloc();
    s_pa = tagged_page_alloc();
    svm_vm_init_host(&vm, &hpt, &npt);
    vmcb_set_dseg(&vm, r_pa, r_pa + PAGE_4K, s_pa - r_pa);
    if (dseg_set(DSEG_G, r_pa, r_pa + PAGE_4K, q_pa - r_pa) !=
        NO_EXCEPTION) {
        panic("cannot program the guest segment");
    }
    if (!ok(smp_start_ap(1, ap_rewrite, NULL), "AP started")) {
        return tap_done();
    }
    while (!ap_running) {
        cpu_relax();
    }
    for (unsigned r = 0; r < rounds; r++) {
        uint64_t code;

        svm_prepare_call(&vm, vm_read_r, 0);
        code = svm_run(&vm);
        if (code == SVM_EXIT_INVALID) {
            refused++;
        } else if (code == SVM_EXIT_VMMCALL) {
            ran++;
            on_host_seg += vmcb_get(&vm, VMCB_RAX) != s_pa + 8;
        } else {
            other++;
        }
        /* The BSP's own segment, whatever VMRUN did. */
        lost += !seg_is(dseg_get(DSEG_G), r_pa, q_pa - r_pa);
        dseg_set(DSEG_G, r_pa, r_pa + PAGE_4K, q_pa - r_pa);
    }
    ap_stop = true;
    while (ap_running) {
        cpu_relax();
    }
    dseg_disarm(DSEG_G);
    diag("%u VMRUNs: %u ran, %u refused, %u other exits; %lu AP rewrites",
         rounds, ran, refused, other, ap_writes);
    ok(ran > 0 && refused > 0, "both outcomes occurred (%u ran, %u refused)",
       ran, refused);
    ok_eq(other, 0, "no other exit");
    ok_eq(on_host_seg, 0, "no VM ran on the BSP's guest segment");
    ok_eq(lost, 0, "the BSP's segment was its own after every VMRUN");
    return tap_done();
}
