/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * qemu-dseg host module: the interface of /dev/dseg-vmm.
 *
 * A VMM opens /dev/dseg-vmm and maps it with mmap(MAP_SHARED, offset 0)
 * for the length of guest memory it wants, a multiple of 2 MiB: the module
 * takes that much host-physically contiguous memory, zeroed, and the
 * mapping is that memory.  The VMM uses it as any guest RAM: a KVM memory
 * slot, or QEMU's memory-backend-file,mem-path=/dev/dseg-vmm,share=on.
 * One mapping per open; munmap() and close() give the memory back.
 *
 * Nothing else is needed.  Whenever a vCPU of a VM of the same process
 * enters guest mode, the module arms the VMM segment on that CPU for the
 * longest gPA range that the VM's memory slots map to the process's
 * mappings at one offset, so that KVM's nested tables agree with it by
 * construction, and disarms it for any other VM.  A mapping goes right
 * after the process's highest memory if the pool is free there, so that
 * memory added to a VM later can join its segment.  A change to the mapping of a few pages
 * (mprotect, munmap, MAP_FIXED over them) escapes their gPAs on every CPU
 * before it takes effect; a larger change turns the segment off.
 *
 * DSEG_VMM_INFO: the memory's hPA and size, and the segment last armed
 *   over it (limit 0: none).
 * DSEG_VMM_ESCAPE: a gPA whose page the VMM will handle itself (remap it
 *   in KVM's tables, trap it) is inserted into the escape filter of every
 *   CPU before the call returns: the spec's first step of an escape.
 * The filter is shared by every VM and is emptied when the last mapping
 * is gone.
 */
#ifndef DSEG_VMM_UAPI_H
#define DSEG_VMM_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

struct dseg_vmm_info {
	__u64 hpa;		/* host-physical base; 0 before mmap() */
	__u64 size;		/* bytes mapped */
	__u64 base, limit;	/* gPA range of the segment last armed */
	__u64 offset;		/* its OFFSET_V (hPA - gPA) */
};

#define DSEG_VMM_INFO	_IOR('D', 0x40, struct dseg_vmm_info)
#define DSEG_VMM_ESCAPE	_IOW('D', 0x42, __u64)

#endif /* DSEG_VMM_UAPI_H */
