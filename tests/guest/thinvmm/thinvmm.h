/*
 * thinvmm: what its parts share.  The guest-physical layout (main.c has
 * the whole picture), the state that the options and the host's memory
 * map set, and each part's entry points, under the part's name.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef THINVMM_H
#define THINVMM_H

#include "libguest.h"
#include "paging.h"
#include "smp.h"
#include "svm.h"
#include "dseg.h"

#define MIB                     ((uint64_t)1 << 20)
#define GIB                     ((uint64_t)1 << 30)
#define LOW_END                 MIB             /* low RAM: [1, 15 MiB) */
#define LOW_RAM_END             (15 * MIB)
#define FIRMWARE_END            (16 * MIB)      /* firmware: [15, 16 MiB) */
#define LOW_OFFSET              (128 * MIB)     /* its backing: hPA - gPA */
#define HIGH_START              (4 * GIB)       /* high RAM from here */
#define HOST_RAM_LIMIT          (4 * GIB)
#define THINVMM_MAGIC           0x74686e76u
#define MAX_BAD_PAGES           16

#define E820_RAM                1
#define E820_RESERVED           2

/* Guest boot structures: the zero page and command line in the low RAM,
 * what APs need later in the firmware area, which Linux leaves alone. */
#define GPA_ZERO_PAGE           (LOW_END)
#define GPA_CMDLINE             (LOW_END + 0x1000)
#define GPA_MAILBOX             (LOW_RAM_END)
#define GPA_GDT                 (LOW_RAM_END + 0x1000)
#define GPA_ACPI                (LOW_RAM_END + 0x2000)  /* RSDP, RSDT */
#define GPA_MADT                (LOW_RAM_END + 0x3000)
#define MADT_MAX                0x1000
#define GPA_BOOT_PT             (LOW_RAM_END + 0x10000)
#define BOOT_PT_SIZE            (FIRMWARE_END - GPA_BOOT_PT)

/* The wake-up mailbox of the MADT's Multiprocessor Wakeup Structure. */
#define MAILBOX_COMMAND         0       /* u16: 1 = wake up */
#define MAILBOX_APIC_ID         4       /* u32 */
#define MAILBOX_WAKEUP_VECTOR   8       /* u64 */
#define MAILBOX_WAKEUP          1

/* The 64-bit boot protocol's entry: segments and offset in the kernel. */
#define BOOT_CS                 0x10
#define BOOT_DS                 0x18
#define STARTUP_64_OFFSET       0x200   /* 64-bit entry: kernel + 0x200 */

/* --- main.c: the options --------------------------------------------- */
extern bool use_segment;
extern bool guest_dseg;         /* the guest has the guest segment */

/* --- memory.c -------------------------------------------------------- */
#define HMAP_MAX                64

/* Host e820 (multiboot memory map), copied before the pool can touch it. */
struct host_e820_entry {
    uint64_t addr, len;
    uint32_t type;
};

extern struct host_e820_entry hmap[HMAP_MAX];
extern unsigned nhmap;
extern uint64_t high_size;              /* RAM at [HIGH_START, ...) */
extern uint64_t high_offset;            /* its backing: hPA - gPA */
extern uint64_t npt_page;               /* its nested page size */
extern struct pt npt;
extern unsigned nbad;                   /* faulty pages */

void read_host_e820(const struct multiboot_info *mbi);
uint64_t host_low_ram_end(void);
uint64_t host_high_ram_end(void);
void lay_out_ram(uint64_t guest_mb);
void build_npt(void);
void setup_bad_pages(unsigned n, uint64_t kernel_gpa);
bool bad_pages_intact(void);
void arm_vmm_segment(void);
void map_host_high_ram(void);
void check_pool(void);

/* --- linux_boot.c ---------------------------------------------------- */
/* The Linux boot, as guest_main() prepares it. */
struct linux_boot {
    const uint8_t *kimg;                /* bzImage module */
    uint64_t ksize;
    const uint8_t *initrd;              /* initramfs module */
    uint64_t isize;
    uint64_t setup_size;                /* the bzImage's real-mode part */
    uint64_t kernel_gpa, initrd_gpa;    /* where they are loaded */
    const char *cmdline;                /* Linux's command line */
};

const char *linux_cmdline(const char *cmdline);
void place_linux(const struct multiboot_info *mbi, struct linux_boot *lb);
void load_linux(const struct linux_boot *lb);
void build_zero_page(const struct linux_boot *lb);
/* The zero page's acpi_rsdp_addr. */
void zero_page_set_acpi_rsdp(uint64_t rsdp_gpa);
void build_gdt(void);
uint64_t build_boot_page_tables(void);

/* --- acpi.c ---------------------------------------------------------- */
uint64_t build_acpi(void);
unsigned count_cpus(void);
const uint8_t *acpi_table(const char *sig);

/* --- iommu.c --------------------------------------------------------- */
extern uint64_t iommu_regs;     /* VT-d register base, 0 if none */

void find_iommu(void);
void enable_iommu(void);

/* --- vcpu.c ---------------------------------------------------------- */
extern unsigned ncpus;

void setup_vcpus(uint64_t entry, uint64_t boot_cr3);
void start_aps(void);
int run_vcpu(unsigned cpu);

/* --- addresses and little-endian fields ------------------------------- */
static inline uint8_t *hptr(uint64_t hpa)
{
    return (uint8_t *)(uintptr_t)hpa;
}

/* Host address backing guest RAM (before any bad-page remap). */
static inline uint64_t gpa_to_hpa(uint64_t gpa)
{
    if (gpa >= HIGH_START) {
        return gpa + high_offset;
    }
    return gpa < LOW_END ? gpa : gpa + LOW_OFFSET;
}

static inline void *gptr(uint64_t gpa)
{
    return hptr(gpa_to_hpa(gpa));
}

static inline uint16_t rd16(const uint8_t *p, unsigned off)
{
    return p[off] | (p[off + 1] << 8);
}

static inline uint32_t rd32(const uint8_t *p, unsigned off)
{
    return rd16(p, off) | ((uint32_t)rd16(p, off + 2) << 16);
}

static inline void wr32(uint8_t *p, unsigned off, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[off + i] = v >> (8 * i);
    }
}

static inline void wr64(uint8_t *p, unsigned off, uint64_t v)
{
    wr32(p, off, (uint32_t)v);
    wr32(p, off + 4, (uint32_t)(v >> 32));
}

#endif /* THINVMM_H */
