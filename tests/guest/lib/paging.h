/*
 * qemu-dseg test guests: physical page allocation and x86-64 page tables.
 *
 * Page pools hand out zeroed 4 KiB pages from a fixed physical range; the
 * default pool covers RAM from 16 MiB up (below it: the image and the
 * firmware).  Page tables are 4- or 5-level long-mode tables (also the
 * format of AMD nested page tables).  Every leaf entry is created with the
 * accessed and dirty bits set and every non-leaf entry with the accessed
 * bit set, so that no page walk has to write to a table (and QEMU never
 * needs a second fill to set D).
 *
 * A table set can live in memory that its walker sees at another address:
 * the tables of a nested guest are written by the host through host-physical
 * addresses but hold (and are walked at) guest-physical addresses.  @delta
 * is that difference: walker address = host-physical address + delta.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef PAGING_H
#define PAGING_H

#include "libguest.h"

#define PAGE_4K             0x1000ull
#define PAGE_2M             0x200000ull
#define PAGE_1G             0x40000000ull

#define PTE_P               (1ull << 0)
#define PTE_RW              (1ull << 1)
#define PTE_US              (1ull << 2)
#define PTE_A               (1ull << 5)
#define PTE_D               (1ull << 6)
#define PTE_PS              (1ull << 7)
#define PTE_G               (1ull << 8)
#define PTE_NX              (1ull << 63)
#define PTE_ADDR_MASK       0x000ffffffffff000ull

/* The start of the default pool. */
#define PAGE_POOL_START     (16ull << 20)

struct page_pool {
    uint64_t next;                      /* next free physical address */
    uint64_t end;
};

/* Pool over [start, start + size); both 4 KiB aligned, below 4 GiB. */
void pool_init(struct page_pool *pool, uint64_t start, uint64_t size);
/* @count zeroed pages aligned to @align (a power of two >= 4 KiB). */
uint64_t pool_alloc(struct page_pool *pool, uint64_t count, uint64_t align);

/* The default pool: RAM from PAGE_POOL_START to guest_ram_end(). */
struct page_pool *pool_default(void);     /* page_alloc's pool */
uint64_t page_alloc(void);
uint64_t pages_alloc(uint64_t count, uint64_t align);

struct pt {
    uint64_t root;                      /* top table, walker address */
    int levels;                         /* 4 or 5 */
    struct page_pool *pool;             /* where tables are allocated */
    uint64_t delta;                     /* walker addr - host-physical */
};

/* Empty tables of @levels levels allocated from @pool. */
void pt_init(struct pt *pt, int levels, struct page_pool *pool,
             uint64_t delta);

/*
 * Maps the page of @page_size (PAGE_4K, PAGE_2M or PAGE_1G) at @va to @pa
 * with leaf flags @flags | P | A | D (| PS).  Non-leaf entries are P, RW,
 * US, A.  Mapping over an existing entry of another size is an error.
 */
void pt_map(struct pt *pt, uint64_t va, uint64_t pa, uint64_t page_size,
            uint64_t flags);
/* pt_map() of every page of [va, va + len). */
void pt_map_range(struct pt *pt, uint64_t va, uint64_t pa, uint64_t len,
                  uint64_t page_size, uint64_t flags);

/*
 * Entry of @level (1 = 4 KiB page table ... 5 = PML5) on the walk of @va:
 * host pointer, or NULL when the walk ends above that level.
 */
uint64_t *pt_entry(const struct pt *pt, uint64_t va, int level);

/*
 * Present leaf entry mapping @va (NULL if none); its page size in
 * @page_size unless that is NULL.
 */
uint64_t *pt_lookup(const struct pt *pt, uint64_t va, uint64_t *page_size);
/* Address @va translates to; false when unmapped. */
bool pt_translate(const struct pt *pt, uint64_t va, uint64_t *pa);

/*
 * Nested page tables (gPA -> hPA) in host memory from the default pool.
 * AMD treats nested walks as user accesses, so leaves get RW and US.
 */
void npt_init(struct pt *npt, int levels);
void npt_map(struct pt *npt, uint64_t gpa, uint64_t hpa, uint64_t page_size);
void npt_map_range(struct pt *npt, uint64_t gpa, uint64_t hpa, uint64_t len,
                   uint64_t page_size);

/*
 * Host tables of the current paging depth from the default pool,
 * identity-mapping the low 4 GiB with 1 GiB pages (like boot.S's map), to be
 * extended by the caller and loaded with write_cr3(pt.root).
 */
void host_pt_init(struct pt *pt);

/*
 * Tagged memory: every 8-byte word holds MEM_TAG | its own physical
 * address, so a load through a wrong translation tells where it went.
 */
#define MEM_TAG         0x7a67000000000000ull

static inline uint64_t mem_tag(uint64_t pa)
{
    return MEM_TAG | pa;
}

/* Physical address that a tagged word read through a mapping came from. */
static inline uint64_t mem_origin(uint64_t word)
{
    return word & ~MEM_TAG;
}

/* Tag every word of @pages 4 KiB pages from physical address @pa. */
void mem_fill_tags(uint64_t pa, uint64_t pages);

/* page_alloc() of a page with every word tagged. */
uint64_t tagged_page_alloc(void);

#endif /* PAGING_H */
