/*
 * vmmcall: stop the thin test hypervisor at a counter window, from a
 * user program of its Linux guest (see tests/guest/thinvmm/main.c).
 *
 * Usage: vmmcall [A [B]] executes VMMCALL with RAX = the thinvmm magic,
 * RBX = A and RCX = B (decimal, default 0), then exits with status 0.
 * A static x86-64 Linux program without libc, built by meson.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
    .globl _start
    .text
_start:
    xor %ebx, %ebx
    xor %ecx, %ecx
    mov (%rsp), %r8
    cmp $2, %r8
    jb 3f
    mov 16(%rsp), %rsi
    call atou
    mov %rax, %rbx
    cmp $3, %r8
    jb 3f
    mov 24(%rsp), %rsi
    push %rbx
    call atou
    pop %rbx
    mov %rax, %rcx
3:  mov $0x74686e76, %eax
    vmmcall
    mov $60, %eax
    xor %edi, %edi
    syscall
atou:
    xor %eax, %eax
1:  movzbl (%rsi), %edx
    sub $'0', %edx
    cmp $9, %edx
    ja 2f
    imul $10, %rax, %rax
    add %rdx, %rax
    inc %rsi
    jmp 1b
2:  ret
