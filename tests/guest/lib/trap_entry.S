/*
 * Exception entry stubs of qemu-dseg test guests: vectors 0-31 build a
 * struct trap_frame and call trap_handler().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

    .text
    .altmacro
    .macro trap_stub v
    .balign 16
trap_stub_\v:
    .if !(\v == 8 || (\v >= 10 && \v <= 14) || \v == 17 || \v == 21 || \v == 29 || \v == 30)
    push $0
    .endif
    push $\v
    jmp trap_common
    .endm

    .macro trap_ptr v
    .quad trap_stub_\v
    .endm

    .set v, 0
    .rept 32
    trap_stub %v
    .set v, v + 1
    .endr

trap_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    cld
    call trap_handler
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp                       /* vector and error code */
    iretq

    .section .rodata
    .balign 8
    .globl trap_stubs
trap_stubs:
    .set v, 0
    .rept 32
    trap_ptr %v
    .set v, v + 1
    .endr

/*
 * The interrupt stub of trap_set_irq_handler(): calls trap_irq(interrupted
 * RIP) with the caller-saved registers saved, on an aligned stack.
 */
    .text
    .globl trap_irq_stub
trap_irq_stub:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    push %rbx
    mov 80(%rsp), %rdi                  /* RIP in the interrupt frame */
    mov %rsp, %rbx
    and $-16, %rsp
    call trap_irq
    mov %rbx, %rsp
    pop %rbx
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    iretq
