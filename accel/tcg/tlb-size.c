/*
 * Fixed-size softmmu TLB (qemu-dseg): the check of the TCG accelerator's
 * tlb-size property, and the size that cputlb.c keeps.  See tlb-size.h
 * and docs/devel/dseg-experiment.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/host-utils.h"
#include "tlb-size.h"

unsigned tcg_tlb_size_bits;

bool tcg_tlb_size_check(uint32_t entries, Error **errp)
{
    if (entries && (!is_power_of_2(entries) ||
                    entries < 1u << TCG_TLB_SIZE_MIN_BITS ||
                    entries > 1u << TCG_TLB_SIZE_MAX_BITS)) {
        error_setg(errp, "the TLB needs a power of two from %u to %u "
                   "entries, or 0 for QEMU's dynamic sizing (got %u)",
                   1u << TCG_TLB_SIZE_MIN_BITS, 1u << TCG_TLB_SIZE_MAX_BITS,
                   entries);
        return false;
    }
    return true;
}
