// SPDX-License-Identifier: GPL-2.0
/*
 * qemu-dseg host module: Linux KVM guests in VMM direct mode.
 *
 * The L1 Linux that runs KVM on qemu-dseg loads this module to give a VMM
 * guest memory that is contiguous in host-physical memory and to program
 * the VMM segment (DSEG_BASE_V/LIMIT_V/OFFSET_V) for it, without any
 * change to KVM or to the VMM beyond where its RAM comes from.  See
 * docs/devel/dseg-kvm.rst for the design and its reasons; the interface is
 * in dseg_vmm_uapi.h.
 *
 * Memory: a physical range that the kernel command line reserves
 * (memmap=SIZE$BASE, so it is not System RAM) and the module parameters
 * pool_base and pool_size name.  Each mmap() of /dev/dseg-vmm takes one
 * contiguous run of 2 MiB chunks from it, zeroed: right after the memory
 * its process already has if the pool is free there.
 *
 * The segment: a probe on KVM's kvm_entry tracepoint, which KVM fires on
 * the vCPU's CPU with interrupts off right before every VMRUN, arms the
 * VMM segment there for the entering VM when the vCPU enters the VM's
 * own level (not a nested guest of it, not SMM), and disarms it
 * otherwise.  The segment is derived from the
 * VM's own memory slots (address space 0): the longest gPA range whose
 * slots map it, at one offset, into mappings of /dev/dseg-vmm of the
 * VM's process, leaving out read-only and dirty-logged slots.  KVM builds
 * its nested entries from the same slots, so the two agree for every
 * page.  The range is computed again whenever the slots' generation
 * changes.  In host mode the VMM segment is not used, so nothing needs to
 * change at #VMEXIT.
 *
 * Changes to the mapping: an MMU notifier on the VMM's mm sees every
 * change to the mapping's page-table entries before it happens (the same
 * notifier chain that makes KVM zap its nested entries).  The gPAs of up
 * to MAX_CHANGED changed pages are escaped on every CPU first, as the
 * spec orders; a larger change (munmap of the whole memory) turns the
 * segment off for the VMs that use it.
 *
 * Lifetimes: the module holds a reference on each VM it keeps a segment
 * for, so that no VM it knows of is freed behind it, and lets go of a VM
 * when nothing else holds one (the VMM closed it) as soon as another VM
 * appears, or when the VMM's last mapping is gone.  A CPU that comes
 * online starts from a disarmed segment and an empty filter (INIT), so
 * its state is rebuilt then.  What the probe would print, with
 * interrupts off, is printed later from process context.
 *
 * Kernels: see dseg_kernel.h; KVM's kvm_entry gained an argument in 6.9.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/capability.h>
#include <linux/cpuhotplug.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kvm_host.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <asm/msr.h>

#include "dseg_abi.h"
#include "dseg_kernel.h"
#include "dseg_pool.h"
#include "dseg_vmm_uapi.h"

#define CHUNK			SZ_2M
#define MAX_CHUNKS		4096		/* 8 GiB */
#define MAX_REGIONS		16		/* mappings at once */
#define MAX_VMS			16		/* VMs that use them */
#define MAX_CHANGED		64		/* pages of a mapping escaped */
#define MAX_ESCAPED		1024		/* gPAs in the filter */
#define MAX_LOG			64		/* lines waiting to be printed */
#define LOG_LEN			128

static unsigned long pool_base;
module_param(pool_base, ulong, 0444);
MODULE_PARM_DESC(pool_base, "start of the reserved memory (memmap=SIZE$BASE)");
static unsigned long pool_size;
module_param(pool_size, ulong, 0444);
MODULE_PARM_DESC(pool_size, "its size, a multiple of 2 MiB");

/* KVM's tracepoint, exported for kvm_amd and kvm_intel. */
extern struct tracepoint __tracepoint_kvm_entry;

/* One open of /dev/dseg-vmm and its mapping. */
struct dseg_region {
	struct mmu_notifier mn;
	struct mm_struct *mm;		/* the opener's */
	unsigned long start, size;	/* the mapping; size 0: none yet */
	u64 hpa;
	bool live;			/* mapped, usable for a segment */
	unsigned int busy;		/* changes under way: not usable */
	unsigned int nr_changed;
	unsigned long changed[MAX_CHANGED];	/* offsets of changed pages */
	u64 base, limit, offset;	/* the segment last armed over it */
};

/* A VM whose process has a mapping. */
struct dseg_vm {
	struct kvm *kvm;		/* referenced; NULL: a free entry */
	u64 id;				/* unique over the module's life */
	struct mm_struct *mm;		/* kvm->mm */
	bool valid;			/* the segment is for slots @gen */
	bool dying;			/* no CPU may take it up again */
	u64 gen;
	u64 base, limit, offset;	/* limit 0: no segment */
};

/* What a CPU holds. */
struct dseg_cpu {
	struct dseg_vm *vm;		/* the VM last entered, if any */
	u64 vm_id;			/* its id then: the entry may be reused */
	u64 gen;			/* its slots' generation then */
	u64 base, limit, offset;	/* the MSRs; limit 0: disarmed */
	unsigned int nr_inserted;	/* escaped[] in this CPU's filter */
};

/*
 * A gPA range that slots map, at one offset, into mappings of the VM's
 * process: host-physically contiguous, as gPA + offset is.  Empty: end 0.
 */
struct dseg_run {
	u64 gpa, end, offset;
};

/*
 * dseg_mutex orders the process-context changes (mappings, the pool,
 * freeing VMs); dseg_lock guards everything the kvm_entry probe reads.
 */
static DEFINE_MUTEX(dseg_mutex);
static DEFINE_RAW_SPINLOCK(dseg_lock);
static struct dseg_region *regions[MAX_REGIONS];
static unsigned int nr_regions;
static struct dseg_vm vms[MAX_VMS];
static u64 last_vm_id;
/* VMs let go of by the probe, for dseg_work() to put. */
static struct kvm *unused_vms[MAX_VMS];
static unsigned int nr_unused_vms;
/*
 * The escaped gPAs, in the order they were escaped.  Each CPU inserts
 * the ones it has not yet into its filter before it arms a segment, and
 * at once when asked by IPI, which is how an escape reaches every CPU.
 */
static u64 escaped[MAX_ESCAPED];
static unsigned int nr_escaped;
static DECLARE_BITMAP(chunk_used, MAX_CHUNKS);
static unsigned int nr_chunks;
static DEFINE_PER_CPU(struct dseg_cpu, dseg_cpu);
static enum cpuhp_state dseg_cpuhp;

/* Lines for dseg_work() to print: the probe runs with interrupts off. */
static struct dseg_log {
	bool warn;
	char text[LOG_LEN];
} log_lines[MAX_LOG];
static unsigned int log_head, log_len, log_lost;

static void dseg_work_fn(struct work_struct *work);
static DECLARE_WORK(dseg_work, dseg_work_fn);

/* Print later; dseg_lock held. */
static __printf(2, 3) void dseg_log(bool warn, const char *fmt, ...)
{
	struct dseg_log *l;
	va_list ap;

	if (log_len == MAX_LOG) {
		log_lost++;
		return;
	}
	l = &log_lines[(log_head + log_len++) % MAX_LOG];
	l->warn = warn;
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
	schedule_work(&dseg_work);
}

/* Process context: put the VMs the probe let go, print what it logged. */
static void dseg_work_fn(struct work_struct *work)
{
	struct dseg_log l;
	struct kvm *kvm;
	unsigned int lost;
	bool more;

	do {
		raw_spin_lock_irq(&dseg_lock);
		kvm = nr_unused_vms ? unused_vms[--nr_unused_vms] : NULL;
		more = log_len;
		if (more) {
			l = log_lines[log_head];
			log_head = (log_head + 1) % MAX_LOG;
			log_len--;
		}
		lost = more ? 0 : log_lost;
		if (!more)
			log_lost = 0;
		raw_spin_unlock_irq(&dseg_lock);
		if (kvm)
			kvm_put_kvm(kvm);
		if (more && l.warn)
			pr_warn("%s\n", l.text);
		else if (more)
			pr_info("%s\n", l.text);
		if (lost)
			pr_warn("%u lines lost: more than %d at once\n", lost,
				MAX_LOG);
	} while (kvm || more);
}

/*
 * Make this CPU's VMM segment @vm's, or disarm it (NULL).  Arming is done
 * with dseg_lock held, disarming needs only interrupts off.
 */
static void dseg_program(struct dseg_cpu *c, struct dseg_vm *vm)
{
	u64 base = 0, limit = 0, offset = 0;

	if (vm && vm->limit) {
		base = vm->base;
		limit = vm->limit;
		offset = vm->offset;
	}
	c->vm = vm;
	c->vm_id = vm ? vm->id : 0;
	if (c->limit == limit &&
	    (!limit || (c->base == base && c->offset == offset)))
		return;
	wrmsrl(MSR_DSEG_LIMIT_V, 0);
	if (limit && (wrmsrl_safe(MSR_DSEG_BASE_V, base) ||
		      wrmsrl_safe(MSR_DSEG_OFFSET_V, offset) ||
		      wrmsrl_safe(MSR_DSEG_LIMIT_V, limit))) {
		dseg_log(true, "the CPU refused segment [0x%llx, 0x%llx) + 0x%llx",
			 base, limit, offset);
		wrmsrl(MSR_DSEG_LIMIT_V, 0);
		limit = 0;
	}
	c->base = base;
	c->limit = limit;
	c->offset = offset;
}

/* The region of @mm that holds all of [hva, hva + len), if any. */
static struct dseg_region *dseg_region_of(struct mm_struct *mm,
					  unsigned long hva, u64 len)
{
	int i;

	for (i = 0; i < MAX_REGIONS; i++) {
		struct dseg_region *r = regions[i];

		if (r && r->live && !r->busy && r->mm == mm &&
		    hva >= r->start &&
		    len <= r->size && hva - r->start <= r->size - len)
			return r;
	}
	return NULL;
}

static bool dseg_mm_has_region(struct mm_struct *mm)
{
	int i;

	for (i = 0; i < MAX_REGIONS; i++)
		if (regions[i] && regions[i]->mm == mm)
			return true;
	return false;
}

/* Add @gpa's page to escaped[]; false if it is full.  dseg_lock held. */
static bool dseg_escape_add(u64 gpa)
{
	unsigned int i;

	gpa &= PAGE_MASK;
	for (i = 0; i < nr_escaped; i++)
		if (escaped[i] == gpa)
			return true;
	if (nr_escaped == MAX_ESCAPED)
		return false;
	escaped[nr_escaped++] = gpa;
	return true;
}

/* Insert what this CPU's filter lacks of escaped[].  dseg_lock held. */
static void dseg_catch_up(struct dseg_cpu *c)
{
	for (; c->nr_inserted < nr_escaped; c->nr_inserted++)
		wrmsrl(MSR_DSEG_FILTER_INSERT, escaped[c->nr_inserted]);
}

/* Whether @r's memory is part of @run's host-physical range. */
static bool dseg_run_has(const struct dseg_run *run, struct dseg_region *r)
{
	return r->size && r->hpa < run->end + run->offset &&
	       run->gpa + run->offset < r->hpa + r->size;
}

/*
 * Every page of @run's mappings (of @mm) that the VMM has changed is
 * escaped before a segment over it may be armed; false if escaped[] is
 * full.
 */
static bool dseg_escape_changes(const struct dseg_run *run,
				struct mm_struct *mm)
{
	unsigned int i, j;

	for (i = 0; i < MAX_REGIONS; i++) {
		struct dseg_region *r = regions[i];

		if (!r || r->mm != mm || !dseg_run_has(run, r))
			continue;
		for (j = 0; j < r->nr_changed; j++) {
			u64 gpa = r->hpa + r->changed[j] - run->offset;

			if (gpa >= run->gpa && gpa < run->end &&
			    !dseg_escape_add(gpa))
				return false;
		}
	}
	return true;
}

/*
 * Derive @vm's segment from its memory slots of generation @gen: the
 * longest chain of gPA-adjacent slots that map into mappings of the VM's
 * process at one offset (one mapping, or several that lie one after
 * another in the pool, as a VMM's added memory may), found in one pass
 * over the slots in gPA order.  Called with dseg_lock held and
 * interrupts off.
 */
static void dseg_vm_update(struct dseg_vm *vm, u64 gen)
{
	struct kvm *kvm = vm->kvm;
	struct kvm_memslot_iter iter;
	struct dseg_run run = {}, best = {};
	int idx, i;

	idx = srcu_read_lock(&kvm->srcu);
	kvm_for_each_memslot_in_gfn_range(&iter, kvm_memslots(kvm), 0,
					  U64_MAX) {
		struct kvm_memory_slot *slot = iter.slot;
		u64 gpa = slot->base_gfn << PAGE_SHIFT;
		u64 len = (u64)slot->npages << PAGE_SHIFT;
		struct dseg_region *r = NULL;
		u64 offset = 0;

		if (!(slot->flags &
		      (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)))
			r = dseg_region_of(vm->mm, slot->userspace_addr, len);
		if (r)
			offset = r->hpa + (slot->userspace_addr - r->start) - gpa;
		if (r && run.end && gpa == run.end && offset == run.offset)
			run.end = gpa + len;
		else if (r)
			run = (struct dseg_run) { .gpa = gpa, .end = gpa + len,
						  .offset = offset };
		else
			run = (struct dseg_run) {};
		if (run.end - run.gpa > best.end - best.gpa)
			best = run;
	}
	srcu_read_unlock(&kvm->srcu, idx);

	if (best.end && !dseg_escape_changes(&best, vm->mm)) {
		dseg_log(true, "VM of pid %d: more than %d escaped pages: no VMM segment",
			 kvm->userspace_pid, MAX_ESCAPED);
		best = (struct dseg_run) {};
	}

	if (best.gpa != vm->base || best.end != vm->limit ||
	    best.offset != vm->offset) {
		if (best.end)
			dseg_log(false, "VM of pid %d: VMM segment gPA [0x%llx, 0x%llx) at hPA 0x%llx",
				 kvm->userspace_pid, best.gpa, best.end,
				 best.gpa + best.offset);
		else
			dseg_log(false, "VM of pid %d: no VMM segment",
				 kvm->userspace_pid);
	}
	vm->base = best.gpa;
	vm->limit = best.end;
	vm->offset = best.offset;
	vm->gen = gen;
	vm->valid = true;
	for (i = 0; best.end && i < MAX_REGIONS; i++) {
		struct dseg_region *r = regions[i];

		if (r && r->mm == vm->mm && dseg_run_has(&best, r)) {
			r->base = best.gpa;
			r->limit = best.end;
			r->offset = best.offset;
		}
	}
}

/*
 * Let go of the VMs that only the module still holds: their VMM closed
 * them, and none can run again.  dseg_lock held.
 */
static void dseg_reap_vms(void)
{
	int i;

	for (i = 0; i < MAX_VMS && nr_unused_vms < MAX_VMS; i++) {
		if (vms[i].kvm && !vms[i].dying &&
		    refcount_read(&vms[i].kvm->users_count) == 1) {
			unused_vms[nr_unused_vms++] = vms[i].kvm;
			vms[i] = (struct dseg_vm) {};
			schedule_work(&dseg_work);
		}
	}
}

/*
 * The entry of @kvm, made when its process has a mapping.  Called with
 * dseg_lock held and interrupts off.
 */
static struct dseg_vm *dseg_vm_lookup(struct kvm *kvm)
{
	struct dseg_vm *free = NULL;
	int i;

	for (i = 0; i < MAX_VMS; i++)
		if (vms[i].kvm == kvm && !vms[i].dying)
			return &vms[i];
	if (!dseg_mm_has_region(kvm->mm))
		return NULL;
	dseg_reap_vms();
	for (i = 0; i < MAX_VMS && !free; i++)
		if (!vms[i].kvm)
			free = &vms[i];
	if (!free) {
		dseg_log(true, "more than %d VMs: VM of pid %d runs without a segment",
			 MAX_VMS, kvm->userspace_pid);
		return NULL;
	}
	kvm_get_kvm(kvm);
	*free = (struct dseg_vm) { .kvm = kvm, .id = ++last_vm_id,
				   .mm = kvm->mm };
	return free;
}

/* The generation of @kvm's slots: they live in struct kvm itself. */
static u64 dseg_slots_gen(struct kvm *kvm)
{
	return READ_ONCE(rcu_dereference_raw(kvm->memslots[0])->generation);
}

/*
 * kvm_entry: interrupts are off and the vCPU runs on this CPU next.  The
 * VM's segment is for its own level only: a vCPU that enters a nested
 * guest of the VM (an L2 that L1's KVM runs for the VM's own hypervisor)
 * or SMM (another address space of slots) enters disarmed.
 */
static void dseg_kvm_entry(void *data, struct kvm_vcpu *vcpu
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
			   , bool force_immediate_exit
#endif
			   )
{
	struct dseg_cpu *c = this_cpu_ptr(&dseg_cpu);
	struct kvm *kvm = vcpu->kvm;
	u64 gen = dseg_slots_gen(kvm);
	struct dseg_vm *vm;

	if (vcpu->arch.hflags & (HF_GUEST_MASK | HF_SMM_MASK)) {
		dseg_program(c, NULL);
		return;
	}
	if (c->vm ? READ_ONCE(c->vm->kvm) == kvm &&
		    READ_ONCE(c->vm->id) == c->vm_id &&
		    READ_ONCE(c->vm->valid) && c->gen == gen
		  : !READ_ONCE(nr_regions))
		return;
	raw_spin_lock(&dseg_lock);
	vm = dseg_vm_lookup(kvm);
	if (vm && (!vm->valid || vm->gen != gen))
		dseg_vm_update(vm, gen);
	dseg_catch_up(c);
	dseg_program(c, vm);
	c->gen = gen;
	raw_spin_unlock(&dseg_lock);
}

/* IPI: drop a VM that is no longer valid or is going away. */
static void dseg_sync_cpu(void *info)
{
	struct dseg_cpu *c = this_cpu_ptr(&dseg_cpu);

	if (c->vm && (!READ_ONCE(c->vm->valid) || READ_ONCE(c->vm->dying)))
		dseg_program(c, NULL);
}

static void dseg_disarm_cpu(void *info)
{
	dseg_program(this_cpu_ptr(&dseg_cpu), NULL);
}

static void dseg_catch_up_cpu(void *info)
{
	raw_spin_lock(&dseg_lock);
	dseg_catch_up(this_cpu_ptr(&dseg_cpu));
	raw_spin_unlock(&dseg_lock);
}

static void dseg_clear_filter_cpu(void *info)
{
	wrmsrl(MSR_DSEG_FILTER_CLEAR, 0);
	this_cpu_ptr(&dseg_cpu)->nr_inserted = 0;
}

/* The VMs of @mm need their segment derived again.  dseg_lock held. */
static void dseg_invalidate_mm(struct mm_struct *mm)
{
	int i;

	for (i = 0; i < MAX_VMS; i++)
		if (vms[i].kvm && vms[i].mm == mm)
			vms[i].valid = false;
}

/* The part of [start, end) that is @r's mapping, as offsets in it. */
static bool dseg_overlap(struct dseg_region *r, unsigned long start,
			 unsigned long end, unsigned long *first,
			 unsigned long *last)
{
	if (!r->start || end <= r->start || start >= r->start + r->size)
		return false;
	*first = max(start, r->start) - r->start;
	*last = min(end, r->start + r->size) - r->start;
	return true;
}

/*
 * The VMM's page-table entries in [start, end) are about to change.  No
 * CPU may use a segment over the mapping until they have, and every page
 * of the mapping in the range counts as changed: it is escaped before a
 * segment over it is armed again (dseg_escape_changes()).  When more
 * than MAX_CHANGED pages changed, the mapping is not used again.
 *
 * Nothing here reads the page tables: the callers of a notifier need not
 * hold mmap_lock.  Instead the kind of event tells: on a mapping of
 * remapped frames, every invalidation is a change of it (munmap, mremap,
 * MAP_FIXED over it: MMU_NOTIFY_UNMAP; mprotect: PROTECTION_*; soft-dirty
 * tracking) except MMU_NOTIFY_CLEAR, which here only announces the split
 * of a huge PMD that the mapping never has (mprotect of part of it splits
 * the 2 MiB around each end first); the zaps that also send it are
 * refused for VM_PFNMAP (madvise) or never made (the module).  NUMA
 * balancing, reclaim, migration and KSM leave such mappings alone.
 */
static int dseg_mn_invalidate_range_start(struct mmu_notifier *mn,
				const struct mmu_notifier_range *range)
{
	struct dseg_region *r = container_of(mn, struct dseg_region, mn);
	unsigned long first = 0, last = 0, o;
	bool busy, kill = false;
	unsigned int j;

	if (range->event == MMU_NOTIFY_CLEAR)
		return 0;
	raw_spin_lock_irq(&dseg_lock);
	busy = r->live &&
	       dseg_overlap(r, range->start, range->end, &first, &last);
	for (o = first; busy && o < last && !kill; o += PAGE_SIZE) {
		for (j = 0; j < r->nr_changed && r->changed[j] != o; j++)
			;
		if (j < r->nr_changed)
			continue;
		if (r->nr_changed == MAX_CHANGED)
			kill = true;
		else
			r->changed[r->nr_changed++] = o;
	}
	if (busy) {
		r->busy++;
		r->live = !kill;
		dseg_invalidate_mm(r->mm);
	}
	raw_spin_unlock_irq(&dseg_lock);
	if (busy)
		on_each_cpu(dseg_sync_cpu, NULL, 1);
	if (kill)
		pr_info("pid %d changed more than %d pages of its guest memory: no VMM segment over it\n",
			current->tgid, MAX_CHANGED);
	return 0;
}

/* The change is done: a segment may be derived again. */
static void dseg_mn_invalidate_range_end(struct mmu_notifier *mn,
				const struct mmu_notifier_range *range)
{
	struct dseg_region *r = container_of(mn, struct dseg_region, mn);
	unsigned long first, last;

	if (range->event == MMU_NOTIFY_CLEAR)
		return;
	raw_spin_lock_irq(&dseg_lock);
	if (r->busy &&
	    dseg_overlap(r, range->start, range->end, &first, &last)) {
		r->busy--;
		dseg_invalidate_mm(r->mm);
	}
	raw_spin_unlock_irq(&dseg_lock);
}

/* The mm goes away: nothing of it may run on the mapping again. */
static void dseg_mn_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct dseg_region *r = container_of(mn, struct dseg_region, mn);

	raw_spin_lock_irq(&dseg_lock);
	r->live = false;
	dseg_invalidate_mm(mm);
	raw_spin_unlock_irq(&dseg_lock);
}

static const struct mmu_notifier_ops dseg_mn_ops = {
	.invalidate_range_start = dseg_mn_invalidate_range_start,
	.invalidate_range_end = dseg_mn_invalidate_range_end,
	.release = dseg_mn_release,
};

static int dseg_open(struct inode *inode, struct file *file)
{
	struct dseg_region *r;
	int i, ret;

	if (!current->mm)
		return -EINVAL;
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	r->mm = current->mm;
	r->mn.ops = &dseg_mn_ops;
	/* Not under dseg_mutex: this takes mmap_lock, which mmap() holds. */
	ret = mmu_notifier_register(&r->mn, r->mm);
	if (ret) {
		kfree(r);
		return ret;
	}
	mutex_lock(&dseg_mutex);
	for (i = 0; i < MAX_REGIONS && regions[i]; i++)
		;
	if (i == MAX_REGIONS) {
		mutex_unlock(&dseg_mutex);
		mmu_notifier_unregister(&r->mn, r->mm);
		kfree(r);
		return -EMFILE;
	}
	raw_spin_lock_irq(&dseg_lock);
	regions[i] = r;
	WRITE_ONCE(nr_regions, nr_regions + 1);
	raw_spin_unlock_irq(&dseg_lock);
	mutex_unlock(&dseg_mutex);
	file->private_data = r;
	return nonseekable_open(inode, file);
}

/*
 * No mapping is left: take the region out, let go of the VMs of its
 * process if it was the last one there, and only then free its memory.
 */
static int dseg_release(struct inode *inode, struct file *file)
{
	struct dseg_region *r = file->private_data;
	struct kvm *put[MAX_VMS];
	int i, nput = 0;

	mutex_lock(&dseg_mutex);
	raw_spin_lock_irq(&dseg_lock);
	r->live = false;
	for (i = 0; i < MAX_REGIONS; i++)
		if (regions[i] == r)
			regions[i] = NULL;
	WRITE_ONCE(nr_regions, nr_regions - 1);
	dseg_invalidate_mm(r->mm);
	if (!dseg_mm_has_region(r->mm))
		for (i = 0; i < MAX_VMS; i++)
			if (vms[i].kvm && vms[i].mm == r->mm)
				vms[i].dying = true;
	raw_spin_unlock_irq(&dseg_lock);

	on_each_cpu(dseg_sync_cpu, NULL, 1);

	raw_spin_lock_irq(&dseg_lock);
	for (i = 0; i < MAX_VMS; i++) {
		if (vms[i].dying) {
			put[nput++] = vms[i].kvm;
			vms[i] = (struct dseg_vm) {};
		}
	}
	if (!nr_regions)
		nr_escaped = 0;
	raw_spin_unlock_irq(&dseg_lock);
	if (!nr_regions)
		on_each_cpu(dseg_clear_filter_cpu, NULL, 1);
	if (r->size)
		bitmap_clear(chunk_used, (r->hpa - pool_base) / CHUNK,
			     r->size / CHUNK);
	mutex_unlock(&dseg_mutex);

	for (i = 0; i < nput; i++)
		kvm_put_kvm(put[i]);
	mmu_notifier_unregister(&r->mn, r->mm);
	kfree(r);
	return 0;
}

static long dseg_info(struct dseg_region *r, void __user *arg)
{
	struct dseg_vmm_info info;

	raw_spin_lock_irq(&dseg_lock);
	info = (struct dseg_vmm_info) {
		.hpa = r->hpa, .size = r->size,
		.base = r->base, .limit = r->limit, .offset = r->offset,
	};
	raw_spin_unlock_irq(&dseg_lock);
	/* Host-physical addresses are the administrator's to know. */
	if (!capable(CAP_SYS_ADMIN))
		info.hpa = info.offset = 0;
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* The first step of an escape: @arg's page, on every CPU. */
static long dseg_escape(struct dseg_region *r, u64 __user *arg)
{
	bool added;
	u64 gpa;

	if (get_user(gpa, arg))
		return -EFAULT;
	if (!r->size || gpa >> boot_cpu_data.x86_phys_bits)
		return -EINVAL;
	raw_spin_lock_irq(&dseg_lock);
	added = dseg_escape_add(gpa);
	raw_spin_unlock_irq(&dseg_lock);
	if (!added)
		return -ENOSPC;
	on_each_cpu(dseg_catch_up_cpu, NULL, 1);
	return 0;
}

static long dseg_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case DSEG_VMM_INFO:
		return dseg_info(file->private_data, (void __user *)arg);
	case DSEG_VMM_ESCAPE:
		return dseg_escape(file->private_data, (u64 __user *)arg);
	default:
		return -ENOTTY;
	}
}

/* The chunk after the highest memory that @mm maps.  dseg_mutex held. */
static unsigned long dseg_mm_end_chunk(struct mm_struct *mm)
{
	unsigned long end = 0;
	int i;

	for (i = 0; i < MAX_REGIONS; i++)
		if (regions[i] && regions[i]->mm == mm && regions[i]->size)
			end = max_t(unsigned long, end,
				    (regions[i]->hpa + regions[i]->size -
				     pool_base) / CHUNK);
	return end;
}

static int dseg_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct dseg_region *r = file->private_data;
	unsigned long size = vma->vm_end - vma->vm_start, first, hint;
	void *mem;
	int ret;

	if (vma->vm_pgoff || !(vma->vm_flags & VM_SHARED) || size % CHUNK ||
	    vma->vm_mm != r->mm) {
		pr_info_ratelimited("pid %d: map a multiple of 2 MiB, MAP_SHARED (QEMU: share=on), at offset 0, from the process that opened the device\n",
				    current->tgid);
		return -EINVAL;
	}
	mutex_lock(&dseg_mutex);
	if (r->size) {
		mutex_unlock(&dseg_mutex);
		return -EBUSY;
	}
	/*
	 * Right after the process's memory if the pool is free there, so
	 * that a VMM that adds memory to a VM (a DIMM) gets it contiguous
	 * with what the VM has; else the first run that is long enough.
	 */
	hint = dseg_mm_end_chunk(r->mm);
	first = bitmap_find_next_zero_area(chunk_used, nr_chunks, hint,
					   size / CHUNK, 0);
	if (first != hint)
		first = bitmap_find_next_zero_area(chunk_used, nr_chunks, 0,
						   size / CHUNK, 0);
	if (first >= nr_chunks) {
		mutex_unlock(&dseg_mutex);
		pr_warn_ratelimited("pid %d: no %lu MiB left in the pool\n",
				    current->tgid, size >> 20);
		return -ENOMEM;
	}
	bitmap_set(chunk_used, first, size / CHUNK);
	r->hpa = pool_base + first * CHUNK;
	r->size = size;
	mutex_unlock(&dseg_mutex);

	/* No VM sees what another left behind. */
	mem = memremap(r->hpa, size, MEMREMAP_WB);
	ret = -ENOMEM;
	if (mem) {
		memset(mem, 0, size);
		memunmap(mem);
		vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY);
		ret = remap_pfn_range(vma, vma->vm_start, r->hpa >> PAGE_SHIFT,
				      size, vma->vm_page_prot);
	}
	mutex_lock(&dseg_mutex);
	raw_spin_lock_irq(&dseg_lock);
	if (ret) {
		bitmap_clear(chunk_used, first, size / CHUNK);
		r->size = 0;
		r->hpa = 0;
	} else {
		r->start = vma->vm_start;
		r->live = true;
	}
	raw_spin_unlock_irq(&dseg_lock);
	mutex_unlock(&dseg_mutex);
	if (!ret)
		pr_info("pid %d: %lu MiB at hPA 0x%llx\n",
			current->tgid, size >> 20, r->hpa);
	return ret;
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
	.mode = 0600,
};

/*
 * A CPU that comes online was INIT: its segment is disarmed and its
 * filter empty.  Runs on that CPU before any task but its own may.
 */
static int dseg_cpu_online(unsigned int cpu)
{
	struct dseg_cpu *c = this_cpu_ptr(&dseg_cpu);
	unsigned long flags;

	raw_spin_lock_irqsave(&dseg_lock, flags);
	*c = (struct dseg_cpu) {};
	wrmsrl(MSR_DSEG_LIMIT_V, 0);
	wrmsrl(MSR_DSEG_FILTER_CLEAR, 0);
	dseg_catch_up(c);
	raw_spin_unlock_irqrestore(&dseg_lock, flags);
	return 0;
}

static int __init dseg_vmm_init(void)
{
	int ret;

	if (!(cpuid_ecx(0x80000001) & CPUID_EXT3_DSEG)) {
		pr_err("the CPU has no direct segments\n");
		return -ENODEV;
	}
	if (!pool_size || pool_size % CHUNK || pool_base % CHUNK ||
	    pool_size / CHUNK > MAX_CHUNKS) {
		pr_err("pool_base=0x%lx pool_size=0x%lx: need 2 MiB multiples, at most %lu MiB\n",
		       pool_base, pool_size, ((unsigned long)MAX_CHUNKS * CHUNK) >> 20);
		return -EINVAL;
	}
	ret = dseg_pool_claim(pool_base, pool_size, "dseg-vmm pool");
	if (ret)
		return ret;
	nr_chunks = pool_size / CHUNK;
	ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "dseg_vmm:online",
				dseg_cpu_online, NULL);
	if (ret < 0)
		goto err_release;
	dseg_cpuhp = ret;
	ret = tracepoint_probe_register(&__tracepoint_kvm_entry,
					dseg_kvm_entry, NULL);
	if (ret)
		goto err_cpuhp;
	ret = misc_register(&dseg_dev);
	if (ret) {
		tracepoint_probe_unregister(&__tracepoint_kvm_entry,
					    dseg_kvm_entry, NULL);
		tracepoint_synchronize_unregister();
		goto err_cpuhp;
	}
	pr_info("%lu MiB at 0x%lx\n", pool_size >> 20, pool_base);
	return 0;

err_cpuhp:
	cpuhp_remove_state(dseg_cpuhp);
err_release:
	dseg_pool_release(pool_base, pool_size);
	return ret;
}

static void __exit dseg_vmm_exit(void)
{
	misc_deregister(&dseg_dev);
	tracepoint_probe_unregister(&__tracepoint_kvm_entry, dseg_kvm_entry,
				    NULL);
	tracepoint_synchronize_unregister();
	cpuhp_remove_state(dseg_cpuhp);
	on_each_cpu(dseg_disarm_cpu, NULL, 1);
	flush_work(&dseg_work);
	dseg_pool_release(pool_base, pool_size);
}

module_init(dseg_vmm_init);
module_exit(dseg_vmm_exit);
MODULE_DESCRIPTION("qemu-dseg: VMM segment for Linux KVM guests");
MODULE_LICENSE("GPL");
