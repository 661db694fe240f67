/*
 * qemu-dseg test guests: application processors (APs).
 *
 * The runtime enters guest_main() on the bootstrap processor (BSP) only.
 * smp_start_ap() wakes one AP with INIT-SIPI-SIPI through the BSP's local
 * APIC (xAPIC registers at APIC_MMIO_BASE, identity-mapped).  The AP runs
 * the real-mode trampoline ap_entry16 of lib/boot.S, which enters 32-bit
 * protected mode and joins the BSP's long-mode entry path: the AP comes up in 64-bit
 * mode with the boot page tables (low 4 GiB identity-mapped), the BSP's GDT
 * and IDT and a 16 KiB stack of its own, and calls @fn(@arg).  When @fn
 * returns, the AP halts with interrupts off.
 *
 * INIT leaves the AP's local APIC with every LVT entry masked, so the
 * NMIs that QMP inject-nmi sends to all CPUs (the wake-up of a test
 * checkpoint) do not reach an AP: an AP never stops at a checkpoint, and
 * tests park it in a spin-wait instead.  An AP must not print (the console
 * has no lock) and should not use the *_safe() helpers, whose fixup state
 * is global; an unexpected exception on an AP ends the test as on the BSP.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SMP_H
#define SMP_H

#include "libguest.h"

/* Highest local APIC ID + 1 that smp_start_ap() accepts. */
#define SMP_MAX_CPUS        4

#define APIC_MMIO_BASE      0xfee00000ull

/* The code an AP runs: @arg is smp_start_ap()'s. */
typedef void smp_ap_fn(void *arg);

/*
 * Starts the AP whose local APIC ID is @apic_id (1 to SMP_MAX_CPUS - 1)
 * at @fn(@arg); returns once the AP runs C code, or false when it did not
 * come up.  APs are started one at a time, each at most once.
 */
bool smp_start_ap(unsigned apic_id, smp_ap_fn *fn, void *arg);

/* Local APIC ID of the calling CPU (CPUID 1:EBX[31:24]). */
unsigned smp_apic_id(void);

/* ICR delivery modes of smp_send_ipi(); a fixed interrupt's is 0. */
#define ICR_DM_FIXED        (0u << 8)
#define ICR_DM_SMI          (2u << 8)
#define ICR_DM_INIT         (5u << 8)
#define ICR_DM_STARTUP      (6u << 8)
#define ICR_LEVEL_ASSERT    (1u << 14)

/*
 * Sends the IPI @icr_lo (delivery mode, vector, level) to the local APIC
 * whose ID is @apic_id, in physical destination mode; returns once the
 * local APIC has sent it.
 */
void smp_send_ipi(unsigned apic_id, uint32_t icr_lo);

/*
 * Makes the calling CPU's local APIC its only source of interrupts: enables
 * it for fixed interrupts (SVR) and masks every line of the legacy 8259
 * PICs, whose timer interrupt (vector 8 as the firmware sets them up)
 * would otherwise arrive as soon as IF is set.
 */
void smp_apic_enable(void);
/* Ends the calling CPU's interrupt in service (EOI). */
void smp_apic_eoi(void);

/*
 * Self-interrupts, for tests of interrupt delivery on one CPU: fixed
 * interrupts of SELF_IRQ_VECTOR that the CPU sends itself.  Those taken,
 * host or VM, and the RIP at which the last was taken (globals: a VM's
 * code may read them).
 */
#define SELF_IRQ_VECTOR     0x40
extern volatile uint64_t self_irq_count, self_irq_rip;
/* Enables the local APIC (smp_apic_enable()) and counts self-interrupts. */
void self_irq_init(void);
/* Sends one; it stays pending while IF is clear. */
void self_irq_send(void);

/* The interface with lib/boot.S: the trampoline, the AP's stack, C entry. */
extern const char ap_entry16[], entry16_end[];
extern uint64_t smp_ap_stack_top;
void smp_ap_start(void);

/* Spin-wait hint; also a compiler barrier, so polled memory is re-read. */
static inline void cpu_relax(void)
{
    asm volatile("pause" : : : "memory");
}

#endif /* SMP_H */
