/*
 * System management mode guest: neither segment applies in SMM, and SMM
 * entry and RSM leave DSEG state as it was.
 *
 * Two tagged pages P and Q.  Natively, the guest segment maps the page at
 * linear address P to Q; in SMM (long mode with the boot tables, which map
 * the low 4 GiB one-to-one) the same load must read P.  In a VM with
 * nested tables that map the low 4 GiB one-to-one, the VMM segment maps
 * gPA P to hPA Q and the VM's guest copy maps linear R to gPA S; an SMI
 * taken in the VM must read P and R.  After RSM every segment translates
 * again, and the DSEG MSRs read what they read before.
 *
 * Last, a VM in real-address mode (CR0.PE = 0; data segments with 4 GiB
 * limits) with the VMM segment mapping P to Q: every gPA goes through the
 * segment, so its load at P reads Q.  It then raises an SMI; SMM starts
 * in real-address mode too, with the same paging state, and its very
 * first load at P (smm_peek, before the handler touches CR0) must read P:
 * SMM entry flushes the TLB, so the VM's VMM-direct entry for P is gone.
 * After RSM the VM reads Q again.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "paging.h"
#include "smm.h"
#include "svm.h"
#include "tap.h"

static uint64_t p_pa, q_pa, r_pa, s_pa;
static struct svm_vm vm;
static struct pt hpt, npt;

/* What the SMM handler saw. */
struct smm_seen {
    uint64_t p_word, r_word;
    struct dseg_seg g;
};
static struct smm_seen smm_out;

/* SMM: loads at P and R, and the current copy of the guest segment. */
static void smm_probe(void *arg)
{
    struct smm_seen *seen = arg;

    seen->p_word = read64(p_pa + 8);
    seen->r_word = read64(r_pa + 8);
    seen->g = dseg_get(DSEG_G);
}

static bool seg_equal(struct dseg_seg a, struct dseg_seg b)
{
    return a.base == b.base && a.limit == b.limit && a.offset == b.offset;
}

static void check_native(void)
{
    const struct dseg_seg g = { p_pa, p_pa + PAGE_4K, q_pa - p_pa };

    if (dseg_set(DSEG_G, g.base, g.limit, g.offset) != NO_EXCEPTION) {
        panic("cannot program the guest segment");
    }
    ok_eq(mem_origin(read64(p_pa + 8)), q_pa + 8,
          "host mode: P in the guest segment, at Q");
    smm_out.p_word = 0;
    if (!ok(smm_call(smm_probe, &smm_out), "an SMI runs our SMM handler")) {
        return;
    }
    ok_eq(mem_origin(smm_out.p_word), p_pa + 8,
          "SMM, long mode: the guest segment does not apply, P by the walk");
    ok(seg_equal(smm_out.g, g), "SMM: the DSEG MSRs read the host's segment");
    ok_eq(mem_origin(read64(p_pa + 8)), q_pa + 8,
          "after RSM: P in the guest segment again");
    ok(seg_equal(dseg_get(DSEG_G), g), "after RSM: the segment is unchanged");
    dseg_disarm(DSEG_G);
}

/* The VM's results. */
static struct {
    uint64_t p_word, r_word;
    bool smi;
} vm_out;

/* VM: loads at P and R, the same in SMM into *@arg, again after RSM. */
static uint64_t vm_smm(uint64_t arg)
{
    vm_out.p_word = read64(p_pa + 8);
    vm_out.r_word = read64(r_pa + 8);
    vm_out.smi = smm_call(smm_probe, (struct smm_seen *)(uintptr_t)arg);
    return read64(p_pa + 8) == vm_out.p_word &&
           read64(r_pa + 8) == vm_out.r_word;
}

static void check_guest_mode(void)
{
    const struct dseg_seg g = { r_pa, r_pa + PAGE_4K, s_pa - r_pa };
    uint64_t ret;
    bool ran;

    if (dseg_set(DSEG_V, p_pa, p_pa + PAGE_4K, q_pa - p_pa) !=
        NO_EXCEPTION) {
        panic("cannot program the VMM segment");
    }
    vmcb_set_dseg(&vm, g.base, g.limit, g.offset);
    smm_out.p_word = smm_out.r_word = 0;
    ran = svm_call(&vm, vm_smm, (uint64_t)(uintptr_t)&smm_out, &ret);
    ok(ran && vm_out.smi, "an SMI in the VM runs our SMM handler");
    ok(ran && mem_origin(vm_out.p_word) == q_pa + 8 &&
       mem_origin(vm_out.r_word) == s_pa + 8,
       "VM: gPA P in the VMM segment at Q, R in its guest segment at S");
    ok_eq(mem_origin(smm_out.p_word), p_pa + 8,
          "SMM in the VM: the VMM segment does not apply, P by nested walk");
    ok_eq(mem_origin(smm_out.r_word), r_pa + 8,
          "SMM in the VM: its guest segment does not apply, R by the walk");
    ok(seg_equal(smm_out.g, g), "SMM in the VM: the MSRs read its copy");
    ok(ran && ret == 1, "VM after RSM: P and R in their segments again");
    ok(seg_equal(vmcb_get_dseg(&vm), g) && dseg_get(DSEG_V).base == p_pa,
       "#VMEXIT after RSM: the guest copy and the VMM segment unchanged");
    dseg_disarm(DSEG_V);
}

/*
 * The real-mode VM, copied to a page that is its CS base, IP 0: ESI = an
 * address, EDI = the local APIC's ICR.  Loads [ESI] into EDX:EAX, sends
 * itself an SMI, waits, loads [ESI] into EBP:EBX and exits (VMMCALL).
 */
__asm__(
    "   .pushsection .rodata\n"
    "   .code16\n"
    "rm_vm_code:\n"
    "   mov (%esi), %eax\n"
    "   mov 4(%esi), %edx\n"
    "   movl $0x40200, (%edi)\n"      /* shorthand self, SMI */
    "   mov $100000, %ecx\n"
    "1: dec %ecx\n"
    "   jnz 1b\n"
    "   mov (%esi), %ebx\n"
    "   mov 4(%esi), %ebp\n"
    "   vmmcall\n"
    "rm_vm_code_end:\n"
    "   .code64\n"
    "   .popsection\n");
extern const char rm_vm_code[], rm_vm_code_end[];

#define APIC_ICR_PA         0xfee00300ull
#define RM_CS_ATTR          0x09b   /* P, code exec/read, accessed */
#define RM_DS_ATTR          0x093   /* P, data read/write, accessed */

static void check_real_mode_vm(void)
{
    struct svm_vm rm;
    uint64_t code = page_alloc(), exit, before, after;
    const uint64_t p_tag = read64(p_pa + 8), q_tag = read64(q_pa + 8);

    memcpy((void *)(uintptr_t)code, rm_vm_code, rm_vm_code_end - rm_vm_code);
    svm_vm_init_identity(&rm, &hpt, &npt);
    vmcb_set(&rm, VMCB_CR0, 0x10);                      /* ET only */
    vmcb_set(&rm, VMCB_CR4, 0);
    vmcb_set(&rm, VMCB_EFER, EFER_SVME);
    vmcb_set_seg(&rm, VMCB_CS, 0, RM_CS_ATTR, 0xffff, code);
    for (unsigned off = VMCB_ES; off <= VMCB_DS; off += 0x10) {
        if (off != VMCB_CS) {
            vmcb_set_seg(&rm, off, 0, RM_DS_ATTR, 0xffffffff, 0);
        }
    }
    vmcb_set(&rm, VMCB_RIP, 0);
    vmcb_set(&rm, VMCB_RFLAGS, 2);
    rm.gprs.rsi = p_pa + 8;
    rm.gprs.rdi = APIC_ICR_PA;
    if (dseg_set(DSEG_V, p_pa, p_pa + PAGE_4K, q_pa - p_pa) !=
        NO_EXCEPTION) {
        panic("cannot program the VMM segment");
    }
    smm_expect(smm_probe, &smm_out);
    smm_peek_value = 0;
    smm_peek_addr = p_pa + 8;
    exit = svm_run(&rm);
    smm_peek_addr = 0;
    dseg_disarm(DSEG_V);
    if (!ok_eq(exit, SVM_EXIT_VMMCALL, "real-mode VM: exits by VMMCALL")) {
        svm_report_exit(&rm);
        return;
    }
    before = (uint32_t)vmcb_get(&rm, VMCB_RAX) | rm.gprs.rdx << 32;
    after = (uint32_t)rm.gprs.rbx | rm.gprs.rbp << 32;
    ok(smm_ran(), "real-mode VM: its SMI runs our SMM handler");
    ok_eq(before, q_tag, "real-mode VM: gPA P in the VMM segment, at Q");
    ok_eq(smm_peek_value, p_tag,
          "SMM from a real-mode VM, first load: P by nested walk, no "
          "VMM-direct entry left");
    ok_eq(after, q_tag, "real-mode VM after RSM: P in the segment again");
}

int guest_main(const char *cmdline)
{
    if (!ok_svm_cpu(true)) {
        return tap_done();
    }
    p_pa = tagged_page_alloc();
    q_pa = tagged_page_alloc();
    r_pa = tagged_page_alloc();
    s_pa = tagged_page_alloc();
    smm_install();
    check_native();
    if (!cmdline_get_u64(cmdline, "vm", 1)) {
        return tap_done();      /* vm=0: the native checks only */
    }

    host_pt_init(&hpt);
    svm_vm_init_identity(&vm, &hpt, &npt);
    check_guest_mode();
    check_real_mode_vm();
    return tap_done();
}
