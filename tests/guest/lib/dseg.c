/*
 * qemu-dseg test guests: direct-segment registers and the escape filter.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "dseg.h"

#define DSEG_LIMIT              1
#define DSEG_OFFSET             2

bool dseg_available(void)
{
    uint32_t a, b, c, d;

    cpuid(0x80000001, 0, &a, &b, &c, &d);
    return c & CPUID_EXT3_DSEG;
}

int dseg_set(enum dseg_which which, uint64_t base, uint64_t limit,
             uint64_t offset)
{
    const uint64_t val[] = { 0, base, offset, limit };
    const unsigned reg[] = { DSEG_LIMIT, 0, DSEG_OFFSET, DSEG_LIMIT };

    for (unsigned i = 0; i < 4; i++) {
        int vector = wrmsr_safe(dseg_msr(which, reg[i]), val[i]);

        if (vector != NO_EXCEPTION) {
            return vector;
        }
    }
    return NO_EXCEPTION;
}

void dseg_disarm(enum dseg_which which)
{
    wrmsr(dseg_msr(which, DSEG_LIMIT), 0);
}

struct dseg_seg dseg_get(enum dseg_which which)
{
    return (struct dseg_seg) {
        .base = rdmsr(dseg_msr(which, 0)),
        .limit = rdmsr(dseg_msr(which, DSEG_LIMIT)),
        .offset = rdmsr(dseg_msr(which, DSEG_OFFSET)),
    };
}

void vmcb_set_dseg(struct svm_vm *vm, uint64_t base, uint64_t limit,
                   uint64_t offset)
{
    vmcb_set(vm, VMCB_DSEG_BASE_G, base);
    vmcb_set(vm, VMCB_DSEG_LIMIT_G, limit);
    vmcb_set(vm, VMCB_DSEG_OFFSET_G, offset);
}

struct dseg_seg vmcb_get_dseg(const struct svm_vm *vm)
{
    return (struct dseg_seg) {
        .base = vmcb_get(vm, VMCB_DSEG_BASE_G),
        .limit = vmcb_get(vm, VMCB_DSEG_LIMIT_G),
        .offset = vmcb_get(vm, VMCB_DSEG_OFFSET_G),
    };
}

struct dseg_filter_geom dseg_filter_geometry(void)
{
    uint64_t cfg = rdmsr(MSR_DSEG_FILTER_CFG);

    return (struct dseg_filter_geom) {
        .bits_log2 = cfg & 0xff,
        .hashes = (cfg >> 8) & 0xff,
    };
}

uint64_t dseg_filter_multiplier(unsigned i)
{
    uint64_t z = (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (z ^ (z >> 31)) | 1;
}

unsigned dseg_filter_hash(const struct dseg_filter_geom *g, unsigned i,
                          uint64_t addr)
{
    return ((addr >> 12) * dseg_filter_multiplier(i)) >> (64 - g->bits_log2);
}

void dseg_model_init(struct dseg_filter_model *m,
                     const struct dseg_filter_geom *g)
{
    memset(m, 0, sizeof(*m));
    m->geom = *g;
}

void dseg_model_insert(struct dseg_filter_model *m, uint64_t addr)
{
    for (unsigned i = 0; i < m->geom.hashes; i++) {
        unsigned bit = dseg_filter_hash(&m->geom, i, addr);

        m->words[bit / 64] |= 1ull << (bit % 64);
    }
}

bool dseg_model_reports(const struct dseg_filter_model *m, uint64_t addr)
{
    for (unsigned i = 0; i < m->geom.hashes; i++) {
        unsigned bit = dseg_filter_hash(&m->geom, i, addr);

        if (!(m->words[bit / 64] & (1ull << (bit % 64)))) {
            return false;
        }
    }
    return true;
}

void dseg_page_window(uint32_t mark, uint64_t va, uint64_t pages,
                      uint64_t passes, bool cr3, uint64_t invlpg)
{
    uint64_t scratch;

    asm volatile("outl %%eax, %%dx\n"           /* opens */
                 "test %[cr3], %[cr3]\n"
                 "jz 1f\n"
                 "mov %%cr3, %%rcx\n"
                 "mov %%rcx, %%cr3\n"
                 "1: test %[invlpg], %[invlpg]\n"
                 "jz 2f\n"
                 "invlpg (%[invlpg])\n"
                 "2: mov %[va], %%rsi\n"
                 "mov %[pages], %%rcx\n"
                 "3: mov (%%rsi), %%rax\n"
                 "add $4096, %%rsi\n"
                 "dec %%rcx\n"
                 "jnz 3b\n"
                 "dec %[passes]\n"
                 "jnz 2b\n"
                 "mov %[close], %%eax\n"
                 "outl %%eax, %%dx\n"           /* closes */
                 : [passes] "+r"(passes), "=&S"(scratch)
                 : "a"(mark), "d"(DSEG_WINDOW_PORT), [va] "r"(va),
                   [pages] "r"(pages), [cr3] "r"((uint64_t)cr3),
                   [invlpg] "r"(invlpg), [close] "r"(mark + 1)
                 : "rcx", "memory");
}
