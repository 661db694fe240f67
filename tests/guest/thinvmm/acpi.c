/*
 * thinvmm: ACPI.  The guest's tables (build_acpi()), the count of the
 * CPUs that become vCPUs, and the firmware's tables by signature.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "thinvmm.h"

/* MADT entry types, and the length of a Multiprocessor Wakeup Structure. */
#define MADT_LAPIC              0
#define MADT_MP_WAKEUP          0x10
#define MADT_MP_WAKEUP_LEN      16

static uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;

    while (len--) {
        sum += *p++;
    }
    return (uint8_t)-sum;
}

static const uint8_t *find_rsdp(void)
{
    for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
        const uint8_t *p = hptr(a);

        if (!memcmp(p, "RSD PTR ", 8) && !acpi_checksum(p, 20)) {
            return p;
        }
    }
    panic("no ACPI RSDP in the BIOS area");
}

static uint64_t copy_madt(const uint8_t *madt)
{
    uint32_t len = rd32(madt, 4);
    uint8_t *m = gptr(GPA_MADT);

    if (len + MADT_MP_WAKEUP_LEN > MADT_MAX) {
        panic("MADT too large (%u bytes)", len);
    }
    memcpy(m, madt, len);
    m[len] = MADT_MP_WAKEUP;
    m[len + 1] = MADT_MP_WAKEUP_LEN;
    memset(m + len + 2, 0, 6);          /* mailbox version 0, reserved */
    wr64(m, len + 8, GPA_MAILBOX);
    wr32(m, 4, len + MADT_MP_WAKEUP_LEN);
    m[9] = 0;
    m[9] = acpi_checksum(m, len + MADT_MP_WAKEUP_LEN);
    return GPA_MADT;
}

/* The firmware's root table (XSDT, else RSDT): its entries. */
struct acpi_root {
    const uint8_t *rsdp, *sdt;
    unsigned esize, n;
};

static struct acpi_root acpi_root(void)
{
    struct acpi_root r = { .rsdp = find_rsdp() };
    bool xsdt = r.rsdp[15] >= 2;

    r.sdt = hptr(xsdt ? rd32(r.rsdp, 24) | (uint64_t)rd32(r.rsdp, 28) << 32
                      : rd32(r.rsdp, 16));
    r.esize = xsdt ? 8 : 4;
    r.n = (rd32(r.sdt, 4) - 36) / r.esize;
    return r;
}

static const uint8_t *acpi_entry(const struct acpi_root *r, unsigned i)
{
    uint64_t a = rd32(r->sdt, 36 + i * r->esize);

    if (r->esize == 8) {
        a |= (uint64_t)rd32(r->sdt, 40 + i * r->esize) << 32;
    }
    return hptr(a);
}

/* The firmware's table with signature SIG, or NULL. */
const uint8_t *acpi_table(const char *sig)
{
    struct acpi_root r = acpi_root();

    for (unsigned i = 0; i < r.n; i++) {
        const uint8_t *t = acpi_entry(&r, i);

        if (!memcmp(t, sig, 4)) {
            return t;
        }
    }
    return NULL;
}

/*
 * The guest's ACPI tables, for SMP or when the hypervisor keeps an IOMMU:
 * the firmware's RSDT (or XSDT) entries in a new RSDT, without the DMAR
 * table (the IOMMU is the hypervisor's, iommu.c), with the MADT replaced
 * by a copy that ends with a Multiprocessor Wakeup Structure for the
 * mailbox at GPA_MAILBOX; returns the new RSDP's gPA.
 */
uint64_t build_acpi(void)
{
    struct acpi_root r = acpi_root();
    const uint8_t *rsdp = r.rsdp, *sdt = r.sdt;
    unsigned n = 0;
    uint8_t *new_rsdp = gptr(GPA_ACPI);
    uint8_t *rsdt = new_rsdp + 32;
    bool have_madt = false;

    if (36 + 4 * r.n > PAGE_4K - 32) {
        panic("too many ACPI tables (%u)", r.n);
    }
    memcpy(rsdt, sdt, 36);
    memcpy(rsdt, "RSDT", 4);
    for (unsigned i = 0; i < r.n; i++) {
        const uint8_t *t = acpi_entry(&r, i);
        uint64_t a = (uintptr_t)t;

        if (!memcmp(t, "DMAR", 4)) {
            continue;
        }
        if (!memcmp(t, "APIC", 4)) {
            a = copy_madt(t);
            have_madt = true;
        }
        if (a >> 32) {
            panic("ACPI table above 4 GiB");
        }
        wr32(rsdt, 36 + 4 * n++, (uint32_t)a);
    }
    wr32(rsdt, 4, 36 + 4 * n);
    if (!have_madt) {
        panic("no MADT among the ACPI tables");
    }
    rsdt[9] = 0;
    rsdt[9] = acpi_checksum(rsdt, 36 + 4 * n);
    memcpy(new_rsdp, rsdp, 20);
    new_rsdp[15] = 0;                   /* revision 0: RSDT only */
    wr32(new_rsdp, 16, GPA_ACPI + 32);
    new_rsdp[8] = 0;
    new_rsdp[8] = acpi_checksum(new_rsdp, 20);
    memset(gptr(GPA_MAILBOX), 0, PAGE_4K);
    return GPA_ACPI;
}

/* The enabled local APICs of the firmware's MADT: vCPUs 0 to N-1. */
unsigned count_cpus(void)
{
    const uint8_t *t = acpi_table("APIC");
    unsigned n = 0;

    for (uint32_t off = 44; t && off + 2 <= rd32(t, 4); off += t[off + 1]) {
        if (t[off] == MADT_LAPIC && (rd32(t, off + 4) & 1)) {
            if (t[off + 3] != n) {
                panic("local APIC IDs must be 0 to N-1");
            }
            n++;
        }
        if (!t[off + 1]) {
            break;
        }
    }
    if (!n || n > SMP_MAX_CPUS) {
        panic("%u CPUs: 1 to %u are supported", n, SMP_MAX_CPUS);
    }
    return n;
}
