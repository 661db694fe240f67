/*
 * qemu-dseg test guests: interrupt descriptor table.  Any exception is a
 * test failure: it is reported on the console and the guest exits with
 * GUEST_EXIT_FAULT.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"

struct idt_entry {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type;
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t reserved;
} __attribute__((packed));

struct idt_desc {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

#define IDT_INTERRUPT_GATE  0x8e
#define KERNEL_CS           0x08

extern const uint64_t trap_stubs[32];
static struct idt_entry idt[32];

void trap_handler(struct trap_frame *f);

void trap_handler(struct trap_frame *f)
{
    printf("unexpected exception %lu, error code %#lx at rip %#lx "
           "(cr2 %#lx)\n", f->vector, f->error_code, f->rip, read_cr2());
    guest_exit(GUEST_EXIT_FAULT);
}

void trap_init(void)
{
    struct idt_desc desc = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

    for (int i = 0; i < 32; i++) {
        idt[i] = (struct idt_entry) {
            .offset_lo = trap_stubs[i] & 0xffff,
            .selector = KERNEL_CS,
            .type = IDT_INTERRUPT_GATE,
            .offset_mid = (trap_stubs[i] >> 16) & 0xffff,
            .offset_hi = trap_stubs[i] >> 32,
        };
    }
    asm volatile("lidt %0" : : "m"(desc));
}
