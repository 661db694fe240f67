/*
 * dseg_fuzz: random use of the guest module's interface and of the
 * preload library's entry points, for tests/functional/test_linux_dseg.py.
 *
 * Usage: dseg_fuzz device SECONDS SEED POOL_MIB
 *          For SECONDS, random cases on /dev/dseg: open and close, mmap
 *          (lengths from none to 2^64 - 4 KiB, any offset, protection and
 *          sharing, MAP_FIXED over its own mappings), munmap, mprotect,
 *          mremap and madvise of parts of them, ioctls with any command
 *          and argument, reads and writes of the mappings through a pipe
 *          (EFAULT, not a crash, when a page is not mapped), fork with a
 *          child that goes on at random and exits, and vfork+exec.  The
 *          program keeps to addresses it mapped itself and allocates
 *          nothing, so no case can hit its own memory.  Then, with
 *          everything closed, the process must have no region and a
 *          region of the whole pool (POOL_MIB) must map: nothing leaked.
 *        dseg_fuzz vmm SECONDS SEED POOL_MIB
 *          The same on /dev/dseg-vmm (contrib/linux/dseg-vmm), with its
 *          ioctls, plus KVM: up to two VMs whose memory slots (any gPA,
 *          size and flags) lie over its own mappings, and vCPUs that run
 *          whatever those hold for 20 ms at a time, so that the module
 *          derives segments from random slots while mappings change.
 *        dseg_fuzz alloc SECONDS SEED
 *          For SECONDS, random calls of malloc, calloc, realloc,
 *          reallocarray, free, posix_memalign, aligned_alloc, memalign,
 *          valloc, malloc_usable_size, and anonymous mmap/munmap, with any
 *          size and alignment (run under LD_PRELOAD of the preload
 *          library).  Every block is filled with its own pattern, checked
 *          when it is reallocated or freed; results that break the C
 *          library's contract (a misaligned block, a usable size below the
 *          request, a success that should be an error) fail.  Forks now
 *          and then: the child checks and frees its copies.
 *        dseg_fuzz nop
 *          exit 0 (the program exec'd by the device fuzzing)
 * Prints "FUZZ-CASES mode N" and "FUZZ-OK mode", or "FAIL ..." lines.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dseg_uapi.h"
#include "dseg_vmm_uapi.h"

#define PAGE            4096ul
#define MIB             (1ul << 20)
#define ARENA           (64 * MIB)
#define MAX_FDS         4
#define MAX_MAPS        32
#define MAX_BLOCKS      128             /* live at once: at most ~128 MiB */

static uint64_t rng;
static unsigned long failures;
static const char *self;

static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

static uint64_t below(uint64_t n)
{
    return n ? next() % n : 0;
}

static void fail(const char *what, unsigned long a, unsigned long b)
{
    printf("FAIL %s (%#lx, %#lx)\n", what, a, b);
    fflush(stdout);
    failures++;
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* --- device ----------------------------------------------------------- */

/* /dev/dseg, or /dev/dseg-vmm and KVM (vmm). */
static const char *dev_path = "/dev/dseg";
static int vmm;
static size_t unit = PAGE;              /* the device's length unit */
static int kvm_fd = -1, run_size;
static struct { int vm, vcpu; struct kvm_run *run; } vms[2];

static int fds[MAX_FDS];
static struct { uintptr_t addr; size_t len; } maps[MAX_MAPS];
static unsigned char *arena;
static int pipefd[2];

/* A length: none, a page, some pages, the pool and beyond, absurd. */
static size_t any_length(size_t pool)
{
    static const size_t big[] = {
        1ul << 44, (1ul << 44) + PAGE, 1ul << 45, (1ul << 45) + PAGE,
        -PAGE, -2 * PAGE, 1ul << 63,
    };

    switch (below(8)) {
    case 0:
        return 0;
    case 1:
        return PAGE;
    case 2:
    case 3:
        return (1 + below(vmm ? 8 : 2048)) * unit;
    case 4:
        return pool + below(3) * PAGE - PAGE;
    case 5:
        return big[below(sizeof(big) / sizeof(big[0]))];
    case 6:
        return below(1ul << 24);                /* unaligned */
    default:
        return (1 + below(16)) * MIB;
    }
}

static int any_prot(void)
{
    static const int prot[] = {
        PROT_NONE, PROT_READ, PROT_WRITE, PROT_READ | PROT_WRITE,
        PROT_READ | PROT_WRITE | PROT_EXEC, PROT_EXEC,
    };
    return prot[below(sizeof(prot) / sizeof(prot[0]))];
}

/* An address this program mapped: in a mapping it made, or the arena. */
static unsigned char *own_address(size_t *room)
{
    unsigned i = below(MAX_MAPS + 1);

    if (i < MAX_MAPS && maps[i].len) {
        size_t off = below(maps[i].len / PAGE + 1) * PAGE;

        *room = maps[i].len - off;
        return (unsigned char *)maps[i].addr + off;
    }
    i = below(ARENA / PAGE);
    *room = ARENA - i * PAGE;
    return arena + i * PAGE;
}

static int any_fd(void)
{
    int fd = fds[below(MAX_FDS)];

    return below(16) ? fd : (int)below(64) - 1;
}

static void remember(void *p, size_t len)
{
    if (p != MAP_FAILED) {
        unsigned i = below(MAX_MAPS);

        maps[i].addr = (uintptr_t)p;
        maps[i].len = len;
    }
}

static void device_case(size_t pool, int depth);

static void on_alarm(int sig)
{
    (void)sig;                  /* only to make KVM_RUN return EINTR */
}

static void vm_close(unsigned i)
{
    if (vms[i].run) {
        munmap(vms[i].run, run_size);
    }
    if (vms[i].vcpu >= 0) {
        close(vms[i].vcpu);
    }
    close(vms[i].vm);
    vms[i].vm = vms[i].vcpu = -1;
    vms[i].run = NULL;
}

/* KVM: create or close a VM, set a slot, or run its vCPU for 20 ms. */
static void vm_case(void)
{
    unsigned i = below(2);
    size_t room;
    struct kvm_sregs sregs;
    struct kvm_regs regs = { .rflags = 2 };
    struct kvm_userspace_memory_region slot;
    struct itimerval t = { .it_value = { .tv_usec = 20000 } };
    void *p;

    if (vms[i].vm < 0 || !below(16)) {
        if (vms[i].vm >= 0) {
            vm_close(i);
            return;
        }
        vms[i].vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
        if (vms[i].vm < 0) {
            return;
        }
        vms[i].vcpu = ioctl(vms[i].vm, KVM_CREATE_VCPU, 0);
        p = vms[i].vcpu < 0 ? MAP_FAILED
            : mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   vms[i].vcpu, 0);
        vms[i].run = p == MAP_FAILED ? NULL : p;
        if (vms[i].vcpu >= 0 && !ioctl(vms[i].vcpu, KVM_GET_SREGS, &sregs)) {
            sregs.cs.base = 0;
            sregs.cs.selector = 0;
            ioctl(vms[i].vcpu, KVM_SET_SREGS, &sregs);
        }
        return;
    }
    if (below(2)) {
        p = own_address(&room);
        slot = (struct kvm_userspace_memory_region) {
            .slot = below(4),
            .flags = !below(4) ? KVM_MEM_LOG_DIRTY_PAGES
                   : !below(8) ? KVM_MEM_READONLY : 0,
            .guest_phys_addr = below(32) * (2 * MIB),
            .memory_size = below(4) ? (1 + below(4)) * (2 * MIB) : 0,
            .userspace_addr = (uintptr_t)p,
        };
        if (slot.memory_size > room) {
            slot.memory_size = room / PAGE * PAGE;
        }
        ioctl(vms[i].vm, KVM_SET_USER_MEMORY_REGION, &slot);
        return;
    }
    if (vms[i].vcpu < 0) {
        return;
    }
    regs.rip = below(64 * MIB);
    ioctl(vms[i].vcpu, KVM_SET_REGS, &regs);
    setitimer(ITIMER_REAL, &t, NULL);
    ioctl(vms[i].vcpu, KVM_RUN, 0);
    t.it_value.tv_usec = 0;
    setitimer(ITIMER_REAL, &t, NULL);
}

/* A read or a write of a word of a mapping, through the pipe. */
static void touch(void)
{
    size_t room;
    unsigned char *p = own_address(&room);
    uint64_t v = next(), w;

    if (room < 8) {
        return;
    }
    p += below(room / 8) * 8;
    if (below(2)) {
        /* Write: the pipe's data lands at p (EFAULT if it cannot). */
        if (write(pipefd[1], &v, 8) == 8 && read(pipefd[0], p, 8) != 8) {
            /* Drain what the refused read left. */
            if (read(pipefd[0], &w, 8) != 8) {
                fail("pipe drain", (uintptr_t)p, 0);
            }
        }
    } else if (write(pipefd[1], p, 8) == 8 && read(pipefd[0], &w, 8) != 8) {
        fail("pipe read-back", (uintptr_t)p, 0);
    }
}

static void child_goes_on(size_t pool, int depth)
{
    rng ^= getpid();
    for (int i = 0; i < 32; i++) {
        device_case(pool, depth + 1);
    }
    _exit(0);
}

static void device_case(size_t pool, int depth)
{
    struct dseg_region_info info;
    size_t room, len;
    unsigned char *p;
    unsigned i = below(MAX_FDS);
    int status;
    pid_t pid;

    switch (below(vmm ? 14 : 12)) {
    case 0:                                     /* open or close */
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        } else {
            fds[i] = open(dev_path, below(8) ? O_RDWR : O_RDONLY);
        }
        break;
    case 1:                                     /* mmap */
    case 2: {
        int flags = below(4) ? MAP_SHARED : MAP_PRIVATE;
        off_t off = below(4) ? 0 : (off_t)(below(3) ? PAGE : next());

        len = any_length(pool);
        p = NULL;
        if (!below(3)) {
            p = own_address(&room);
            flags |= MAP_FIXED;
            if (len > room) {
                len = room;
            }
        }
        p = mmap(p, len, any_prot(), flags, any_fd(), off);
        remember(p, len);
        break;
    }
    case 3:                                     /* munmap */
        p = own_address(&room);
        munmap(p, below(room / PAGE + 1) * PAGE);
        break;
    case 4:                                     /* mprotect */
        p = own_address(&room);
        mprotect(p, below(room / PAGE + 1) * PAGE, any_prot());
        break;
    case 5: {                                   /* mremap */
        size_t to_room;
        unsigned char *to = own_address(&to_room);
        int flags = (int)below(3);              /* 0, MAYMOVE, +FIXED */

        p = own_address(&room);
        len = below(room / PAGE + 1) * PAGE;
        room = below(2) ? below(to_room / PAGE + 1) * PAGE : any_length(pool);
        if (flags == 2) {
            flags |= MREMAP_MAYMOVE;
            if (room > to_room) {
                room = to_room;
            }
        }
        p = mremap(p, len, room, flags, to);
        remember(p, room);
        break;
    }
    case 6: {                                   /* madvise */
        static const int advice[] = {
            MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK,
            MADV_KEEPONFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLD,
            MADV_PAGEOUT, MADV_WILLNEED, MADV_POPULATE_WRITE,
        };
        p = own_address(&room);
        madvise(p, below(room / PAGE + 1) * PAGE,
                advice[below(sizeof(advice) / sizeof(advice[0]))]);
        break;
    }
    case 7: {                                   /* ioctl */
        static const unsigned long cmds[] = {
            DSEG_IOC_REGION, DSEG_VMM_INFO, DSEG_VMM_ESCAPE,
        };
        uint64_t gpa = below(2) ? below(64 * MIB) : next();
        unsigned long cmd = below(2) ? cmds[vmm ? 1 + below(2) : 0]
                          : below(2) ? (unsigned long)(uint32_t)next()
                          : _IOC(below(4), below(2) ? 'D' : DSEG_IOC_MAGIC,
                                 below(0x48), below(64));
        void *arg = below(2) ? (cmd == DSEG_VMM_ESCAPE ? (void *)&gpa
                                                       : (void *)&info)
                  : below(2) ? (void *)own_address(&room)
                  : (void *)(uintptr_t)(below(2) ? 0 : next());
        ioctl(any_fd(), cmd, arg);
        break;
    }
    case 8:
    case 9:
        touch();
        break;
    case 10:                                    /* fork */
        if (depth > 1) {
            break;
        }
        pid = fork();
        if (pid == 0) {
            child_goes_on(pool, depth);
        }
        if (pid > 0 && waitpid(pid, &status, 0) == pid &&
            !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            fail("fork child", (unsigned long)status, 0);
        }
        break;
    case 12:
    case 13:
        vm_case();
        break;
    default:                                    /* vfork + exec */
        if (depth > 0) {
            break;
        }
        pid = vfork();
        if (pid == 0) {
            execl(self, self, "nop", (char *)NULL);
            _exit(127);
        }
        if (pid > 0 && waitpid(pid, &status, 0) == pid &&
            !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            fail("exec'd program", (unsigned long)status, 0);
        }
        break;
    }
}

static int fuzz_device(double seconds, size_t pool_mib)
{
    size_t pool = pool_mib * MIB;
    struct dseg_region_info info;
    unsigned long cases = 0;
    double end = now() + seconds;
    void *p;
    int fd;

    for (int i = 0; i < MAX_FDS; i++) {
        fds[i] = -1;
    }
    vms[0].vm = vms[1].vm = vms[0].vcpu = vms[1].vcpu = -1;
    if (vmm) {
        struct sigaction sa = { .sa_handler = on_alarm };

        kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        run_size = kvm_fd < 0 ? -1 : ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (run_size < 0 || sigaction(SIGALRM, &sa, NULL)) {
            fail("opening /dev/kvm", errno, 0);
            return 1;
        }
    }
    arena = mmap(NULL, ARENA, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED || pipe(pipefd)) {
        fail("setting up", errno, 0);
        return 1;
    }
    while (now() < end) {
        for (int i = 0; i < 64; i++, cases++) {
            device_case(pool, 0);
        }
    }
    printf("FUZZ-CASES %s %lu\n", vmm ? "vmm" : "device", cases);

    for (unsigned i = 0; i < 2; i++) {
        if (vms[i].vm >= 0) {
            vm_close(i);
        }
    }
    for (int i = 0; i < MAX_FDS; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    for (int i = 0; i < MAX_MAPS; i++) {
        if (maps[i].len) {
            munmap((void *)maps[i].addr, maps[i].len);
        }
    }
    munmap(arena, ARENA);
    fd = open(dev_path, O_RDWR);
    if (fd < 0 ||
        (!vmm && (ioctl(fd, DSEG_IOC_REGION, &info) == 0 || errno != ENOENT))) {
        fail("a region is left after everything was closed", fd, errno);
    }
    p = mmap(NULL, pool, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        fail("a region of the whole pool", pool, errno);
    } else {
        ((volatile uint64_t *)p)[pool / 8 - 1] = 1;
        munmap(p, pool);
    }
    close(fd);
    return 0;
}

/* --- the preload library's entry points -------------------------------- */

static struct { unsigned char *p; size_t size; uint64_t tag; } blocks[MAX_BLOCKS];

static size_t any_size(void)
{
    switch (below(8)) {
    case 0:
        return 0;
    case 1:
    case 2:
        return below(4096);
    case 3:
        return below(256 * 1024);
    case 4:
    case 5:
        return below(2 * MIB);
    case 6:
        return (SIZE_MAX >> below(8)) - below(4096);   /* absurd */
    default:
        return (1 + below(2)) * MIB + below(2) * PAGE;
    }
}

static void fill_block(unsigned i)
{
    /* First and last 64 bytes and one word per page: cheap, and enough. */
    unsigned char *p = blocks[i].p;
    size_t n = blocks[i].size;

    for (size_t o = 0; o < n; o += (o < 64 || n - o <= 64) ? 1 : PAGE) {
        p[o] = (unsigned char)(blocks[i].tag + o * 131);
    }
}

/* The pattern of block I, as filled for its size, below N. */
static void check_block(unsigned i, size_t n)
{
    const unsigned char *p = blocks[i].p;

    for (size_t o = 0; o < n && o < blocks[i].size;
         o += (o < 64 || blocks[i].size - o <= 64) ? 1 : PAGE) {
        if (p[o] != (unsigned char)(blocks[i].tag + o * 131)) {
            fail("block contents", (uintptr_t)p, o);
            return;
        }
    }
}

static void take(unsigned i, void *p, size_t size, size_t align)
{
    if (!p) {
        return;
    }
    if (align && (uintptr_t)p % align) {
        fail("misaligned block", (uintptr_t)p, align);
    }
    if (malloc_usable_size(p) < size) {
        fail("usable size below the request", (uintptr_t)p, size);
    }
    blocks[i].p = p;
    blocks[i].size = size;
    blocks[i].tag = next();
    fill_block(i);
}

static void drop(unsigned i)
{
    check_block(i, blocks[i].size);
    free(blocks[i].p);
    blocks[i].p = NULL;
}

static void alloc_case(void)
{
    unsigned i = below(MAX_BLOCKS);
    size_t size = any_size(), n, align;
    void *p = NULL;
    int r, status;
    pid_t pid;

    if (blocks[i].p && below(4)) {
        switch (below(4)) {
        case 0:
            drop(i);
            break;
        case 1:                                 /* realloc */
            check_block(i, blocks[i].size);
            p = realloc(blocks[i].p, size);
            if (p) {
                blocks[i].p = p;
                check_block(i, size);           /* what it kept */
                take(i, p, size, 0);
            } else if (!size) {
                blocks[i].p = NULL;             /* freed */
            }
            break;
        case 2:
            if (malloc_usable_size(blocks[i].p) < blocks[i].size) {
                fail("usable size", (uintptr_t)blocks[i].p, blocks[i].size);
            }
            break;
        default:                                /* reallocarray */
            n = 1 + below(64);
            check_block(i, blocks[i].size);
            p = reallocarray(blocks[i].p, n, size / n);
            if (p) {
                blocks[i].p = p;
                check_block(i, size / n * n);
                take(i, p, size / n * n, 0);
            } else if (!(size / n)) {
                blocks[i].p = NULL;
            }
        }
        return;
    }
    if (blocks[i].p) {
        drop(i);
    }
    align = (size_t)1 << below(24);
    switch (below(8)) {
    case 0:
    case 1:
        take(i, malloc(size), size, 0);
        break;
    case 2:
        n = below(2) ? 1 + below(4) : SIZE_MAX / 2 + below(8);
        p = calloc(n, size);
        if (p && (size && n > SIZE_MAX / size)) {
            fail("calloc overflow succeeded", n, size);
        }
        for (size_t o = 0; p && o < n * size; o += PAGE) {
            if (((unsigned char *)p)[o]) {
                fail("calloc not zero", (uintptr_t)p, o);
                break;
            }
        }
        take(i, p, n * size, 0);
        break;
    case 3:
        if (below(4) == 0) {
            align = below(4) ? align + 8 : 0;    /* not a power of two */
        }
        r = posix_memalign(&p, align, size);
        if (!r && (align < sizeof(void *) || (align & (align - 1)))) {
            fail("posix_memalign took a bad alignment", align, 0);
        }
        take(i, r ? NULL : p, size, align);
        break;
    case 4:
        take(i, aligned_alloc(align, size / align * align), size / align * align,
             align);
        break;
    case 5:
        take(i, memalign(align, size), size, align);
        break;
    case 6:
        take(i, valloc(size), size, PAGE);
        break;
    default:
        if (below(8)) {                         /* mmap, munmap */
            size = 1 + below(16 * MIB);
            p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p != MAP_FAILED) {
                memset(p, 0xa5, size < 4096 ? size : 4096);
                munmap(p, size);
            }
            break;
        }
        pid = fork();
        if (pid == 0) {
            for (unsigned j = 0; j < MAX_BLOCKS; j++) {
                if (blocks[j].p) {
                    drop(j);
                }
            }
            _exit(failures ? 1 : 0);
        }
        if (pid > 0 && waitpid(pid, &status, 0) == pid &&
            !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            fail("fork child", (unsigned long)status, 0);
        }
    }
}

static int fuzz_alloc(double seconds)
{
    unsigned long cases = 0;
    double end = now() + seconds;

    while (now() < end) {
        for (int i = 0; i < 64; i++, cases++) {
            alloc_case();
        }
    }
    for (unsigned i = 0; i < MAX_BLOCKS; i++) {
        if (blocks[i].p) {
            drop(i);
        }
    }
    printf("FUZZ-CASES alloc %lu\n", cases);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    double seconds = argc > 2 ? strtod(argv[2], NULL) : 1;

    rng = argc > 3 ? strtoull(argv[3], NULL, 0) | 1 : 1;
    self = argv[0];
    if (!strcmp(mode, "nop")) {
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("FUZZ-START %s seed %#llx\n", mode, (unsigned long long)rng);
    if (!strcmp(mode, "device") && argc > 4) {
        fuzz_device(seconds, strtoul(argv[4], NULL, 0));
    } else if (!strcmp(mode, "vmm") && argc > 4) {
        dev_path = "/dev/dseg-vmm";
        vmm = 1;
        unit = 2 * MIB;
        fuzz_device(seconds, strtoul(argv[4], NULL, 0));
    } else if (!strcmp(mode, "alloc")) {
        fuzz_alloc(seconds);
    } else {
        fprintf(stderr, "usage: dseg_fuzz device|vmm SECONDS SEED POOL_MIB |"
                " alloc SECONDS SEED | nop\n");
        return 2;
    }
    if (!failures) {
        printf("FUZZ-OK %s\n", mode);
    }
    return !!failures;
}
