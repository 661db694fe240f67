/*
 * qemu-dseg test guests: code run in system management mode.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "smm.h"
#include "smp.h"

/*
 * Where an SMI enters: SMBASE + 0x8000.  SeaBIOS relocates SMBASE to the
 * legacy SMRAM at 0xA0000, which is visible outside SMM only while the
 * q35 host bridge's SMRAM register has D_OPEN set.  The reset SMBASE
 * (0x30000) is ordinary RAM.
 */
#define SMM_ENTRY_OFFSET        0x8000u
static const uint32_t smbases[] = { 0xa0000, 0x30000 };

/* PCI configuration of the q35 host bridge (0:0.0): its SMRAM register. */
#define PCI_CONFIG_ADDR         0xcf8
#define PCI_CONFIG_DATA         0xcfc
#define MCH_SMRAM               0x9d
#define MCH_SMRAM_D_OPEN        0x40

/* Spin iterations to wait for the SMI to be taken. */
#define SMI_TIMEOUT             20000000

static unsigned smm_apic_id;

static struct {
    smm_fn *fn;
    void *arg;
    volatile bool done;                 /* volatile: set in SMM */
} smm_req;

static uint8_t mch_smram_read(void)
{
    outl(PCI_CONFIG_ADDR, 0x80000000u | (MCH_SMRAM & ~3u));
    return inb(PCI_CONFIG_DATA + (MCH_SMRAM & 3));
}

static void mch_smram_write(uint8_t v)
{
    outl(PCI_CONFIG_ADDR, 0x80000000u | (MCH_SMRAM & ~3u));
    outb(PCI_CONFIG_DATA + (MCH_SMRAM & 3), v);
}

void smm_install(void)
{
    size_t len = entry16_end - smm_entry16;
    uint8_t smram = mch_smram_read();

    mch_smram_write(smram | MCH_SMRAM_D_OPEN);
    for (unsigned i = 0; i < ARRAY_SIZE(smbases); i++) {
        memcpy((void *)(uintptr_t)(smbases[i] + SMM_ENTRY_OFFSET),
               smm_entry16, len);
    }
    mch_smram_write(smram);
    smm_apic_id = smp_apic_id();
}

volatile uint64_t smm_peek_addr, smm_peek_value;

void smm_expect(smm_fn *fn, void *arg)
{
    smm_req.fn = fn;
    smm_req.arg = arg;
    smm_req.done = false;
}

bool smm_ran(void)
{
    return smm_req.done;
}

bool smm_call(smm_fn *fn, void *arg)
{
    smm_expect(fn, arg);
    smp_send_ipi(smm_apic_id, ICR_DM_SMI);
    for (unsigned long i = 0; i < SMI_TIMEOUT && !smm_req.done; i++) {
        cpu_relax();
    }
    return smm_req.done;
}

void smm_start(void)
{
    smm_req.fn(smm_req.arg);
    smm_req.done = true;
}
