/*
 * qemu-dseg test guests: freestanding runtime.
 *
 * A guest provides guest_main(); the runtime enters it in 64-bit mode with
 * the low 4 GiB identity-mapped (2 MiB pages), the serial console on COM1
 * and exception handlers that report a fault and fail the test.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBGUEST_H
#define LIBGUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status reported when a guest faults or returns a bogus value. */
#define GUEST_EXIT_FAULT    0x7f

/* isa-debug-exit turns a write of V into QEMU exit status (V << 1) | 1. */
#define DEBUG_EXIT_PORT     0xf4

/* Implemented by each guest: @cmdline is QEMU's -append string. */
int guest_main(const char *cmdline);

/* Console and test output. */
void putchar_serial(char c);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void __attribute__((noreturn)) guest_exit(int status);
void __attribute__((noreturn, format(printf, 1, 2))) panic(const char *fmt,
                                                            ...);

/*
 * Command line: "key=value" words.  cmdline_get() copies the value of @key
 * into @buf and returns true when the key is present.
 */
bool cmdline_get(const char *cmdline, const char *key, char *buf, size_t size);
uint64_t cmdline_get_u64(const char *cmdline, const char *key, uint64_t dflt);

/* Strings and memory (also used by the compiler). */
void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
uint64_t strtou64(const char *s, const char **end);

/* Exceptions. */
struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};
void trap_init(void);

/* Port I/O and privileged instructions. */
static inline void outb(uint16_t port, uint8_t v)
{
    asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;

    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;

    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return lo | ((uint64_t)hi << 32);
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v),
                 "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t *a,
                         uint32_t *b, uint32_t *c, uint32_t *d)
{
    asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
                 : "a"(leaf), "c"(subleaf));
}

static inline uint64_t read_cr2(void)
{
    uint64_t v;

    asm volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}

#endif /* LIBGUEST_H */
