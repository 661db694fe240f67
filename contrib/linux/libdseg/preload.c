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
 * munmap give the memory back to the region.  Everything else, and every
 * request that the region cannot serve (it is full, or the module is not
 * loaded), goes to the C library as usual.  Memory handed out is zeroed,
 * as anonymous mmap memory is.  DSEG_VERBOSE=1 reports on stderr.
 *
 * A forked child does not inherit the region (contrib/linux/dseg): its
 * blocks there are gone, so a program that uses its large allocations
 * after fork() in the child does not work with this library.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
/* Define mmap and mmap64 both, whatever the build's default. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdseg.h"

/* glibc's own allocator entry points. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

#define GRAIN           4096ul
#define MAX_BLOCKS      1024

/* The region, cut into blocks in address order; free blocks coalesce. */
struct block {
    uintptr_t start;
    size_t size;
    int used;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static enum { UNSET, ACTIVE, OFF } state;
static uintptr_t region_start, region_end;
static struct block blocks[MAX_BLOCKS];
static int nblocks;
static size_t threshold = 1024 * 1024;
static int verbose;
static void *(*next_mmap)(void *, size_t, int, int, int, off_t);
static int (*next_munmap)(void *, size_t);

static size_t env_size(const char *name, size_t unit, size_t dflt)
{
    const char *v = getenv(name);

    return v && *v ? strtoull(v, NULL, 0) * unit : dflt;
}

/* A forked child has no region (the module does not copy it): it keeps
 * its blocks' addresses, so that free() of them is harmless, and takes
 * nothing more from the region. */
static void region_forked(void)
{
    state = OFF;
}

/* Called with the lock held, at the first large request. */
static void region_setup(void)
{
    size_t size = env_size("DSEG_REGION_MB", 1 << 20, 256ul << 20);
    void *p;

    threshold = env_size("DSEG_THRESHOLD_KB", 1024, threshold);
    verbose = getenv("DSEG_VERBOSE") != NULL;
    p = dseg_region_alloc(size);
    if (!p) {
        if (verbose) {
            fprintf(stderr, "libdseg-preload: no primary region of %zu MiB:"
                    " %s\n", size >> 20, strerror(errno));
        }
        state = OFF;
        return;
    }
    pthread_atfork(NULL, NULL, region_forked);
    region_start = (uintptr_t)p;
    region_end = region_start + size;
    blocks[0] = (struct block){ region_start, size, 0 };
    nblocks = 1;
    state = ACTIVE;
    if (verbose) {
        fprintf(stderr, "libdseg-preload: primary region of %zu MiB at %p\n",
                size >> 20, p);
    }
}

static int in_region(const void *p)
{
    return (uintptr_t)p >= region_start && (uintptr_t)p < region_end;
}

/* First fit of SIZE bytes at ALIGN; NULL if the region cannot serve it. */
static void *region_alloc(size_t size, size_t align)
{
    void *ret = NULL;

    if (size < threshold || align > GRAIN) {
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
            b[1] = (struct block){ b->start + size, b->size - size, 0 };
            b->size = size;
            nblocks++;
        }
        b->used = 1;
        ret = (void *)b->start;
        break;
    }
    pthread_mutex_unlock(&lock);
    if (ret) {
        memset(ret, 0, size);   /* fresh memory, as from mmap */
    }
    return ret;
}

static int find_block(const void *p)
{
    for (int i = 0; i < nblocks; i++) {
        if (blocks[i].start == (uintptr_t)p && blocks[i].used) {
            return i;
        }
    }
    return -1;
}

static size_t region_size_of(const void *p)
{
    size_t size = 0;
    int i;

    pthread_mutex_lock(&lock);
    i = find_block(p);
    if (i >= 0) {
        size = blocks[i].size;
    }
    pthread_mutex_unlock(&lock);
    return size;
}

/* Give back the block at P; 0, or -1 if P starts no block in use. */
static int region_free(void *p)
{
    int i;

    pthread_mutex_lock(&lock);
    i = find_block(p);
    if (i < 0) {
        pthread_mutex_unlock(&lock);
        return -1;
    }
    blocks[i].used = 0;
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
    pthread_mutex_unlock(&lock);
    return 0;
}

void *malloc(size_t size)
{
    void *p = region_alloc(size, 1);

    return p ? p : __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    void *p = NULL;

    if (!size || n <= SIZE_MAX / size) {
        p = region_alloc(n * size, 1);
    }
    return p ? p : __libc_calloc(n, size);
}

void free(void *p)
{
    if (p && in_region(p)) {
        region_free(p);
    } else {
        __libc_free(p);
    }
}

size_t malloc_usable_size(void *p);

void *realloc(void *p, size_t size)
{
    size_t old;
    void *q;

    if (!p || !in_region(p)) {
        if (!p || size < threshold) {
            return __libc_realloc(p, size);
        }
        q = region_alloc(size, 1);
        if (!q) {
            return __libc_realloc(p, size);
        }
        old = malloc_usable_size(p);
    } else {
        old = region_size_of(p);
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

void *memalign(size_t align, size_t size)
{
    void *p = region_alloc(size, align);

    return p ? p : __libc_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    return memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    void *p = memalign(align, size);

    if (!p) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

size_t malloc_usable_size(void *p)
{
    static size_t (*next)(void *);

    if (p && in_region(p)) {
        return region_size_of(p);
    }
    if (!next) {
        next = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    }
    return next ? next(p) : 0;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (!addr && fd == -1 && (flags & MAP_ANONYMOUS) &&
        (flags & MAP_PRIVATE) && !(flags & MAP_FIXED) &&
        prot == (PROT_READ | PROT_WRITE)) {
        void *p = region_alloc(len, 1);

        if (p) {
            return p;
        }
    }
    if (!next_mmap) {
        next_mmap = (void *(*)(void *, size_t, int, int, int, off_t))
                    dlsym(RTLD_NEXT, "mmap");
    }
    return next_mmap(addr, len, prot, flags, fd, off);
}

/* The same call on x86-64, under its large-file name. */
void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
             off64_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
    if (in_region(addr)) {
        if (region_size_of(addr) != ((len + GRAIN - 1) & ~(GRAIN - 1)) ||
            region_free(addr)) {
            errno = EINVAL;     /* only whole blocks go back */
            return -1;
        }
        return 0;
    }
    if (!next_munmap) {
        next_munmap = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
    }
    return next_munmap(addr, len);
}
