/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * qemu-dseg guest module: the user interface of /dev/dseg.
 *
 * A process opens /dev/dseg and mmaps it (MAP_SHARED, offset 0) to get
 * its primary region: one contiguous range of its address space backed
 * by physically contiguous memory, mapped by its page tables and by the
 * guest direct segment while its threads run.  See
 * docs/devel/dseg-linux.rst.
 */
#ifndef DSEG_UAPI_H
#define DSEG_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* The primary region of the calling process (ENOENT if it has none). */
struct dseg_region_info {
	__u64 base;		/* first virtual address */
	__u64 limit;		/* first virtual address after the region */
	__u64 phys;		/* (guest-)physical address of base; 0 for a
				 * caller without CAP_SYS_ADMIN */
};

#define DSEG_IOC_MAGIC		0xd5
#define DSEG_IOC_REGION		_IOR(DSEG_IOC_MAGIC, 1, struct dseg_region_info)

#endif
