/*
 * thinvmm: guest memory.  The host's e820 map, the guest's RAM layout
 * over it, the nested page tables, the faulty pages and the VMM segment
 * over the high RAM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "thinvmm.h"

#define BAD_SENTINEL            0xbadbadbadbad0000ull

uint64_t high_size;
uint64_t high_offset;
uint64_t npt_page = PAGE_4K;
struct pt npt;
struct host_e820_entry hmap[HMAP_MAX];
unsigned nhmap;
unsigned nbad;

static struct {
    uint64_t gpa, bad_hpa, spare_hpa;
} bad[MAX_BAD_PAGES];

/* Copies the multiboot memory map into hmap[], printing each entry. */
void read_host_e820(const struct multiboot_info *mbi)
{
    for (uint32_t off = 0; off < mbi->mmap_length && nhmap < HMAP_MAX;) {
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

uint64_t host_low_ram_end(void)
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
uint64_t host_high_ram_end(void)
{
    for (unsigned i = 0; i < nhmap; i++) {
        if (hmap[i].type == E820_RAM && hmap[i].addr == HIGH_START) {
            return hmap[i].addr + hmap[i].len;
        }
    }
    return HIGH_START;
}

/*
 * The guest's RAM: guest_mb MiB from 1 MiB up, the low part and the rest
 * above 4 GiB, placed at the top of the host's RAM above 4 GiB so that its
 * offset is not zero.
 */
void lay_out_ram(uint64_t guest_mb)
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

void build_npt(void)
{
    uint64_t ram_end = host_low_ram_end();
    uint64_t big = high_size & ~(npt_page - 1);     /* in npt_page pages */

    npt_init(&npt, paging_levels());
    npt_map_range(&npt, 0, 0, LOW_END, PAGE_4K);
    npt_map_range(&npt, LOW_END, LOW_END + LOW_OFFSET, FIRMWARE_END - LOW_END,
                  PAGE_4K);
    npt_map_range(&npt, HIGH_START, HIGH_START + high_offset, big,
                  npt_page);
    npt_map_range(&npt, HIGH_START + big, HIGH_START + high_offset + big,
                  high_size - big, PAGE_4K);
    for (unsigned i = 0; i < nhmap; i++) {
        if (hmap[i].type != E820_RAM && hmap[i].addr >= LOW_END &&
            hmap[i].addr < HOST_RAM_LIMIT) {
            npt_identity(hmap[i].addr, hmap[i].addr + hmap[i].len);
        }
    }
    /* Device space: everything from the end of low RAM up to 4 GiB. */
    npt_identity((ram_end + PAGE_2M - 1) & ~(PAGE_2M - 1), HOST_RAM_LIMIT);
}

/* The NPT entry of GPA's 4 KiB page, splitting a 2 MiB page that maps it. */
static uint64_t *npt_entry_4k(uint64_t gpa)
{
    uint64_t size, *e = pt_lookup(&npt, gpa, &size);

    if (e && size == PAGE_2M) {
        uint64_t table = page_alloc();
        uint64_t *t = (uint64_t *)hptr(table);
        uint64_t base = *e & PTE_ADDR_MASK & ~(PAGE_2M - 1);

        for (unsigned i = 0; i < 512; i++) {
            t[i] = (base + i * PAGE_4K) | PTE_P | PTE_RW | PTE_US | PTE_A |
                   PTE_D;
        }
        *e = table | PTE_P | PTE_RW | PTE_US | PTE_A;
        e = pt_lookup(&npt, gpa, &size);
    }
    return e && size == PAGE_4K ? e : NULL;
}

/*
 * Faulty pages: copy to a spare page, remap, poison the original.  No vCPU
 * runs yet: every CPU escapes them in its filter (arm_vmm_segment())
 * before its vCPU first runs.
 */
void setup_bad_pages(unsigned n, uint64_t kernel_gpa)
{
    uint64_t spare = (FIRMWARE_END + LOW_OFFSET + PAGE_2M - 1) &
                     ~(PAGE_2M - 1);

    if (n > MAX_BAD_PAGES) {
        panic("bad_pages=%u: at most %u", n, MAX_BAD_PAGES);
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t gpa = kernel_gpa + (i + 1) * PAGE_2M + 0x3000;
        uint64_t *e = npt_entry_4k(gpa);
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

bool bad_pages_intact(void)
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

/*
 * This CPU's VMM segment over the high RAM, with the faulty pages in its
 * escape filter.  Every CPU programs its own, before any vCPU runs.
 */
void arm_vmm_segment(void)
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
 * Maps the host's RAM above 4 GiB into the hypervisor's identity map,
 * which boot.S builds for the low 4 GiB only: 1 GiB pages in its PDPT, so
 * that nothing is allocated while the modules still lie in the page pool.
 */
void map_host_high_ram(void)
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
void check_pool(void)
{
    uint64_t probe = page_alloc();

    if (probe + PAGE_4K > LOW_END + LOW_OFFSET) {
        panic("hypervisor pool overflows into guest RAM (0x%lx)", probe);
    }
    printf("THINVMM: hypervisor pool used up to 0x%lx\n", probe);
}
