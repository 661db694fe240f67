/*
 * thinvmm: the vCPUs.  Their VMCBs, their exits, and the APs, which wait
 * at the ACPI wake-up mailbox until the guest starts them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "thinvmm.h"

#define EFER_LME                (1u << 8)
#define EFER_LMA                (1u << 10)
#define CR0_PE_ET_PG            0x80000011u
#define CR4_PAE                 (1u << 5)

unsigned ncpus = 1;

static struct svm_vm vms[SMP_MAX_CPUS];  /* vCPU i: CPU (APIC ID) i */
static uint64_t ap_hsave[SMP_MAX_CPUS];
static volatile bool ap_waiting[SMP_MAX_CPUS];
static volatile int console_busy;       /* the console's lock */

/* Exits of all vCPUs (atomic adds). */
static uint64_t exits_cpuid, exits_msr, exits_vmmcall, exits_other;

/*
 * The VMCB of a vCPU, entering the guest at @entry in 64-bit mode on the
 * boot page tables.  Allocates: on the BSP only.
 */
static void setup_vm(struct svm_vm *vm, uint64_t entry, uint64_t boot_cr3)
{
    svm_vm_init(vm);
    /* Pass everything through: no I/O, exception or HLT intercepts. */
    memset((void *)(uintptr_t)vm->iopm, 0, 3 * PAGE_4K);
    memset((void *)(uintptr_t)vm->msrpm, 0, 2 * PAGE_4K);
    svm_intercept_msr(vm, MSR_VM_HSAVE_PA, true, true);
    for (uint32_t m = MSR_DSEG_BLOCK_FIRST; m <= MSR_DSEG_BLOCK_LAST; m++) {
        bool guest_reg = m >= MSR_DSEG_BASE_G && m <= MSR_DSEG_OFFSET_G;

        svm_intercept_msr(vm, m, !(guest_dseg && guest_reg),
                          !(guest_dseg && guest_reg));
    }
    vmcb_set(vm, VMCB_INTERCEPT,
             SVM_INTERCEPT_VMRUN | SVM_INTERCEPT_VMMCALL |
             SVM_INTERCEPT_SHUTDOWN | SVM_INTERCEPT_MSR |
             SVM_INTERCEPT_CPUID);
    svm_set_exception_intercepts(vm, 0);
    vmcb_set(vm, VMCB_INTR_CTRL, 0);   /* no V_INTR_MASKING */
    svm_set_npt(vm, &npt);

    /* 64-bit mode with identity-mapped paging, as the boot protocol wants. */
    vmcb_set_seg(vm, VMCB_CS, BOOT_CS, VMCB_CS_ATTR_LONG, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_DS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_ES, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_SS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_FS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_GS, BOOT_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_LDTR, 0, VMCB_LDTR_ATTR, 0xffff, 0);
    vmcb_set_seg(vm, VMCB_TR, 0, VMCB_TR_ATTR, 0xffff, 0);
    vmcb_set_seg(vm, VMCB_GDTR, 0, 0, 4 * 8 - 1, GPA_GDT);
    vmcb_set_seg(vm, VMCB_IDTR, 0, 0, 0, 0);
    vmcb_set(vm, VMCB_EFER, EFER_SVME | EFER_LME | EFER_LMA);
    vmcb_set(vm, VMCB_CR0, CR0_PE_ET_PG);
    vmcb_set(vm, VMCB_CR3, boot_cr3);
    vmcb_set(vm, VMCB_CR4, CR4_PAE);
    vmcb_set(vm, VMCB_RFLAGS, 0x2);
    vmcb_set(vm, VMCB_RIP, entry);
    vmcb_set(vm, VMCB_RSP, 0);
    vmcb_set(vm, VMCB_RAX, 0);
    memset(&vm->gprs, 0, sizeof(vm->gprs));
    vm->gprs.rsi = GPA_ZERO_PAGE;
}

static void inject_gp(struct svm_vm *vm)
{
    vmcb_set(vm, VMCB_EVENTINJ,
             EXC_GP | SVM_EVTINJ_TYPE_EXCP | SVM_EVTINJ_EV | SVM_EVTINJ_V);
}

static void handle_cpuid(struct svm_vm *vm)
{
    uint32_t leaf = (uint32_t)vmcb_get(vm, VMCB_RAX);
    uint32_t sub = (uint32_t)vm->gprs.rcx;
    uint32_t a, b, c, d;

    cpuid(leaf, sub, &a, &b, &c, &d);
    if (leaf == 0x80000001) {
        c &= ~((1u << 2) | (guest_dseg ? 0 : CPUID_EXT3_DSEG));  /* SVM */
    } else if (leaf == 0x8000000a) {
        a = b = c = d = 0;
    }
    vmcb_set(vm, VMCB_RAX, a);
    vm->gprs.rbx = b;
    vm->gprs.rcx = c;
    vm->gprs.rdx = d;
    svm_skip(vm, 2);
}

/* The console is shared by the vCPUs' exits: one line writer at a time. */
static void console_lock(void)
{
    while (__atomic_exchange_n(&console_busy, 1, __ATOMIC_ACQUIRE)) {
        cpu_relax();
    }
}

static void console_unlock(void)
{
    __atomic_store_n(&console_busy, 0, __ATOMIC_RELEASE);
}

static void count(uint64_t *counter)
{
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static void report(uint64_t code, unsigned cpu)
{
    console_lock();
    printf("\nTHINVMM-VMMCALL %lu exits: cpuid %lu msr %lu vmmcall %lu "
           "other %lu; bad pages %s", code, exits_cpuid, exits_msr,
           exits_vmmcall, exits_other,
           nbad ? (bad_pages_intact() ? "intact" : "WRITTEN") : "none");
    printf(cpu ? "; vCPU %u\n" : "\n", cpu);
    console_unlock();
}

/*
 * Runs vCPU @cpu until the guest ends the run; returns the exit status.
 * A guest VMMCALL stops at a test checkpoint on the BSP only (an AP cannot
 * wait for the harness: lib/smp.h); on an AP it returns ~0 in RAX.
 */
int run_vcpu(unsigned cpu)
{
    struct svm_vm *vm = &vms[cpu];

    for (;;) {
        uint64_t code = svm_run(vm);

        switch (code) {
        case SVM_EXIT_CPUID:
            count(&exits_cpuid);
            handle_cpuid(vm);
            break;
        case SVM_EXIT_MSR:
            count(&exits_msr);
            inject_gp(vm);
            break;
        case SVM_EXIT_VMMCALL: {
            uint64_t c = vm->gprs.rbx;

            count(&exits_vmmcall);
            svm_skip(vm, 3);
            if ((uint32_t)vmcb_get(vm, VMCB_RAX) != THINVMM_MAGIC ||
                (cpu && c)) {
                vmcb_set(vm, VMCB_RAX, ~0ull);
                break;
            }
            report(c, cpu);
            if (c == 0) {
                console_lock();
                printf("THINVMM-DONE status %lu\n", vm->gprs.rcx);
                return (int)vm->gprs.rcx;
            }
            checkpoint("vmmcall-%lu", c);
            vmcb_set(vm, VMCB_RAX, 0);
            break;
        }
        case SVM_EXIT_VMRUN:
            count(&exits_other);
            vmcb_set(vm, VMCB_EVENTINJ,
                     EXC_UD | SVM_EVTINJ_TYPE_EXCP | SVM_EVTINJ_V);
            break;
        default:
            count(&exits_other);
            console_lock();
            printf("\nTHINVMM-EXIT %s on vCPU %u\n", svm_exit_name(code),
                   cpu);
            svm_report_exit(vm);
            return 0x70;
        }
    }
}

/* The VMCBs of all vCPUs (see setup_vm()). */
void setup_vcpus(uint64_t entry, uint64_t boot_cr3)
{
    for (unsigned cpu = 0; cpu < ncpus; cpu++) {
        setup_vm(&vms[cpu], entry, boot_cr3);
    }
}

/*
 * An AP: SVM and this CPU's VMM segment, then wait at the mailbox until
 * the guest wakes this vCPU, and run it from the wake-up vector.
 */
static void ap_main(void *arg)
{
    unsigned cpu = (unsigned)(uintptr_t)arg;
    struct svm_vm *vm = &vms[cpu];
    uint8_t *mb = gptr(GPA_MAILBOX);
    volatile uint16_t *command = (volatile uint16_t *)(mb + MAILBOX_COMMAND);

    svm_enable_with(ap_hsave[cpu]);
    if (use_segment) {
        arm_vmm_segment();
    }
    ap_waiting[cpu] = true;
    for (;;) {
        if (__atomic_load_n(command, __ATOMIC_ACQUIRE) == MAILBOX_WAKEUP &&
            rd32(mb, MAILBOX_APIC_ID) == cpu) {
            break;
        }
        cpu_relax();
    }
    vmcb_set(vm, VMCB_RIP, rd32(mb, MAILBOX_WAKEUP_VECTOR) |
             (uint64_t)rd32(mb, MAILBOX_WAKEUP_VECTOR + 4) << 32);
    __atomic_store_n(command, 0, __ATOMIC_RELEASE);     /* acknowledged */
    console_lock();
    printf("THINVMM: vCPU %u woken at 0x%lx\n", cpu, vmcb_get(vm, VMCB_RIP));
    console_unlock();
    guest_exit(run_vcpu(cpu));
}

/* Starts the APs, each waiting at the mailbox with its VMM segment. */
void start_aps(void)
{
    for (unsigned cpu = 1; cpu < ncpus; cpu++) {
        ap_hsave[cpu] = page_alloc();
        if (!smp_start_ap(cpu, ap_main, (void *)(uintptr_t)cpu)) {
            panic("AP %u did not start", cpu);
        }
        while (!ap_waiting[cpu]) {
            cpu_relax();
        }
    }
}
