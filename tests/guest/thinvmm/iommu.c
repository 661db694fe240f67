/*
 * thinvmm: the IOMMU.  The guest drives its PCI devices itself, and a
 * device that does DMA (the Linux experiment's virtio NIC) is given
 * guest-physical addresses, which differ from host-physical ones.  When
 * the machine has an Intel VT-d remapping unit (QEMU's -device
 * intel-iommu,aw-bits=48), every device's DMA is translated by the nested
 * page tables themselves: VT-d's second-level tables have the format of
 * 4-level x86 page tables, and the NPT's entries set only bits that they
 * allow (P as read, RW as write, US, A, D), so one table translates both
 * the vCPUs' and the devices' accesses and they cannot disagree (the
 * faulty pages' remaps included).  The remapping unit itself is the
 * hypervisor's: its DMAR table is left out of the guest's ACPI tables
 * (acpi.c) and its registers out of the NPT.
 *
 * The NPT does not change once the guest runs, so the unit's caches are
 * invalidated only once, before translation is enabled.  Interrupt
 * remapping is not used: MSIs reach the local APICs unchanged.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "thinvmm.h"

/* DMAR: its remapping structures start at 48; a DRHD is type 0. */
#define DMAR_STRUCTS            48
#define DMAR_DRHD               0

/* Registers of a remapping unit (VT-d specification, 11.4). */
#define VTD_CAP                 0x08
#define VTD_ECAP                0x10
#define VTD_GCMD                0x18
#define VTD_GSTS                0x1c
#define VTD_RTADDR              0x20
#define VTD_CCMD                0x28
#define VTD_REG_SIZE            PAGE_4K

#define CAP_SAGAW_48            (1ull << 10)    /* 4-level tables */
#define ECAP_IRO(e)             ((((e) >> 8) & 0x3ff) * 16)
#define GCMD_TE                 (1u << 31)
#define GCMD_SRTP               (1u << 30)
/* GSTS bits that are not one-shot: written back with each command. */
#define GSTS_KEEP               0x96ffffffu
#define CCMD_ICC                (1ull << 63)
#define CCMD_GLOBAL             (1ull << 61)
#define IOTLB_IVT               (1ull << 63)
#define IOTLB_GLOBAL            (1ull << 60)

/* Root and context entries (VT-d specification, 9.1 and 9.3). */
#define ENTRY_P                 1ull
#define CONTEXT_AW_48           2ull
#define DOMAIN_ID               1ull

/* How long a command may take: polls of its status bit. */
#define VTD_POLLS               1000000

uint64_t iommu_regs;            /* the unit's register base, 0 if none */

static uint32_t vtd_rd32(unsigned reg)
{
    return *(volatile uint32_t *)hptr(iommu_regs + reg);
}

static uint64_t vtd_rd64(unsigned reg)
{
    return *(volatile uint64_t *)hptr(iommu_regs + reg);
}

static void vtd_wr32(unsigned reg, uint32_t v)
{
    *(volatile uint32_t *)hptr(iommu_regs + reg) = v;
}

static void vtd_wr64(unsigned reg, uint64_t v)
{
    *(volatile uint64_t *)hptr(iommu_regs + reg) = v;
}

/* Sets command bit CMD in GCMD and waits for the same bit in GSTS. */
static void vtd_command(uint32_t cmd, const char *what)
{
    vtd_wr32(VTD_GCMD, (vtd_rd32(VTD_GSTS) & GSTS_KEEP) | cmd);
    for (unsigned i = 0; !(vtd_rd32(VTD_GSTS) & cmd); i++) {
        if (i == VTD_POLLS) {
            panic("IOMMU: %s did not complete", what);
        }
    }
}

/* Writes V to the 64-bit register REG and waits until BUSY clears. */
static void vtd_invalidate(unsigned reg, uint64_t v, uint64_t busy,
                           const char *what)
{
    vtd_wr64(reg, v);
    for (unsigned i = 0; vtd_rd64(reg) & busy; i++) {
        if (i == VTD_POLLS) {
            panic("IOMMU: %s invalidation did not complete", what);
        }
    }
}

/*
 * Finds the machine's remapping unit in its DMAR table: one DRHD, of PCI
 * segment 0 (its device scopes do not matter: every bus and device gets
 * the same context entry).  Sets iommu_regs; none: 0.
 */
void find_iommu(void)
{
    const uint8_t *dmar = acpi_table("DMAR");
    uint32_t len;

    if (!dmar) {
        return;
    }
    len = rd32(dmar, 4);
    for (uint32_t off = DMAR_STRUCTS; off + 4 <= len;
         off += rd16(dmar, off + 2)) {
        const uint8_t *s = dmar + off;

        if (rd16(s, 2) < 4) {
            panic("IOMMU: DMAR structure of length %u", rd16(s, 2));
        }
        if (rd16(s, 0) != DMAR_DRHD) {
            continue;
        }
        if (rd16(s, 6) != 0 || iommu_regs) {
            panic("IOMMU: only one remapping unit, of PCI segment 0, is "
                  "supported");
        }
        iommu_regs = rd32(s, 8) | (uint64_t)rd32(s, 12) << 32;
    }
    if (!iommu_regs) {
        panic("IOMMU: the DMAR table has no remapping unit");
    }
}

/*
 * Translates every device's DMA with the NPT (build_npt() and the bad
 * pages done): one context table, for every bus, whose entries all point
 * to the NPT in one domain; then the registers leave the guest's view.
 */
void enable_iommu(void)
{
    uint64_t root, context, *e;
    uint64_t size;

    if (!iommu_regs) {
        return;
    }
    if (npt.levels != 4 || !(vtd_rd64(VTD_CAP) & CAP_SAGAW_48)) {
        panic("IOMMU: the NPT has %d levels; the remapping unit must "
              "walk 4-level tables (QEMU: -device intel-iommu,"
              "aw-bits=48)", npt.levels);
    }
    root = page_alloc();        /* zeroed */
    context = page_alloc();
    for (unsigned i = 0; i < 256; i++) {
        uint64_t *r = (uint64_t *)hptr(root) + 2 * i;
        uint64_t *c = (uint64_t *)hptr(context) + 2 * i;

        r[0] = context | ENTRY_P;
        c[0] = npt.root | ENTRY_P;      /* untranslated requests only */
        c[1] = CONTEXT_AW_48 | DOMAIN_ID << 8;
    }
    vtd_wr64(VTD_RTADDR, root);
    vtd_command(GCMD_SRTP, "setting the root table");
    vtd_invalidate(VTD_CCMD, CCMD_ICC | CCMD_GLOBAL, CCMD_ICC, "context");
    vtd_invalidate(ECAP_IRO(vtd_rd64(VTD_ECAP)) + 8,
                   IOTLB_IVT | IOTLB_GLOBAL, IOTLB_IVT, "IOTLB");
    vtd_command(GCMD_TE, "enabling translation");

    for (uint64_t a = iommu_regs; a < iommu_regs + VTD_REG_SIZE;
         a += PAGE_4K) {
        e = pt_lookup(&npt, a, &size);
        if (!e || size != PAGE_4K) {
            panic("IOMMU: its registers at 0x%lx are not in 4 KiB "
                  "device pages", a);
        }
        *e = 0;
    }
    printf("THINVMM: IOMMU at 0x%lx translates DMA with the NPT\n",
           iommu_regs);
}
