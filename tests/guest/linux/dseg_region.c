/*
 * dseg_region: exercises primary regions of the qemu-dseg guest module
 * (contrib/linux/dseg) from a Linux guest's user space, for
 * tests/functional/test_linux_dseg.py.
 *
 * Usage: dseg_region COMMAND [ARGS]
 *   touch MIB TAG      map a region of MIB MiB, write every word with a
 *                      value derived from TAG and its offset, read all of
 *                      it back; print "REGION base limit phys" and
 *                      "TOUCH-OK" or "TOUCH-FAIL"
 *   second             map a region, then try a second: expect EBUSY
 *   lifecycle          munmap, fork and exec leave no region behind
 *   alternate MIB N    two processes, each with a region of its own, take
 *                      N turns each on CPU 0 (a token passed through
 *                      pipes), checking and writing their own tagged pages
 *   threads MIB N      four threads share one region, each checks its
 *                      own slice N times while moving between CPUs
 *   hold MIB           map a region and sleep until killed
 *   mremap MIB         moving, growing and shrinking a region with mremap
 *                      are refused (EINVAL, EFAULT, EINVAL) and leave it
 *                      whole: still reported,
 *                      its data intact, its pool pages not handed to
 *                      another process, and munmap frees it
 *   exec N             a program exec'd after vfork, and one started by
 *                      posix_spawn, N times each, cannot reach the
 *                      parent's region (which its address space does not
 *                      map): reading it faults
 *   unmapped ADDR      (run by exec) read ADDR; exit 0 if that faults, 1
 *                      if it reads, 3 if ADDR is mapped here after all
 *   unprivileged       /dev/dseg is 0660; a user without privileges (uid
 *                      and gid 65534, RLIMIT_MEMLOCK 8 MiB, the device
 *                      opened to all for the test) gets no region larger
 *                      than RLIMIT_MEMLOCK (ENOMEM), none with a limit of 0
 *                      (EPERM), at most four at once (ENOSPC), and no
 *                      physical address from the ioctl
 *   sizes POOL_MIB     mappings larger than the pool of POOL_MIB MiB,
 *                      including 2^44 bytes and 2^44 bytes plus a page,
 *                      fail with ENOMEM and leave no region behind
 * Every check prints a line; the exit status is 0 when all passed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdseg.h"

#define PAGE            4096ul
#define MIB             (1ul << 20)
#define NTHREADS        4

static int failures;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    fflush(stdout);
    failures += !ok;
}

static uint64_t word(uint64_t tag, size_t i)
{
    return (tag << 40) ^ (i * 0x9E3779B97F4A7C15ull);
}

/* 0, or -errno. */
static int region_info(struct dseg_region_info *info)
{
    return dseg_region_info(info) ? -errno : 0;
}

static void fill(uint64_t *p, size_t words, uint64_t tag, size_t stride)
{
    for (size_t i = 0; i < words; i += stride) {
        p[i] = word(tag, i);
    }
}

static int verify(const uint64_t *p, size_t words, uint64_t tag,
                  size_t stride)
{
    for (size_t i = 0; i < words; i += stride) {
        if (p[i] != word(tag, i)) {
            printf("# word %zu: %#llx, expected %#llx\n", i,
                   (unsigned long long)p[i],
                   (unsigned long long)word(tag, i));
            return 0;
        }
    }
    return 1;
}

static int all_zero(const uint64_t *p, size_t words)
{
    for (size_t i = 0; i < words; i++) {
        if (p[i]) {
            return 0;
        }
    }
    return 1;
}

static int cmd_touch(size_t mib, uint64_t tag)
{
    size_t size = mib * MIB, words = size / 8;
    struct dseg_region_info info;
    uint64_t *p = dseg_region_alloc(size);

    if (!p) {
        printf("TOUCH-FAIL map: %s\n", strerror(errno));
        return 1;
    }
    check(all_zero(p, words), "region starts zeroed");
    check(region_info(&info) == 0 && info.base == (uintptr_t)p &&
          info.limit == (uintptr_t)p + size, "ioctl REGION");
    printf("REGION %#llx %#llx %#llx\n", (unsigned long long)info.base,
           (unsigned long long)info.limit, (unsigned long long)info.phys);
    fill(p, words, tag, 1);
    check(verify(p, words, tag, 1), "read back");
    printf(failures ? "TOUCH-FAIL\n" : "TOUCH-OK\n");
    return !!failures;
}

static int cmd_second(void)
{
    uint64_t *p = dseg_region_alloc(MIB), *q;

    check(p != NULL, "first region");
    q = dseg_region_alloc(MIB);
    check(q == NULL && errno == EBUSY, "second region refused with EBUSY");
    return !!failures;
}

static int cmd_lifecycle(void)
{
    struct dseg_region_info info;
    uint64_t *p = dseg_region_alloc(2 * MIB);
    pid_t pid;
    int status;

    check(p != NULL, "region");
    fill(p, 2 * MIB / 8, 7, 512);
    pid = fork();
    if (pid == 0) {
        /* Another mm: no region, and no mapping of it (VM_DONTCOPY). */
        _exit(region_info(&info) == -ENOENT ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "forked child has no region");
    check(verify(p, 2 * MIB / 8, 7, 512), "parent's region intact");
    pid = fork();
    if (pid == 0) {
        execl("/bin/dseg_region", "dseg_region", "noregion", (char *)NULL);
        _exit(2);
    }
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "after exec: no region");
    check(munmap(p, MIB) == -1 && errno == EINVAL,
          "partial munmap refused");
    check(mprotect(p, 2 * MIB, PROT_READ) == -1,
          "mprotect refused");
    check(munmap(p, 2 * MIB) == 0, "munmap");
    check(region_info(&info) == -ENOENT, "no region after munmap");
    p = dseg_region_alloc(MIB);
    check(p != NULL && all_zero(p, MIB / 8), "a new region after munmap, zeroed");
    return !!failures;
}

static int cmd_noregion(void)
{
    struct dseg_region_info info;

    return region_info(&info) == -ENOENT ? 0 : 1;
}

/*
 * One of two processes that pass a token through pipes: in each turn it
 * checks what it wrote in its last turn, writes the next round, and
 * hands over.  Both run on CPU 0, so every turn follows a switch from the
 * other process, which re-armed the segment and so flushed the TLB.
 */
static int alternate_child(size_t mib, int rounds, uint64_t tag, int in,
                           int out, int first)
{
    size_t words = mib * MIB / 8;
    uint64_t *p = dseg_region_alloc(mib * MIB);
    char token = 0;

    if (!p) {
        printf("FAIL process %llu: map: %s\n", (unsigned long long)tag,
               strerror(errno));
    }
    for (int r = 0; r <= rounds; r++) {
        if ((!first || r > 0) && read(in, &token, 1) != 1) {
            printf("FAIL process %llu: lost the token\n",
                   (unsigned long long)tag);
            return 1;
        }
        if (p && r > 0 && !verify(p, words, tag + r - 1, 512)) {
            printf("FAIL process %llu round %d\n", (unsigned long long)tag,
                   r - 1);
            p = NULL;
        }
        if (p && r < rounds) {
            fill(p, words, tag + r, 512);
        }
        if (write(out, &token, 1) != 1) {
            return 1;
        }
    }
    return p == NULL;
}

static int cmd_alternate(size_t mib, int rounds)
{
    int pipes[2][2];
    pid_t pids[2];
    int status, ok = 1;

    if (pipe(pipes[0]) || pipe(pipes[1])) {
        return 1;
    }
    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        if (pids[c] == 0) {
            cpu_set_t set;

            CPU_ZERO(&set);
            CPU_SET(0, &set);
            sched_setaffinity(0, sizeof(set), &set);
            _exit(alternate_child(mib, rounds, 0x100 * (c + 1),
                                  pipes[c][0], pipes[!c][1], c == 0));
        }
    }
    for (int c = 0; c < 2; c++) {
        waitpid(pids[c], &status, 0);
        ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    check(ok, "two processes each saw only their own region");
    return !!failures;
}

struct thread_arg {
    uint64_t *p;
    size_t words;
    int index, rounds, ok, cpus;
};

static void *thread_main(void *opaque)
{
    struct thread_arg *a = opaque;
    cpu_set_t set;

    a->ok = 1;
    for (int r = 0; r < a->rounds && a->ok; r++) {
        /* Move to another CPU every round. */
        CPU_ZERO(&set);
        CPU_SET((a->index + r) % a->cpus, &set);
        sched_setaffinity(0, sizeof(set), &set);
        fill(a->p, a->words, 0x1000 * (a->index + 1) + r, 64);
        sched_yield();
        a->ok = verify(a->p, a->words, 0x1000 * (a->index + 1) + r, 64);
    }
    return NULL;
}

static int cmd_threads(size_t mib, int rounds)
{
    size_t words = mib * MIB / 8 / NTHREADS;
    uint64_t *p = dseg_region_alloc(mib * MIB);
    struct thread_arg args[NTHREADS];
    pthread_t threads[NTHREADS];
    int cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int ok = 1;

    check(p != NULL, "region");
    if (!p) {
        return 1;
    }
    for (int t = 0; t < NTHREADS; t++) {
        args[t] = (struct thread_arg){ p + t * words, words, t, rounds, 0,
                                       cpus };
        pthread_create(&threads[t], NULL, thread_main, &args[t]);
    }
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(threads[t], NULL);
        ok &= args[t].ok;
    }
    printf("# %d CPUs\n", cpus);
    check(ok, "threads on several CPUs saw their own data");
    return !!failures;
}

static void __attribute__((noreturn)) cmd_hold(size_t mib)
{
    uint64_t *p = dseg_region_alloc(mib * MIB);

    check(p != NULL, "region held");
    for (;;) {
        pause();
    }
}

/* A child process maps a region of MIB MiB; its physical range. */
static int child_region(size_t mib, struct dseg_region_info *info)
{
    int fds[2], status;
    pid_t pid;

    if (pipe(fds)) {
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        uint64_t *q = dseg_region_alloc(mib * MIB);
        struct dseg_region_info mine = { 0 };

        if (q) {
            fill(q, mib * MIB / 8, 0x77, 1);
            region_info(&mine);
        }
        _exit(write(fds[1], &mine, sizeof(mine)) == sizeof(mine) ? 0 : 1);
    }
    close(fds[1]);
    if (read(fds[0], info, sizeof(*info)) != sizeof(*info)) {
        info->phys = 0;
    }
    close(fds[0]);
    waitpid(pid, &status, 0);
    return info->phys ? 0 : -1;
}

static int cmd_mremap(size_t mib)
{
    size_t size = mib * MIB, words = size / 8;
    struct dseg_region_info info, after, child;
    uint64_t *p = dseg_region_alloc(size);
    void *spare, *moved;

    check(p != NULL && region_info(&info) == 0, "region for mremap");
    if (!p) {
        return 1;
    }
    fill(p, words, 0x55, 1);
    /* A same-size move to a free range of the address space. */
    spare = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    moved = mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, spare);
    check(moved == MAP_FAILED && errno == EINVAL, "mremap move refused");
    moved = mremap(p, size, 2 * size, MREMAP_MAYMOVE);
    check(moved == MAP_FAILED && errno == EFAULT, "mremap grow refused");
    moved = mremap(p, size, size / 2, 0);
    check(moved == MAP_FAILED && errno == EINVAL, "mremap shrink refused");
    check(region_info(&after) == 0 && after.base == info.base &&
          after.limit == info.limit && after.phys == info.phys,
          "region after mremap unchanged");
    check(verify(p, words, 0x55, 1), "region data after mremap intact");
    check(child_region(mib, &child) == 0 &&
          (child.phys + size <= info.phys || child.phys >= info.phys + size),
          "another process's region after mremap is elsewhere");
    check(verify(p, words, 0x55, 1), "region data after the other's writes");
    check(munmap(p, size) == 0 && region_info(&after) == -ENOENT,
          "munmap after mremap frees the region");
    return !!failures;
}

static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
    (void)sig;
    siglongjmp(fault_jmp, 1);
}

static int cmd_unmapped(unsigned long addr)
{
    volatile uint64_t *p = (volatile uint64_t *)addr;

    /* A new image: the parent's region is not in this address space. */
    if (msync((void *)(addr & ~(PAGE - 1)), PAGE, MS_ASYNC) == 0) {
        return 3;
    }
    signal(SIGSEGV, on_fault);
    if (sigsetjmp(fault_jmp, 1)) {
        return 0;
    }
    printf("# exec'd image read %#llx at %#lx\n", (unsigned long long)*p,
           addr);
    return 1;
}

extern char **environ;

/* vfork, and exec ARGV in the child: the child's pid, or -1. */
static pid_t vfork_exec(char **argv)
{
    pid_t pid = vfork();

    if (pid == 0) {
        execve("/bin/dseg_region", argv, environ);
        _exit(2);
    }
    return pid;
}

/* Start "dseg_region unmapped ADDR" N times, by vfork+exec or by
 * posix_spawn; the number of runs in which the read faulted. */
static int exec_unmapped(void *addr, int n, int spawn)
{
    char arg[32];
    char *argv[] = { "dseg_region", "unmapped", arg, NULL };
    int faulted = 0;

    snprintf(arg, sizeof(arg), "%#lx", (unsigned long)addr);
    for (int i = 0; i < n; i++) {
        pid_t pid;
        int status;

        if (spawn && posix_spawn(&pid, "/bin/dseg_region", NULL, NULL, argv,
                                 environ)) {
            continue;
        }
        if (!spawn && (pid = vfork_exec(argv)) < 0) {
            continue;
        }
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
            printf("# %#lx is mapped in the exec'd image: run again\n",
                   (unsigned long)addr);
            i--;
            continue;
        }
        faulted += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    return faulted;
}

static int cmd_exec(int n)
{
    uint64_t *p = dseg_region_alloc(MIB);
    int vforked, spawned;

    check(p != NULL, "region for exec");
    if (!p) {
        return 1;
    }
    fill(p, MIB / 8, 0x66, 1);
    vforked = exec_unmapped(p, n, 0);
    spawned = exec_unmapped(p, n, 1);
    printf("# reading the parent's region faulted in %d of %d vfork+exec "
           "runs, %d of %d posix_spawn runs\n", vforked, n, spawned, n);
    check(vforked == n, "exec after vfork: no access to the parent's region");
    check(spawned == n, "posix_spawn: no access to the parent's region");
    check(verify(p, MIB / 8, 0x66, 1), "region data after exec intact");
    return !!failures;
}

#define NOBODY 65534

/* In a child holding one region: take REGIONS more, each in a process of
 * its own that waits until HOLD closes; 0 when all got one. */
static int hold_regions(int regions, int *hold)
{
    int fds[2], got = 0;

    if (pipe(fds)) {
        return -1;
    }
    for (int i = 0; i < regions; i++) {
        char ok = 0;

        if (fork() == 0) {
            char byte;

            close(fds[0]);
            close(hold[1]);
            ok = dseg_region_alloc(MIB) != NULL;
            if (write(fds[1], &ok, 1) != 1) {
                _exit(1);
            }
            while (read(hold[0], &byte, 1) > 0) {
            }
            _exit(0);
        }
        if (read(fds[0], &ok, 1) == 1 && ok) {
            got++;
        }
    }
    close(fds[0]);
    close(fds[1]);
    return got == regions ? 0 : -1;
}

static int unprivileged_child(void)
{
    struct rlimit lim = { 8 * MIB, 8 * MIB }, none = { 0, 0 };
    struct dseg_region_info info;
    int hold[2], status;
    uint64_t *p;
    pid_t pid;

    if (setrlimit(RLIMIT_MEMLOCK, &lim) || setgroups(0, NULL) ||
        setresgid(NOBODY, NOBODY, NOBODY) ||
        setresuid(NOBODY, NOBODY, NOBODY)) {
        check(0, "unprivileged: drop privileges");
        return 1;
    }
    p = dseg_region_alloc(16 * MIB);
    check(p == NULL && errno == ENOMEM,
          "unprivileged: a region over RLIMIT_MEMLOCK refused (ENOMEM)");
    p = dseg_region_alloc(4 * MIB);
    check(p != NULL && region_info(&info) == 0 &&
          info.base == (uintptr_t)p && info.phys == 0,
          "unprivileged: a region, and no physical address");
    if (pipe(hold)) {
        return 1;
    }
    check(hold_regions(3, hold) == 0, "unprivileged: four regions");
    pid = fork();
    if (pid == 0) {
        _exit(dseg_region_alloc(MIB) == NULL && errno == ENOSPC ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "unprivileged: a fifth region of one user refused (ENOSPC)");
    close(hold[1]);
    close(hold[0]);
    while (wait(NULL) > 0) {
    }
    pid = fork();
    if (pid == 0) {
        setrlimit(RLIMIT_MEMLOCK, &none);
        _exit(dseg_region_alloc(MIB) == NULL && errno == EPERM ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "unprivileged: RLIMIT_MEMLOCK 0 refused (EPERM)");
    return !!failures;
}

static int cmd_unprivileged(void)
{
    struct stat st;
    int status;
    pid_t pid;

    check(stat("/dev/dseg", &st) == 0 && (st.st_mode & 0777) == 0660,
          "/dev/dseg is 0660");
    if (chmod("/dev/dseg", 0666)) {
        return 1;
    }
    pid = fork();
    if (pid == 0) {
        _exit(unprivileged_child());
    }
    waitpid(pid, &status, 0);
    chmod("/dev/dseg", st.st_mode & 0777);
    return !!failures || !WIFEXITED(status) || WEXITSTATUS(status);
}

static int cmd_sizes(size_t pool_mib)
{
    const size_t sizes[] = {
        (pool_mib + 1) * MIB, 1ul << 44, (1ul << 44) + PAGE,
        (1ul << 45) + PAGE,
    };
    struct dseg_region_info info;
    int fd = open("/dev/dseg", O_RDWR | O_CLOEXEC);

    check(fd >= 0, "open /dev/dseg");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *p = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_SHARED,
                       fd, 0);
        int err = errno;
        char what[96];

        snprintf(what, sizeof(what), "mmap of %#zx bytes: ENOMEM",
                 sizes[i]);
        if (p != MAP_FAILED) {
            munmap(p, sizes[i]);
        }
        check(p == MAP_FAILED && err == ENOMEM, what);
    }
    check(region_info(&info) == -ENOENT, "no region after refused sizes");
    close(fd);
    return !!failures;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    size_t mib = argc > 2 ? strtoul(argv[2], NULL, 0) : 1;
    unsigned long n = argc > 3 ? strtoul(argv[3], NULL, 0) : 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(cmd, "touch")) {
        return cmd_touch(mib, n);
    } else if (!strcmp(cmd, "second")) {
        return cmd_second();
    } else if (!strcmp(cmd, "lifecycle")) {
        return cmd_lifecycle();
    } else if (!strcmp(cmd, "noregion")) {
        return cmd_noregion();
    } else if (!strcmp(cmd, "alternate")) {
        return cmd_alternate(mib, n);
    } else if (!strcmp(cmd, "threads")) {
        return cmd_threads(mib, n);
    } else if (!strcmp(cmd, "hold")) {
        cmd_hold(mib);
    } else if (!strcmp(cmd, "mremap")) {
        return cmd_mremap(mib);
    } else if (!strcmp(cmd, "sizes")) {
        return cmd_sizes(mib);
    } else if (!strcmp(cmd, "unprivileged")) {
        return cmd_unprivileged();
    } else if (!strcmp(cmd, "exec")) {
        return cmd_exec(mib);
    } else if (!strcmp(cmd, "unmapped")) {
        return cmd_unmapped(mib);
    }
    fprintf(stderr, "usage: dseg_region touch|second|lifecycle|alternate|"
            "threads|hold|mremap|sizes|exec|unmapped|unprivileged [MIB [N]]\n");
    return 2;
}
