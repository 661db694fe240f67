// SPDX-License-Identifier: GPL-2.0
/*
 * qemu-dseg guest module: a primary region per process, translated by the
 * guest direct segment (BASE_G/LIMIT_G/OFFSET_G) while the process runs.
 *
 * Memory: a pool of physically contiguous (guest-)physical memory that
 * the kernel does not manage, reserved at boot (e.g. memmap=256M$0x10000000)
 * and named by the module parameters pool_base and pool_size.  A process
 * mmaps /dev/dseg (MAP_SHARED) to get one primary region carved from the
 * pool: zeroed, mapped by its page tables with 4 KiB pages, and covered by
 * the guest segment.
 *
 * Arming: a probe on the sched_switch tracepoint runs on every context
 * switch, on every CPU.  When the next task's mm owns a region it arms the
 * segment for that region, otherwise it disarms it; a CPU whose segment
 * already holds the right region writes nothing.  So all threads of the
 * process, wherever they run and migrate, use the segment, and nothing
 * else does: not kernel threads, not other processes, not a forked child
 * (another mm; the region is VM_DONTCOPY).  The mm can also change without
 * a context switch: exec (after vfork, or by posix_spawn) and the kernel's
 * temporary mms load other page tables in place.  A probe on the tlb_flush
 * tracepoint, which reports every such CR3 load, disarms the segment when
 * CR3 no longer holds the page tables of the process whose region it
 * covers.  When a region goes (munmap, exit, exec), every CPU that holds
 * it is disarmed before its memory returns to the pool.
 *
 * The segment grants read, write and execute at every CPL, so it only
 * ever covers the running process's own region, which its page tables map
 * read-write to the same memory: the region cannot be split, moved,
 * expanded or mprotected.  See docs/devel/dseg-linux.rst.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <asm/msr.h>
#include <asm/processor.h>
#include <asm/tlbflush.h>
#include <trace/events/sched.h>
#include <trace/events/tlb.h>

#include "dseg_abi.h"
#include "dseg_kernel.h"
#include "dseg_pool.h"
#include "dseg_uapi.h"

/* Regions alive at once (one per process), and of one user without
 * CAP_IPC_LOCK. */
#define DSEG_MAX_REGIONS	16
#define DSEG_USER_REGIONS	4

static unsigned long pool_base;
module_param(pool_base, ulong, 0444);
MODULE_PARM_DESC(pool_base, "physical address of the reserved memory pool");
static unsigned long pool_size;
module_param(pool_size, ulong, 0444);
MODULE_PARM_DESC(pool_size, "size in bytes of the reserved memory pool");

struct dseg_region {
	refcount_t vmas;		/* VMAs that map it */
	phys_addr_t pgd;		/* its owner's page tables, as CR3 holds them */
	kuid_t uid;			/* its owner's user */
	unsigned long base;		/* virtual */
	unsigned long limit;
	phys_addr_t phys;
	unsigned long first_page;	/* in the pool */
	unsigned long npages;
};

/* Readers: the probes and IPIs (IRQs off).  Writers: dseg_lock. */
static struct dseg_region *regions[DSEG_MAX_REGIONS];
static DEFINE_MUTEX(dseg_lock);
static unsigned long *pool_map;		/* one bit per pool page in use */
static unsigned long pool_pages;

/* The region this CPU's guest segment holds, or NULL when disarmed. */
static DEFINE_PER_CPU(struct dseg_region *, armed);

static struct tracepoint *sched_switch_tp, *tlb_flush_tp;

static void dseg_arm(struct dseg_region *r)
{
	if (this_cpu_read(armed) == r)
		return;
	/* The spec's programming sequence: disarm, BASE, OFFSET, LIMIT. */
	wrmsrl(MSR_DSEG_LIMIT_G, 0);
	if (r) {
		wrmsrl(MSR_DSEG_BASE_G, r->base);
		wrmsrl(MSR_DSEG_OFFSET_G, r->phys - r->base);
		wrmsrl(MSR_DSEG_LIMIT_G, r->limit);
	}
	this_cpu_write(armed, r);
}

/* The region of @mm, found by its page tables. */
static struct dseg_region *region_of(struct mm_struct *mm)
{
	phys_addr_t pgd;
	int i;

	if (!mm)
		return NULL;
	pgd = __pa(mm->pgd);
	for (i = 0; i < DSEG_MAX_REGIONS; i++) {
		struct dseg_region *r = READ_ONCE(regions[i]);

		if (r && r->pgd == pgd)
			return r;
	}
	return NULL;
}

static void dseg_sched_switch(void *data, bool preempt,
			      struct task_struct *prev,
			      struct task_struct *next,
			      unsigned int prev_state)
{
	dseg_arm(region_of(next->mm));
}

/* Other page tables are loaded: the segment must not outlive its own. */
static void dseg_tlb_flush(void *data, int reason, unsigned long pages)
{
	struct dseg_region *r = this_cpu_read(armed);

	if (reason == TLB_FLUSH_ON_TASK_SWITCH && r && r->pgd != read_cr3_pa())
		dseg_arm(NULL);
}

/* IPI: make this CPU's segment match the task it runs now. */
static void dseg_refresh(void *unused)
{
	struct dseg_region *r = region_of(current->mm);

	dseg_arm(r && r->pgd == read_cr3_pa() ? r : NULL);
}

DSEG_PROBE_TYPE_CHECK(sched_switch, dseg_sched_switch);
DSEG_PROBE_TYPE_CHECK(tlb_flush, dseg_tlb_flush);

static void find_tracepoints(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "sched_switch"))
		sched_switch_tp = tp;
	else if (!strcmp(tp->name, "tlb_flush"))
		tlb_flush_tp = tp;
}

/* --- the region: a VMA of /dev/dseg ------------------------------------ */

/*
 * The kernel copies a VMA without asking the driver whether it may: a
 * refused mremap first copies the region's VMA, then closes the copy, and
 * the original still maps the region.  So the region lives as long as any
 * VMA maps it.
 */
static void dseg_vma_open(struct vm_area_struct *vma)
{
	struct dseg_region *r = vma->vm_private_data;

	refcount_inc(&r->vmas);
}

static void dseg_vma_close(struct vm_area_struct *vma)
{
	struct dseg_region *r = vma->vm_private_data;
	int i;

	if (!refcount_dec_and_test(&r->vmas))
		return;
	mutex_lock(&dseg_lock);
	for (i = 0; i < DSEG_MAX_REGIONS; i++)
		if (regions[i] == r)
			WRITE_ONCE(regions[i], NULL);
	/*
	 * A probe that found R before it left the table has armed it with
	 * IRQs off; this IPI runs after it, on every CPU, and disarms.
	 */
	on_each_cpu(dseg_refresh, NULL, 1);
	bitmap_clear(pool_map, r->first_page, r->npages);
	mutex_unlock(&dseg_lock);
	kfree(r);
}

/* The segment must keep matching the page tables: no split, move or
 * change of protection. */
static int dseg_vma_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	return -EINVAL;
}

static int dseg_vma_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

static int dseg_vma_mprotect(struct vm_area_struct *vma, unsigned long start,
			     unsigned long end, unsigned long newflags)
{
	return -EACCES;
}

static const struct vm_operations_struct dseg_vm_ops = {
	.open = dseg_vma_open,
	.close = dseg_vma_close,
	.may_split = dseg_vma_may_split,
	.mremap = dseg_vma_mremap,
	.mprotect = dseg_vma_mprotect,
};

static int dseg_zero(phys_addr_t phys, size_t size)
{
	void *p = memremap(phys, size, MEMREMAP_WB);

	if (!p)
		return -ENOMEM;
	memset(p, 0, size);
	memunmap(p);
	return 0;
}

/* Regions of @uid; dseg_lock held. */
static int regions_of_user(kuid_t uid)
{
	int i, n = 0;

	for (i = 0; i < DSEG_MAX_REGIONS; i++)
		n += regions[i] && uid_eq(regions[i]->uid, uid);
	return n;
}

static int dseg_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long size = vma->vm_end - vma->vm_start;
	unsigned long npages = size >> PAGE_SHIFT;
	bool locker = capable(CAP_IPC_LOCK);
	struct dseg_region *r;
	unsigned long first;
	int slot, ret;

	if (vma->vm_pgoff)
		return -EINVAL;
	if ((vma->vm_flags & (VM_SHARED | VM_READ | VM_WRITE)) !=
	    (VM_SHARED | VM_READ | VM_WRITE))
		return -EACCES;
	if (vma->vm_mm != current->mm)
		return -EINVAL;
	/* The bitmap's functions count pages in an unsigned int. */
	if (npages > pool_pages)
		return -ENOMEM;
	/* A region is locked memory: as mlock(2) has it. */
	if (!locker && !rlimit(RLIMIT_MEMLOCK))
		return -EPERM;
	if (!locker && size > rlimit(RLIMIT_MEMLOCK))
		return -ENOMEM;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	mutex_lock(&dseg_lock);
	ret = -EBUSY;			/* one primary region per process */
	if (region_of(current->mm))
		goto out_unlock;
	ret = -ENOSPC;
	for (slot = 0; slot < DSEG_MAX_REGIONS && regions[slot]; slot++)
		;
	if (slot == DSEG_MAX_REGIONS ||
	    (!locker && regions_of_user(current_uid()) >= DSEG_USER_REGIONS))
		goto out_unlock;
	ret = -ENOMEM;
	first = bitmap_find_next_zero_area(pool_map, pool_pages, 0, npages, 0);
	if (first >= pool_pages)
		goto out_unlock;

	refcount_set(&r->vmas, 1);
	r->pgd = __pa(current->mm->pgd);
	r->uid = current_uid();
	r->base = vma->vm_start;
	r->limit = vma->vm_end;
	r->phys = pool_base + ((phys_addr_t)first << PAGE_SHIFT);
	r->first_page = first;
	r->npages = npages;
	ret = dseg_zero(r->phys, size);
	if (ret)
		goto out_unlock;
	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTCOPY |
			  VM_DONTDUMP);
	ret = remap_pfn_range(vma, vma->vm_start, PHYS_PFN(r->phys), size,
			      vma->vm_page_prot);
	if (ret)
		goto out_unlock;
	bitmap_set(pool_map, first, npages);
	vma->vm_private_data = r;
	vma->vm_ops = &dseg_vm_ops;
	WRITE_ONCE(regions[slot], r);
	/* Arm it now on every CPU that runs a thread of this process. */
	on_each_cpu(dseg_refresh, NULL, 1);
	mutex_unlock(&dseg_lock);
	return 0;

out_unlock:
	mutex_unlock(&dseg_lock);
	kfree(r);
	return ret;
}

static long dseg_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct dseg_region_info info = { 0 };
	struct dseg_region *r;

	if (cmd != DSEG_IOC_REGION)
		return -ENOTTY;
	mutex_lock(&dseg_lock);
	r = region_of(current->mm);
	if (r) {
		info.base = r->base;
		info.limit = r->limit;
		/* Physical addresses, as /proc/PID/pagemap has them. */
		if (capable(CAP_SYS_ADMIN))
			info.phys = r->phys;
	}
	mutex_unlock(&dseg_lock);
	if (!r)
		return -ENOENT;
	return copy_to_user((void __user *)arg, &info, sizeof(info)) ?
	       -EFAULT : 0;
}

static const struct file_operations dseg_fops = {
	.owner = THIS_MODULE,
	.mmap = dseg_mmap,
	.unlocked_ioctl = dseg_ioctl,
};

static struct miscdevice dseg_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "dseg",
	.fops = &dseg_fops,
	.mode = 0660,		/* root's; an administrator grants a group */
};

/* --- load and unload ------------------------------------------------------ */

static int __init dseg_init(void)
{
	int ret;

	if (!(cpuid_ecx(0x80000001) & CPUID_EXT3_DSEG)) {
		pr_err("this CPU does not enumerate direct segments (CPUID Fn8000_0001 ECX[31])\n");
		return -ENODEV;
	}
	if (!pool_size || !PAGE_ALIGNED(pool_base) || !PAGE_ALIGNED(pool_size)) {
		pr_err("no memory pool: pass page-aligned pool_base= and pool_size= of memory reserved at boot (memmap=SIZE$BASE)\n");
		return -EINVAL;
	}
	if (pool_size >> PAGE_SHIFT > UINT_MAX) {
		pr_err("pool %#lx+%#lx is too large: at most %#llx bytes\n",
		       pool_base, pool_size, (u64)UINT_MAX << PAGE_SHIFT);
		return -EINVAL;
	}
	ret = dseg_pool_claim(pool_base, pool_size, "dseg pool");
	if (ret)
		return ret;
	pool_pages = pool_size >> PAGE_SHIFT;
	pool_map = bitmap_zalloc(pool_pages, GFP_KERNEL);
	ret = -ENOMEM;
	if (!pool_map)
		goto err_release;

	for_each_kernel_tracepoint(find_tracepoints, NULL);
	ret = -ENOENT;
	if (!sched_switch_tp || !tlb_flush_tp)
		goto err_free;
	ret = tracepoint_probe_register(sched_switch_tp, dseg_sched_switch,
					NULL);
	if (ret)
		goto err_free;
	ret = tracepoint_probe_register(tlb_flush_tp, dseg_tlb_flush, NULL);
	if (ret)
		goto err_sched_switch;
	ret = misc_register(&dseg_dev);
	if (ret)
		goto err_probe;
	pr_info("pool %#lx+%#lx (%lu pages), /dev/dseg ready\n",
		pool_base, pool_size, pool_pages);
	return 0;

err_probe:
	tracepoint_probe_unregister(tlb_flush_tp, dseg_tlb_flush, NULL);
err_sched_switch:
	tracepoint_probe_unregister(sched_switch_tp, dseg_sched_switch, NULL);
	tracepoint_synchronize_unregister();
err_free:
	bitmap_free(pool_map);
err_release:
	dseg_pool_release(pool_base, pool_size);
	return ret;
}

static void __exit dseg_exit(void)
{
	/*
	 * Every region holds its file, and so the module: none is left.
	 * Leave every CPU disarmed.
	 */
	misc_deregister(&dseg_dev);
	tracepoint_probe_unregister(tlb_flush_tp, dseg_tlb_flush, NULL);
	tracepoint_probe_unregister(sched_switch_tp, dseg_sched_switch, NULL);
	tracepoint_synchronize_unregister();
	on_each_cpu(dseg_refresh, NULL, 1);
	bitmap_free(pool_map);
	dseg_pool_release(pool_base, pool_size);
	pr_info("unloaded\n");
}

module_init(dseg_init);
module_exit(dseg_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("qemu-dseg: primary regions under the guest direct segment");
