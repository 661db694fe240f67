/*
 * libdseg-preload.so: put an unmodified program's large allocations in
 * its primary region (qemu-dseg guest module, contrib/linux/dseg).
 *
 *   LD_PRELOAD=/lib/libdseg-preload.so DSEG_REGION_MB=320 program ...
 *
 * malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign and
 * anonymous private mmap requests of at least DSEG_THRESHOLD_KB KiB
 * (default 1024) are served from one primary region of DSEG_REGION_MB
 * MiB (default 256), mapped at the first such request; free, realloc and
 * munmap (of a whole block or of pages of one) give the memory back to
 * the region.  Everything else, and every request that the region cannot
 * serve (it is full, or the module is not loaded), goes to the next
 * allocator as usual: the C library's, or one that the program links,
 * such as jemalloc, whose own large mmap requests then come to the region
 * too.  Memory handed out is zeroed, as anonymous mmap memory is.
 *
 * The region holds two kinds of blocks: heap blocks, which malloc and its
 * kin hand out, and mappings, which mmap hands out (to jemalloc, say,
 * which carves its own objects out of them).  free, realloc,
 * malloc_usable_size and jemalloc's sdallocx, dallocx, sallocx, rallocx
 * and xallocx act on heap blocks only, and munmap on mappings only: any
 * other pointer belongs to the next allocator, even one at the start of a
 * mapping.  mmap requests for MAP_32BIT, MAP_STACK, MAP_GROWSDOWN or
 * MAP_HUGETLB memory never come to the region.
 * DSEG_VERBOSE=1 reports the region on stderr, DSEG_VERBOSE=2 also every
 * block it hands out or takes back.
 *
 * A forked child does not inherit the region (contrib/linux/dseg), so
 * fork() gives it a copy: the region's used part (up to the end of its
 * last block in use) is copied into private memory before the fork, and
 * the child moves that copy to the region's addresses, where it is
 * ordinary memory of the child's, copy-on-write like the rest.  The
 * parent pays one copy of the used part per fork(), and threads that
 * write the region during it may leave the child a torn copy of what
 * they wrote, as with any copy made while they run.  The child takes
 * nothing more from the region; vfork() and posix_spawn() make no copy
 * (they run no fork handlers, and their child execs).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
/* Define mmap and mmap64 both, whatever the build's default. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdseg.h"

#define GRAIN           4096ul
#define MAX_BLOCKS      1024
#define BOOT_HEAP       4096

/*
 * The next allocator's entry points, looked up on first use.  dlsym() may
 * itself allocate: while it runs, requests come from a small static heap
 * whose blocks are never freed.
 */
static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*memalign)(size_t, size_t);
    void (*free)(void *);
    size_t (*usable_size)(void *);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    /* jemalloc's own API, when the program has it (else NULL). */
    void (*sdallocx)(void *, size_t, int);
    void (*dallocx)(void *, int);
    size_t (*sallocx)(const void *, int);
    void *(*rallocx)(void *, size_t, int);
    size_t (*xallocx)(void *, size_t, size_t, int);
    void *(*mallocx)(size_t, int);
} next;
static int resolving;       /* atomic: dlsym() calls back into us */
static _Alignas(16) char boot_heap[BOOT_HEAP];
static size_t boot_used;

/* Any thread may get here while another resolves: claim space atomically. */
static void *boot_alloc(size_t size)
{
    size_t used = __atomic_load_n(&boot_used, __ATOMIC_RELAXED);

    if (size > BOOT_HEAP) {
        return NULL;
    }
    size = (size + 15) & ~(size_t)15;
    do {
        if (used + size > BOOT_HEAP) {
            return NULL;
        }
    } while (!__atomic_compare_exchange_n(&boot_used, &used, used + size, 1,
                                          __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return boot_heap + used;    /* zeroed: static storage, never reused */
}

static int in_boot_heap(const void *p)
{
    return (const char *)p >= boot_heap &&
           (const char *)p < boot_heap + BOOT_HEAP;
}

/*
 * A report on stderr that allocates nothing: it may be made from inside
 * the next allocator, which holds its own locks while it maps memory.
 */
static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t ignored = write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n
                                                               : sizeof(buf));
        (void)ignored;
    }
}

static void resolve_next(void)
{
    if (next.free) {
        return;
    }
    __atomic_store_n(&resolving, 1, __ATOMIC_SEQ_CST);
    next.malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    next.calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    next.realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    next.memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    next.usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT,
                                                 "malloc_usable_size");
    next.mmap = (void *(*)(void *, size_t, int, int, int, off_t))
                dlsym(RTLD_NEXT, "mmap");
    next.munmap = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
    next.sdallocx = (void (*)(void *, size_t, int))dlsym(RTLD_NEXT,
                                                         "sdallocx");
    next.dallocx = (void (*)(void *, int))dlsym(RTLD_NEXT, "dallocx");
    next.sallocx = (size_t (*)(const void *, int))dlsym(RTLD_NEXT,
                                                        "sallocx");
    next.rallocx = (void *(*)(void *, size_t, int))dlsym(RTLD_NEXT,
                                                         "rallocx");
    next.xallocx = (size_t (*)(void *, size_t, size_t, int))
                   dlsym(RTLD_NEXT, "xallocx");
    next.mallocx = (void *(*)(size_t, int))dlsym(RTLD_NEXT, "mallocx");
    next.free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    __atomic_store_n(&resolving, 0, __ATOMIC_SEQ_CST);
    if (!next.malloc || !next.calloc || !next.realloc || !next.memalign ||
        !next.free || !next.usable_size || !next.mmap || !next.munmap) {
        say("libdseg-preload: no next allocator\n");
        abort();
    }
}

/* The region, cut into blocks in address order; free blocks coalesce. */
enum use { FREE, HEAP, MAPPING };

struct block {
    uintptr_t start;
    size_t size;
    enum use used;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static enum { UNSET, ACTIVE, OFF } state;
static uintptr_t region_start, region_end;
static struct block blocks[MAX_BLOCKS];
static int nblocks;
static size_t threshold = 1024 * 1024;
static int verbose;

static size_t env_size(const char *name, size_t unit, size_t dflt)
{
    const char *v = getenv(name);

    return v && *v ? strtoull(v, NULL, 0) * unit : dflt;
}

/*
 * fork() holds the lock, so that the child's copy of the blocks is
 * whole, and copies the region's used part for the child (see the top of
 * this file).  The child keeps its blocks at their addresses, in that
 * copy, and takes nothing more from the region.
 */
static void *fork_copy;
static size_t fork_copy_len;

static void fork_prepare(void)
{
    uintptr_t used_end = region_start;

    pthread_mutex_lock(&lock);
    for (int i = 0; i < nblocks; i++) {
        if (blocks[i].used) {
            used_end = blocks[i].start + blocks[i].size;
        }
    }
    fork_copy_len = used_end - region_start;
    fork_copy = NULL;
    if (state != ACTIVE || !fork_copy_len) {
        return;
    }
    fork_copy = next.mmap(NULL, fork_copy_len, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fork_copy == MAP_FAILED) {
        say("libdseg-preload: no memory to copy %zu MiB of the region for"
            " fork(): the child has none of it\n", fork_copy_len >> 20);
        fork_copy = NULL;
        return;
    }
    memcpy(fork_copy, (void *)region_start, fork_copy_len);
}

static void fork_parent(void)
{
    if (fork_copy) {
        next.munmap(fork_copy, fork_copy_len);
    }
    pthread_mutex_unlock(&lock);
}

static void fork_child(void)
{
    if (fork_copy &&
        mremap(fork_copy, fork_copy_len, fork_copy_len,
               MREMAP_MAYMOVE | MREMAP_FIXED,
               (void *)region_start) == MAP_FAILED) {
        say("libdseg-preload: fork(): the child's copy of the region did"
            " not move into place: %s\n", strerror(errno));
    }
    pthread_mutex_init(&lock, NULL);
    state = OFF;
}

/* Called with the lock held, at the first large request. */
static void region_setup(void)
{
    size_t size = env_size("DSEG_REGION_MB", 1 << 20, 256ul << 20);
    void *p;

    threshold = env_size("DSEG_THRESHOLD_KB", 1024, threshold);
    verbose = (int)env_size("DSEG_VERBOSE", 1, 0);
    p = dseg_region_alloc(size);
    if (!p) {
        if (verbose) {
            say("libdseg-preload: no primary region of %zu MiB:"
                    " %s\n", size >> 20, strerror(errno));
        }
        state = OFF;
        return;
    }
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    region_start = (uintptr_t)p;
    region_end = region_start + size;
    blocks[0] = (struct block){ region_start, size, FREE };
    nblocks = 1;
    state = ACTIVE;
    if (verbose) {
        say("libdseg-preload: primary region of %zu MiB at %p\n",
                size >> 20, p);
    }
}

static int in_region(const void *p)
{
    return (uintptr_t)p >= region_start && (uintptr_t)p < region_end;
}

/*
 * A pointer is a heap block of ours when it starts a HEAP block.  Any
 * other pointer into the region belongs to the next allocator, which may
 * carve its own objects out of a MAPPING (jemalloc does), one at its very
 * start included.
 */

/* First fit of SIZE bytes at ALIGN for USE; NULL if the region cannot
 * serve it. */
static void *region_alloc(size_t size, size_t align, enum use use)
{
    void *ret = NULL;

    if (size < threshold || align > GRAIN || size > SIZE_MAX - GRAIN) {
        return NULL;
    }
    size = (size + GRAIN - 1) & ~(GRAIN - 1);
    pthread_mutex_lock(&lock);
    if (state == UNSET) {
        region_setup();
    }
    for (int i = 0; state == ACTIVE && i < nblocks; i++) {
        struct block *b = &blocks[i];

        if (b->used || b->size < size) {
            continue;
        }
        if (b->size > size) {
            if (nblocks == MAX_BLOCKS) {
                break;
            }
            memmove(b + 2, b + 1, (nblocks - i - 1) * sizeof(*b));
            b[1] = (struct block){ b->start + size, b->size - size, FREE };
            b->size = size;
            nblocks++;
        }
        b->used = use;
        ret = (void *)b->start;
        break;
    }
    pthread_mutex_unlock(&lock);
    if (ret) {
        memset(ret, 0, size);   /* fresh memory, as from mmap */
    }
    if (verbose > 1) {
        say("libdseg-preload: alloc %zu -> %p\n", size, ret);
    }
    return ret;
}

/* The heap block that starts at P; lock held; -1 if there is none. */
static int find_heap_block(const void *p)
{
    for (int i = 0; i < nblocks; i++) {
        if (blocks[i].start == (uintptr_t)p) {
            return blocks[i].used == HEAP ? i : -1;
        }
    }
    return -1;
}

/* The size of the heap block at P, or 0 if P starts none. */
static size_t region_size_of(const void *p)
{
    size_t size = 0;
    int i;

    if (!in_region(p)) {
        return 0;
    }
    pthread_mutex_lock(&lock);
    i = find_heap_block(p);
    if (i >= 0) {
        size = blocks[i].size;
    }
    pthread_mutex_unlock(&lock);
    return size;
}

/* Marks block I free and merges it with free neighbours; lock held. */
static void block_release(int i)
{
    blocks[i].used = FREE;
    if (i + 1 < nblocks && !blocks[i + 1].used) {
        blocks[i].size += blocks[i + 1].size;
        memmove(&blocks[i + 1], &blocks[i + 2],
                (nblocks - i - 2) * sizeof(blocks[0]));
        nblocks--;
    }
    if (i > 0 && !blocks[i - 1].used) {
        blocks[i - 1].size += blocks[i].size;
        memmove(&blocks[i], &blocks[i + 1],
                (nblocks - i - 1) * sizeof(blocks[0]));
        nblocks--;
    }
}

/* Give back the heap block at P; 0, or -1 if P starts none. */
static int region_free(void *p)
{
    int i;

    if (!in_region(p)) {
        return -1;
    }
    pthread_mutex_lock(&lock);
    i = find_heap_block(p);
    if (i >= 0) {
        block_release(i);
    }
    pthread_mutex_unlock(&lock);
    if (verbose > 1 && i >= 0) {
        say("libdseg-preload: free %p\n", p);
    }
    return i >= 0 ? 0 : -1;
}

/* Splits block I at address AT, inside it; lock held; -1 if full. */
static int block_split(int i, uintptr_t at)
{
    struct block *b = &blocks[i];

    if (nblocks == MAX_BLOCKS) {
        return -1;
    }
    memmove(b + 2, b + 1, (nblocks - i - 1) * sizeof(*b));
    b[1] = (struct block){ at, b->start + b->size - at, b->used };
    b->size = at - b->start;
    nblocks++;
    return 0;
}

/*
 * munmap() of [ADDR, ADDR + LEN) in the region: the pages must lie in one
 * mapping, which gives them back (its other pages stay mapped).  0, or -1
 * with errno EINVAL.
 */
static int region_unmap(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;
    uintptr_t e;
    int i, ret = -1;

    if (a & (GRAIN - 1) || !len || len > region_end - a) {
        errno = EINVAL;
        return -1;
    }
    e = a + ((len + GRAIN - 1) & ~(GRAIN - 1));
    pthread_mutex_lock(&lock);
    for (i = 0; i < nblocks; i++) {
        if (a >= blocks[i].start && a < blocks[i].start + blocks[i].size) {
            break;
        }
    }
    if (i < nblocks && blocks[i].used == MAPPING &&
        e <= blocks[i].start + blocks[i].size &&
        (a == blocks[i].start || !block_split(i++, a)) &&
        (e == blocks[i].start + blocks[i].size || !block_split(i, e))) {
        block_release(i);
        ret = 0;
    }
    pthread_mutex_unlock(&lock);
    if (verbose > 1) {
        say("libdseg-preload: unmap %p+%zu: %s\n", addr, len,
                ret ? "refused" : "ok");
    }
    if (ret) {
        errno = EINVAL;
    }
    return ret;
}

void *malloc(size_t size)
{
    void *p;

    if (__atomic_load_n(&resolving, __ATOMIC_SEQ_CST)) {
        return boot_alloc(size);
    }
    p = region_alloc(size, 1, HEAP);
    if (p) {
        return p;
    }
    resolve_next();
    return next.malloc(size);
}

void *calloc(size_t n, size_t size)
{
    void *p = NULL;

    if (__atomic_load_n(&resolving, __ATOMIC_SEQ_CST)) {
        return n && size > SIZE_MAX / n ? NULL : boot_alloc(n * size);
    }
    if (!size || n <= SIZE_MAX / size) {
        p = region_alloc(n * size, 1, HEAP);
    }
    if (p) {
        return p;
    }
    resolve_next();
    return next.calloc(n, size);
}

/* Free P if it is ours (or nothing): 1, or 0 for the next allocator. */
static int free_ours(void *p)
{
    return !p || in_boot_heap(p) || !region_free(p);
}

void free(void *p)
{
    if (free_ours(p)) {
        return;
    }
    resolve_next();
    next.free(p);
}

size_t malloc_usable_size(void *p);

void *realloc(void *p, size_t size)
{
    size_t old;
    void *q;

    if (p && in_boot_heap(p)) {
        q = malloc(size);
        if (q) {
            memcpy(q, p, size < BOOT_HEAP ? size : BOOT_HEAP);
        }
        return q;
    }
    old = p ? region_size_of(p) : 0;
    if (!old) {
        resolve_next();
        if (!p || size < threshold) {
            return next.realloc(p, size);
        }
        q = region_alloc(size, 1, HEAP);
        if (!q) {
            return next.realloc(p, size);
        }
        old = next.usable_size(p);
    } else {
        if (size <= old && size >= threshold) {
            return p;
        }
        q = malloc(size);
        if (!q) {
            return NULL;
        }
    }
    memcpy(q, p, old < size ? old : size);
    free(p);
    return q;
}

static int power_of_two(size_t n)
{
    return n && !(n & (n - 1));
}

void *memalign(size_t align, size_t size)
{
    void *p = power_of_two(align) ? region_alloc(size, align, HEAP) : NULL;

    if (p) {
        return p;
    }
    resolve_next();
    return next.memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    if (!power_of_two(align)) {
        errno = EINVAL;
        return NULL;
    }
    return memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p;

    if (!power_of_two(align) || align % sizeof(void *)) {
        return EINVAL;
    }
    p = memalign(align, size);
    if (!p) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

size_t malloc_usable_size(void *p)
{
    size_t size = p ? region_size_of(p) : 0;

    if (size || (p && in_boot_heap(p))) {
        return size;
    }
    resolve_next();
    return next.usable_size(p);
}

/* Flags of anonymous mappings that the region cannot give. */
#define NOT_FROM_REGION (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_32BIT | \
                         MAP_STACK | MAP_GROWSDOWN | MAP_HUGETLB | MAP_SHARED)

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (!addr && fd == -1 && (flags & MAP_ANONYMOUS) &&
        (flags & MAP_PRIVATE) && !(flags & NOT_FROM_REGION) &&
        prot == (PROT_READ | PROT_WRITE)) {
        void *p = region_alloc(len, 1, MAPPING);

        if (p) {
            return p;
        }
    }
    resolve_next();
    return next.mmap(addr, len, prot, flags, fd, off);
}

/* The same call on x86-64, under its large-file name. */
void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
             off64_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr;

    if (in_region(addr)) {
        return region_unmap(addr, len);
    }
    /* A range that reaches into the region from outside it. */
    if (region_start && a < region_start && len > region_start - a) {
        errno = EINVAL;
        return -1;
    }
    resolve_next();
    return next.munmap(addr, len);
}

/*
 * jemalloc's own API, for programs that call it: a heap block of ours is
 * handled here, any other pointer by jemalloc.  Flags: the low 6 bits are
 * log2 of the alignment (MALLOCX_LG_ALIGN), bit 6 asks for zeroed memory
 * (MALLOCX_ZERO).
 */
#define MALLOCX_LG_ALIGN_MASK   0x3f
#define MALLOCX_ZERO            0x40

void sdallocx(void *p, size_t size, int flags)
{
    if (free_ours(p)) {
        return;
    }
    resolve_next();
    next.sdallocx ? next.sdallocx(p, size, flags) : next.free(p);
}

void dallocx(void *p, int flags)
{
    if (free_ours(p)) {
        return;
    }
    resolve_next();
    next.dallocx ? next.dallocx(p, flags) : next.free(p);
}

size_t sallocx(const void *p, int flags)
{
    size_t size = region_size_of(p);

    if (size) {
        return size;
    }
    resolve_next();
    return next.sallocx ? next.sallocx(p, flags)
                        : next.usable_size((void *)p);
}

size_t xallocx(void *p, size_t size, size_t extra, int flags)
{
    size_t old = region_size_of(p);

    /* A heap block of ours keeps its size: it cannot grow in place. */
    if (old) {
        return old;
    }
    resolve_next();
    return next.xallocx ? next.xallocx(p, size, extra, flags)
                        : next.usable_size(p);
}

void *rallocx(void *p, size_t size, int flags)
{
    size_t old = region_size_of(p);
    size_t align = (size_t)1 << (flags & MALLOCX_LG_ALIGN_MASK);
    void *q;

    resolve_next();
    if (!old) {
        return next.rallocx ? next.rallocx(p, size, flags)
                            : next.realloc(p, size);
    }
    q = region_alloc(size, align, HEAP);
    if (!q) {
        q = next.mallocx ? next.mallocx(size, flags) : next.malloc(size);
    }
    if (!q) {
        return NULL;
    }
    memcpy(q, p, old < size ? old : size);
    if ((flags & MALLOCX_ZERO) && size > old) {
        memset((char *)q + old, 0, size - old);
    }
    region_free(p);
    return q;
}
