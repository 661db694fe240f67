/*
 * qemu-dseg test guests: entry, exit, command line and string helpers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"

/* RAM assumed when the loader does not tell (the harness gives 256 MiB). */
#define DEFAULT_RAM_END         (256ull << 20)
/* The page tables of boot.S identity-map the low 4 GiB. */
#define IDENTITY_MAP_END        (4ull << 30)

static uint64_t ram_end = DEFAULT_RAM_END;
static const struct multiboot_info *mb_info;

void __attribute__((noreturn)) guest_exit(int status)
{
    outl(DEBUG_EXIT_PORT, status);
    /* QEMU stops the machine soon after the write; wait for it. */
    for (;;) {
        asm volatile("cli; hlt");
    }
}

void panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint_line("PANIC: ", fmt, ap);
    va_end(ap);
    guest_exit(GUEST_EXIT_FAULT);
}

void guest_start(uint32_t mb_info_addr);

/* Called by boot.S with the multiboot information address from EBX. */
void guest_start(uint32_t mb_info_addr)
{
    const struct multiboot_info *mbi =
        (const struct multiboot_info *)(uintptr_t)mb_info_addr;
    const char *cmdline = "";

    mb_info = mbi;
    trap_init();
    if (mbi->flags & MULTIBOOT_INFO_MEMORY) {
        /* mem_upper counts KiB from 1 MiB up to the first hole. */
        ram_end = (1ull << 20) + ((uint64_t)mbi->mem_upper << 10);
    }
    if (ram_end > IDENTITY_MAP_END) {
        ram_end = IDENTITY_MAP_END;
    }
    if (mbi->flags & MULTIBOOT_INFO_CMDLINE) {
        cmdline = (const char *)(uintptr_t)mbi->cmdline;
    }
    guest_exit(guest_main(cmdline));
}

uint64_t guest_ram_end(void)
{
    return ram_end;
}

const struct multiboot_info *multiboot_info(void)
{
    return mb_info;
}

void checkpoint(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint_line("CHECKPOINT ", fmt, ap);
    va_end(ap);
    /* The harness wakes us with an NMI, whose handler just returns. */
    asm volatile("cli; hlt" : : : "memory");
}

unsigned cpu_phys_addr_bits(void)
{
    uint32_t a, b, c, d;

    cpuid(0x80000008, 0, &a, &b, &c, &d);
    return a & 0xff;
}

bool cpu_has_la57(void)
{
    uint32_t a, b, c, d;

    cpuid(7, 0, &a, &b, &c, &d);
    return c & (1u << 16);
}

int paging_levels(void)
{
    return read_cr4() & CR4_LA57 ? 5 : 4;
}

bool cmdline_get(const char *cmdline, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    const char *p = cmdline;

    while (*p) {
        while (*p == ' ') {
            p++;
        }
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            size_t n = 0;

            for (p += klen + 1; *p && *p != ' '; p++) {
                if (n + 1 < size) {
                    buf[n++] = *p;
                }
            }
            if (size) {
                buf[n] = '\0';
            }
            return true;
        }
        while (*p && *p != ' ') {
            p++;
        }
    }
    return false;
}

uint64_t cmdline_get_u64(const char *cmdline, const char *key, uint64_t dflt)
{
    char buf[32];
    const char *end;
    uint64_t v;

    if (!cmdline_get(cmdline, key, buf, sizeof(buf))) {
        return dflt;
    }
    v = strtou64(buf, &end);
    if (end == buf || *end) {
        panic("bad number '%s' for %s= on the command line", buf, key);
    }
    return v;
}

uint64_t strtou64(const char *s, const char **end)
{
    unsigned base = 10;
    uint64_t v = 0;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    for (;; s++) {
        unsigned d;

        if (*s >= '0' && *s <= '9') {
            d = *s - '0';
        } else if (base == 16 && *s >= 'a' && *s <= 'f') {
            d = *s - 'a' + 10;
        } else if (base == 16 && *s >= 'A' && *s <= 'F') {
            d = *s - 'A' + 10;
        } else {
            break;
        }
        v = v * base + d;
    }
    *end = s;
    return v;
}

void *memset(void *s, int c, size_t n)
{
    void *ret = s;

    asm volatile("rep stosb" : "+D"(s), "+c"(n) : "a"(c) : "memory");
    return ret;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    void *ret = dst;

    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return ret;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (; n; n--, x++, y++) {
        if (*x != *y) {
            return *x - *y;
        }
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n]) {
        n++;
    }
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b || !*a) {
            return (unsigned char)*a - (unsigned char)*b;
        }
    }
    return 0;
}
