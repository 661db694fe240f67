/*
 * kvm_nested: a small static KVM user program for qemu-dseg's tests.
 *
 * It runs inside a Linux guest of the fork, where kvm_amd drives the
 * emulated SVM with nested paging, and starts a nested (L2) guest through
 * /dev/kvm: one VM, one memory slot at gPA 0, one vCPU.  The L2 guest
 * starts directly in 64-bit long mode with 4-level page tables made of
 * 4 KiB pages (built here in the slot and loaded with KVM_SET_SREGS).  It
 * writes a pattern into PAGES distinct 4 KiB data pages, reads them back
 * into a checksum, reports the checksum through port I/O (KVM_EXIT_IO)
 * and halts (KVM_EXIT_HLT).  This program then checks the pattern in the
 * slot and the reported checksum against its own computation.
 *
 * Layout of the slot (gPA):
 *   0x001000         PML4
 *   0x002000-0x004000 PDPT, PD, PT mapping gVA [0, 2 MiB) to the same gPA
 *   0x005000-0x007000 PDPT, PD, PT mapping DATA_VA to DATA_GPA (PAGES pages)
 *   0x010000         L2 code
 *   0x020000         top of the L2 stack (unused by the code)
 *   0x200000         data pages (the second 2 MiB of the slot)
 * Everything the L2 guest's walks read lies in the first 2 MiB of the slot
 * and everything it stores to in the second, so a test can tell which
 * nested page size applies to which reference.
 *
 * The program waits for a line on stdin before KVM_RUN and again after
 * the run, so that a test can reset and read emulator counters around
 * exactly the nested guest's execution.  Console markers:
 *   KVM-READY <tag>        set up, waiting for a line before KVM_RUN
 *   KVM-RESULT <tag> ...   key=value results of the run
 *   KVM-DONE <tag>         run finished, waiting for a line before exit
 *   KVM-FAIL <tag> ...     something went wrong (exit status 1)
 *
 * Usage: kvm_nested [--tag T] [--pages N] [--seed S]
 *                   [--thp | --no-thp | --dseg-vmm]
 *   --thp       back the slot with transparent huge pages (MADV_HUGEPAGE),
 *               so that KVM may map it with 2 MiB nested pages
 *   --no-thp    forbid them (MADV_NOHUGEPAGE): 4 KiB nested pages only
 *               (the default)
 *   --dseg-vmm  take the slot from /dev/dseg-vmm (contrib/linux/dseg-vmm):
 *               host-physically contiguous memory, over which the module
 *               arms the VMM segment for this VM (VMM direct)
 *   --dseg-two  with --dseg-vmm: the slot's two halves from two mappings
 *               of /dev/dseg-vmm, as two slots.  While the first is
 *               mapped, the pool's first 2 MiB are free again (another
 *               process held them): the module must place the second
 *               right after the first, not there, and the segment must
 *               cover both
 *   --dseg-split with --dseg-vmm: only the first 2 MiB (tables and code)
 *               from /dev/dseg-vmm, the data's 2 MiB from ordinary memory
 *               in a second slot, which the segment must leave out
 *   --escape N  with --dseg-vmm: escape data page N (DSEG_VMM_ESCAPE),
 *               so that KVM's nested tables translate it
 *   --wp N      with --dseg-vmm: write-protect data page N in this
 *               process (mprotect) before the run.  KVM emulates the
 *               guest's first store to it and, unable to write the page,
 *               hands it over as an MMIO write (KVM_EXIT_MMIO): this
 *               program then makes the page writable, does the store and
 *               goes on (wp_faults= counts such exits)
 *   --churn N   with --dseg-vmm: before the measured VM, N VMs one after
 *               another on the same memory, each created, entered once
 *               (a HLT in real mode at CHURN_GPA) and closed, as a VMM
 *               that restarts its guests does
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>

#include "dseg_vmm_uapi.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOT_SIZE       (4ul << 20)
#define HUGE_2M         (2ul << 20)

/* --dseg-split, --dseg-two: the slot's second half elsewhere. */
enum { SPLIT_NONE, SPLIT_ANON, SPLIT_TWO };
#define PML4_GPA        0x1000ul
#define PDPT_LO_GPA     0x2000ul
#define PD_LO_GPA       0x3000ul
#define PT_LO_GPA       0x4000ul
#define PDPT_HI_GPA     0x5000ul
#define PD_HI_GPA       0x6000ul
#define PT_HI_GPA       0x7000ul
#define CHURN_GPA       0x8000ul
#define CODE_GPA        0x10000ul
#define STACK_TOP       0x20000ul
#define DATA_GPA        0x200000ul
#define DATA_VA         0x0000400000000000ul    /* PML4 index 128 */
#define MAX_PAGES       512                     /* one page table */

#define PTE_P           0x1ul
#define PTE_RW          0x2ul

#define CR0_PE          (1ul << 0)
#define CR0_MP          (1ul << 1)
#define CR0_ET          (1ul << 4)
#define CR0_NE          (1ul << 5)
#define CR0_PG          (1ul << 31)
#define CR4_PAE         (1ul << 5)
#define EFER_LME        (1ul << 8)
#define EFER_LMA        (1ul << 10)

/* Ports the L2 guest writes: checksum bits 31:0, 63:32, pages done. */
#define PORT_SUM_LO     0x510
#define PORT_SUM_HI     0x511
#define PORT_COUNT      0x512

#define PATTERN_MUL     0x9E3779B97F4A7C15ul

/*
 * The L2 guest.  Inputs: rdi = first data gVA, rsi = page count (>= 1),
 * rdx = seed.  Page i (0-based) gets v = ((i + 1) * PATTERN_MUL) ^ seed in
 * its first quadword and ~v in its last.  The checksum is
 * c = rol(c, 7) ^ first quadword, over the pages in order, from c = 0.
 * Only immediates and relative jumps: the code runs wherever it is copied.
 */
__asm__(
    "   .pushsection .rodata\n"
    "   .globl l2_code_start, l2_code_end\n"
    "l2_code_start:\n"
    "   mov     %rdx, %r9\n"
    "   movabs  $0x9E3779B97F4A7C15, %r8\n"
    "   mov     %rdi, %r10\n"
    "   xor     %ecx, %ecx\n"
    "1: lea     1(%rcx), %rax\n"
    "   imul    %r8, %rax\n"
    "   xor     %r9, %rax\n"
    "   mov     %rax, (%r10)\n"
    "   not     %rax\n"
    "   mov     %rax, 4088(%r10)\n"
    "   add     $4096, %r10\n"
    "   inc     %rcx\n"
    "   cmp     %rsi, %rcx\n"
    "   jb      1b\n"
    "   mov     %rdi, %r10\n"
    "   xor     %eax, %eax\n"
    "   xor     %ecx, %ecx\n"
    "2: rol     $7, %rax\n"
    "   xor     (%r10), %rax\n"
    "   add     $4096, %r10\n"
    "   inc     %rcx\n"
    "   cmp     %rsi, %rcx\n"
    "   jb      2b\n"
    "   mov     $0x510, %edx\n"
    "   out     %eax, %dx\n"
    "   shr     $32, %rax\n"
    "   mov     $0x511, %edx\n"
    "   out     %eax, %dx\n"
    "   mov     %ecx, %eax\n"
    "   mov     $0x512, %edx\n"
    "   out     %eax, %dx\n"
    "3: hlt\n"
    "   jmp     3b\n"
    "l2_code_end:\n"
    "   .popsection\n");

extern const unsigned char l2_code_start[], l2_code_end[];

static const char *tag = "kvm";

static void fail(const char *fmt, ...)
{
    va_list ap;

    printf("KVM-FAIL %s ", tag);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(1);
}

static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
    int r = ioctl(fd, req, arg);

    if (r < 0) {
        fail("%s: %s", what, strerror(errno));
    }
    return r;
}

/* Block until the test sends a line on stdin (or stdin is closed). */
static void wait_for_go(void)
{
    char c;

    for (;;) {
        ssize_t n = read(0, &c, 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || c == '\n') {
            return;
        }
    }
}

static uint64_t pattern(uint64_t i, uint64_t seed)
{
    return ((i + 1) * PATTERN_MUL) ^ seed;
}

static uint64_t expected_checksum(unsigned pages, uint64_t seed)
{
    uint64_t c = 0;

    for (unsigned i = 0; i < pages; i++) {
        c = ((c << 7) | (c >> 57)) ^ pattern(i, seed);
    }
    return c;
}

static void build_page_tables(unsigned char *mem, unsigned pages)
{
    uint64_t *pml4 = (uint64_t *)(mem + PML4_GPA);
    uint64_t *pdpt_lo = (uint64_t *)(mem + PDPT_LO_GPA);
    uint64_t *pd_lo = (uint64_t *)(mem + PD_LO_GPA);
    uint64_t *pt_lo = (uint64_t *)(mem + PT_LO_GPA);
    uint64_t *pdpt_hi = (uint64_t *)(mem + PDPT_HI_GPA);
    uint64_t *pd_hi = (uint64_t *)(mem + PD_HI_GPA);
    uint64_t *pt_hi = (uint64_t *)(mem + PT_HI_GPA);

    pml4[0] = PDPT_LO_GPA | PTE_P | PTE_RW;
    pdpt_lo[0] = PD_LO_GPA | PTE_P | PTE_RW;
    pd_lo[0] = PT_LO_GPA | PTE_P | PTE_RW;
    for (unsigned i = 1; i < 512; i++) {      /* page 0 stays unmapped */
        pt_lo[i] = ((uint64_t)i << 12) | PTE_P | PTE_RW;
    }

    pml4[(DATA_VA >> 39) & 511] = PDPT_HI_GPA | PTE_P | PTE_RW;
    pdpt_hi[(DATA_VA >> 30) & 511] = PD_HI_GPA | PTE_P | PTE_RW;
    pd_hi[(DATA_VA >> 21) & 511] = PT_HI_GPA | PTE_P | PTE_RW;
    for (unsigned i = 0; i < pages; i++) {
        pt_hi[((DATA_VA >> 12) & 511) + i] =
            (DATA_GPA + ((uint64_t)i << 12)) | PTE_P | PTE_RW;
    }
}

static void set_cpuid(int kvm, int vcpu)
{
    int nent = 64;

    for (;;) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) +
                                      nent * sizeof(struct kvm_cpuid_entry2));
        if (!c) {
            fail("out of memory");
        }
        c->nent = nent;
        if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            xioctl(vcpu, KVM_SET_CPUID2, c, "KVM_SET_CPUID2");
            free(c);
            return;
        }
        free(c);
        if (errno != E2BIG || nent >= 4096) {
            fail("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
        }
        nent *= 2;
    }
}

/* --churn: a VM on MEM's slot, entered once to a HLT, then closed. */
static void churn_vm(int kvm, unsigned char *mem, int run_size)
{
    struct kvm_userspace_memory_region region = {
        .memory_size = SLOT_SIZE, .userspace_addr = (uintptr_t)mem,
    };
    struct kvm_sregs s;
    struct kvm_regs r = { .rip = CHURN_GPA, .rflags = 0x2 };
    struct kvm_run *run;
    int vm, vcpu;

    vm = xioctl(kvm, KVM_CREATE_VM, NULL, "KVM_CREATE_VM");
    xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region,
           "KVM_SET_USER_MEMORY_REGION");
    vcpu = xioctl(vm, KVM_CREATE_VCPU, (void *)0, "KVM_CREATE_VCPU");
    run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) {
        fail("mmap kvm_run: %s", strerror(errno));
    }
    xioctl(vcpu, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
    s.cs.base = 0;
    s.cs.selector = 0;
    xioctl(vcpu, KVM_SET_SREGS, &s, "KVM_SET_SREGS");
    xioctl(vcpu, KVM_SET_REGS, &r, "KVM_SET_REGS");
    do {
        if (ioctl(vcpu, KVM_RUN, NULL) < 0 && errno != EINTR) {
            fail("KVM_RUN (churn): %s", strerror(errno));
        }
    } while (run->exit_reason == KVM_EXIT_INTR);
    if (run->exit_reason != KVM_EXIT_HLT) {
        fail("churn VM: exit reason %u", run->exit_reason);
    }
    munmap(run, run_size);
    close(vcpu);
    close(vm);
}

static void setup_long_mode(int vcpu, unsigned pages, uint64_t seed)
{
    struct kvm_sregs s;
    struct kvm_regs r;
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x08,
        .type = 11, .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
    };
    struct kvm_segment data = {
        .base = 0, .limit = 0xffffffff, .selector = 0x10,
        .type = 3, .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
    };

    xioctl(vcpu, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.cr3 = PML4_GPA;
    s.cr4 = CR4_PAE;
    s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
    s.efer = EFER_LME | EFER_LMA;
    xioctl(vcpu, KVM_SET_SREGS, &s, "KVM_SET_SREGS");

    memset(&r, 0, sizeof(r));
    r.rip = CODE_GPA;
    r.rsp = STACK_TOP;
    r.rflags = 0x2;
    r.rdi = DATA_VA;
    r.rsi = pages;
    r.rdx = seed;
    xioctl(vcpu, KVM_SET_REGS, &r, "KVM_SET_REGS");
}

/* Value of the VM statistic NAME (binary stats), or -1 if absent. */
static long long vm_stat(int vm, const char *name)
{
    struct kvm_stats_header h;
    size_t dsz;
    char *descs;
    long long val = -1;
    int fd = ioctl(vm, KVM_GET_STATS_FD, NULL);

    if (fd < 0) {
        return -1;
    }
    if (pread(fd, &h, sizeof(h), 0) != sizeof(h)) {
        close(fd);
        return -1;
    }
    dsz = sizeof(struct kvm_stats_desc) + h.name_size;
    descs = malloc(dsz * h.num_desc);
    if (descs && pread(fd, descs, dsz * h.num_desc, h.desc_offset) ==
        (ssize_t)(dsz * h.num_desc)) {
        for (unsigned i = 0; i < h.num_desc; i++) {
            struct kvm_stats_desc *d = (void *)(descs + i * dsz);
            uint64_t v;
            if (!strcmp(d->name, name) &&
                pread(fd, &v, sizeof(v), h.data_offset + d->offset) ==
                sizeof(v)) {
                val = (long long)v;
                break;
            }
        }
    }
    free(descs);
    close(fd);
    return val;
}

/* AnonHugePages (kB) of the mapping that contains ADDR, or -1. */
static long anon_huge_kb(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[256];
    int inside = 0;
    long kb = -1;

    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        /* Key lines ("Size:   8 kB") never parse as "lo-hi". */
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        } else if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

/* The command line (see the top of this file). */
struct options {
    unsigned pages;
    uint64_t seed;
    int thp, dseg_vmm, split, escape, wp, churn;   /* escape, wp: -1 none */
};

static void parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options) {
        .pages = 256, .seed = 0x0123456789abcdeful, .escape = -1, .wp = -1,
    };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tag") && i + 1 < argc) {
            tag = argv[++i];
        } else if (!strcmp(argv[i], "--pages") && i + 1 < argc) {
            o->pages = strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            o->seed = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--thp")) {
            o->thp = 1;
        } else if (!strcmp(argv[i], "--no-thp")) {
            o->thp = 0;
        } else if (!strcmp(argv[i], "--dseg-vmm")) {
            o->dseg_vmm = 1;
        } else if (!strcmp(argv[i], "--dseg-split")) {
            o->split = SPLIT_ANON;
        } else if (!strcmp(argv[i], "--dseg-two")) {
            o->split = SPLIT_TWO;
        } else if (!strcmp(argv[i], "--escape") && i + 1 < argc) {
            o->escape = strtol(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--wp") && i + 1 < argc) {
            o->wp = strtol(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--churn") && i + 1 < argc) {
            o->churn = strtol(argv[++i], NULL, 0);
        } else {
            fail("unknown argument %s", argv[i]);
        }
    }
    if (o->pages < 1 || o->pages > MAX_PAGES) {
        fail("--pages must be 1..%d", MAX_PAGES);
    }
    if (o->escape >= (int)o->pages || o->wp >= (int)o->pages ||
        ((o->escape >= 0 || o->wp >= 0 || o->split || o->churn) &&
         !o->dseg_vmm) ||
        o->churn < 0 || (o->churn && o->split)) {
        fail("--escape, --wp, --dseg-split, --dseg-two and --churn need "
             "--dseg-vmm, --churn is not for --dseg-split or --dseg-two, "
             "pages are below --pages");
    }
}

static int open_dseg_vmm(void)
{
    int fd = open("/dev/dseg-vmm", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        fail("open /dev/dseg-vmm: %s", strerror(errno));
    }
    return fd;
}

/*
 * --dseg-two: a child process maps the pool's first 2 MiB, before this
 * process maps anything, and holds them until release_spacer() closes
 * the pipe returned here.
 */
static int hold_spacer(void)
{
    int up[2], down[2];
    char c = 0;
    pid_t pid;

    if (pipe(up) || pipe(down)) {
        fail("pipe: %s", strerror(errno));
    }
    pid = fork();
    if (pid < 0) {
        fail("fork: %s", strerror(errno));
    }
    if (!pid) {
        int fd = open("/dev/dseg-vmm", O_RDWR);

        close(up[0]);
        close(down[1]);
        c = fd >= 0 && mmap(NULL, HUGE_2M, PROT_READ | PROT_WRITE,
                            MAP_SHARED, fd, 0) != MAP_FAILED;
        if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) < 0) {
            _exit(1);
        }
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    if (read(up[0], &c, 1) != 1 || !c) {
        fail("the spacer process could not map /dev/dseg-vmm");
    }
    close(up[0]);
    return down[1];
}

/* The spacer process exits: its 2 MiB of the pool are free. */
static void release_spacer(int pipe_fd)
{
    int status;

    close(pipe_fd);         /* the child reads EOF and exits */
    if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fail("the spacer process failed");
    }
}

/*
 * The slot: contiguous host-physical memory of the module, all of it;
 * with --dseg-split its first 2 MiB over ordinary memory; with --dseg-two
 * its halves from two mappings (the second file stays open until exit).
 * Returns the slot; *DSEG_FD is the module's file of its first 2 MiB.
 */
static unsigned char *map_dseg_vmm_slot(int split, int *dseg_fd)
{
    unsigned char *mem;
    int spacer = split == SPLIT_TWO ? hold_spacer() : -1;

    *dseg_fd = open_dseg_vmm();
    mem = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE,
               split ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_SHARED,
               split ? -1 : *dseg_fd, 0);
    if (mem != MAP_FAILED && split == SPLIT_ANON) {
        /* The data slot: 4 KiB nested leaves, as for --no-thp. */
        if (madvise(mem + HUGE_2M, HUGE_2M, MADV_NOHUGEPAGE)) {
            fail("madvise: %s", strerror(errno));
        }
    }
    if (mem != MAP_FAILED && split) {
        mem = mmap(mem, HUGE_2M, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, *dseg_fd, 0);
    }
    if (mem != MAP_FAILED && split == SPLIT_TWO) {
        release_spacer(spacer);
        if (mmap(mem + HUGE_2M, HUGE_2M, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED, open_dseg_vmm(), 0) == MAP_FAILED) {
            mem = MAP_FAILED;
        }
    }
    if (mem == MAP_FAILED) {
        fail("mmap /dev/dseg-vmm: %s", strerror(errno));
    }
    return mem;
}

/*
 * The slot: anonymous memory, 2 MiB-aligned so that THP, if asked for, can
 * back it, and populated.  *HUGE_KB: how much of it THP backs.
 */
static unsigned char *map_anon_slot(int thp, long *huge_kb)
{
    unsigned char *raw, *mem;

    raw = mmap(NULL, SLOT_SIZE + HUGE_2M, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        fail("mmap: %s", strerror(errno));
    }
    mem = (unsigned char *)(((uintptr_t)raw + HUGE_2M - 1) & ~(HUGE_2M - 1));
    if (madvise(mem, SLOT_SIZE, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) {
        fail("madvise: %s", strerror(errno));
    }
    memset(mem, 0, SLOT_SIZE);          /* populate before KVM maps it */
    *huge_kb = anon_huge_kb(mem);
    return mem;
}

/* One slot, or with --dseg-split one per 2 MiB: the same layout. */
static void set_memory_regions(int vm, unsigned char *mem, int split)
{
    for (unsigned s = 0; s < (split ? 2 : 1); s++) {
        struct kvm_userspace_memory_region region = {
            .slot = s, .guest_phys_addr = s * HUGE_2M,
            .memory_size = split ? HUGE_2M : SLOT_SIZE,
            .userspace_addr = (uintptr_t)mem + s * HUGE_2M,
        };

        xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region,
               "KVM_SET_USER_MEMORY_REGION");
    }
}

/* What the nested guest's run reported, and its exits. */
struct run_result {
    uint64_t sum_lo, sum_hi, count;
    unsigned io_exits, hlt_exits, other_exits, wp_faults;
};

static void handle_io(const struct kvm_run *run, struct run_result *r)
{
    uint32_t v;

    if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 ||
        run->io.count != 1) {
        fail("unexpected I/O exit port 0x%x", run->io.port);
    }
    memcpy(&v, (const char *)run + run->io.data_offset, 4);
    if (run->io.port == PORT_SUM_LO) {
        r->sum_lo = v;
    } else if (run->io.port == PORT_SUM_HI) {
        r->sum_hi = v;
    } else if (run->io.port == PORT_COUNT) {
        r->count = v;
    } else {
        fail("I/O exit on unexpected port 0x%x", run->io.port);
    }
    r->io_exits++;
}

/*
 * The measured window: runs the vCPU until the nested guest halts.
 * WP_PAGE, if not NULL, is the write-protected data page in MEM.
 */
static void run_nested(int vcpu, struct kvm_run *run, unsigned char *mem,
                       unsigned char *wp_page, struct run_result *r)
{
    for (int iter = 0; r->hlt_exits == 0; iter++) {
        if (iter > 10000) {
            fail("no HLT after %d exits", iter);
        }
        if (ioctl(vcpu, KVM_RUN, NULL) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }

            fail("KVM_RUN: %s", strerror(errno));
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            handle_io(run, r);
            break;
        case KVM_EXIT_HLT:
            r->hlt_exits++;
            break;
        case KVM_EXIT_MMIO:
            if (!wp_page || !run->mmio.is_write || run->mmio.len > 8 ||
                run->mmio.phys_addr - (wp_page - mem) > 4096 - run->mmio.len) {
                fail("unexpected MMIO exit at gPA 0x%llx",
                     (unsigned long long)run->mmio.phys_addr);
            }
            /* The store to the write-protected page: allow it, do it. */
            if (mprotect(wp_page, 4096, PROT_READ | PROT_WRITE)) {
                fail("mprotect: %s", strerror(errno));
            }
            memcpy(mem + run->mmio.phys_addr, run->mmio.data, run->mmio.len);
            wp_page = NULL;
            r->wp_faults++;
            break;
        case KVM_EXIT_INTR:
            r->other_exits++;
            break;
        case KVM_EXIT_FAIL_ENTRY:
            fail("KVM_EXIT_FAIL_ENTRY reason 0x%llx",
                 (unsigned long long)
                 run->fail_entry.hardware_entry_failure_reason);
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            fail("KVM_EXIT_INTERNAL_ERROR suberror %u",
                 run->internal.suberror);
            break;
        default: {
            struct kvm_regs regs;
            ioctl(vcpu, KVM_GET_REGS, &regs);
            fail("unexpected exit reason %u at rip 0x%llx", run->exit_reason,
                 (unsigned long long)regs.rip);
        }
        }
    }
}

/*
 * The data pages that do not hold the pattern, plus one if anything was
 * written past them.
 */
static unsigned bad_pages(const unsigned char *mem, unsigned pages,
                          uint64_t seed)
{
    unsigned bad = 0;

    for (unsigned i = 0; i < pages; i++) {
        const uint64_t *p = (const uint64_t *)(mem + DATA_GPA +
                                               ((uint64_t)i << 12));
        if (p[0] != pattern(i, seed) || p[511] != ~pattern(i, seed)) {
            bad++;
        }
    }
    /* Nothing may have been written past the data pages. */
    for (uint64_t a = DATA_GPA + ((uint64_t)pages << 12); a < SLOT_SIZE;
         a += 8) {
        if (*(const uint64_t *)(mem + a)) {
            bad++;
            break;
        }
    }
    return bad;
}

/*
 * Checks the run against this program's own computation and prints
 * KVM-RESULT with KVM's and the module's view of the VM; fails if the
 * checksum, the count or a data page is wrong.
 */
static void check_run(const struct options *o, const struct run_result *r,
                      int vm, int dseg_fd, const unsigned char *mem,
                      long huge_kb)
{
    struct dseg_vmm_info dseg = { 0 };
    long long pages_4k, pages_2m, pages_1g;
    uint64_t sum, want;
    unsigned bad;

    pages_4k = vm_stat(vm, "pages_4k");
    pages_2m = vm_stat(vm, "pages_2m");
    pages_1g = vm_stat(vm, "pages_1g");
    if (o->dseg_vmm) {
        xioctl(dseg_fd, DSEG_VMM_INFO, &dseg, "DSEG_VMM_INFO");
    }

    sum = r->sum_lo | r->sum_hi << 32;
    want = expected_checksum(o->pages, o->seed);
    bad = bad_pages(mem, o->pages, o->seed);
    printf("KVM-RESULT %s pages=%u seed=0x%016llx checksum=0x%016llx "
           "expected=0x%016llx count=%llu verify=%s io_exits=%u "
           "hlt_exits=%u other_exits=%u thp=%d anon_huge_kb=%ld "
           "kvm_pages_4k=%lld kvm_pages_2m=%lld kvm_pages_1g=%lld "
           "dseg_hpa=0x%llx dseg_base=0x%llx dseg_limit=0x%llx "
           "dseg_offset=0x%llx wp_faults=%u\n",
           tag, o->pages, (unsigned long long)o->seed,
           (unsigned long long)sum, (unsigned long long)want,
           (unsigned long long)r->count, bad ? "bad" : "ok", r->io_exits,
           r->hlt_exits, r->other_exits, o->thp, huge_kb, pages_4k,
           pages_2m, pages_1g,
           (unsigned long long)dseg.hpa, (unsigned long long)dseg.base,
           (unsigned long long)dseg.limit, (unsigned long long)dseg.offset,
           r->wp_faults);
    if (sum != want || r->count != o->pages || bad) {
        fail("checksum 0x%016llx (want 0x%016llx), count %llu, %u bad pages",
             (unsigned long long)sum, (unsigned long long)want,
             (unsigned long long)r->count, bad);
    }
}

int main(int argc, char **argv)
{
    struct options o;
    int kvm, vm, vcpu, run_size, dseg_fd = -1;
    unsigned char *wp_page = NULL;
    unsigned char *mem;
    struct kvm_run *run;
    struct run_result r = { 0 };
    long huge_kb = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_options(argc, argv, &o);
    alarm(60);

    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        fail("open /dev/kvm: %s", strerror(errno));
    }
    if (ioctl(kvm, KVM_GET_API_VERSION, NULL) != KVM_API_VERSION) {
        fail("unexpected KVM API version");
    }
    vm = xioctl(kvm, KVM_CREATE_VM, NULL, "KVM_CREATE_VM");
    mem = o.dseg_vmm ? map_dseg_vmm_slot(o.split, &dseg_fd)
                     : map_anon_slot(o.thp, &huge_kb);

    build_page_tables(mem, o.pages);
    memcpy(mem + CODE_GPA, l2_code_start, l2_code_end - l2_code_start);
    mem[CHURN_GPA] = 0xf4;                      /* hlt */
    run_size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL,
                      "KVM_GET_VCPU_MMAP_SIZE");
    for (int i = 0; i < o.churn; i++) {
        churn_vm(kvm, mem, run_size);
    }
    set_memory_regions(vm, mem, o.split);
    if (o.escape >= 0) {
        uint64_t gpa = DATA_GPA + ((uint64_t)o.escape << 12);

        xioctl(dseg_fd, DSEG_VMM_ESCAPE, &gpa, "DSEG_VMM_ESCAPE");
    }
    if (o.wp >= 0) {
        wp_page = mem + DATA_GPA + ((uint64_t)o.wp << 12);
        if (mprotect(wp_page, 4096, PROT_READ)) {
            fail("mprotect: %s", strerror(errno));
        }
    }

    vcpu = xioctl(vm, KVM_CREATE_VCPU, (void *)0, "KVM_CREATE_VCPU");
    run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) {
        fail("mmap kvm_run: %s", strerror(errno));
    }
    set_cpuid(kvm, vcpu);
    setup_long_mode(vcpu, o.pages, o.seed);

    printf("KVM-READY %s\n", tag);
    wait_for_go();
    run_nested(vcpu, run, mem, wp_page, &r);

    check_run(&o, &r, vm, dseg_fd, mem, huge_kb);
    printf("KVM-DONE %s\n", tag);
    wait_for_go();
    return 0;
}
