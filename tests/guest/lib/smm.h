/*
 * qemu-dseg test guests: code run in system management mode (SMM).
 *
 * smm_call() raises an SMI on the calling CPU (a self-IPI of delivery mode
 * SMI) with a handler of ours in SMRAM.  The handler enters long mode with
 * the boot page tables (low 4 GiB identity-mapped), the BSP's GDT and a
 * stack of its own, calls @fn(@arg) and returns with RSM, which restores
 * the interrupted state.  The machine needs SMM (QEMU's q35 has it under
 * TCG); SMBASE is the firmware's, 0xA0000 with SeaBIOS, else the reset
 * value 0x30000, and the handler is written at SMBASE + 0x8000 of both.
 * In SMM, interrupts and NMIs are blocked and @fn must not fault: the IDT
 * is the interrupted code's, but nothing resumes SMM after an exception.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SMM_H
#define SMM_H

#include "libguest.h"

typedef void smm_fn(void *arg);

/* Writes the handler at SMBASE + 0x8000; the host calls it first. */
void smm_install(void);

/*
 * Runs @fn(@arg) in SMM; returns false if no SMI ran our handler.  It
 * touches only memory and the local APIC, so a VM whose nested tables map
 * the low 4 GiB one-to-one can call it too.
 */
bool smm_call(smm_fn *fn, void *arg);

/*
 * For an SMI that someone else raises (a VM's self-IPI, say): the
 * handler will run @fn(@arg); smm_ran() tells whether it has since.
 */
void smm_expect(smm_fn *fn, void *arg);
bool smm_ran(void);

/*
 * A load that the handler makes first, in the real-address mode SMM
 * starts in, before it changes CR0 (which flushes the TLB): when
 * smm_peek_addr is not 0, the 8 bytes there (below 4 GiB) are copied to
 * smm_peek_value.
 */
extern volatile uint64_t smm_peek_addr, smm_peek_value;

/* C entry of the handler, called by lib/boot.S on the SMM stack. */
void smm_start(void);
extern const char smm_entry16[], entry16_end[];

#endif /* SMM_H */
