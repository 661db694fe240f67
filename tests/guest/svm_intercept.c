/*
 * SVM intercepts as AMD specifies them (AMD64 APM vol. 2, "Exception
 * Intercepts" and "Software Interrupt Intercept"), where upstream QEMU
 * 10.0 differs.
 *
 * INT3 raises #BP: the VM's INT3 exits to the host as an exception
 * #VMEXIT (exit code 0x43, RIP at the INT3) when the #BP intercept is
 * set, whether or not the INTn intercept is.  INTn, also INT 3 (CD 03),
 * is the INTn intercept's (exit code 0x75, RIP at the INTn)
 * (patches/0002-i386-svm-int3-intercept.patch).
 *
 * LMSW treats the selective CR0 write intercept as a non-selective one:
 * it exits (0x65, RIP at the LMSW) even when it writes the value CR0
 * holds, where MOV to CR0 of that value does not exit
 * (patches/0003-i386-svm-lmsw-intercept.patch).
 *
 * A CR read intercept is the register's own: MOV from CR3 exits (0x03,
 * RIP at the MOV) with only the CR3 read intercept set, and runs with only
 * the CR0 read intercept set (patches/0004-i386-svm-cr-read-intercept.patch).
 *
 * Physical interrupts obey the VMCB's masking rules ("Interrupt Masking
 * in EFLAGS"): a fixed self-IPI sent while the host has IF clear stays
 * pending into the VM.  Without V_INTR_MASKING the VM's IF masks it: it
 * reaches the VM (INTR not intercepted) or exits (INTR intercepted, exit
 * 0x60) only after the POPF that sets IF.  With V_INTR_MASKING the host's
 * IF at VMRUN masks it: no exit while the VM has IF set if the host's was
 * clear, an exit before the VM's first instruction if it was set, though
 * the VM's is clear.
 *
 * LBR virtualization is not offered (CPUID Fn8000_000A EDX[1] clear), and
 * a VMCB that enables it runs as one that does not.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "paging.h"
#include "smp.h"
#include "svm.h"
#include "tap.h"

#define VMCB_INTERCEPT_CR       0x000   /* CR reads: bits 0-15 */
#define SVM_INTERCEPT_READ_CR(n) (1u << (n))
#define SVM_INTERCEPT_INTR      (1ull << 0)
#define SVM_INTERCEPT_SEL_CR0   (1ull << 5)
#define SVM_INTERCEPT_INTN      (1ull << 21)
#define SVM_EXIT_READ_CR(n)     (0x00 + (n))
#define SVM_EXIT_INTR           0x60
#define SVM_EXIT_CR0_SEL_WRITE  0x65
#define SVM_EXIT_SWINT          0x75

#define VMCB_LBR_CTL            0x0b8
#define LBR_CTL_ENABLE          (1ull << 0)
#define CPUID_SVM_LBRV          (1u << 1)       /* Fn8000_000A EDX */
#define V_INTR_MASKING          (1ull << 24)    /* in VMCB_INTR_CTRL */
#define RFLAGS_IF               (1ull << 9)

static struct svm_vm vm;
static struct pt hpt, npt;

/* VM functions, each one instruction at a label the host can name. */
extern const char int3_at[], int_3_at[], int_80_at[], lmsw_at[];
extern const char read_cr3_at[], irq_window_at[];

__asm__(
    "   .text\n"
    "vm_int3:\n"
    "int3_at:\n"
    "   int3\n"
    "   ret\n"
    "vm_int_3:\n"
    "int_3_at:\n"
    "   .byte 0xcd, 0x03\n"             /* INT 3, the two-byte form */
    "   ret\n"
    "vm_int_80:\n"
    "int_80_at:\n"
    "   int $0x80\n"
    "   ret\n"
    "vm_lmsw:\n"                        /* CR0's own value */
    "   mov %cr0, %rax\n"
    "lmsw_at:\n"
    "   lmsw %ax\n"
    "   ret\n"
    "vm_mov_cr0:\n"
    "   mov %cr0, %rax\n"
    "   mov %rax, %cr0\n"
    "   ret\n"
    "vm_read_cr3:\n"
    "read_cr3_at:\n"
    "   mov %cr3, %rax\n"
    "   ret\n"
    /* self_irq_count before (bits 15:8) and after (7:0) the POPF that sets
     * IF. */
    "vm_irq_window:\n"
    "   nop; nop; nop; nop\n"
    "   movzbl self_irq_count(%rip), %eax\n"
    "   shl $8, %eax\n"
    "   pushfq\n"
    "   orq $0x200, (%rsp)\n"
    "   popfq\n"
    "irq_window_at:\n"
    "   nop\n"
    "   movzbl self_irq_count(%rip), %ecx\n"
    "   or %ecx, %eax\n"
    "   cli\n"
    "   ret\n"
    "vm_irq_count:\n"
    "   nop; nop; nop; nop\n"
    "   mov self_irq_count(%rip), %rax\n"
    "   ret\n");
uint64_t vm_int3(uint64_t arg);
uint64_t vm_int_3(uint64_t arg);
uint64_t vm_int_80(uint64_t arg);
uint64_t vm_lmsw(uint64_t arg);
uint64_t vm_mov_cr0(uint64_t arg);
uint64_t vm_read_cr3(uint64_t arg);
uint64_t vm_irq_window(uint64_t arg);
uint64_t vm_irq_count(uint64_t arg);

/*
 * Runs @fn in the VM with intercepts @on (of those below), CR read
 * intercepts @cr_reads, interrupt control @int_ctl and RFLAGS.IF @vm_if;
 * the exit code.
 */
static uint64_t run(svm_guest_fn fn, uint64_t on, uint16_t cr_reads,
                    uint64_t int_ctl, bool vm_if)
{
    const uint64_t ours = SVM_INTERCEPT_INTN | SVM_INTERCEPT_SEL_CR0 |
                          SVM_INTERCEPT_INTR;

    svm_set_intercept(&vm, ours, false);
    svm_set_intercept(&vm, on & ours, true);
    *(volatile uint16_t *)vmcb_ptr(&vm, VMCB_INTERCEPT_CR) = cr_reads;
    vmcb_set(&vm, VMCB_INTR_CTRL, int_ctl);
    svm_prepare_call(&vm, fn, 0);
    if (vm_if) {
        vmcb_set(&vm, VMCB_RFLAGS, vmcb_get(&vm, VMCB_RFLAGS) | RFLAGS_IF);
    }
    return svm_run_loop(&vm);
}

/* True if the VM exited with @want at @at; else reports the exit. */
static bool exited(const char *what, uint64_t code, uint64_t want,
                   const void *at)
{
    uint64_t rip = vmcb_get(&vm, VMCB_RIP);

    if (!ok(code == want && rip == (uint64_t)(uintptr_t)at,
            "%s: exit 0x%lx at 0x%lx (want 0x%lx at %p)", what, code, rip,
            want, at)) {
        svm_report_exit(&vm);
        return false;
    }
    return true;
}

static void check_cr_read(const char *what, svm_guest_fn fn,
                          uint16_t cr_reads, uint64_t want, const char *at)
{
    exited(what, run(fn, 0, cr_reads, 0, false), want, at);
}

static void check_interrupt_masking(void)
{
    uint64_t code, n;

    self_irq_init();

    self_irq_send();
    n = self_irq_count;
    code = run(vm_irq_window, 0, 0, 0, false);
    if (exited("pending across CLI, INTR not intercepted, no "
               "V_INTR_MASKING: the VM runs to its end", code,
               SVM_EXIT_VMMCALL, svm_guest_return)) {
        ok(vmcb_get(&vm, VMCB_RAX) == ((n << 8) | (n + 1)) &&
           self_irq_rip == (uint64_t)(uintptr_t)irq_window_at,
           "it reaches the VM at its POPF that sets IF, not before: "
           "count %lu -> 0x%lx, at 0x%lx (want 0x%lx at %p)", n,
           vmcb_get(&vm, VMCB_RAX), self_irq_rip, (n << 8) | (n + 1),
           irq_window_at);
    }

    self_irq_send();
    n = self_irq_count;
    code = run(vm_irq_window, SVM_INTERCEPT_INTR, 0, 0, false);
    exited("pending across CLI, INTR intercepted, no V_INTR_MASKING: "
           "exit at the POPF that sets IF", code, SVM_EXIT_INTR,
           irq_window_at);
    ok(self_irq_count == n, "the VM took no interrupt (%lu, want %lu)",
       self_irq_count, n);
    asm volatile("sti; nop; cli" ::: "memory");
    ok(self_irq_count == n + 1, "the host takes it at STI (%lu, want %lu)",
       self_irq_count, n + 1);

    self_irq_send();
    n = self_irq_count;
    code = run(vm_irq_count, SVM_INTERCEPT_INTR, 0, V_INTR_MASKING, true);
    if (exited("V_INTR_MASKING, host IF clear at VMRUN, VM IF set: no "
               "exit", code, SVM_EXIT_VMMCALL, svm_guest_return)) {
        ok(vmcb_get(&vm, VMCB_RAX) == n, "the VM took no interrupt "
           "(%lu, want %lu)", vmcb_get(&vm, VMCB_RAX), n);
    }

    /* Still pending: host IF set under GIF clear, as hypervisors run. */
    asm volatile("clgi; sti" ::: "memory");
    code = run(vm_irq_count, SVM_INTERCEPT_INTR, 0, V_INTR_MASKING, false);
    asm volatile("cli" ::: "memory");
    exited("V_INTR_MASKING, host IF set at VMRUN, VM IF clear: exit "
           "before the VM's first instruction", code, SVM_EXIT_INTR,
           svm_guest_entry);
    ok(self_irq_count == n + 1, "the host takes it once GIF is set (%lu, want "
       "%lu)", self_irq_count, n + 1);
}

static void check_no_lbrv(void)
{
    uint32_t a, b, c, d;

    cpuid(0x8000000a, 0, &a, &b, &c, &d);
    ok(!(d & CPUID_SVM_LBRV), "LBR virtualization not advertised (EDX "
       "0x%x)", d);
    vmcb_set(&vm, VMCB_LBR_CTL, LBR_CTL_ENABLE);
    exited("LBR_CTL enable set: the VM runs as without it",
           run(vm_irq_count, 0, 0, 0, false), SVM_EXIT_VMMCALL,
           svm_guest_return);
    vmcb_set(&vm, VMCB_LBR_CTL, 0);
}

static void check(const char *what, svm_guest_fn fn, uint64_t on,
                  uint64_t want, const char *at)
{
    exited(what, run(fn, on, 0, 0, false), want, at);
}

int guest_main(const char *cmdline)
{
    (void)cmdline;
    if (!ok_svm_cpu(false)) {
        return tap_done();
    }
    svm_vm_init_host(&vm, &hpt, &npt);
    /* Every exception intercepted: svm_vm_init()'s default. */
    check("INT3, INTn intercept on", vm_int3, SVM_INTERCEPT_INTN,
          SVM_EXIT_EXCP(3), int3_at);
    check("INT 3 (CD 03), INTn intercept on", vm_int_3, SVM_INTERCEPT_INTN,
          SVM_EXIT_SWINT, int_3_at);
    check("INT 0x80, INTn intercept on", vm_int_80, SVM_INTERCEPT_INTN,
          SVM_EXIT_SWINT, int_80_at);
    check("LMSW of CR0's own value, selective CR0 intercept on", vm_lmsw,
          SVM_INTERCEPT_SEL_CR0, SVM_EXIT_CR0_SEL_WRITE, lmsw_at);
    check("MOV to CR0 of its own value, selective CR0 intercept on",
          vm_mov_cr0, SVM_INTERCEPT_SEL_CR0, SVM_EXIT_VMMCALL,
          svm_guest_return);
    check("INT3, INTn intercept off", vm_int3, 0, SVM_EXIT_EXCP(3),
          int3_at);
    check_cr_read("MOV from CR3, CR3 read intercept on", vm_read_cr3,
                  SVM_INTERCEPT_READ_CR(3), SVM_EXIT_READ_CR(3), read_cr3_at);
    check_cr_read("MOV from CR3, only the CR0 read intercept on",
                  vm_read_cr3, SVM_INTERCEPT_READ_CR(0), SVM_EXIT_VMMCALL,
                  svm_guest_return);
    check_interrupt_masking();
    check_no_lbrv();
    return tap_done();
}
