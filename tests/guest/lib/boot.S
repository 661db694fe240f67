/*
 * Entry of qemu-dseg test guests.
 *
 * QEMU's -kernel loads the flat image through its multiboot loader (the
 * header below carries the load addresses, so no ELF parsing is involved)
 * and enters _start32 in 32-bit protected mode with paging off.  We build
 * identity-mapped page tables for the low 4 GiB with 2 MiB pages, enable
 * long mode, and call guest_start(multiboot_info) in 64-bit mode.
 *
 * Built with -DBOOT_LA57, the image enables 5-level paging (CR4.LA57, which
 * can only be set while paging is off): a PML5 table whose first entry
 * points to the same PML4.  The CPU must enumerate LA57.
 *
 * Application processors (lib/smp.h) and system management mode (lib/smm.h)
 * take the same path: smp_start_ap() copies ap_entry16 below 1 MiB and
 * starts the AP there in real mode, smm_call() copies smm_entry16 to
 * SMBASE + 0x8000 where an SMI enters it.  Either enters 32-bit protected mode and joins
 * long_mode_entry with %ebp = 1 (an AP) or 2 (SMM), which loads the BSP's
 * page tables and GDT.  In 64-bit mode an AP switches to the stack in
 * smp_ap_stack_top and calls smp_ap_start(); the SMM handler switches to
 * smm_stack_top, calls smm_start() and returns with RSM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define MB_MAGIC        0x1BADB002
#define MB_FLAGS        0x00010003  /* page-align, mem info, address fields */

#define CR0_PE          (1 << 0)
#define CR0_PG          (1 << 31)
#define CR4_PAE         (1 << 5)
#define CR4_LA57        (1 << 12)
#define MSR_EFER        0xc0000080
#define EFER_LME        (1 << 8)
#define PTE_P_RW        0x3
#define PTE_PS          0x80

    .section .multiboot, "a"
    .balign 4
mb_header:
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
    .long mb_header, __image_start, __data_end, __bss_end, _start32

    .section .text.boot, "ax"
    .code32
    .globl _start32
_start32:
    cli
    mov %ebx, %esi                      /* multiboot info */
    /* Zero .bss, which holds the boot page tables and stack. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl
    mov %esi, boot_mb_info
    mov $boot_stack_top, %esp

    /* 2048 2 MiB pages covering [0, 4 GiB), in four page directories. */
    mov $boot_pd, %edi
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $(PTE_P_RW | PTE_PS), %eax
    mov %eax, (%edi, %ecx, 8)
    mov %ecx, %eax
    shr $11, %eax                       /* bits 32+ of the address */
    mov %eax, 4(%edi, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jne 1b
    mov $boot_pdpt, %edi
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $12, %eax
    add $(boot_pd + PTE_P_RW), %eax
    mov %eax, (%edi, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jne 2b
    movl $(boot_pdpt + PTE_P_RW), boot_pml4
#ifdef BOOT_LA57
    movl $(boot_pml4 + PTE_P_RW), boot_pml5
#endif
    xor %ebp, %ebp                      /* the BSP */

    /*
     * Paging on with the boot tables, long mode, 64-bit code segment.
     * In: 32-bit protected mode with flat data segments, paging off;
     * %ebp = 0 on the BSP, 1 on an AP.
     */
long_mode_entry:
    mov %cr4, %eax
#ifdef BOOT_LA57
    or $(CR4_PAE | CR4_LA57), %eax
    mov %eax, %cr4
    mov $boot_pml5, %eax
#else
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
#endif
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PE | CR0_PG), %eax
    mov %eax, %cr0
    lgdt gdt_desc
    ljmp $0x08, $start64

    .code64
start64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    test %ebp, %ebp
    jnz 4f
    mov $boot_stack_top, %rsp
    mov boot_mb_info(%rip), %edi
    call guest_start
3:  cli
    hlt
    jmp 3b
4:  cmp $2, %ebp
    je 5f
    mov smp_ap_stack_top(%rip), %rsp
    call smp_ap_start
    jmp 3b
5:  lea smm_stack_top(%rip), %rsp
    call smm_start
    rsm

    /* An AP or SMM, from ap_entry16: flat segments, the BSP's path. */
    .code32
realmode_start32:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    jmp long_mode_entry

    /*
     * Real-mode starts of an AP and of the SMM handler.  smp_start_ap()
     * copies [ap_entry16, entry16_end) to a 4 KiB page below 1 MiB whose
     * number is the SIPI vector, where the AP starts with CS based at the
     * page and IP = 0.  smm_call() copies [smm_entry16, entry16_end) to
     * SMBASE + 0x8000, where an SMI starts with CS based at SMBASE and
     * IP = 0x8000.  DS is set to the copy, so that the code finds its data
     * at DS:SI + (offset from ap_entry16).  It needs the GDT (its
     * descriptor holds a 32-bit base) and a far jump to set CS to the
     * 32-bit code segment.
     */
    .section .rodata
    .code16
    .globl smm_entry16, ap_entry16, entry16_end
smm_entry16:
    /* smm_peek: one load before CR0 changes (DS is flat in SMM). */
    addr32 mov smm_peek_addr, %esi
    test %esi, %esi
    jz 3f
    mov (%esi), %eax
    addr32 mov %eax, smm_peek_value
    mov 4(%esi), %eax
    addr32 mov %eax, smm_peek_value + 4
3:  mov $2, %ebp
    mov %cs, %ax
    add $0x800, %ax                     /* SMBASE + 0x8000 */
    mov $(ap_entry16 - smm_entry16), %si
    jmp 1f
ap_entry16:
    mov $1, %ebp
    mov %cs, %ax
    xor %si, %si
1:  cli
    mov %ax, %ds
    lgdtl (entry16_gdt_desc - ap_entry16)(%si)
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    ljmpl $0x18, $realmode_start32
    .balign 8
entry16_gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
entry16_end:
    .code64

    .section .rodata
    .balign 8
    .globl gdt
gdt:
    .quad 0                             /* null */
    .quad 0x00af9a000000ffff            /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff            /* 0x10: data */
    .quad 0x00cf9a000000ffff            /* 0x18: 32-bit code */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .quad gdt

    .section .bss
    .balign 4096
#ifdef BOOT_LA57
boot_pml5:
    .skip 4096
#endif
    .globl boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
    .balign 16
boot_stack:
    .skip 64 * 1024
boot_stack_top:
    .balign 16
smm_stack:
    .skip 16 * 1024
smm_stack_top:
boot_mb_info:
    .skip 8
