/*
 * Fixed-size softmmu TLB (qemu-dseg): -accel tcg,tlb-size=ENTRIES.
 *
 * QEMU sizes each softmmu TLB dynamically from its use rate, so its fills
 * say little about a hardware TLB.  With tlb-size set, every MMU index
 * keeps a direct-mapped table of exactly that many entries (plus the
 * usual 8-entry victim TLB) and is never resized, so that fills behave
 * like the misses of a TLB of that geometry.  Without it, behaviour is
 * upstream's.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef ACCEL_TCG_TLB_SIZE_H
#define ACCEL_TCG_TLB_SIZE_H

#define TCG_TLB_SIZE_MIN_BITS   6
#define TCG_TLB_SIZE_MAX_BITS   16

/*
 * log2 of the fixed number of entries per MMU index, 0: dynamic; set from
 * the accelerator's tlb-size property at machine init.
 */
extern unsigned tcg_tlb_size_bits;

/* Is @entries a valid tlb-size?  Else false with @errp set. */
bool tcg_tlb_size_check(uint32_t entries, Error **errp);

#endif /* ACCEL_TCG_TLB_SIZE_H */
