/*
 * qemu-dseg test guests: VMRUN with the guest's general-purpose registers,
 * and the trampoline that VMs start in (see svm_prepare_call()).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/* Offsets in struct svm_gprs. */
#define G_RBX   0
#define G_RCX   8
#define G_RDX   16
#define G_RSI   24
#define G_RDI   32
#define G_RBP   40
#define G_R8    48
#define G_R9    56
#define G_R10   64
#define G_R11   72
#define G_R12   80
#define G_R13   88
#define G_R14   96
#define G_R15   104

    .text
/*
 * void svm_vmrun(struct svm_gprs *gprs, uint64_t vmcb_pa)
 *
 * Loads the guest GPRs, runs the guest with GIF clear around the world
 * switch, and stores the guest GPRs back.  #VMEXIT restores the host RSP
 * and RAX; every other register holds a guest value until restored here.
 */
    .globl svm_vmrun
svm_vmrun:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    push %rdi
    mov %rsi, %rax
    mov G_RBX(%rdi), %rbx
    mov G_RCX(%rdi), %rcx
    mov G_RDX(%rdi), %rdx
    mov G_RSI(%rdi), %rsi
    mov G_RBP(%rdi), %rbp
    mov G_R8(%rdi), %r8
    mov G_R9(%rdi), %r9
    mov G_R10(%rdi), %r10
    mov G_R11(%rdi), %r11
    mov G_R12(%rdi), %r12
    mov G_R13(%rdi), %r13
    mov G_R14(%rdi), %r14
    mov G_R15(%rdi), %r15
    mov G_RDI(%rdi), %rdi
    clgi
    vmrun %rax
    push %rdi
    mov 8(%rsp), %rdi
    mov %rbx, G_RBX(%rdi)
    mov %rcx, G_RCX(%rdi)
    mov %rdx, G_RDX(%rdi)
    mov %rsi, G_RSI(%rdi)
    mov %rbp, G_RBP(%rdi)
    mov %r8, G_R8(%rdi)
    mov %r9, G_R9(%rdi)
    mov %r10, G_R10(%rdi)
    mov %r11, G_R11(%rdi)
    mov %r12, G_R12(%rdi)
    mov %r13, G_R13(%rdi)
    mov %r14, G_R14(%rdi)
    mov %r15, G_R15(%rdi)
    popq G_RDI(%rdi)
    add $8, %rsp
    stgi
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

/*
 * VM entry of svm_prepare_call(): %rbx = function, %rdi = argument, %rsp
 * 16-byte aligned.  The function's result is left in RAX for the host.
 */
    .globl svm_guest_entry, svm_guest_return
svm_guest_entry:
    call *%rbx
svm_guest_return:
    vmmcall
    ud2
