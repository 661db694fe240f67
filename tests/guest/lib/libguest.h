/*
 * qemu-dseg test guests: freestanding runtime.
 *
 * A guest provides guest_main(); the runtime enters it in 64-bit mode with
 * the low 4 GiB identity-mapped (2 MiB pages), the serial console on COM1
 * and exception handlers that report a fault and fail the test.  An NMI
 * only resumes the guest (see checkpoint()); an exception raised by an
 * instruction that has a fixup (EXTABLE_ENTRY, e.g. rdmsr_safe()) resumes
 * at the fixup with the vector in %r11.
 *
 * Physical memory below 4 GiB is identity-mapped, so a physical address
 * below 4 GiB is also a pointer; the helpers below rely on that.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBGUEST_H
#define LIBGUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)       (sizeof(a) / sizeof((a)[0]))

/* Status reported when a guest faults or returns a bogus value. */
#define GUEST_EXIT_FAULT    0x7f

/* isa-debug-exit turns a write of V into QEMU exit status (V << 1) | 1. */
#define DEBUG_EXIT_PORT     0xf4

/* Implemented by each guest: @cmdline is QEMU's -append string. */
int guest_main(const char *cmdline);

/* Multiboot information (the parts we read; all addresses 32-bit). */
struct multiboot_info {
    uint32_t flags;                     /* MULTIBOOT_INFO_*: valid fields */
    uint32_t mem_lower, mem_upper;
    uint32_t boot_device;
    uint32_t cmdline;
    uint32_t mods_count, mods_addr;     /* struct multiboot_mod[] */
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;    /* struct multiboot_mmap_entry... */
};
#define MULTIBOOT_INFO_MEMORY   (1u << 0)
#define MULTIBOOT_INFO_CMDLINE  (1u << 2)
#define MULTIBOOT_INFO_MODS     (1u << 3)
#define MULTIBOOT_INFO_MEM_MAP  (1u << 6)

/* A module: [start, end) in physical memory. */
struct multiboot_mod {
    uint32_t start, end, cmdline, pad;
};

/* A memory map entry; the next one starts @size + 4 bytes further on. */
struct multiboot_mmap_entry {
    uint32_t size;
    uint64_t addr, len;
    uint32_t type;
} __attribute__((packed));

/* The information the loader passed in EBX to the image's entry. */
const struct multiboot_info *multiboot_info(void);

/* Console and test output (putchar_serial() turns \n into \r\n). */
#define COM1_PORT           0x3f8
#define COM1_LSR_PORT       (COM1_PORT + 5)
void serial_write_raw(char c);
void putchar_serial(char c);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* One line: @prefix, then the message of @fmt (up to 255 characters). */
void vprint_line(const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
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
#define EXC_NMI             2
#define EXC_UD              6
#define EXC_GP              13
#define EXC_PF              14
/* What the *_safe() helpers return when no exception was raised. */
#define NO_EXCEPTION        (-1)

struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};
/* Builds the IDT and loads it; trap_load() loads it on another CPU. */
void trap_init(void);
void trap_load(void);
/*
 * Interrupt vector @vector (32-255) calls @handler with the interrupted
 * RIP, which must end the interrupt at its controller (smp_apic_eoi()).
 * One vector at a time; vectors above 31 are not present otherwise.
 */
typedef void trap_irq_fn(uint64_t rip);
void trap_set_irq_handler(unsigned vector, trap_irq_fn *handler);

/*
 * Exception fixups: an instruction at label @insn that may fault is resumed
 * at label @resume with the vector in %r11 (other registers unchanged), so
 * the asm statement must list %r11 as an in/out operand preset to -1.  The
 * error code and CR2 of the last fixed-up exception are kept for tests.
 */
#define EXTABLE_ENTRY(insn, resume) \
    ".pushsection .extable, \"a\"\n" \
    ".balign 8\n" \
    ".quad " insn ", " resume "\n" \
    ".popsection\n"

extern uint64_t trap_fixup_error_code;
extern uint64_t trap_fixup_cr2;

/* RDMSR/WRMSR that return the vector they raised, or NO_EXCEPTION. */
int rdmsr_safe(uint32_t msr, uint64_t *val);
int wrmsr_safe(uint32_t msr, uint64_t val);
/* A 64-bit load/store that returns the vector it raised, or NO_EXCEPTION. */
int read64_safe(uint64_t addr, uint64_t *val);
int write64_safe(uint64_t addr, uint64_t val);

/*
 * Test checkpoint: prints "CHECKPOINT <name>" and halts with interrupts
 * off; the test harness reads or resets counters over QMP and wakes the
 * guest with an NMI, after which checkpoint() returns.
 */
void checkpoint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CPU and machine facts. */
unsigned cpu_phys_addr_bits(void);      /* MAXPHYADDR, CPUID 8000_0008 */
bool cpu_has_la57(void);                /* CPUID 7.0:ECX[16] */
int paging_levels(void);                /* 4, or 5 with CR4.LA57 */
uint64_t guest_ram_end(void);           /* end of RAM below 4 GiB */

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

#define MSR_EFER            0xc0000080
#define EFER_NXE            (1 << 11)
#define EFER_SVME           (1 << 12)

#define CR0_WP              (1u << 16)
#define CR4_PGE             (1u << 7)
#define CR4_LA57            (1u << 12)
#define CR4_SMEP            (1u << 20)

static inline uint64_t read_cr0(void)
{
    uint64_t v;

    asm volatile("mov %%cr0, %0" : "=r"(v));
    return v;
}

static inline uint64_t read_cr2(void)
{
    uint64_t v;

    asm volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}

/* Loading CR3 also flushes the (non-global) TLB. */
static inline void write_cr3(uint64_t v)
{
    asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline uint64_t read_cr4(void)
{
    uint64_t v;

    asm volatile("mov %%cr4, %0" : "=r"(v));
    return v;
}

static inline void write_cr4(uint64_t v)
{
    asm volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}

static inline void invlpg(uint64_t addr)
{
    asm volatile("invlpg (%0)" : : "r"(addr) : "memory");
}

/*
 * One 64-bit load or store at a linear address.  volatile: tests count and
 * observe translations, so each access must happen exactly as written.
 */
static inline uint64_t read64(uint64_t addr)
{
    return *(volatile uint64_t *)(uintptr_t)addr;
}

static inline void write64(uint64_t addr, uint64_t v)
{
    *(volatile uint64_t *)(uintptr_t)addr = v;
}

#endif /* LIBGUEST_H */
