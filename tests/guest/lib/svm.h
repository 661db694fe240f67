/*
 * qemu-dseg test guests: a minimal AMD SVM hypervisor.
 *
 * The host runs nested guests ("VMs") in 64-bit long mode.  A VM shares
 * the test image: it executes the image's functions at their link
 * addresses, so its guest page tables and nested page tables must map the
 * image region [0, SVM_IMAGE_REGION) one-to-one (svm_map_image()); it also
 * uses the image's GDT and IDT, so exceptions that the VMCB does not
 * intercept reach the same handlers as in the host (NMIs return, fixups
 * work).  The hypervisor emulates COM1 output for its VMs, so they can
 * printf() and report TAP results.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SVM_H
#define SVM_H

#include "libguest.h"
#include "paging.h"

/* What every VM maps one-to-one: the image, its stacks and low memory. */
#define SVM_IMAGE_REGION        PAGE_POOL_START

#define MSR_VM_HSAVE_PA         0xc0010117

/* VMCB control area (offsets from the start of the VMCB). */
#define VMCB_INTERCEPT_EXC      0x008
#define VMCB_INTERCEPT          0x00c   /* 64 bits: SVM_INTERCEPT_* */
#define VMCB_IOPM_BASE          0x040
#define VMCB_MSRPM_BASE         0x048
#define VMCB_ASID               0x058
#define VMCB_TLB_CONTROL        0x05c   /* 8 bits: SVM_TLB_CONTROL_* */
#define VMCB_INTR_CTRL          0x060   /* V_TPR, V_IRQ, V_INTR_MASKING... */
#define VMCB_EXIT_CODE          0x070
#define VMCB_EXIT_INFO1         0x078
#define VMCB_EXIT_INFO2         0x080
#define VMCB_NP_ENABLE          0x090
#define VMCB_EVENTINJ           0x0a8   /* SVM_EVTINJ_* */
#define VMCB_N_CR3              0x0b0
/* VMCB state save area. */
#define VMCB_ES                 0x400   /* segments: 16 bytes each */
#define VMCB_CS                 0x410
#define VMCB_SS                 0x420
#define VMCB_DS                 0x430
#define VMCB_FS                 0x440
#define VMCB_GS                 0x450
#define VMCB_GDTR               0x460
#define VMCB_LDTR               0x470
#define VMCB_IDTR               0x480
#define VMCB_TR                 0x490
#define VMCB_EFER               0x4d0
#define VMCB_CR4                0x548
#define VMCB_CR3                0x550
#define VMCB_CR0                0x558
#define VMCB_DR7                0x560
#define VMCB_DR6                0x568
#define VMCB_RFLAGS             0x570
#define VMCB_RIP                0x578
#define VMCB_RSP                0x5d8
#define VMCB_RAX                0x5f8
#define VMCB_G_PAT              0x668

/* Attributes of a VMCB segment (vmcb_set_seg()). */
#define VMCB_CS_ATTR_LONG       0xa9b   /* G, L, P, code exec/read, acc. */
#define VMCB_CS_ATTR_32         0xc9b   /* G, D/B, P, code exec/read, acc. */
#define VMCB_DS_ATTR            0xc93   /* G, D/B, P, data r/w, accessed */
#define VMCB_LDTR_ATTR          0x082   /* P, LDT */
#define VMCB_TR_ATTR            0x08b   /* P, busy TSS */

/* Bits of the 64-bit intercept vector at VMCB_INTERCEPT. */
#define SVM_INTERCEPT_CPUID     (1ull << 18)
#define SVM_INTERCEPT_HLT       (1ull << 24)
#define SVM_INTERCEPT_IOIO      (1ull << 27)
#define SVM_INTERCEPT_MSR       (1ull << 28)
#define SVM_INTERCEPT_SHUTDOWN  (1ull << 31)
#define SVM_INTERCEPT_VMRUN     (1ull << 32)
#define SVM_INTERCEPT_VMMCALL   (1ull << 33)

/* TLB_CONTROL values (AMD APM vol. 2, 15.16.1). */
#define SVM_TLB_CONTROL_NONE        0
#define SVM_TLB_CONTROL_FLUSH_ALL   1
#define SVM_TLB_CONTROL_FLUSH_ASID  3

/* Exit codes. */
#define SVM_EXIT_EXCP(v)        (0x40 + (v))
#define SVM_EXIT_NMI            0x61
#define SVM_EXIT_CPUID          0x72
#define SVM_EXIT_HLT            0x78
#define SVM_EXIT_IOIO           0x7b
#define SVM_EXIT_MSR            0x7c
#define SVM_EXIT_SHUTDOWN       0x7f
#define SVM_EXIT_VMRUN          0x80
#define SVM_EXIT_VMMCALL        0x81
#define SVM_EXIT_NPF            0x400
#define SVM_EXIT_INVALID        (~0ull)

/* Event injection (VMCB_EVENTINJ): vector | type | flags. */
#define SVM_EVTINJ_TYPE_EXCP    (3u << 8)
#define SVM_EVTINJ_EV           (1u << 11)  /* error code (bits 63:32) valid */
#define SVM_EVTINJ_V            (1u << 31)

/* EXITINFO1 of #NPF: page-fault error code bits plus these. */
#define SVM_NPF_P               (1ull << 0)
#define SVM_NPF_RW              (1ull << 1)
#define SVM_NPF_GPA_FINAL       (1ull << 32)
#define SVM_NPF_GPT             (1ull << 33)

/* EXITINFO1 of an IOIO exit. */
#define SVM_IOIO_IN             (1u << 0)
#define SVM_IOIO_SZ8            (1u << 4)
#define SVM_IOIO_PORT(info)     ((uint16_t)((info) >> 16))

/* Guest general-purpose registers that VMRUN does not keep in the VMCB. */
struct svm_gprs {
    uint64_t rbx, rcx, rdx, rsi, rdi, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
};

struct svm_vm {
    uint64_t vmcb;                      /* physical address (= pointer) */
    uint64_t iopm;
    uint64_t msrpm;
    struct svm_gprs gprs;
};

/* A VM function: runs in the VM, its result is returned to the host. */
typedef uint64_t (*svm_guest_fn)(uint64_t arg);

static inline void *vmcb_ptr(const struct svm_vm *vm, unsigned off)
{
    return (void *)(uintptr_t)(vm->vmcb + off);
}

/* volatile: VMRUN and #VMEXIT access the VMCB behind the compiler's back. */
static inline uint64_t vmcb_get(const struct svm_vm *vm, unsigned off)
{
    return *(volatile uint64_t *)vmcb_ptr(vm, off);
}

static inline void vmcb_set(struct svm_vm *vm, unsigned off, uint64_t v)
{
    *(volatile uint64_t *)vmcb_ptr(vm, off) = v;
}

/* CPUID: SVM, and nested paging. */
bool svm_available(void);
bool svm_npt_available(void);

/* Sets EFER.SVME and VM_HSAVE_PA (once). */
void svm_enable(void);
/* The same on a CPU that must not allocate (an AP): host save area given. */
void svm_enable_with(uint64_t hsave_pa);

/*
 * New VM: VMCB, IOPM (every port intercepted) and MSRPM (VM_HSAVE_PA
 * intercepted, other MSRs passed through); intercepts VMRUN, VMMCALL, HLT,
 * shutdown, I/O, MSRs (per the MSRPM) and every exception; ASID 1; 64-bit
 * long mode with the host's CR0, CR4, EFER, GDT and IDT, no nested paging,
 * CR3 0 (see svm_set_cr3()), interrupts off.
 */
void svm_vm_init(struct svm_vm *vm);

/*
 * Enables SVM and sets @vm up (svm_vm_init()) on the host's tables @hpt,
 * under nested tables @npt, made here, that map the low 4 GiB one to one
 * with 1 GiB pages: a VM in which linear, guest-physical and host-physical
 * addresses of low memory agree.  The caller may map more into @npt.
 */
void svm_vm_init_identity(struct svm_vm *vm, const struct pt *hpt,
                          struct pt *npt);

/*
 * The usual set-up of a test's VM: new host tables @hpt (host_pt_init()),
 * loaded, and @vm on them under @npt (svm_vm_init_identity()).  The caller
 * may map more into @hpt: the VM's guest tables are the same.
 */
void svm_vm_init_host(struct svm_vm *vm, struct pt *hpt, struct pt *npt);

/*
 * The TAP check that a VM test needs: the CPU has SVM and nested paging,
 * and DSEG too if @dseg.  False: the test has nothing more to run.
 */
bool ok_svm_cpu(bool dseg);

/* Guest page tables; also sets guest CR4.LA57 by their depth. */
void svm_set_cr3(struct svm_vm *vm, const struct pt *gpt);
/* Nested paging with @npt (its depth must be the host's); NULL: off. */
void svm_set_npt(struct svm_vm *vm, const struct pt *npt);

/* Segment register @off (VMCB_ES ... VMCB_TR) of the guest state. */
void vmcb_set_seg(struct svm_vm *vm, unsigned off, uint16_t sel,
                  uint16_t attr, uint32_t limit, uint64_t base);

void svm_set_intercept(struct svm_vm *vm, uint64_t bits, bool on);
void svm_set_exception_intercepts(struct svm_vm *vm, uint32_t vectors);
void svm_intercept_msr(struct svm_vm *vm, uint32_t msr, bool rd, bool wr);

/*
 * Maps the image region one-to-one in @gpt (2 MiB pages) and, when @npt is
 * not NULL, in @npt with pages of @npt_page_size.
 */
void svm_map_image(struct pt *gpt, struct pt *npt, uint64_t npt_page_size);

/* One VMRUN; returns the exit code (also in the VMCB). */
uint64_t svm_run(struct svm_vm *vm);

/*
 * VMRUN until an exit other than COM1 I/O (which is emulated) and return
 * it.  A VM writing isa-debug-exit ends the test with the VM's status.
 */
uint64_t svm_run_loop(struct svm_vm *vm);

/* Sets RIP to call @fn(@arg) on a fresh stack, then VMMCALL. */
void svm_prepare_call(struct svm_vm *vm, svm_guest_fn fn, uint64_t arg);

/*
 * Runs @fn(@arg) in the VM: true and its result in @ret when it ends with
 * the VMMCALL of svm_prepare_call(); else reports the exit and is false.
 */
bool svm_call(struct svm_vm *vm, svm_guest_fn fn, uint64_t arg,
              uint64_t *ret);

/* Advances the guest RIP past an intercepted instruction of @len bytes. */
void svm_skip(struct svm_vm *vm, unsigned len);

/* Prints the last exit as a "# " diagnostic line. */
void svm_report_exit(const struct svm_vm *vm);
const char *svm_exit_name(uint64_t code);

/* Internal to svm.c: VMRUN (svm_entry.S) and the VM entry trampoline. */
void svm_vmrun(struct svm_gprs *gprs, uint64_t vmcb_pa);
extern const char svm_guest_entry[], svm_guest_return[];

#endif /* SVM_H */
