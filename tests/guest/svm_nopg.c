/*
 * Nested paging under a host with paging off.
 *
 * VMRUN does not refuse NP_ENABLE = 1 while the host has CR0.PG = 0.  The
 * emulated nested dimension then translates nothing: its walk reads no
 * nested entry and a gPA is its hPA.  So a fill of the VM's 2D-walk path
 * costs its guest entries and nothing more.
 *
 * The host leaves long mode for 32-bit protected mode with paging off,
 * runs a 64-bit VM (its own tables: the host's identity map of the low
 * 4 GiB) that loads one word of each of PAGES pages and exits by VMMCALL,
 * and returns to long mode.  test_svm_nopg.py reads the counters of the
 * window "nopg" (reset at "begin") and checks them exactly.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define PAGES           64

static struct svm_vm vm;
static struct pt hpt, npt;
/* The host's RSP across the mode switches (asm). */
uint64_t nopg_saved_rsp __attribute__((used));

/* Runs the VM at @vmcb with ESI = @base and ECX = @pages, paging off. */
void nopg_vmrun(uint32_t vmcb, uint32_t base, uint32_t pages);

/* The VM: a load from each of ECX pages from RSI on, then VMMCALL. */
extern const char nopg_vm[];

__asm__(
    "   .text\n"
    "   .code64\n"
    "nopg_vm:\n"
    "1: mov (%rsi), %rax\n"
    "   add $4096, %rsi\n"
    "   dec %ecx\n"
    "   jnz 1b\n"
    "   vmmcall\n"
    "   ud2\n"
    "   .globl nopg_vmrun\n"
    "nopg_vmrun:\n"
    "   push %rbx\n"
    "   push %rbp\n"
    "   push %r12\n"
    "   push %r13\n"
    "   push %r14\n"
    "   push %r15\n"
    "   mov %rsp, nopg_saved_rsp(%rip)\n"
    "   mov %edi, %eax\n"
    "   mov %edx, %ecx\n"
    "   pushq $0x18\n"                  /* 32-bit code segment */
    "   lea 2f(%rip), %rbx\n"
    "   push %rbx\n"
    "   lretq\n"
    "   .code32\n"
    "2: mov %cr0, %ebx\n"
    "   and $0x7fffffff, %ebx\n"        /* paging off: long mode ends */
    "   mov %ebx, %cr0\n"
    "   clgi\n"
    "   vmrun\n"
    "   stgi\n"
    "   mov %cr0, %ebx\n"
    "   or $0x80000000, %ebx\n"         /* EFER.LME is still set */
    "   mov %ebx, %cr0\n"
    "   ljmp $0x08, $3f\n"
    "   .code64\n"
    "3: mov nopg_saved_rsp(%rip), %rsp\n"
    "   pop %r15\n"
    "   pop %r14\n"
    "   pop %r13\n"
    "   pop %r12\n"
    "   pop %rbp\n"
    "   pop %rbx\n"
    "   ret\n");

int guest_main(const char *cmdline)
{
    uint64_t base = pages_alloc(PAGES, PAGE_4K);

    (void)cmdline;
    if (!ok_svm_cpu(false)) {
        return tap_done();
    }
    svm_vm_init_host(&vm, &hpt, &npt);
    vmcb_set(&vm, VMCB_RIP, (uint64_t)(uintptr_t)nopg_vm);
    vmcb_set(&vm, VMCB_RSP, base);      /* unused */
    if (vm.vmcb >> 32 || base >> 32 || (uintptr_t)nopg_vm >> 32) {
        panic("the VMCB, the pages and the code must lie below 4 GiB");
    }
    checkpoint("begin");
    nopg_vmrun(vm.vmcb, base, PAGES);
    checkpoint("nopg");
    if (!ok_eq(vmcb_get(&vm, VMCB_EXIT_CODE), SVM_EXIT_VMMCALL,
               "the VM ran under a host without paging, to its VMMCALL")) {
        svm_report_exit(&vm);
    }
    ok(read_cr0() & (1ull << 31), "the host has paging on again");
    return tap_done();
}
