/*
 * thinvmm: the 64-bit Linux boot protocol.  The bzImage and initramfs
 * modules placed in the guest's RAM, the zero page (setup header, e820
 * map, command line, ramdisk), the boot GDT and the boot page tables.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "thinvmm.h"

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

/* The Linux command line: what follows a "--" word, else a default. */
const char *linux_cmdline(const char *cmdline)
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
void place_linux(const struct multiboot_info *mbi,
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
void load_linux(const struct linux_boot *lb)
{
    memcpy(gptr(lb->kernel_gpa), lb->kimg + lb->setup_size,
           lb->ksize - lb->setup_size);
    memcpy(gptr(lb->initrd_gpa), lb->initrd, lb->isize);
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

/* Zero page: the setup header from the bzImage, then our fields. */
void build_zero_page(const struct linux_boot *lb)
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

void zero_page_set_acpi_rsdp(uint64_t rsdp_gpa)
{
    wr64(gptr(GPA_ZERO_PAGE), BP_ACPI_RSDP_ADDR, rsdp_gpa);
}

/* Guest GDT for the 64-bit boot protocol: __BOOT_CS and __BOOT_DS. */
void build_gdt(void)
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
uint64_t build_boot_page_tables(void)
{
    static struct page_pool pool;
    struct pt gpt;
    uint64_t end = (HIGH_START + high_size + PAGE_1G - 1) & ~(PAGE_1G - 1);

    pool_init(&pool, gpa_to_hpa(GPA_BOOT_PT), BOOT_PT_SIZE);
    pt_init(&gpt, 4, &pool, GPA_BOOT_PT - gpa_to_hpa(GPA_BOOT_PT));
    pt_map_range(&gpt, 0, 0, end, PAGE_1G, PTE_RW);
    return gpt.root;
}
