/*
 * qemu-dseg test guests: a minimal AMD SVM hypervisor.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "svm.h"
#include "dseg.h"
#include "tap.h"

#define IOPM_PAGES              3
#define MSRPM_PAGES             2
#define GUEST_CS                0x08    /* selectors of boot.S's GDT */
#define GUEST_DS                0x10
#define DR6_INIT                0xffff0ff0
#define DR7_INIT                0x400
#define PAT_INIT                0x0007040600070406ull
#define RFLAGS_FIXED            0x2
#define LSR_IDLE                0x60    /* transmitter empty */

/* Stack of svm_prepare_call(), in the image region every VM maps. */
static uint8_t svm_stack[16384] __attribute__((aligned(16)));

struct desc_ptr {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

bool svm_available(void)
{
    uint32_t a, b, c, d;

    cpuid(0x80000001, 0, &a, &b, &c, &d);
    return c & (1u << 2);
}

bool svm_npt_available(void)
{
    uint32_t a, b, c, d;

    cpuid(0x8000000a, 0, &a, &b, &c, &d);
    return d & 1;
}

void svm_enable(void)
{
    if (!(rdmsr(MSR_EFER) & EFER_SVME)) {
        svm_enable_with(page_alloc());
    }
}

void svm_enable_with(uint64_t hsave_pa)
{
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    wrmsr(MSR_VM_HSAVE_PA, hsave_pa);
}

void vmcb_set_seg(struct svm_vm *vm, unsigned off, uint16_t sel,
                  uint16_t attr, uint32_t limit, uint64_t base)
{
    uint8_t *p = vmcb_ptr(vm, off);

    *(uint16_t *)p = sel;
    *(uint16_t *)(p + 2) = attr;
    *(uint32_t *)(p + 4) = limit;
    *(uint64_t *)(p + 8) = base;
}

/* 64-bit long mode at CPL 0 with the host's control state. */
static void svm_init_guest_state(struct svm_vm *vm)
{
    struct desc_ptr gdtr, idtr;

    asm volatile("sgdt %0; sidt %1" : "=m"(gdtr), "=m"(idtr));
    vmcb_set_seg(vm, VMCB_CS, GUEST_CS, VMCB_CS_ATTR_LONG, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_DS, GUEST_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_ES, GUEST_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_SS, GUEST_DS, VMCB_DS_ATTR, 0xffffffff, 0);
    vmcb_set_seg(vm, VMCB_GDTR, 0, 0, gdtr.limit, gdtr.base);
    vmcb_set_seg(vm, VMCB_IDTR, 0, 0, idtr.limit, idtr.base);
    vmcb_set(vm, VMCB_EFER, rdmsr(MSR_EFER));
    vmcb_set(vm, VMCB_CR0, read_cr0());
    vmcb_set(vm, VMCB_CR4, read_cr4() & ~(uint64_t)CR4_LA57);
    vmcb_set(vm, VMCB_DR6, DR6_INIT);
    vmcb_set(vm, VMCB_DR7, DR7_INIT);
    vmcb_set(vm, VMCB_RFLAGS, RFLAGS_FIXED);
    vmcb_set(vm, VMCB_G_PAT, PAT_INIT);
}

void svm_vm_init(struct svm_vm *vm)
{
    memset(vm, 0, sizeof(*vm));
    vm->vmcb = page_alloc();
    vm->iopm = pages_alloc(IOPM_PAGES, PAGE_4K);
    vm->msrpm = pages_alloc(MSRPM_PAGES, PAGE_4K);
    memset((void *)(uintptr_t)vm->iopm, 0xff, IOPM_PAGES * PAGE_4K);
    vmcb_set(vm, VMCB_IOPM_BASE, vm->iopm);
    vmcb_set(vm, VMCB_MSRPM_BASE, vm->msrpm);
    svm_intercept_msr(vm, MSR_VM_HSAVE_PA, true, true);
    vmcb_set(vm, VMCB_INTERCEPT,
             SVM_INTERCEPT_VMRUN | SVM_INTERCEPT_VMMCALL |
             SVM_INTERCEPT_HLT | SVM_INTERCEPT_SHUTDOWN |
             SVM_INTERCEPT_IOIO | SVM_INTERCEPT_MSR);
    svm_set_exception_intercepts(vm, 0xffffffff);
    *(uint32_t *)vmcb_ptr(vm, VMCB_ASID) = 1;
    svm_init_guest_state(vm);
}

void svm_set_cr3(struct svm_vm *vm, const struct pt *gpt)
{
    uint64_t cr4 = vmcb_get(vm, VMCB_CR4) & ~(uint64_t)CR4_LA57;

    vmcb_set(vm, VMCB_CR3, gpt->root);
    vmcb_set(vm, VMCB_CR4, gpt->levels == 5 ? cr4 | CR4_LA57 : cr4);
}

void svm_set_npt(struct svm_vm *vm, const struct pt *npt)
{
    if (npt && npt->levels != paging_levels()) {
        panic("nested paging depth %d, host depth %d", npt->levels,
              paging_levels());
    }
    vmcb_set(vm, VMCB_NP_ENABLE, npt ? 1 : 0);
    vmcb_set(vm, VMCB_N_CR3, npt ? npt->root : 0);
}

void svm_vm_init_identity(struct svm_vm *vm, const struct pt *hpt,
                          struct pt *npt)
{
    npt_init(npt, paging_levels());
    npt_map_range(npt, 0, 0, 4ull << 30, PAGE_1G);
    svm_enable();
    svm_vm_init(vm);
    svm_set_cr3(vm, hpt);
    svm_set_npt(vm, npt);
}

void svm_vm_init_host(struct svm_vm *vm, struct pt *hpt, struct pt *npt)
{
    host_pt_init(hpt);
    write_cr3(hpt->root);
    svm_vm_init_identity(vm, hpt, npt);
}

bool ok_svm_cpu(bool dseg)
{
    return ok(svm_available() && svm_npt_available() &&
              (!dseg || dseg_available()),
              dseg ? "CPU has SVM, NPT, DSEG" : "CPU has SVM, NPT");
}

void svm_set_intercept(struct svm_vm *vm, uint64_t bits, bool on)
{
    uint64_t v = vmcb_get(vm, VMCB_INTERCEPT);

    vmcb_set(vm, VMCB_INTERCEPT, on ? v | bits : v & ~bits);
}

void svm_set_exception_intercepts(struct svm_vm *vm, uint32_t vectors)
{
    *(uint32_t *)vmcb_ptr(vm, VMCB_INTERCEPT_EXC) = vectors;
}

/* MSRPM: two bits (read, write) per MSR in three 8 Ki-MSR ranges. */
void svm_intercept_msr(struct svm_vm *vm, uint32_t msr, bool rd, bool wr)
{
    static const uint32_t range_base[] = { 0, 0xc0000000, 0xc0010000 };
    uint8_t *map = (uint8_t *)(uintptr_t)vm->msrpm;

    for (unsigned r = 0; r < 3; r++) {
        if (msr - range_base[r] < 0x2000) {
            unsigned bit = (r * 0x2000 + (msr - range_base[r])) * 2;
            uint8_t mask = 3 << (bit % 8);
            uint8_t set = (rd ? 1 : 0) | (wr ? 2 : 0);

            map[bit / 8] = (map[bit / 8] & ~mask) | (set << (bit % 8));
            return;
        }
    }
    panic("MSR 0x%x is outside the MSR permission map", msr);
}

void svm_map_image(struct pt *gpt, struct pt *npt, uint64_t npt_page_size)
{
    pt_map_range(gpt, 0, 0, SVM_IMAGE_REGION, PAGE_2M, PTE_RW);
    if (npt) {
        npt_map_range(npt, 0, 0, SVM_IMAGE_REGION, npt_page_size);
    }
}

uint64_t svm_run(struct svm_vm *vm)
{
    svm_vmrun(&vm->gprs, vm->vmcb);
    return vmcb_get(vm, VMCB_EXIT_CODE);
}

/* Emulates COM1 and isa-debug-exit accesses; false for other ports. */
static bool svm_emulate_io(struct svm_vm *vm)
{
    uint64_t info = vmcb_get(vm, VMCB_EXIT_INFO1);
    uint16_t port = SVM_IOIO_PORT(info);
    uint64_t rax = vmcb_get(vm, VMCB_RAX);

    if (info & SVM_IOIO_IN) {
        if (port != COM1_LSR_PORT || !(info & SVM_IOIO_SZ8)) {
            return false;
        }
        vmcb_set(vm, VMCB_RAX, (rax & ~0xffull) | LSR_IDLE);
    } else if (port == COM1_PORT) {
        serial_write_raw((char)rax);
    } else if (port == DEBUG_EXIT_PORT) {
        guest_exit((int)rax);
    } else {
        return false;
    }
    vmcb_set(vm, VMCB_RIP, vmcb_get(vm, VMCB_EXIT_INFO2));
    return true;
}

uint64_t svm_run_loop(struct svm_vm *vm)
{
    for (;;) {
        uint64_t code = svm_run(vm);

        if (code != SVM_EXIT_IOIO || !svm_emulate_io(vm)) {
            return code;
        }
    }
}

void svm_prepare_call(struct svm_vm *vm, svm_guest_fn fn, uint64_t arg)
{
    vmcb_set(vm, VMCB_RIP, (uint64_t)(uintptr_t)svm_guest_entry);
    vmcb_set(vm, VMCB_RSP, (uint64_t)(uintptr_t)(svm_stack +
                                                 sizeof(svm_stack)));
    vmcb_set(vm, VMCB_RFLAGS, RFLAGS_FIXED);
    vm->gprs.rbx = (uint64_t)(uintptr_t)fn;
    vm->gprs.rdi = arg;
}

bool svm_call(struct svm_vm *vm, svm_guest_fn fn, uint64_t arg,
              uint64_t *ret)
{
    uint64_t code;

    svm_prepare_call(vm, fn, arg);
    code = svm_run_loop(vm);
    if (code != SVM_EXIT_VMMCALL ||
        vmcb_get(vm, VMCB_RIP) != (uint64_t)(uintptr_t)svm_guest_return) {
        svm_report_exit(vm);
        return false;
    }
    *ret = vmcb_get(vm, VMCB_RAX);
    return true;
}

void svm_skip(struct svm_vm *vm, unsigned len)
{
    vmcb_set(vm, VMCB_RIP, vmcb_get(vm, VMCB_RIP) + len);
}

const char *svm_exit_name(uint64_t code)
{
    switch (code) {
    case SVM_EXIT_EXCP(0) ... SVM_EXIT_EXCP(31):
        return "exception";
    case SVM_EXIT_NMI:
        return "NMI";
    case SVM_EXIT_CPUID:
        return "CPUID";
    case SVM_EXIT_HLT:
        return "HLT";
    case SVM_EXIT_IOIO:
        return "IOIO";
    case SVM_EXIT_MSR:
        return "MSR";
    case SVM_EXIT_SHUTDOWN:
        return "shutdown";
    case SVM_EXIT_VMRUN:
        return "VMRUN";
    case SVM_EXIT_VMMCALL:
        return "VMMCALL";
    case SVM_EXIT_NPF:
        return "NPF";
    case SVM_EXIT_INVALID:
        return "INVALID";
    }
    return "other";
}

void svm_report_exit(const struct svm_vm *vm)
{
    uint64_t code = vmcb_get(vm, VMCB_EXIT_CODE);

    diag("#VMEXIT %s (0x%lx) exitinfo1 0x%lx exitinfo2 0x%lx rip 0x%lx",
         svm_exit_name(code), code, vmcb_get(vm, VMCB_EXIT_INFO1),
         vmcb_get(vm, VMCB_EXIT_INFO2), vmcb_get(vm, VMCB_RIP));
}
