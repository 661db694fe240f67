/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qemu-dseg's Linux modules: the kernels they build for, and the few
 * kernel interfaces that changed within that range.
 *
 * Tested: Debian 12's 6.1 (the kernel the tests boot).  Older kernels
 * are refused at build time; for newer ones, the interfaces that changed
 * after 6.1 are bridged here.
 */
#ifndef DSEG_KERNEL_H
#define DSEG_KERNEL_H

#include <linux/mm.h>
#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#error "qemu-dseg's modules need Linux 6.1 or later"
#endif

/* 6.3 made vm_flags read-only; vm_flags_set() is the way to set them. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}
#endif

/*
 * A probe registered by name (for_each_kernel_tracepoint(), for a
 * tracepoint that is not exported) must have the tracepoint's prototype:
 * check it against the kernel's register_trace_NAME() at build time.
 */
#define DSEG_PROBE_TYPE_CHECK(name, probe)				\
	static_assert(__same_type(&register_trace_##name,		\
				  int (*)(typeof(&probe), void *)),	\
		      #probe " does not have the prototype of tracepoint " #name)

#endif
