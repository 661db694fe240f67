/*
 * SVM intercepts as AMD specifies them (AMD64 APM vol. 2, "Exception
 * Intercepts" and "Software Interrupt Intercept"), where upstream QEMU
 * 10.0 differs.
 *
 * INT3 raises #BP: the VM's INT3 exits to the host as an exception
 * #VMEXIT (exit code 0x43, RIP at the INT3) when the #BP intercept is
 * set, whether or not the INTn intercept is.  INTn, also INT 3 (CD 03),
 * is the INTn intercept's (exit code 0x75, RIP at the INTn)
 * (patches/0010-i386-svm-int3-intercept.patch).
 *
 * LMSW treats the selective CR0 write intercept as a non-selective one:
 * it exits (0x65, RIP at the LMSW) even when it writes the value CR0
 * holds, where MOV to CR0 of that value does not exit
 * (patches/0011-i386-svm-lmsw-intercept.patch).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define SVM_INTERCEPT_SEL_CR0   (1ull << 5)
#define SVM_INTERCEPT_INTN      (1ull << 21)
#define SVM_EXIT_CR0_SEL_WRITE  0x65
#define SVM_EXIT_SWINT          0x75

static struct svm_vm vm;
static struct pt hpt, npt;

/* VM functions, each one instruction at a label the host can name. */
extern const char int3_at[], int_3_at[], int_80_at[], lmsw_at[];

__asm__(
    "   .text\n"
    "vm_int3:\n"
    "int3_at:\n"
    "   int3\n"
    "   ret\n"
    "vm_int_3:\n"
    "int_3_at:\n"
    "   .byte 0xcd, 0x03\n"             /* INT 3, the two-byte form */
    "   ret\n"
    "vm_int_80:\n"
    "int_80_at:\n"
    "   int $0x80\n"
    "   ret\n"
    "vm_lmsw:\n"                        /* CR0's own value */
    "   mov %cr0, %rax\n"
    "lmsw_at:\n"
    "   lmsw %ax\n"
    "   ret\n"
    "vm_mov_cr0:\n"
    "   mov %cr0, %rax\n"
    "   mov %rax, %cr0\n"
    "   ret\n");
uint64_t vm_int3(uint64_t arg);
uint64_t vm_int_3(uint64_t arg);
uint64_t vm_int_80(uint64_t arg);
uint64_t vm_lmsw(uint64_t arg);
uint64_t vm_mov_cr0(uint64_t arg);

/* Runs @fn in the VM with intercepts @on (of those below); the exit code. */
static uint64_t run(svm_guest_fn fn, uint64_t on)
{
    const uint64_t ours = SVM_INTERCEPT_INTN | SVM_INTERCEPT_SEL_CR0;

    svm_set_intercept(&vm, ours, false);
    svm_set_intercept(&vm, on & ours, true);
    svm_prepare_call(&vm, fn, 0);
    return svm_run_loop(&vm);
}

static void check(const char *what, svm_guest_fn fn, uint64_t on,
                  uint64_t want, const char *at)
{
    uint64_t code = run(fn, on);
    uint64_t rip = vmcb_get(&vm, VMCB_RIP);

    if (!ok(code == want && rip == (uint64_t)(uintptr_t)at,
            "%s: exit 0x%lx at 0x%lx (want 0x%lx at %p)", what, code, rip,
            want, at)) {
        svm_report_exit(&vm);
    }
}

int guest_main(const char *cmdline)
{
    (void)cmdline;
    if (!ok(svm_available() && svm_npt_available(), "CPU has SVM, NPT")) {
        return tap_done();
    }
    host_pt_init(&hpt);
    write_cr3(hpt.root);
    svm_vm_init_identity(&vm, &hpt, &npt);
    /* Every exception intercepted: svm_vm_init()'s default. */
    check("INT3, INTn intercept on", vm_int3, SVM_INTERCEPT_INTN,
          SVM_EXIT_EXCP(3), int3_at);
    check("INT 3 (CD 03), INTn intercept on", vm_int_3, SVM_INTERCEPT_INTN,
          SVM_EXIT_SWINT, int_3_at);
    check("INT 0x80, INTn intercept on", vm_int_80, SVM_INTERCEPT_INTN,
          SVM_EXIT_SWINT, int_80_at);
    check("LMSW of CR0's own value, selective CR0 intercept on", vm_lmsw,
          SVM_INTERCEPT_SEL_CR0, SVM_EXIT_CR0_SEL_WRITE, lmsw_at);
    check("MOV to CR0 of its own value, selective CR0 intercept on",
          vm_mov_cr0, SVM_INTERCEPT_SEL_CR0, SVM_EXIT_VMMCALL,
          svm_guest_return);
    check("INT3, INTn intercept off", vm_int3, 0, SVM_EXIT_EXCP(3),
          int3_at);
    return tap_done();
}
