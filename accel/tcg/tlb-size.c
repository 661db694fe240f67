/*
 * Fixed-size softmmu TLB (qemu-dseg): the tlb-size property of the TCG
 * accelerator.  See tlb-size.h and docs/devel/dseg-experiment.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/host-utils.h"
#include "tlb-size.h"

unsigned tcg_tlb_size_bits;

void tcg_get_tlb_size(Object *obj, Visitor *v, const char *name,
                      void *opaque, Error **errp)
{
    uint32_t entries = tcg_tlb_size_bits ? 1u << tcg_tlb_size_bits : 0;

    visit_type_uint32(v, name, &entries, errp);
}

void tcg_set_tlb_size(Object *obj, Visitor *v, const char *name,
                      void *opaque, Error **errp)
{
    uint32_t entries;

    if (!visit_type_uint32(v, name, &entries, errp)) {
        return;
    }
    if (entries && (!is_power_of_2(entries) ||
                    entries < 1u << TCG_TLB_SIZE_MIN_BITS ||
                    entries > 1u << TCG_TLB_SIZE_MAX_BITS)) {
        error_setg(errp, "the TLB needs a power of two from %u to %u "
                   "entries, or 0 for QEMU's dynamic sizing (got %u)",
                   1u << TCG_TLB_SIZE_MIN_BITS, 1u << TCG_TLB_SIZE_MAX_BITS,
                   entries);
        return;
    }
    tcg_tlb_size_bits = entries ? ctz32(entries) : 0;
}
