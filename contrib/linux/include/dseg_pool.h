/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qemu-dseg's Linux modules (contrib/linux/dseg, contrib/linux/dseg-vmm):
 * the pool of memory that a module hands out, reserved at boot with
 * memmap=SIZE$BASE and named by its module parameters.  Log lines carry
 * the including module's pr_fmt.
 */
#ifndef DSEG_POOL_H
#define DSEG_POOL_H

#include <linux/ioport.h>
#include <linux/printk.h>

static inline int dseg_pool_count_reserved(struct resource *res,
					   void *covered)
{
	*(u64 *)covered += resource_size(res);
	return 0;
}

/*
 * Claim [@base, @base + @size) as @name (its line in /proc/iomem).  It
 * must be memory that nobody manages: all of it reserved (memmap=, or
 * firmware), none of it System RAM, a hole or a device's; claimed, no
 * other driver, nor the other module, can hand out the same pages.
 * 0, or -EINVAL or -EBUSY with one log line that says why.
 */
static inline int dseg_pool_claim(u64 base, u64 size, const char *name)
{
	u64 covered = 0;

	if (!size || base + size < base) {
		pr_err("pool %#llx+%#llx is empty or wraps around 2^64\n",
		       base, size);
		return -EINVAL;
	}
	if (region_intersects(base, size, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("pool %#llx+%#llx is not reserved: the kernel manages some of it (reserve it with memmap=SIZE$BASE)\n",
		       base, size);
		return -EINVAL;
	}
	walk_iomem_res_desc(IORES_DESC_RESERVED, IORESOURCE_MEM, base,
			    base + size - 1, &covered, dseg_pool_count_reserved);
	if (covered != size) {
		pr_err("pool %#llx+%#llx is not memory: %#llx bytes of it are reserved RAM, the rest a hole or a device's (reserve RAM with memmap=SIZE$BASE)\n",
		       base, size, covered);
		return -EINVAL;
	}
	if (!request_mem_region(base, size, name)) {
		pr_err("pool %#llx+%#llx is taken: another driver claimed some of it (see /proc/iomem)\n",
		       base, size);
		return -EBUSY;
	}
	return 0;
}

static inline void dseg_pool_release(u64 base, u64 size)
{
	release_mem_region(base, size);
}

#endif
