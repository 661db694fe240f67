// SPDX-License-Identifier: GPL-2.0
/*
 * qemu-dseg host module: Linux KVM guests in VMM direct mode.
 *
 * The L1 Linux that runs KVM on qemu-dseg loads this module to give a VMM
 * guest memory that is contiguous in host-physical memory and to program
 * the VMM segment (DSEG_BASE_V/LIMIT_V/OFFSET_V) for it, without any
 * change to KVM.  See docs/devel/dseg-kvm.rst for the design and its
 * reasons; the interface is in dseg_vmm_uapi.h.
 *
 * Memory: a physical range that the kernel command line reserves
 * (memmap=SIZE$BASE, so it is not System RAM) and the module parameters
 * pool_base and pool_size name.  It is handed out in 2 MiB chunks, zeroed,
 * one contiguous run per VM.
 *
 * Switching: a probe on KVM's kvm_entry tracepoint, which KVM fires on the
 * vCPU's CPU with interrupts off right before every VMRUN, arms the VMM
 * segment there for the VM whose vCPU enters (or disarms it for a VM
 * without one) when it is not already so.  In host mode the VMM segment is
 * not used, so nothing needs to change at #VMEXIT.
 */

#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kvm_host.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <asm/msr.h>

#include "dseg_vmm_uapi.h"

#define MSR_DSEG_BASE_V		0xc0011f04
#define MSR_DSEG_LIMIT_V	0xc0011f05
#define MSR_DSEG_OFFSET_V	0xc0011f06
#define MSR_DSEG_FILTER_INSERT	0xc0011f09
#define MSR_DSEG_FILTER_CLEAR	0xc0011f0a
#define CPUID_EXT3_DSEG		BIT(31)		/* CPUID 8000_0001 ECX */

#define CHUNK			SZ_2M
#define MAX_CHUNKS		4096		/* 8 GiB */
#define MAX_VMS			16

static unsigned long pool_base;
module_param(pool_base, ulong, 0444);
MODULE_PARM_DESC(pool_base, "start of the reserved memory (memmap=SIZE$BASE)");
static unsigned long pool_size;
module_param(pool_size, ulong, 0444);
MODULE_PARM_DESC(pool_size, "its size, a multiple of 2 MiB");

/* KVM's tracepoint, exported for kvm_amd and kvm_intel. */
extern struct tracepoint __tracepoint_kvm_entry;

struct dseg_vm {
	struct kvm *kvm;	/* set by DSEG_VMM_SETUP */
	bool armed;		/* DSEG_VMM_ARM checked the slot */
	u64 gpa, size, hpa;
};

static DEFINE_MUTEX(dseg_lock);		/* vms[] and chunk_used */
static struct dseg_vm vms[MAX_VMS];
static DECLARE_BITMAP(chunk_used, MAX_CHUNKS);
static unsigned int nr_chunks;
static DEFINE_PER_CPU(struct dseg_vm *, armed_vm);

/* Program this CPU's VMM segment for @vm, or disarm it (NULL). */
static void dseg_program(struct dseg_vm *vm)
{
	wrmsrl(MSR_DSEG_LIMIT_V, 0);
	if (vm) {
		wrmsrl(MSR_DSEG_BASE_V, vm->gpa);
		wrmsrl(MSR_DSEG_OFFSET_V, vm->hpa - vm->gpa);
		wrmsrl(MSR_DSEG_LIMIT_V, vm->gpa + vm->size);
	}
	__this_cpu_write(armed_vm, vm);
}

/* kvm_entry: interrupts are off and the vCPU runs on this CPU next. */
static void dseg_kvm_entry(void *data, struct kvm_vcpu *vcpu)
{
	struct dseg_vm *cur = __this_cpu_read(armed_vm), *vm = NULL;
	int i;

	if (cur && READ_ONCE(cur->kvm) == vcpu->kvm && READ_ONCE(cur->armed))
		return;
	for (i = 0; i < MAX_VMS; i++) {
		if (READ_ONCE(vms[i].kvm) == vcpu->kvm &&
		    READ_ONCE(vms[i].armed)) {
			vm = &vms[i];
			break;
		}
	}
	if (vm != cur)
		dseg_program(vm);
}

static void dseg_disarm_cpu(void *info)
{
	if (!info || __this_cpu_read(armed_vm) == info)
		dseg_program(NULL);
}

static void dseg_escape_cpu(void *info)
{
	wrmsrl(MSR_DSEG_FILTER_INSERT, *(u64 *)info);
}

static void dseg_clear_filter_cpu(void *info)
{
	wrmsrl(MSR_DSEG_FILTER_CLEAR, 0);
}

static int dseg_open(struct inode *inode, struct file *file)
{
	file->private_data = NULL;
	return 0;
}

/*
 * Free @vm's slot: disarmed everywhere first, then its memory.  The
 * filter is shared; it is emptied when the last VM goes.
 */
static void dseg_vm_free(struct dseg_vm *vm)
{
	int i;

	WRITE_ONCE(vm->armed, false);
	on_each_cpu(dseg_disarm_cpu, vm, 1);
	bitmap_clear(chunk_used, (vm->hpa - pool_base) / CHUNK,
		     vm->size / CHUNK);
	kvm_put_kvm(vm->kvm);
	WRITE_ONCE(vm->kvm, NULL);
	for (i = 0; i < MAX_VMS; i++)
		if (vms[i].kvm)
			return;
	on_each_cpu(dseg_clear_filter_cpu, NULL, 1);
}

static int dseg_release(struct inode *inode, struct file *file)
{
	struct dseg_vm *vm = file->private_data;

	if (vm) {
		mutex_lock(&dseg_lock);
		dseg_vm_free(vm);
		mutex_unlock(&dseg_lock);
	}
	return 0;
}

/* The KVM VM behind @fd, with a reference, or NULL. */
static struct kvm *dseg_get_kvm(int fd)
{
	struct fd f = fdget(fd);
	struct kvm *kvm = NULL;

	if (!f.file)
		return NULL;
	/* KVM names its VM files "kvm-vm" (anon_inode:kvm-vm). */
	if (!strcmp(f.file->f_path.dentry->d_name.name, "kvm-vm")) {
		kvm = f.file->private_data;
		kvm_get_kvm(kvm);
	}
	fdput(f);
	return kvm;
}

static long dseg_setup(struct file *file, void __user *arg)
{
	struct dseg_vmm_setup s;
	struct dseg_vm *vm = NULL;
	unsigned long first;
	void *mem;
	int i;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	if (!s.size || s.size % CHUNK || s.gpa % CHUNK ||
	    s.gpa + s.size < s.gpa || s.size > (u64)nr_chunks * CHUNK)
		return -EINVAL;

	mutex_lock(&dseg_lock);
	if (file->private_data) {
		mutex_unlock(&dseg_lock);
		return -EBUSY;
	}
	for (i = 0; i < MAX_VMS && !vm; i++)
		if (!vms[i].kvm)
			vm = &vms[i];
	first = bitmap_find_next_zero_area(chunk_used, nr_chunks, 0,
					   s.size / CHUNK, 0);
	if (!vm || first >= nr_chunks) {
		mutex_unlock(&dseg_lock);
		return -ENOMEM;
	}
	vm->kvm = dseg_get_kvm(s.vm_fd);
	if (!vm->kvm) {
		mutex_unlock(&dseg_lock);
		return -EBADF;
	}
	bitmap_set(chunk_used, first, s.size / CHUNK);
	vm->gpa = s.gpa;
	vm->size = s.size;
	vm->hpa = pool_base + first * CHUNK;
	vm->armed = false;
	file->private_data = vm;
	mutex_unlock(&dseg_lock);

	/* No VM sees what another left behind. */
	mem = memremap(vm->hpa, vm->size, MEMREMAP_WB);
	if (!mem)
		return -ENOMEM;
	memset(mem, 0, vm->size);
	memunmap(mem);

	s.hpa = vm->hpa;
	if (copy_to_user(arg, &s, sizeof(s)))
		return -EFAULT;
	pr_info("dseg_vmm: VM gPA [0x%llx, 0x%llx) at hPA 0x%llx\n",
		vm->gpa, vm->gpa + vm->size, vm->hpa);
	return 0;
}

/*
 * The spec requires the nested tables to agree with the VMM segment for
 * every page.  KVM builds its nested entries from gfn_to_pfn(), so every
 * page of the range must give the pfn that the segment gives.
 */
static long dseg_arm(struct file *file)
{
	struct dseg_vm *vm = file->private_data;
	u64 gfn;

	if (!vm)
		return -EINVAL;
	for (gfn = vm->gpa >> PAGE_SHIFT;
	     gfn < (vm->gpa + vm->size) >> PAGE_SHIFT; gfn++) {
		kvm_pfn_t want = (vm->hpa - vm->gpa) / PAGE_SIZE + gfn;
		kvm_pfn_t pfn = gfn_to_pfn(vm->kvm, gfn);

		if (is_error_noslot_pfn(pfn) || pfn != want) {
			pr_warn("dseg_vmm: gPA 0x%llx maps to pfn 0x%llx, the segment to 0x%llx: not armed\n",
				gfn << PAGE_SHIFT, (u64)pfn, (u64)want);
			if (!is_error_noslot_pfn(pfn))
				kvm_release_pfn_clean(pfn);
			return -EINVAL;
		}
		kvm_release_pfn_clean(pfn);
	}
	WRITE_ONCE(vm->armed, true);
	return 0;
}

/* Escape @arg's page on every CPU before the VMM may remap it. */
static long dseg_escape(struct file *file, void __user *arg)
{
	struct dseg_vm *vm = file->private_data;
	u64 gpa;

	if (!vm)
		return -EINVAL;
	if (copy_from_user(&gpa, arg, sizeof(gpa)))
		return -EFAULT;
	if (gpa < vm->gpa || gpa - vm->gpa >= vm->size)
		return -EINVAL;
	on_each_cpu(dseg_escape_cpu, &gpa, 1);
	return 0;
}

static long dseg_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case DSEG_VMM_SETUP:
		return dseg_setup(file, (void __user *)arg);
	case DSEG_VMM_ARM:
		return dseg_arm(file);
	case DSEG_VMM_ESCAPE:
		return dseg_escape(file, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static int dseg_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct dseg_vm *vm = file->private_data;

	if (!vm || vma->vm_pgoff || vma->vm_end - vma->vm_start != vm->size)
		return -EINVAL;
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
	return remap_pfn_range(vma, vma->vm_start, vm->hpa >> PAGE_SHIFT,
			       vm->size, vma->vm_page_prot);
}

static const struct file_operations dseg_fops = {
	.owner = THIS_MODULE,
	.open = dseg_open,
	.release = dseg_release,
	.unlocked_ioctl = dseg_ioctl,
	.mmap = dseg_mmap,
};

static struct miscdevice dseg_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "dseg-vmm",
	.fops = &dseg_fops,
};

static int __init dseg_vmm_init(void)
{
	int ret;

	if (!(cpuid_ecx(0x80000001) & CPUID_EXT3_DSEG)) {
		pr_err("dseg_vmm: the CPU has no direct segments\n");
		return -ENODEV;
	}
	if (!pool_size || pool_size % CHUNK || pool_base % CHUNK ||
	    pool_size / CHUNK > MAX_CHUNKS) {
		pr_err("dseg_vmm: pool_base=0x%lx pool_size=0x%lx: need 2 MiB multiples, at most %lu MiB\n",
		       pool_base, pool_size, ((unsigned long)MAX_CHUNKS * CHUNK) >> 20);
		return -EINVAL;
	}
	if (region_intersects(pool_base, pool_size, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("dseg_vmm: [0x%lx, 0x%lx) is System RAM: reserve it with memmap=0x%lx$0x%lx\n",
		       pool_base, pool_base + pool_size, pool_size, pool_base);
		return -EINVAL;
	}
	nr_chunks = pool_size / CHUNK;
	ret = tracepoint_probe_register(&__tracepoint_kvm_entry,
					dseg_kvm_entry, NULL);
	if (ret)
		return ret;
	ret = misc_register(&dseg_dev);
	if (ret) {
		tracepoint_probe_unregister(&__tracepoint_kvm_entry,
					    dseg_kvm_entry, NULL);
		tracepoint_synchronize_unregister();
		return ret;
	}
	pr_info("dseg_vmm: %lu MiB at 0x%lx\n", pool_size >> 20, pool_base);
	return 0;
}

static void __exit dseg_vmm_exit(void)
{
	misc_deregister(&dseg_dev);
	tracepoint_probe_unregister(&__tracepoint_kvm_entry, dseg_kvm_entry,
				    NULL);
	tracepoint_synchronize_unregister();
	on_each_cpu(dseg_disarm_cpu, NULL, 1);
}

module_init(dseg_vmm_init);
module_exit(dseg_vmm_exit);
MODULE_DESCRIPTION("qemu-dseg: VMM segment for Linux KVM guests");
MODULE_LICENSE("GPL");
