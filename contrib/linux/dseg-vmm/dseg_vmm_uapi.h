/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * qemu-dseg host module: the interface of /dev/dseg-vmm.
 *
 * A VMM process opens /dev/dseg-vmm once per KVM VM:
 *   1. DSEG_VMM_SETUP: size (a multiple of 2 MiB) and the gPA where the VMM
 *      will map the memory in the VM, and the VM's fd; the module takes
 *      that much host-physically contiguous memory and returns its hPA.
 *   2. mmap() of the fd, length size, offset 0, MAP_SHARED: the memory,
 *      for KVM_SET_USER_MEMORY_REGION at that gPA.
 *   3. DSEG_VMM_ARM, once the memory slot is set: the module checks that
 *      KVM maps every page of the range to the hPA the segment gives and
 *      from then on arms the VMM segment on a CPU whenever a vCPU of this
 *      VM enters guest mode there, and disarms it for any other VM.
 *   4. DSEG_VMM_ESCAPE: a gPA whose page the VMM must handle itself (remap,
 *      write-protect) is inserted into the escape filter of every CPU
 *      before the call returns; only then may the VMM change its mapping.
 * Closing the fd disarms the segment everywhere and frees the memory; the
 * filter, which every VM shares, is cleared when the last fd closes.
 */
#ifndef DSEG_VMM_UAPI_H
#define DSEG_VMM_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

struct dseg_vmm_setup {
	__u64 size;		/* in: bytes, a multiple of 2 MiB */
	__u64 gpa;		/* in: guest-physical base, 2 MiB aligned */
	__s32 vm_fd;		/* in: the KVM VM (KVM_CREATE_VM) */
	__u32 pad;
	__u64 hpa;		/* out: host-physical base */
};

#define DSEG_VMM_SETUP	_IOWR('D', 0x40, struct dseg_vmm_setup)
#define DSEG_VMM_ARM	_IO('D', 0x41)
#define DSEG_VMM_ESCAPE	_IOW('D', 0x42, __u64)

#endif /* DSEG_VMM_UAPI_H */
