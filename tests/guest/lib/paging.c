/*
 * qemu-dseg test guests: page pools and page-table builders.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "paging.h"

#define PT_ENTRIES          512
#define PT_NONLEAF_FLAGS    (PTE_P | PTE_RW | PTE_US | PTE_A)

static struct page_pool default_pool;

void pool_init(struct page_pool *pool, uint64_t start, uint64_t size)
{
    if ((start | size) & (PAGE_4K - 1) || start + size > (4ull << 30)) {
        panic("bad page pool [0x%lx, +0x%lx)", start, size);
    }
    pool->next = start;
    pool->end = start + size;
}

uint64_t pool_alloc(struct page_pool *pool, uint64_t count, uint64_t align)
{
    uint64_t pa = (pool->next + align - 1) & ~(align - 1);

    if (align < PAGE_4K || (align & (align - 1)) ||
        pa + count * PAGE_4K > pool->end) {
        panic("page pool [.., 0x%lx) cannot give %lu pages aligned to 0x%lx",
              pool->end, count, align);
    }
    pool->next = pa + count * PAGE_4K;
    memset((void *)(uintptr_t)pa, 0, count * PAGE_4K);
    return pa;
}

struct page_pool *pool_default(void)
{
    if (!default_pool.end) {
        pool_init(&default_pool, PAGE_POOL_START,
                  guest_ram_end() - PAGE_POOL_START);
    }
    return &default_pool;
}

uint64_t page_alloc(void)
{
    return pool_alloc(pool_default(), 1, PAGE_4K);
}

uint64_t pages_alloc(uint64_t count, uint64_t align)
{
    return pool_alloc(pool_default(), count, align);
}

/* Host pointer to the table at walker address @addr. */
static uint64_t *pt_table(const struct pt *pt, uint64_t addr)
{
    return (uint64_t *)(uintptr_t)(addr - pt->delta);
}

static unsigned pt_index(uint64_t va, int level)
{
    return (va >> (12 + 9 * (level - 1))) & (PT_ENTRIES - 1);
}

/* Level whose entries map pages of @page_size. */
static int pt_leaf_level(uint64_t page_size)
{
    switch (page_size) {
    case PAGE_4K:
        return 1;
    case PAGE_2M:
        return 2;
    case PAGE_1G:
        return 3;
    }
    panic("bad page size 0x%lx", page_size);
}

void pt_init(struct pt *pt, int levels, struct page_pool *pool,
             uint64_t delta)
{
    if (levels != 4 && levels != 5) {
        panic("bad paging depth %d", levels);
    }
    pt->levels = levels;
    pt->pool = pool;
    pt->delta = delta;
    pt->root = pool_alloc(pool, 1, PAGE_4K) + delta;
}

void pt_map(struct pt *pt, uint64_t va, uint64_t pa, uint64_t page_size,
            uint64_t flags)
{
    int leaf = pt_leaf_level(page_size);
    uint64_t *table = pt_table(pt, pt->root);
    uint64_t *e;

    if ((va | pa) & (page_size - 1)) {
        panic("unaligned mapping 0x%lx -> 0x%lx", va, pa);
    }
    for (int level = pt->levels; level > leaf; level--) {
        e = &table[pt_index(va, level)];
        if (!(*e & PTE_P)) {
            *e = (pool_alloc(pt->pool, 1, PAGE_4K) + pt->delta) |
                 PT_NONLEAF_FLAGS;
        } else if (*e & PTE_PS) {
            panic("mapping 0x%lx: a larger page maps it already", va);
        }
        table = pt_table(pt, *e & PTE_ADDR_MASK);
    }
    e = &table[pt_index(va, leaf)];
    if ((*e & PTE_P) && leaf > 1 && !(*e & PTE_PS)) {
        panic("mapping 0x%lx: smaller pages map it already", va);
    }
    *e = pa | flags | PTE_P | PTE_A | PTE_D | (leaf > 1 ? PTE_PS : 0);
}

void pt_map_range(struct pt *pt, uint64_t va, uint64_t pa, uint64_t len,
                  uint64_t page_size, uint64_t flags)
{
    for (uint64_t off = 0; off < len; off += page_size) {
        pt_map(pt, va + off, pa + off, page_size, flags);
    }
}

uint64_t *pt_entry(const struct pt *pt, uint64_t va, int level)
{
    uint64_t *table = pt_table(pt, pt->root);

    for (int l = pt->levels; l > level; l--) {
        uint64_t e = table[pt_index(va, l)];

        if (!(e & PTE_P) || (l <= 3 && (e & PTE_PS))) {
            return NULL;
        }
        table = pt_table(pt, e & PTE_ADDR_MASK);
    }
    return &table[pt_index(va, level)];
}

uint64_t *pt_lookup(const struct pt *pt, uint64_t va, uint64_t *page_size)
{
    for (int level = pt->levels; level >= 1; level--) {
        uint64_t *e = pt_entry(pt, va, level);

        if (!e || !(*e & PTE_P)) {
            return NULL;
        }
        if (level == 1 || (level <= 3 && (*e & PTE_PS))) {
            if (page_size) {
                *page_size = 1ull << (12 + 9 * (level - 1));
            }
            return e;
        }
    }
    return NULL;
}

bool pt_translate(const struct pt *pt, uint64_t va, uint64_t *pa)
{
    uint64_t size;
    uint64_t *e = pt_lookup(pt, va, &size);

    if (!e) {
        return false;
    }
    *pa = (*e & PTE_ADDR_MASK & ~(size - 1)) | (va & (size - 1));
    return true;
}

void npt_init(struct pt *npt, int levels)
{
    pt_init(npt, levels, pool_default(), 0);
}

void npt_map(struct pt *npt, uint64_t gpa, uint64_t hpa, uint64_t page_size)
{
    pt_map(npt, gpa, hpa, page_size, PTE_RW | PTE_US);
}

void npt_map_range(struct pt *npt, uint64_t gpa, uint64_t hpa, uint64_t len,
                   uint64_t page_size)
{
    pt_map_range(npt, gpa, hpa, len, page_size, PTE_RW | PTE_US);
}

void host_pt_init(struct pt *pt)
{
    pt_init(pt, paging_levels(), pool_default(), 0);
    pt_map_range(pt, 0, 0, 4ull << 30, PAGE_1G, PTE_RW);
}

void mem_fill_tags(uint64_t pa, uint64_t pages)
{
    for (uint64_t off = 0; off < pages * PAGE_4K; off += 8) {
        write64(pa + off, mem_tag(pa + off));
    }
}

uint64_t tagged_page_alloc(void)
{
    uint64_t pa = page_alloc();

    mem_fill_tags(pa, 1);
    return pa;
}
