/*
 * qemu-dseg test guests: entry, exit, command line and string helpers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"

/* The part of the multiboot information structure we read. */
struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower, mem_upper;
    uint32_t boot_device;
    uint32_t cmdline;
};
#define MULTIBOOT_INFO_CMDLINE  (1 << 2)

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
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    printf("PANIC: %s\n", buf);
    guest_exit(GUEST_EXIT_FAULT);
}

void guest_start(uint32_t mb_info_addr);

void guest_start(uint32_t mb_info_addr)
{
    const struct multiboot_info *mbi =
        (const struct multiboot_info *)(uintptr_t)mb_info_addr;
    const char *cmdline = "";

    trap_init();
    if (mbi->flags & MULTIBOOT_INFO_CMDLINE) {
        cmdline = (const char *)(uintptr_t)mbi->cmdline;
    }
    guest_exit(guest_main(cmdline));
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
