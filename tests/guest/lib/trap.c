/*
 * qemu-dseg test guests: interrupt descriptor table.  An NMI (the wake-up
 * of a test checkpoint) just returns; an exception raised by an instruction
 * with a fixup resumes at the fixup; any other exception is a test failure:
 * it is reported on the console and the guest exits with GUEST_EXIT_FAULT.
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

/* One fixup: see EXTABLE_ENTRY in libguest.h. */
struct extable_entry {
    uint64_t insn;
    uint64_t resume;
};

extern const uint64_t trap_stubs[32];
extern const struct extable_entry __extable_start[], __extable_end[];
/* Exceptions, then vectors that trap_set_irq_handler() fills. */
static struct idt_entry idt[256];

uint64_t trap_fixup_error_code;
uint64_t trap_fixup_cr2;

/* Resume at the fixup of the faulting instruction, if it has one. */
static bool trap_fixup(struct trap_frame *f)
{
    for (const struct extable_entry *e = __extable_start;
         e < __extable_end; e++) {
        if (e->insn == f->rip) {
            trap_fixup_error_code = f->error_code;
            trap_fixup_cr2 = read_cr2();
            f->r11 = f->vector;
            f->rip = e->resume;
            return true;
        }
    }
    return false;
}

void trap_handler(struct trap_frame *f);

void trap_handler(struct trap_frame *f)
{
    if (f->vector == EXC_NMI || trap_fixup(f)) {
        return;
    }
    printf("unexpected exception %lu, error code %#lx at rip %#lx "
           "(cr2 %#lx)\n", f->vector, f->error_code, f->rip, read_cr2());
    guest_exit(GUEST_EXIT_FAULT);
}

void trap_load(void)
{
    struct idt_desc desc = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

    asm volatile("lidt %0" : : "m"(desc));
}

static struct idt_entry idt_gate(uint64_t handler)
{
    return (struct idt_entry) {
        .offset_lo = handler & 0xffff,
        .selector = KERNEL_CS,
        .type = IDT_INTERRUPT_GATE,
        .offset_mid = (handler >> 16) & 0xffff,
        .offset_hi = handler >> 32,
    };
}

void trap_init(void)
{
    for (int i = 0; i < 32; i++) {
        idt[i] = idt_gate(trap_stubs[i]);
    }
    trap_load();
}

static trap_irq_fn *irq_handler;
extern const char trap_irq_stub[];

void trap_irq(uint64_t rip);
void trap_irq(uint64_t rip)
{
    irq_handler(rip);
}

void trap_set_irq_handler(unsigned vector, trap_irq_fn *handler)
{
    if (vector < 32 || vector >= ARRAY_SIZE(idt)) {
        panic("vector %u is not an interrupt's", vector);
    }
    irq_handler = handler;
    idt[vector] = idt_gate((uint64_t)(uintptr_t)trap_irq_stub);
}

int rdmsr_safe(uint32_t msr, uint64_t *val)
{
    register uint64_t vector asm("r11") = NO_EXCEPTION;
    uint32_t lo = 0, hi = 0;

    asm volatile("1: rdmsr\n2:\n" EXTABLE_ENTRY("1b", "2b")
                 : "+a"(lo), "+d"(hi), "+r"(vector) : "c"(msr));
    *val = lo | ((uint64_t)hi << 32);
    return (int)vector;
}

int wrmsr_safe(uint32_t msr, uint64_t val)
{
    register uint64_t vector asm("r11") = NO_EXCEPTION;

    asm volatile("1: wrmsr\n2:\n" EXTABLE_ENTRY("1b", "2b")
                 : "+r"(vector)
                 : "c"(msr), "a"((uint32_t)val), "d"((uint32_t)(val >> 32))
                 : "memory");
    return (int)vector;
}

int read64_safe(uint64_t addr, uint64_t *val)
{
    register uint64_t vector asm("r11") = NO_EXCEPTION;
    uint64_t v = 0;

    asm volatile("1: movq (%2), %0\n2:\n" EXTABLE_ENTRY("1b", "2b")
                 : "+r"(v), "+r"(vector) : "r"(addr) : "memory");
    *val = v;
    return (int)vector;
}

int write64_safe(uint64_t addr, uint64_t val)
{
    register uint64_t vector asm("r11") = NO_EXCEPTION;

    asm volatile("1: movq %1, (%2)\n2:\n" EXTABLE_ENTRY("1b", "2b")
                 : "+r"(vector) : "r"(val), "r"(addr) : "memory");
    return (int)vector;
}
