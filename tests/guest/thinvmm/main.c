/*
 * thinvmm: a thin test hypervisor that boots an unmodified Linux bzImage
 * as its SVM guest, with nested paging and optionally a VMM segment.
 *
 * QEMU starts it as a multiboot kernel:
 *
 *   -kernel thinvmm.bin -initrd "bzImage,initramfs.cpio.gz"
 *   -append "mode=vmm [bad_pages=N] [guest_mb=N] [guest_dseg=1]
 *            [npt_page=4k|2m] -- LINUX COMMAND LINE"
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
 * always reads 4 entries, unless npt_page=2m maps the high RAM with 2 MiB
 * nested pages (a 2 MiB page that holds a faulty page is split), as a
 * hypervisor that backs its guests with huge pages does: the guest's own
 * large pages are then not splintered into 4 KiB TLB entries.
 *
 * Devices that do DMA: see iommu.c.
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
#include "thinvmm.h"

bool use_segment;
bool guest_dseg;

static void check_multiboot(const struct multiboot_info *mbi)
{
    if (!(mbi->flags & MULTIBOOT_INFO_MODS) || mbi->mods_count < 2 ||
        !(mbi->flags & MULTIBOOT_INFO_MEM_MAP)) {
        panic("need the memory map and two modules (bzImage, initramfs)");
    }
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
           "0x%lx) at hPA +0x%lx in %s nested pages; VMM segment %s, "
           "%lu.%02lu%% of guest RAM; %u vCPU%s\n",
           total >> 10, below_1m >> 10, LOW_END, LOW_RAM_END, LOW_OFFSET,
           HIGH_START, HIGH_START + high_size, high_offset,
           npt_page == PAGE_2M ? "2 MiB" : "4 KiB",
           use_segment ? "over high RAM" : "off", bp / 100, bp % 100,
           ncpus, ncpus > 1 ? "s" : "");
}

/*
 * mode=, bad_pages=, guest_mb=, guest_dseg= and npt_page=: sets
 * use_segment, the RAM layout and its nested page size and returns the
 * number of bad pages asked for.
 */
static unsigned parse_options(const char *cmdline)
{
    char mode[16] = "vmm";
    char page[8] = "4k";
    unsigned nbad_req;

    cmdline_get(cmdline, "mode", mode, sizeof(mode));
    nbad_req = cmdline_get_u64(cmdline, "bad_pages", 0);
    lay_out_ram(cmdline_get_u64(cmdline, "guest_mb", 0));
    guest_dseg = cmdline_get_u64(cmdline, "guest_dseg", 0);
    cmdline_get(cmdline, "npt_page", page, sizeof(page));
    if (!strncmp(page, "2m", 3)) {
        npt_page = PAGE_2M;
    } else if (strncmp(page, "4k", 3)) {
        panic("npt_page=%s: use 4k or 2m", page);
    }
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
    find_iommu();
    print_layout();
    map_host_high_ram();
    lb.cmdline = linux_cmdline(cmdline);
    place_linux(mbi, &lb);
    load_linux(&lb);
    build_zero_page(&lb);
    build_gdt();
    if (ncpus > 1 || iommu_regs) {
        zero_page_set_acpi_rsdp(build_acpi());
    }
    printf("THINVMM: kernel at gPA 0x%lx (hPA 0x%lx), initramfs at gPA "
           "0x%lx, cmdline \"%s\"\n", lb.kernel_gpa,
           gpa_to_hpa(lb.kernel_gpa), lb.initrd_gpa, lb.cmdline);

    /* From here on the page pool may be used. */
    build_npt();
    boot_cr3 = build_boot_page_tables();
    svm_enable();
    setup_vcpus(lb.kernel_gpa + STARTUP_64_OFFSET, boot_cr3);
    if (use_segment) {
        if (!dseg_available()) {
            panic("mode=vmm needs -cpu ...,+dseg");
        }
        setup_bad_pages(nbad_req, lb.kernel_gpa);
        arm_vmm_segment();
    }
    enable_iommu();
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
    return run_vcpu(0);
}
