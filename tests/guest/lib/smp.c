/*
 * qemu-dseg test guests: starting application processors.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "smp.h"

/* Interrupt mask registers of the master and slave 8259 PICs. */
#define PIC_MASTER_IMR      0x21
#define PIC_SLAVE_IMR       0xa1

#define APIC_EOI            0x0b0
#define APIC_SVR            0x0f0
#define SVR_APIC_ENABLED    (1u << 8)
#define SVR_SPURIOUS_VECTOR 0xff
/* xAPIC interrupt command register: the high half holds the destination. */
#define APIC_ICR_LO         0x300
#define APIC_ICR_HI         0x310
#define ICR_DEST_SHIFT      24
#define ICR_BUSY            (1u << 12)

/*
 * Where the trampoline runs: a free page below 1 MiB (under the EBDA and
 * above the BIOS data area); its page number is the SIPI vector.
 */
#define AP_TRAMPOLINE_PA    0x8000u
#define AP_STACK_SIZE       (16 * 1024)

/* Spin iterations to wait after INIT, and for each SIPI to take effect. */
#define INIT_DELAY          10000
#define SIPI_TIMEOUT        20000000

uint64_t smp_ap_stack_top;

/* The AP being started: what it runs, and its sign of life. */
static struct {
    smp_ap_fn *fn;
    void *arg;
    volatile bool alive;                /* volatile: the AP sets it */
} ap_boot;

static uint8_t ap_stacks[SMP_MAX_CPUS][AP_STACK_SIZE]
    __attribute__((aligned(16)));
static bool ap_started[SMP_MAX_CPUS];

unsigned smp_apic_id(void)
{
    uint32_t a, b, c, d;

    cpuid(1, 0, &a, &b, &c, &d);
    return b >> 24;
}

static void apic_write(unsigned reg, uint32_t val)
{
    *(volatile uint32_t *)(uintptr_t)(APIC_MMIO_BASE + reg) = val; /* MMIO */
}

static uint32_t apic_read(unsigned reg)
{
    return *(volatile uint32_t *)(uintptr_t)(APIC_MMIO_BASE + reg); /* MMIO */
}

/* Sends an IPI of @icr_lo (delivery mode, vector) to @apic_id. */
void smp_send_ipi(unsigned apic_id, uint32_t icr_lo)
{
    apic_write(APIC_ICR_HI, apic_id << ICR_DEST_SHIFT);
    apic_write(APIC_ICR_LO, icr_lo);
    while (apic_read(APIC_ICR_LO) & ICR_BUSY) {
        cpu_relax();
    }
}

void smp_apic_enable(void)
{
    outb(PIC_MASTER_IMR, 0xff);
    outb(PIC_SLAVE_IMR, 0xff);
    apic_write(APIC_SVR, SVR_APIC_ENABLED | SVR_SPURIOUS_VECTOR);
}

void smp_apic_eoi(void)
{
    apic_write(APIC_EOI, 0);
}

volatile uint64_t self_irq_count, self_irq_rip;

static void self_irq_note(uint64_t rip)
{
    self_irq_count++;
    self_irq_rip = rip;
    smp_apic_eoi();
}

void self_irq_init(void)
{
    smp_apic_enable();
    trap_set_irq_handler(SELF_IRQ_VECTOR, self_irq_note);
}

void self_irq_send(void)
{
    smp_send_ipi(smp_apic_id(), ICR_DM_FIXED | SELF_IRQ_VECTOR);
}

/* Waits up to @spins iterations for the AP to report; true if it did. */
static bool ap_wait_alive(unsigned long spins)
{
    for (unsigned long i = 0; i < spins && !ap_boot.alive; i++) {
        cpu_relax();
    }
    return ap_boot.alive;
}

bool smp_start_ap(unsigned apic_id, smp_ap_fn *fn, void *arg)
{
    size_t len = entry16_end - ap_entry16;

    if (apic_id == 0 || apic_id >= SMP_MAX_CPUS || ap_started[apic_id] ||
        apic_id == smp_apic_id()) {
        panic("cannot start the AP with APIC ID %u", apic_id);
    }
    ap_started[apic_id] = true;
    memcpy((void *)(uintptr_t)AP_TRAMPOLINE_PA, ap_entry16, len);
    ap_boot.fn = fn;
    ap_boot.arg = arg;
    ap_boot.alive = false;
    smp_ap_stack_top = (uintptr_t)ap_stacks[apic_id] + AP_STACK_SIZE;

    /* INIT puts the AP into wait-for-SIPI, whatever the firmware left. */
    smp_send_ipi(apic_id, ICR_DM_INIT | ICR_LEVEL_ASSERT);
    for (int i = 0; i < INIT_DELAY; i++) {
        cpu_relax();
    }
    /* A second SIPI is the usual retry; an AP that runs ignores it. */
    for (int sipi = 0; sipi < 2; sipi++) {
        smp_send_ipi(apic_id, ICR_DM_STARTUP | (AP_TRAMPOLINE_PA >> 12));
        if (ap_wait_alive(SIPI_TIMEOUT)) {
            return true;
        }
    }
    return false;
}

/* C entry of an AP, called by lib/boot.S on its own stack. */
void smp_ap_start(void)
{
    smp_ap_fn *fn = ap_boot.fn;
    void *arg = ap_boot.arg;

    trap_load();
    asm volatile("" : : : "memory");
    ap_boot.alive = true;
    fn(arg);
}
