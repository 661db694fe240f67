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
 *   [1 MiB, 16 MiB)           low RAM, backed at hPA = gPA + LOW_OFFSET
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
#include "svm.h"
#include "dseg.h"

#define MIB                     ((uint64_t)1 << 20)
#define GIB                     ((uint64_t)1 << 30)
#define LOW_END                 MIB             /* low RAM: [1, 16 MiB) */
#define LOW_RAM_END             (16 * MIB)
#define LOW_OFFSET              (128 * MIB)     /* its backing: hPA - gPA */
#define HIGH_START              (4 * GIB)       /* high RAM from here */
#define THINVMM_MAGIC           0x74686e76u
#define MAX_BAD_PAGES           16

#define E820_RAM                1

/* Linux boot protocol: offsets in the zero page (struct boot_params). */
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
#define BP_KERNEL_ALIGNMENT     0x230
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

/* Guest boot structures, in the low RAM. */
#define GPA_ZERO_PAGE           (LOW_END)
#define GPA_CMDLINE             (LOW_END + 0x1000)
#define GPA_GDT                 (LOW_END + 0x2000)
#define GPA_BOOT_PT             (LOW_END + 0x10000) /* boot page tables */
#define BOOT_PT_SIZE            (1 * MIB)
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
static struct svm_vm vm;

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
    npt_map_range(&npt, LOW_END, LOW_END + LOW_OFFSET, LOW_RAM_END - LOW_END,
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

static void setup_vm(uint64_t entry, uint64_t boot_cr3)
{
    svm_enable();
    svm_vm_init(&vm);
    /* Pass everything through: no I/O, exception or HLT intercepts. */
    memset((void *)(uintptr_t)vm.iopm, 0, 3 * PAGE_4K);
    memset((void *)(uintptr_t)vm.msrpm, 0, 2 * PAGE_4K);
    svm_intercept_msr(&vm, MSR_VM_HSAVE_PA, true, true);
    for (uint32_t m = MSR_DSEG_BLOCK_FIRST; m <= MSR_DSEG_BLOCK_LAST; m++) {
        bool guest_reg = m >= MSR_DSEG_BASE_G && m <= MSR_DSEG_OFFSET_G;

        svm_intercept_msr(&vm, m, !(guest_dseg && guest_reg),
                          !(guest_dseg && guest_reg));
    }
    vmcb_set(&vm, VMCB_INTERCEPT,
             SVM_INTERCEPT_VMRUN | SVM_INTERCEPT_VMMCALL |
             SVM_INTERCEPT_SHUTDOWN | SVM_INTERCEPT_MSR |
             SVM_INTERCEPT_CPUID);
    svm_set_exception_intercepts(&vm, 0);
    vmcb_set(&vm, VMCB_INTR_CTRL, 0);   /* no V_INTR_MASKING */
    svm_set_npt(&vm, &npt);

    /* 64-bit mode with identity-mapped paging, as the boot protocol wants. */
    vmcb_set_seg(&vm, VMCB_CS, BOOT_CS, VMCB_CS_ATTR_LONG, 0xffffffff, 0);
    vmcb_set_seg(&vm, VMCB_DS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(&vm, VMCB_ES, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(&vm, VMCB_SS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(&vm, VMCB_FS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(&vm, VMCB_GS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(&vm, VMCB_LDTR, 0, VMCB_LDTR_ATTR, 0xffff, 0);
    vmcb_set_seg(&vm, VMCB_TR, 0, VMCB_TR_ATTR, 0xffff, 0);
    vmcb_set_seg(&vm, VMCB_GDTR, 0, 0, 4 * 8 - 1, GPA_GDT);
    vmcb_set_seg(&vm, VMCB_IDTR, 0, 0, 0, 0);
    vmcb_set(&vm, VMCB_EFER, EFER_SVME | EFER_LME | EFER_LMA);
    vmcb_set(&vm, VMCB_CR0, CR0_PE_ET_PG);
    vmcb_set(&vm, VMCB_CR3, boot_cr3);
    vmcb_set(&vm, VMCB_CR4, CR4_PAE);
    vmcb_set(&vm, VMCB_RFLAGS, 0x2);
    vmcb_set(&vm, VMCB_RIP, entry);
    vmcb_set(&vm, VMCB_RSP, 0);
    vmcb_set(&vm, VMCB_RAX, 0);
    memset(&vm.gprs, 0, sizeof(vm.gprs));
    vm.gprs.rsi = GPA_ZERO_PAGE;
}

/* Faulty pages: escape, copy to a spare page, remap, poison the original. */
static void setup_bad_pages(unsigned n, uint64_t kernel_gpa)
{
    uint64_t spare = (LOW_RAM_END + LOW_OFFSET + PAGE_2M - 1) &
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
        wrmsr(MSR_DSEG_FILTER_INSERT, gpa);
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

static void inject_gp(void)
{
    vmcb_set(&vm, VMCB_EVENTINJ,
             EXC_GP | SVM_EVTINJ_TYPE_EXCP | SVM_EVTINJ_EV | SVM_EVTINJ_V);
}

static void handle_cpuid(void)
{
    uint32_t leaf = (uint32_t)vmcb_get(&vm, VMCB_RAX);
    uint32_t sub = (uint32_t)vm.gprs.rcx;
    uint32_t a, b, c, d;

    cpuid(leaf, sub, &a, &b, &c, &d);
    if (leaf == 0x80000001) {
        c &= ~((1u << 2) | (guest_dseg ? 0 : 1u << 31));  /* SVM, DSEG */
    } else if (leaf == 0x8000000a) {
        a = b = c = d = 0;
    }
    vmcb_set(&vm, VMCB_RAX, a);
    vm.gprs.rbx = b;
    vm.gprs.rcx = c;
    vm.gprs.rdx = d;
    svm_skip(&vm, 2);
}

static void report(uint64_t code)
{
    printf("\nTHINVMM-VMMCALL %lu exits: cpuid %lu msr %lu vmmcall %lu "
           "other %lu; bad pages %s\n", code, exits_cpuid, exits_msr,
           exits_vmmcall, exits_other,
           nbad ? (bad_pages_intact() ? "intact" : "WRITTEN") : "none");
}

static int run_guest(void)
{
    for (;;) {
        uint64_t code = svm_run(&vm);

        switch (code) {
        case SVM_EXIT_CPUID:
            exits_cpuid++;
            handle_cpuid();
            break;
        case SVM_EXIT_MSR:
            exits_msr++;
            inject_gp();
            break;
        case SVM_EXIT_VMMCALL: {
            uint64_t c = vm.gprs.rbx;

            exits_vmmcall++;
            svm_skip(&vm, 3);
            if ((uint32_t)vmcb_get(&vm, VMCB_RAX) != THINVMM_MAGIC) {
                vmcb_set(&vm, VMCB_RAX, ~0ull);
                break;
            }
            report(c);
            if (c == 0) {
                printf("THINVMM-DONE status %lu\n", vm.gprs.rcx);
                return (int)vm.gprs.rcx;
            }
            checkpoint("vmmcall-%lu", c);
            vmcb_set(&vm, VMCB_RAX, 0);
            break;
        }
        case SVM_EXIT_VMRUN:
            exits_other++;
            vmcb_set(&vm, VMCB_EVENTINJ,
                     EXC_UD | SVM_EVTINJ_TYPE_EXCP | SVM_EVTINJ_V);
            break;
        default:
            exits_other++;
            printf("\nTHINVMM-EXIT %s\n", svm_exit_name(code));
            svm_report_exit(&vm);
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
           "0x%lx) at hPA +0x%lx; VMM segment %s, %lu.%02lu%% of guest RAM\n",
           total >> 10, below_1m >> 10, LOW_END, LOW_RAM_END, LOW_OFFSET,
           HIGH_START, HIGH_START + high_size, high_offset,
           use_segment ? "over high RAM" : "off", bp / 100, bp % 100);
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
    if (LOW_RAM_END + LOW_OFFSET + 2 * MIB > host_low_ram_end()) {
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

/* The VMM segment over the high RAM, and the faulty pages inside it. */
static void setup_vmm_segment(unsigned nbad_req, uint64_t kernel_gpa)
{
    if (!dseg_available()) {
        panic("mode=vmm needs -cpu ...,+dseg");
    }
    wrmsr(MSR_DSEG_FILTER_CLEAR, 0);
    if (dseg_set(DSEG_V, HIGH_START, HIGH_START + high_size, high_offset) !=
        NO_EXCEPTION) {
        panic("VMM segment rejected");
    }
    setup_bad_pages(nbad_req, kernel_gpa);
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

int guest_main(const char *cmdline)
{
    const struct multiboot_info *mbi = multiboot_info();
    struct linux_boot lb;
    unsigned nbad_req;

    printf("THINVMM: thin hypervisor starting\n");
    check_multiboot(mbi);
    read_host_e820(mbi);
    nbad_req = parse_options(cmdline);
    print_layout();
    map_host_high_ram();
    lb.cmdline = linux_cmdline(cmdline);
    place_linux(mbi, &lb);
    load_linux(&lb);
    build_zero_page(&lb);
    build_gdt();
    printf("THINVMM: kernel at gPA 0x%lx (hPA 0x%lx), initramfs at gPA "
           "0x%lx, cmdline \"%s\"\n", lb.kernel_gpa,
           gpa_to_hpa(lb.kernel_gpa), lb.initrd_gpa, lb.cmdline);

    /* From here on the page pool may be used. */
    build_npt();
    setup_vm(lb.kernel_gpa + STARTUP_64_OFFSET, build_boot_page_tables());
    if (use_segment) {
        setup_vmm_segment(nbad_req, lb.kernel_gpa);
    }
    check_pool();
    printf("THINVMM: VMM segment %s: gPA [0x%lx, 0x%lx) -> +0x%lx\n",
           use_segment ? "on" : "off", HIGH_START, HIGH_START + high_size,
           high_offset);
    printf("THINVMM: guest segment %s\n",
           guest_dseg ? "passed through (guest_dseg=1)" : "hidden");
    printf("THINVMM: entering Linux at 0x%lx\n",
           lb.kernel_gpa + STARTUP_64_OFFSET);
    return run_guest();
}
