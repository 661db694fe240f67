/*
 * thinvmm: a thin test hypervisor that boots an unmodified Linux bzImage
 * as its SVM guest, with nested paging and optionally a VMM segment.
 *
 * QEMU starts it as a multiboot kernel:
 *
 *   -kernel thinvmm.bin -initrd "bzImage,initramfs.cpio.gz"
 *   -append "mode=vmm [bad_pages=N] [guest_mb=N] [guest_dseg=1]
 *            -- LINUX COMMAND LINE"
 *
 * The two multiboot modules are the Linux kernel and its initramfs.  The
 * hypervisor loads the kernel above 4 GiB through the 64-bit Linux boot
 * protocol (zero page with the setup header copied from the bzImage, e820
 * map, command line, ramdisk, identity-mapped boot page tables) and runs it
 * in guest mode with everything passed through:
 * no I/O intercepts, no interrupt intercepts (physical interrupts reach the
 * guest's IDT directly, V_INTR_MASKING off), no exception intercepts.  The
 * guest drives the emulated serial port, timers, APIC and PCI itself.
 * The only exits are shutdown, CPUID (SVM and DSEG are hidden), VMMCALL
 * (a user program in the guest reports to the hypervisor), VMRUN (required)
 * and the MSRs the guest must not reach (VM_HSAVE_PA, the DSEG block).
 * guest_dseg=1 gives the guest the guest segment: CPUID shows it DSEG and
 * BASE_G, LIMIT_G and OFFSET_G are not intercepted, so the guest programs
 * its own copy of the guest segment (the VMCB's), which VMRUN loads; the
 * VMM segment and the escape filter stay the hypervisor's.
 *
 * Guest-physical memory, laid out the way self-ballooning leaves a
 * big-memory guest: a small low part that only holds the boot structures,
 * and all the rest of its RAM in one range above 4 GiB.
 *   [0, 1 MiB)                identity (BIOS data, EBDA, RSDP, option ROMs)
 *   [1 MiB, 15 MiB)           low RAM, backed at hPA = gPA + LOW_OFFSET
 *   [15 MiB, 16 MiB)          the hypervisor's firmware area, reserved in the
 *                             e820 map, backed the same way: boot GDT and
 *                             page tables, ACPI tables, wake-up mailbox
 *   firmware-reserved ranges  identity (ACPI tables at the top of low RAM)
 *   [host RAM end, 4 GiB)     identity (PCI holes, IOAPIC, HPET, LAPIC...)
 *   [4 GiB, 4 GiB + high)     high RAM, backed at hPA = gPA + high_offset,
 *                             at the top of the host's RAM above 4 GiB
 * guest_mb=N is the guest's RAM from 1 MiB up (low + high); by default it
 * is the size of the host's RAM above 4 GiB (QEMU's -m 10G on q35 leaves
 * 8 GiB there: an 8 GiB guest, 99.8% of it high).  The layout is printed
 * at start ("THINVMM-LAYOUT").  The hypervisor's memory (its image, page
 * pool, spare pages and the rest of host RAM) is neither in the guest's
 * e820 map nor in its NPT.  Every nested page is 4 KiB, so a nested walk
 * always reads 4 entries.
 *
 * SMP: every CPU that QEMU gives (-smp N, N <= 4) is a vCPU of the guest,
 * vCPU i running on CPU i with its own VMCB, the same NPT, and the same
 * VMM segment and escape filter (programmed on every CPU, as the spec
 * requires).  With more than one CPU the guest's ACPI tables are the
 * firmware's with a MADT that also has a Multiprocessor Wakeup Structure
 * (ACPI 6.4, 5.2.12.19), passed in the zero page (acpi_rsdp_addr): Linux
 * starts an AP by writing its APIC ID and a 64-bit entry point to the
 * mailbox, where the AP waits in the hypervisor, which then runs the
 * guest's AP there in 64-bit mode on the boot page tables.  So no INIT or
 * SIPI ever has to be intercepted.  The guest's own local APICs, IPIs
 * included, are passed through: vCPU i owns CPU i's APIC.
 *
 * Modes: mode=base uses the NPT only; mode=vmm adds a VMM segment over the
 * high RAM with OFFSET = high_offset.  bad_pages=N (implies vmm)
 * treats N host pages inside the segment as permanently faulty: their gPAs
 * go into the escape filter, their NPT entries are remapped to spare host
 * pages (content copied first), and the faulty pages are filled with a
 * sentinel that the guest must never overwrite.
 *
 * Reports: each guest VMMCALL (RAX = THINVMM_MAGIC, RBX = code) prints a
 * "THINVMM-VMMCALL code" line and stops at a test checkpoint, so that the
 * harness can read the counters of an exact window; code 0 ends the run
 * with isa-debug-exit status RCX.  Any other exit (a shutdown, or a #NPF
 * on a gPA the NPT does not map, such as the hypervisor's hidden memory)
 * is reported ("THINVMM-EXIT") and ends the run with status 0x70.
 *
 * The multiboot information is the one the loader passed in EBX
 * (multiboot_info()).  The modules are copied to their guest homes before
 * the first page-pool allocation (the pool starts at 16 MiB, where QEMU
 * has loaded the modules).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
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
#define THINVMM_MAGIC           0x74686e76u
#define MAX_BAD_PAGES           16

#define E820_RAM                1
#define E820_RESERVED           2

/* Linux boot protocol: offsets in the zero page (struct boot_params). */
#define BP_ACPI_RSDP_ADDR       0x070
#define BP_EXT_RAMDISK_IMAGE    0x0c0
#define BP_EXT_RAMDISK_SIZE     0x0c4
#define BP_E820_ENTRIES         0x1e8
#define BP_HDR                  0x1f1   /* setup header starts here */
#define BP_SETUP_SECTS          0x1f1
#define BP_BOOT_FLAG            0x1fe
#define BP_JUMP_LEN             0x201   /* header ends at 0x202 + this */
#define BP_HEADER_MAGIC         0x202
#define BP_VERSION              0x206
#define BP_VID_MODE             0x1fa
#define BP_TYPE_OF_LOADER       0x210
#define BP_LOADFLAGS            0x211
#define BP_RAMDISK_IMAGE        0x218
#define BP_RAMDISK_SIZE         0x21c
#define BP_CMD_LINE_PTR         0x228
#define BP_RELOCATABLE          0x234
#define BP_XLOADFLAGS           0x236
#define BP_CMDLINE_SIZE         0x238
#define BP_INIT_SIZE            0x260
#define BP_E820_TABLE           0x2d0
#define BP_E820_MAX             128
#define LOADED_HIGH             (1u << 0)
#define KEEP_SEGMENTS           (1u << 6)
#define XLF_KERNEL_64           (1u << 0)
#define XLF_CAN_BE_LOADED_ABOVE_4G (1u << 1)
#define STARTUP_64_OFFSET       0x200   /* 64-bit entry: kernel + 0x200 */

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

/* ACPI: the MADT's Multiprocessor Wakeup Structure and its mailbox. */
#define MADT_LAPIC              0
#define MADT_MP_WAKEUP          0x10
#define MADT_MP_WAKEUP_LEN      16
#define MAILBOX_COMMAND         0       /* u16: 1 = wake up */
#define MAILBOX_APIC_ID         4       /* u32 */
#define MAILBOX_WAKEUP_VECTOR   8       /* u64 */
#define MAILBOX_WAKEUP          1
#define BOOT_CS                 0x10
#define BOOT_DS                 0x18
#define EFER_LME                (1u << 8)
#define EFER_LMA                (1u << 10)
#define CR0_PE_ET_PG            0x80000011u
#define CR4_PAE                 (1u << 5)

#define BAD_SENTINEL            0xbadbadbadbad0000ull
#define HOST_RAM_LIMIT          (4 * GIB)

static uint64_t high_size;              /* RAM at [HIGH_START, ...) */
static uint64_t high_offset;            /* its backing: hPA - gPA */
static bool use_segment;
static bool guest_dseg;         /* the guest has the guest segment */
static struct pt npt;
static struct svm_vm vms[SMP_MAX_CPUS];  /* vCPU i: CPU (APIC ID) i */
static uint64_t ap_hsave[SMP_MAX_CPUS];
static volatile bool ap_waiting[SMP_MAX_CPUS];
static unsigned ncpus = 1;
static volatile int console_busy;       /* the console's lock */

static struct {
    uint64_t gpa, bad_hpa, spare_hpa;
} bad[MAX_BAD_PAGES];
static unsigned nbad;

/* Host e820 (multiboot memory map), copied before the pool can touch it. */
static struct {
    uint64_t addr, len;
    uint32_t type;
} hmap[64];
static unsigned nhmap;

/* Exits of all vCPUs (atomic adds). */
static uint64_t exits_cpuid, exits_msr, exits_vmmcall, exits_other;

static uint8_t *hptr(uint64_t hpa)
{
    return (uint8_t *)(uintptr_t)hpa;
}

/* Host address backing guest RAM (before any bad-page remap). */
static uint64_t gpa_to_hpa(uint64_t gpa)
{
    if (gpa >= HIGH_START) {
        return gpa + high_offset;
    }
    return gpa < LOW_END ? gpa : gpa + LOW_OFFSET;
}

static void *gptr(uint64_t gpa)
{
    return hptr(gpa_to_hpa(gpa));
}

static uint16_t rd16(const uint8_t *p, unsigned off)
{
    return p[off] | (p[off + 1] << 8);
}

static uint32_t rd32(const uint8_t *p, unsigned off)
{
    return rd16(p, off) | ((uint32_t)rd16(p, off + 2) << 16);
}

static void wr32(uint8_t *p, unsigned off, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[off + i] = v >> (8 * i);
    }
}

static void wr64(uint8_t *p, unsigned off, uint64_t v)
{
    wr32(p, off, (uint32_t)v);
    wr32(p, off + 4, (uint32_t)(v >> 32));
}

static uint64_t host_low_ram_end(void)
{
    uint64_t end = 0;

    for (unsigned i = 0; i < nhmap; i++) {
        uint64_t e = hmap[i].addr + hmap[i].len;

        if (hmap[i].type == E820_RAM && hmap[i].addr < HOST_RAM_LIMIT &&
            e > end) {
            end = e < HOST_RAM_LIMIT ? e : HOST_RAM_LIMIT;
        }
    }
    return end;
}

/* End of the host's RAM range that starts at 4 GiB (4 GiB if none). */
static uint64_t host_high_ram_end(void)
{
    for (unsigned i = 0; i < nhmap; i++) {
        if (hmap[i].type == E820_RAM && hmap[i].addr == HIGH_START) {
            return hmap[i].addr + hmap[i].len;
        }
    }
    return HIGH_START;
}

static void add_e820(uint8_t *bp, uint64_t addr, uint64_t len, uint32_t type)
{
    unsigned n = bp[BP_E820_ENTRIES];

    if (n >= BP_E820_MAX) {
        panic("guest e820 map full");
    }
    wr64(bp, BP_E820_TABLE + 20 * n, addr);
    wr64(bp, BP_E820_TABLE + 20 * n + 8, len);
    wr32(bp, BP_E820_TABLE + 20 * n + 16, type);
    bp[BP_E820_ENTRIES] = n + 1;
}

/*
 * Guest e820: the host's map below 1 MiB as it is, the guest's low and high
 * RAM, and every non-RAM range of the host (ACPI tables, reserved firmware
 * and MMCONFIG ranges) as it is.  The host's RAM above 1 MiB is not shown.
 */
static void build_e820(uint8_t *bp)
{
    for (unsigned i = 0; i < nhmap; i++) {
        uint64_t a = hmap[i].addr, e = a + hmap[i].len;

        if (a < LOW_END) {
            add_e820(bp, a, (e < LOW_END ? e : LOW_END) - a, hmap[i].type);
        } else if (hmap[i].type != E820_RAM) {
            add_e820(bp, a, e - a, hmap[i].type);
        }
    }
    add_e820(bp, LOW_END, LOW_RAM_END - LOW_END, E820_RAM);
    add_e820(bp, LOW_RAM_END, FIRMWARE_END - LOW_RAM_END, E820_RESERVED);
    add_e820(bp, HIGH_START, high_size, E820_RAM);
}

static void npt_identity(uint64_t start, uint64_t end)
{
    start &= ~(PAGE_4K - 1);
    end = (end + PAGE_4K - 1) & ~(PAGE_4K - 1);
    for (uint64_t a = start; a < end; a += PAGE_4K) {
        if (!pt_lookup(&npt, a, NULL)) {
            npt_map(&npt, a, a, PAGE_4K);
        }
    }
}

static void build_npt(void)
{
    uint64_t ram_end = host_low_ram_end();

    npt_init(&npt, paging_levels());
    npt_map_range(&npt, 0, 0, LOW_END, PAGE_4K);
    npt_map_range(&npt, LOW_END, LOW_END + LOW_OFFSET, FIRMWARE_END - LOW_END,
                  PAGE_4K);
    npt_map_range(&npt, HIGH_START, HIGH_START + high_offset, high_size,
                  PAGE_4K);
    for (unsigned i = 0; i < nhmap; i++) {
        if (hmap[i].type != E820_RAM && hmap[i].addr >= LOW_END &&
            hmap[i].addr < HOST_RAM_LIMIT) {
            npt_identity(hmap[i].addr, hmap[i].addr + hmap[i].len);
        }
    }
    /* Device space: everything from the end of low RAM up to 4 GiB. */
    npt_identity((ram_end + PAGE_2M - 1) & ~(PAGE_2M - 1), HOST_RAM_LIMIT);
}

/* Guest GDT for the 64-bit boot protocol: __BOOT_CS and __BOOT_DS. */
static void build_gdt(void)
{
    uint64_t *gdt = gptr(GPA_GDT);

    gdt[0] = 0;
    gdt[1] = 0;
    gdt[2] = 0x00af9b000000ffffull;     /* 0x10: 64-bit code */
    gdt[3] = 0x00cf93000000ffffull;     /* 0x18: data, flat */
}

/*
 * The guest's boot page tables, in its low RAM: an identity map of every
 * GiB up to the end of its high RAM, with 1 GiB pages.  Linux replaces
 * them with its own at once; they only carry the 64-bit entry.
 */
static uint64_t build_boot_page_tables(void)
{
    static struct page_pool pool;
    struct pt gpt;
    uint64_t end = (HIGH_START + high_size + PAGE_1G - 1) & ~(PAGE_1G - 1);

    pool_init(&pool, gpa_to_hpa(GPA_BOOT_PT), BOOT_PT_SIZE);
    pt_init(&gpt, 4, &pool, GPA_BOOT_PT - gpa_to_hpa(GPA_BOOT_PT));
    pt_map_range(&gpt, 0, 0, end, PAGE_1G, PTE_RW);
    return gpt.root;
}

/*
 * The VMCB of a vCPU, entering the guest at @entry in 64-bit mode on the
 * boot page tables.  Allocates: on the BSP only.
 */
static void setup_vm(struct svm_vm *vm, uint64_t entry, uint64_t boot_cr3)
{
    svm_vm_init(vm);
    /* Pass everything through: no I/O, exception or HLT intercepts. */
    memset((void *)(uintptr_t)vm->iopm, 0, 3 * PAGE_4K);
    memset((void *)(uintptr_t)vm->msrpm, 0, 2 * PAGE_4K);
    svm_intercept_msr(vm, MSR_VM_HSAVE_PA, true, true);
    for (uint32_t m = MSR_DSEG_BLOCK_FIRST; m <= MSR_DSEG_BLOCK_LAST; m++) {
        bool guest_reg = m >= MSR_DSEG_BASE_G && m <= MSR_DSEG_OFFSET_G;

        svm_intercept_msr(vm, m, !(guest_dseg && guest_reg),
                          !(guest_dseg && guest_reg));
    }
    vmcb_set(vm, VMCB_INTERCEPT,
             SVM_INTERCEPT_VMRUN | SVM_INTERCEPT_VMMCALL |
             SVM_INTERCEPT_SHUTDOWN | SVM_INTERCEPT_MSR |
             SVM_INTERCEPT_CPUID);
    svm_set_exception_intercepts(vm, 0);
    vmcb_set(vm, VMCB_INTR_CTRL, 0);   /* no V_INTR_MASKING */
    svm_set_npt(vm, &npt);

    /* 64-bit mode with identity-mapped paging, as the boot protocol wants. */
    vmcb_set_seg(vm, VMCB_CS, BOOT_CS, VMCB_CS_ATTR_LONG, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_DS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_ES, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_SS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_FS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_GS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_LDTR, 0, VMCB_LDTR_ATTR, 0xffff, 0);
    vmcb_set_seg(vm, VMCB_TR, 0, VMCB_TR_ATTR, 0xffff, 0);
    vmcb_set_seg(vm, VMCB_GDTR, 0, 0, 4 * 8 - 1, GPA_GDT);
    vmcb_set_seg(vm, VMCB_IDTR, 0, 0, 0, 0);
    vmcb_set(vm, VMCB_EFER, EFER_SVME | EFER_LME | EFER_LMA);
    vmcb_set(vm, VMCB_CR0, CR0_PE_ET_PG);
    vmcb_set(vm, VMCB_CR3, boot_cr3);
    vmcb_set(vm, VMCB_CR4, CR4_PAE);
    vmcb_set(vm, VMCB_RFLAGS, 0x2);
    vmcb_set(vm, VMCB_RIP, entry);
    vmcb_set(vm, VMCB_RSP, 0);
    vmcb_set(vm, VMCB_RAX, 0);
    memset(&vm->gprs, 0, sizeof(vm->gprs));
    vm->gprs.rsi = GPA_ZERO_PAGE;
}

/*
 * Faulty pages: copy to a spare page, remap, poison the original.  No vCPU
 * runs yet: every CPU escapes them in its filter (arm_vmm_segment())
 * before its vCPU first runs.
 */
static void setup_bad_pages(unsigned n, uint64_t kernel_gpa)
{
    uint64_t spare = (FIRMWARE_END + LOW_OFFSET + PAGE_2M - 1) &
                     ~(PAGE_2M - 1);

    if (n > MAX_BAD_PAGES) {
        panic("bad_pages=%u: at most %u", n, MAX_BAD_PAGES);
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t gpa = kernel_gpa + (i + 1) * PAGE_2M + 0x3000;
        uint64_t *e = pt_lookup(&npt, gpa, NULL);
        uint64_t *b;

        if (!e || spare + PAGE_4K > host_low_ram_end()) {
            panic("no room for bad page %u", i);
        }
        bad[i].gpa = gpa;
        bad[i].bad_hpa = gpa_to_hpa(gpa);
        bad[i].spare_hpa = spare;
        spare += PAGE_4K;
        memcpy(hptr(bad[i].spare_hpa), hptr(bad[i].bad_hpa), PAGE_4K);
        *e = (*e & ~PTE_ADDR_MASK) | bad[i].spare_hpa;
        b = (uint64_t *)hptr(bad[i].bad_hpa);
        for (unsigned w = 0; w < PAGE_4K / 8; w++) {
            b[w] = BAD_SENTINEL | w;
        }
        printf("THINVMM-BAD gpa=0x%lx bad-hpa=0x%lx spare-hpa=0x%lx\n",
               bad[i].gpa, bad[i].bad_hpa, bad[i].spare_hpa);
    }
    nbad = n;
}

static bool bad_pages_intact(void)
{
    for (unsigned i = 0; i < nbad; i++) {
        uint64_t *b = (uint64_t *)hptr(bad[i].bad_hpa);

        for (unsigned w = 0; w < PAGE_4K / 8; w++) {
            if (b[w] != (BAD_SENTINEL | w)) {
                return false;
            }
        }
    }
    return true;
}

static void inject_gp(struct svm_vm *vm)
{
    vmcb_set(vm, VMCB_EVENTINJ,
             EXC_GP | SVM_EVTINJ_TYPE_EXCP | SVM_EVTINJ_EV | SVM_EVTINJ_V);
}

static void handle_cpuid(struct svm_vm *vm)
{
    uint32_t leaf = (uint32_t)vmcb_get(vm, VMCB_RAX);
    uint32_t sub = (uint32_t)vm->gprs.rcx;
    uint32_t a, b, c, d;

    cpuid(leaf, sub, &a, &b, &c, &d);
    if (leaf == 0x80000001) {
        c &= ~((1u << 2) | (guest_dseg ? 0 : CPUID_EXT3_DSEG));  /* SVM */
    } else if (leaf == 0x8000000a) {
        a = b = c = d = 0;
    }
    vmcb_set(vm, VMCB_RAX, a);
    vm->gprs.rbx = b;
    vm->gprs.rcx = c;
    vm->gprs.rdx = d;
    svm_skip(vm, 2);
}

/* The console is shared by the vCPUs' exits: one line writer at a time. */
static void console_lock(void)
{
    while (__atomic_exchange_n(&console_busy, 1, __ATOMIC_ACQUIRE)) {
        cpu_relax();
    }
}

static void console_unlock(void)
{
    __atomic_store_n(&console_busy, 0, __ATOMIC_RELEASE);
}

static void count(uint64_t *counter)
{
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static void report(uint64_t code, unsigned cpu)
{
    console_lock();
    printf("\nTHINVMM-VMMCALL %lu exits: cpuid %lu msr %lu vmmcall %lu "
           "other %lu; bad pages %s", code, exits_cpuid, exits_msr,
           exits_vmmcall, exits_other,
           nbad ? (bad_pages_intact() ? "intact" : "WRITTEN") : "none");
    printf(cpu ? "; vCPU %u\n" : "\n", cpu);
    console_unlock();
}

/*
 * Runs vCPU @cpu until the guest ends the run; returns the exit status.
 * A guest VMMCALL stops at a test checkpoint on the BSP only (an AP cannot
 * wait for the harness: lib/smp.h); on an AP it returns ~0 in RAX.
 */
static int run_vcpu(struct svm_vm *vm, unsigned cpu)
{
    for (;;) {
        uint64_t code = svm_run(vm);

        switch (code) {
        case SVM_EXIT_CPUID:
            count(&exits_cpuid);
            handle_cpuid(vm);
            break;
        case SVM_EXIT_MSR:
            count(&exits_msr);
            inject_gp(vm);
            break;
        case SVM_EXIT_VMMCALL: {
            uint64_t c = vm->gprs.rbx;

            count(&exits_vmmcall);
            svm_skip(vm, 3);
            if ((uint32_t)vmcb_get(vm, VMCB_RAX) != THINVMM_MAGIC ||
                (cpu && c)) {
                vmcb_set(vm, VMCB_RAX, ~0ull);
                break;
            }
            report(c, cpu);
            if (c == 0) {
                console_lock();
                printf("THINVMM-DONE status %lu\n", vm->gprs.rcx);
                return (int)vm->gprs.rcx;
            }
            checkpoint("vmmcall-%lu", c);
            vmcb_set(vm, VMCB_RAX, 0);
            break;
        }
        case SVM_EXIT_VMRUN:
            count(&exits_other);
            vmcb_set(vm, VMCB_EVENTINJ,
                     EXC_UD | SVM_EVTINJ_TYPE_EXCP | SVM_EVTINJ_V);
            break;
        default:
            count(&exits_other);
            console_lock();
            printf("\nTHINVMM-EXIT %s on vCPU %u\n", svm_exit_name(code),
                   cpu);
            svm_report_exit(vm);
            return 0x70;
        }
    }
}

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

static void check_multiboot(const struct multiboot_info *mbi)
{
    if (!(mbi->flags & MULTIBOOT_INFO_MODS) || mbi->mods_count < 2 ||
        !(mbi->flags & MULTIBOOT_INFO_MEM_MAP)) {
        panic("need the memory map and two modules (bzImage, initramfs)");
    }
}

/* Copies the multiboot memory map into hmap[], printing each entry. */
static void read_host_e820(const struct multiboot_info *mbi)
{
    for (uint32_t off = 0; off < mbi->mmap_length && nhmap < 64;) {
        const struct multiboot_mmap_entry *m = (const void *)(uintptr_t)
                                               (mbi->mmap_addr + off);

        hmap[nhmap].addr = m->addr;
        hmap[nhmap].len = m->len;
        hmap[nhmap].type = m->type;
        printf("THINVMM: host e820 [0x%lx, 0x%lx) type %u\n", m->addr,
               m->addr + m->len, m->type);
        nhmap++;
        off += m->size + 4;
    }
}

/*
 * The guest's RAM: guest_mb MiB from 1 MiB up, the low part and the rest
 * above 4 GiB, placed at the top of the host's RAM above 4 GiB so that its
 * offset is not zero.
 */
static void lay_out_ram(uint64_t guest_mb)
{
    uint64_t host_end = host_high_ram_end();
    uint64_t host_mb = (host_end - HIGH_START) / MIB;
    uint64_t low = LOW_RAM_END - LOW_END;
    uint64_t base;

    if (host_end == HIGH_START) {
        panic("no host RAM above 4 GiB: start QEMU with more memory "
              "(q35 with -m 3G or more)");
    }
    if (!guest_mb) {
        guest_mb = host_mb;
    }
    if (guest_mb * MIB <= low + PAGE_2M) {
        panic("guest_mb=%lu: at least %lu", guest_mb, low / MIB + 3);
    }
    high_size = guest_mb * MIB - low;
    base = (host_end - high_size) & ~(PAGE_2M - 1);
    if (base <= HIGH_START) {
        panic("guest_mb=%lu: at most %lu with %lu MiB of host RAM above "
              "4 GiB", guest_mb, host_mb + low / MIB - 2, host_mb);
    }
    high_offset = base - HIGH_START;
}

/* Prints the guest's RAM and how much of it the VMM segment covers. */
static void print_layout(void)
{
    uint64_t below_1m = 0, total, bp;

    for (unsigned i = 0; i < nhmap; i++) {
        if (hmap[i].type == E820_RAM && hmap[i].addr < LOW_END) {
            uint64_t e = hmap[i].addr + hmap[i].len;

            below_1m += (e < LOW_END ? e : LOW_END) - hmap[i].addr;
        }
    }
    total = below_1m + (LOW_RAM_END - LOW_END) + high_size;
    bp = use_segment ? high_size * 10000 / total : 0;
    printf("THINVMM-LAYOUT guest RAM %lu KiB: below 1 MiB %lu KiB "
           "(identity); low [0x%lx, 0x%lx) at hPA +0x%lx; high [0x%lx, "
           "0x%lx) at hPA +0x%lx; VMM segment %s, %lu.%02lu%% of guest RAM; "
           "%u vCPU%s\n",
           total >> 10, below_1m >> 10, LOW_END, LOW_RAM_END, LOW_OFFSET,
           HIGH_START, HIGH_START + high_size, high_offset,
           use_segment ? "over high RAM" : "off", bp / 100, bp % 100,
           ncpus, ncpus > 1 ? "s" : "");
}

/*
 * mode=, bad_pages=, guest_mb= and guest_dseg=: sets use_segment and the
 * RAM layout and returns the number of bad pages asked for.
 */
static unsigned parse_options(const char *cmdline)
{
    char mode[16] = "vmm";
    unsigned nbad_req;

    cmdline_get(cmdline, "mode", mode, sizeof(mode));
    nbad_req = cmdline_get_u64(cmdline, "bad_pages", 0);
    lay_out_ram(cmdline_get_u64(cmdline, "guest_mb", 0));
    guest_dseg = cmdline_get_u64(cmdline, "guest_dseg", 0);
    if (guest_dseg && !dseg_available()) {
        panic("guest_dseg=1 needs -cpu ...,+dseg");
    }
    use_segment = !strncmp(mode, "vmm", 4) || nbad_req;
    if (strncmp(mode, "vmm", 4) && strncmp(mode, "base", 5)) {
        panic("mode=%s: use base or vmm", mode);
    }
    if (FIRMWARE_END + LOW_OFFSET + 2 * MIB > host_low_ram_end()) {
        panic("host RAM below 4 GiB ends at 0x%lx: too small",
              host_low_ram_end());
    }
    return nbad_req;
}

/* The Linux command line: what follows a "--" word, else a default. */
static const char *linux_cmdline(const char *cmdline)
{
    for (const char *p = cmdline; *p; p++) {
        if (p[0] == '-' && p[1] == '-' && (p == cmdline || p[-1] == ' ') &&
            (p[2] == ' ' || !p[2])) {
            return p[2] ? p + 3 : p + 2;
        }
    }
    return "console=ttyS0";
}

/* Finds the two modules, checks the bzImage and places kernel and initrd. */
static void place_linux(const struct multiboot_info *mbi,
                        struct linux_boot *lb)
{
    const struct multiboot_mod *mods =
        (const void *)(uintptr_t)mbi->mods_addr;
    const uint8_t *kimg = hptr(mods[0].start);
    unsigned setup_sects;

    lb->kimg = kimg;
    lb->ksize = mods[0].end - mods[0].start;
    lb->initrd = hptr(mods[1].start);
    lb->isize = mods[1].end - mods[1].start;
    printf("THINVMM: mode %s, guest RAM %lu MiB, bzImage %lu bytes, "
           "initramfs %lu bytes\n", use_segment ? "vmm" : "base",
           (LOW_RAM_END - LOW_END + high_size) / MIB, lb->ksize, lb->isize);
    if (rd16(kimg, BP_BOOT_FLAG) != 0xaa55 ||
        rd32(kimg, BP_HEADER_MAGIC) != 0x53726448 ||
        rd16(kimg, BP_VERSION) < 0x20c ||
        !kimg[BP_RELOCATABLE] ||
        (rd16(kimg, BP_XLOADFLAGS) & (XLF_KERNEL_64 |
                                      XLF_CAN_BE_LOADED_ABOVE_4G)) !=
        (XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G)) {
        panic("module 0 is not a relocatable 64-bit bzImage that can be "
              "loaded above 4 GiB (boot protocol 2.12+)");
    }
    setup_sects = kimg[BP_SETUP_SECTS] ? kimg[BP_SETUP_SECTS] : 4;
    lb->setup_size = (setup_sects + 1) * 512ull;
    lb->kernel_gpa = HIGH_START;
    lb->initrd_gpa = (HIGH_START + high_size - 64 * MIB - lb->isize) &
                     ~(PAGE_4K - 1);
    if (lb->kernel_gpa + rd32(kimg, BP_INIT_SIZE) > lb->initrd_gpa) {
        panic("guest RAM too small for the kernel and the initramfs");
    }
}

/*
 * Copies the modules to their guest-physical homes, in the high RAM's
 * backing.  This must come before the page pool (from 16 MiB up) can
 * overwrite the modules, which QEMU loaded there.
 */
static void load_linux(const struct linux_boot *lb)
{
    memcpy(gptr(lb->kernel_gpa), lb->kimg + lb->setup_size,
           lb->ksize - lb->setup_size);
    memcpy(gptr(lb->initrd_gpa), lb->initrd, lb->isize);
}

/* Zero page: the setup header from the bzImage, then our fields. */
static void build_zero_page(const struct linux_boot *lb)
{
    uint8_t *bp = gptr(GPA_ZERO_PAGE);
    size_t cmdline_len = strlen(lb->cmdline);
    uint64_t hdr_end;

    memset(bp, 0, PAGE_4K);
    hdr_end = 0x202 + lb->kimg[BP_JUMP_LEN];
    memcpy(bp + BP_HDR, lb->kimg + BP_HDR, hdr_end - BP_HDR);
    bp[BP_TYPE_OF_LOADER] = 0xff;
    bp[BP_LOADFLAGS] = (bp[BP_LOADFLAGS] | LOADED_HIGH) & ~KEEP_SEGMENTS;
    wr32(bp, BP_RAMDISK_IMAGE, (uint32_t)lb->initrd_gpa);
    wr32(bp, BP_EXT_RAMDISK_IMAGE, (uint32_t)(lb->initrd_gpa >> 32));
    wr32(bp, BP_RAMDISK_SIZE, (uint32_t)lb->isize);
    wr32(bp, BP_EXT_RAMDISK_SIZE, (uint32_t)(lb->isize >> 32));
    wr32(bp, BP_CMD_LINE_PTR, GPA_CMDLINE);
    bp[BP_VID_MODE] = 0xff;
    bp[BP_VID_MODE + 1] = 0xff;
    if (cmdline_len >= rd32(bp, BP_CMDLINE_SIZE) || cmdline_len >= PAGE_4K) {
        panic("Linux command line too long");
    }
    memcpy(gptr(GPA_CMDLINE), lb->cmdline, cmdline_len + 1);
    build_e820(bp);
}

/*
 * This CPU's VMM segment over the high RAM, with the faulty pages in its
 * escape filter.  Every CPU programs its own, before any vCPU runs.
 */
static void arm_vmm_segment(void)
{
    wrmsr(MSR_DSEG_FILTER_CLEAR, 0);
    for (unsigned i = 0; i < nbad; i++) {
        wrmsr(MSR_DSEG_FILTER_INSERT, bad[i].gpa);
    }
    if (dseg_set(DSEG_V, HIGH_START, HIGH_START + high_size, high_offset) !=
        NO_EXCEPTION) {
        panic("VMM segment rejected");
    }
}

/*
 * The guest's ACPI tables for SMP: the firmware's RSDT (or XSDT) entries
 * in a new RSDT, with the MADT replaced by a copy that ends with a
 * Multiprocessor Wakeup Structure for the mailbox at GPA_MAILBOX; returns
 * the new RSDP's gPA.  Counts the enabled local APICs into ncpus.
 */
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

static uint64_t build_acpi(void)
{
    struct acpi_root r = acpi_root();
    const uint8_t *rsdp = r.rsdp, *sdt = r.sdt;
    unsigned n = r.n;
    uint8_t *new_rsdp = gptr(GPA_ACPI);
    uint8_t *rsdt = new_rsdp + 32;
    bool have_madt = false;

    if (36 + 4 * n > PAGE_4K - 32) {
        panic("too many ACPI tables (%u)", n);
    }
    memcpy(rsdt, sdt, 36);
    memcpy(rsdt, "RSDT", 4);
    wr32(rsdt, 4, 36 + 4 * n);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *t = acpi_entry(&r, i);
        uint64_t a = (uintptr_t)t;

        if (!memcmp(t, "APIC", 4)) {
            a = copy_madt(t);
            have_madt = true;
        }
        if (a >> 32) {
            panic("ACPI table above 4 GiB");
        }
        wr32(rsdt, 36 + 4 * i, (uint32_t)a);
    }
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
static unsigned count_cpus(void)
{
    struct acpi_root r = acpi_root();
    unsigned n = 0;

    for (unsigned i = 0; i < r.n; i++) {
        const uint8_t *t = acpi_entry(&r, i);

        if (memcmp(t, "APIC", 4)) {
            continue;
        }
        for (uint32_t off = 44; off + 2 <= rd32(t, 4); off += t[off + 1]) {
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
    }
    if (!n || n > SMP_MAX_CPUS) {
        panic("%u CPUs: 1 to %u are supported", n, SMP_MAX_CPUS);
    }
    return n;
}

/*
 * An AP: SVM and this CPU's VMM segment, then wait at the mailbox until
 * the guest wakes this vCPU, and run it from the wake-up vector.
 */
static void ap_main(void *arg)
{
    unsigned cpu = (unsigned)(uintptr_t)arg;
    struct svm_vm *vm = &vms[cpu];
    uint8_t *mb = gptr(GPA_MAILBOX);
    volatile uint16_t *command = (volatile uint16_t *)(mb + MAILBOX_COMMAND);

    svm_enable_with(ap_hsave[cpu]);
    if (use_segment) {
        arm_vmm_segment();
    }
    ap_waiting[cpu] = true;
    for (;;) {
        if (__atomic_load_n(command, __ATOMIC_ACQUIRE) == MAILBOX_WAKEUP &&
            rd32(mb, MAILBOX_APIC_ID) == cpu) {
            break;
        }
        cpu_relax();
    }
    vmcb_set(vm, VMCB_RIP, rd32(mb, MAILBOX_WAKEUP_VECTOR) |
             (uint64_t)rd32(mb, MAILBOX_WAKEUP_VECTOR + 4) << 32);
    __atomic_store_n(command, 0, __ATOMIC_RELEASE);     /* acknowledged */
    console_lock();
    printf("THINVMM: vCPU %u woken at 0x%lx\n", cpu, vmcb_get(vm, VMCB_RIP));
    console_unlock();
    guest_exit(run_vcpu(vm, cpu));
}

/*
 * Maps the host's RAM above 4 GiB into the hypervisor's identity map,
 * which boot.S builds for the low 4 GiB only: 1 GiB pages in its PDPT, so
 * that nothing is allocated while the modules still lie in the page pool.
 */
static void map_host_high_ram(void)
{
    uint64_t end = host_high_ram_end();
    uint64_t cr3, *pdpt;
    uint32_t a, b, c, d;

    cpuid(0x80000001, 0, &a, &b, &c, &d);
    if (!(d & (1u << 26))) {
        panic("the CPU has no 1 GiB pages (CPUID 8000_0001:EDX[26])");
    }
    if (end > 512 * GIB) {
        panic("host RAM above 512 GiB is not supported");
    }
    asm volatile("mov %%cr3, %0" : "=r"(cr3));
    pdpt = (uint64_t *)(uintptr_t)(*(uint64_t *)(uintptr_t)
                                   (cr3 & PTE_ADDR_MASK) & PTE_ADDR_MASK);
    if (paging_levels() == 5) {
        pdpt = (uint64_t *)(uintptr_t)(*pdpt & PTE_ADDR_MASK);
    }
    for (uint64_t pa = HIGH_START; pa < end; pa += PAGE_1G) {
        pdpt[pa / PAGE_1G] = pa | PTE_P | PTE_RW | PTE_A | PTE_D | PTE_PS;
    }
    write_cr3(cr3);
}

/* The page pool must have stayed below the guest's RAM backing. */
static void check_pool(void)
{
    uint64_t probe = page_alloc();

    if (probe + PAGE_4K > LOW_END + LOW_OFFSET) {
        panic("hypervisor pool overflows into guest RAM (0x%lx)", probe);
    }
    printf("THINVMM: hypervisor pool used up to 0x%lx\n", probe);
}

/* Starts the APs, each waiting at the mailbox with its VMM segment. */
static void start_aps(void)
{
    for (unsigned cpu = 1; cpu < ncpus; cpu++) {
        ap_hsave[cpu] = page_alloc();
        if (!smp_start_ap(cpu, ap_main, (void *)(uintptr_t)cpu)) {
            panic("AP %u did not start", cpu);
        }
        while (!ap_waiting[cpu]) {
            cpu_relax();
        }
    }
}

int guest_main(const char *cmdline)
{
    const struct multiboot_info *mbi = multiboot_info();
    struct linux_boot lb;
    unsigned nbad_req;
    uint64_t boot_cr3;

    printf("THINVMM: thin hypervisor starting\n");
    check_multiboot(mbi);
    read_host_e820(mbi);
    nbad_req = parse_options(cmdline);
    ncpus = count_cpus();
    print_layout();
    map_host_high_ram();
    lb.cmdline = linux_cmdline(cmdline);
    place_linux(mbi, &lb);
    load_linux(&lb);
    build_zero_page(&lb);
    build_gdt();
    if (ncpus > 1) {
        wr64(gptr(GPA_ZERO_PAGE), BP_ACPI_RSDP_ADDR, build_acpi());
    }
    printf("THINVMM: kernel at gPA 0x%lx (hPA 0x%lx), initramfs at gPA "
           "0x%lx, cmdline \"%s\"\n", lb.kernel_gpa,
           gpa_to_hpa(lb.kernel_gpa), lb.initrd_gpa, lb.cmdline);

    /* From here on the page pool may be used. */
    build_npt();
    boot_cr3 = build_boot_page_tables();
    svm_enable();
    for (unsigned cpu = 0; cpu < ncpus; cpu++) {
        setup_vm(&vms[cpu], lb.kernel_gpa + STARTUP_64_OFFSET, boot_cr3);
    }
    if (use_segment) {
        if (!dseg_available()) {
            panic("mode=vmm needs -cpu ...,+dseg");
        }
        setup_bad_pages(nbad_req, lb.kernel_gpa);
        arm_vmm_segment();
    }
    start_aps();
    check_pool();
    printf("THINVMM: VMM segment %s: gPA [0x%lx, 0x%lx) -> +0x%lx\n",
           use_segment ? "on" : "off", HIGH_START, HIGH_START + high_size,
           high_offset);
    printf("THINVMM: guest segment %s\n",
           guest_dseg ? "passed through (guest_dseg=1)" : "hidden");
    printf("THINVMM: %u vCPU%s%s; entering Linux at 0x%lx\n", ncpus,
           ncpus > 1 ? "s" : "",
           ncpus > 1 ? ", APs waiting at the ACPI wake-up mailbox" : "",
           lb.kernel_gpa + STARTUP_64_OFFSET);
    return run_vcpu(&vms[0], 0);
}
