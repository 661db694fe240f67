/*
 * libdseg: the user side of qemu-dseg's guest module (contrib/linux/dseg).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libdseg.h"

#define DSEG_DEVICE "/dev/dseg"

void *dseg_region_alloc(size_t size)
{
    int fd = open(DSEG_DEVICE, O_RDWR | O_CLOEXEC);
    void *p;
    int err;

    if (fd < 0) {
        return NULL;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    err = errno;
    close(fd);
    errno = err;
    return p == MAP_FAILED ? NULL : p;
}

int dseg_region_info(struct dseg_region_info *info)
{
    int fd = open(DSEG_DEVICE, O_RDWR | O_CLOEXEC);
    int ret, err;

    if (fd < 0) {
        return -1;
    }
    ret = ioctl(fd, DSEG_IOC_REGION, info);
    err = errno;
    close(fd);
    errno = err;
    return ret ? -1 : 0;
}

int dseg_window_mark(uint32_t mark)
{
    static int have_port;

    if (!have_port) {
        if (ioperm(DSEG_WINDOW_PORT, 4, 1)) {
            return -1;
        }
        have_port = 1;
    }
    outl(mark, DSEG_WINDOW_PORT);
    return 0;
}
