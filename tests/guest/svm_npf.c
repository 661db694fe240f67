/*
 * Nested-page-fault conformance: the EXITINFO1/EXITINFO2 of every #NPF
 * that a reserved or must-be-zero bit of a long-mode nested entry causes,
 * at every level of the nested tables, on the walk of a guest page table's
 * gPA (GPT) and of the final gPA (GPA), for reads, writes and instruction
 * fetches, and the page-fault error code of a reserved bit natively.
 *
 * The rules checked (AMD APM vol. 2, "Page-Fault Error Code" and "Nested
 * Paging"): a reserved-bit fault reports P = 1 and RSVD = 1; nested
 * accesses are user accesses (U = 1); a guest page-table access is a
 * write (W = 1), never a fetch; I/D is set for an instruction fetch when
 * the host's EFER.NXE or CR4.SMEP is set (the nested walk's paging mode);
 * bits 51:MAXPHYADDR are reserved at every level, and bits 8:7 of PML4Es
 * (and PML5Es) must be zero; bit 8 of a non-leaf PDPE is ignored.
 *
 * The VM's test pages: X at gVA X_GVA maps to gPA X_GPA (512 GiB, nested
 * PML4E 1); Y at gVA Y_GVA is in low memory, but its last guest page table
 * sits at gPA YPT_GPA (513 GiB, another nested PDPE).  So a nested entry on
 * X_GPA's walk faults only X's final step, and one on YPT_GPA's walk only
 * Y's guest walk.  Both pages start with a RET.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "paging.h"
#include "svm.h"
#include "tap.h"

#define X_GVA           0x40000000ull
#define Y_GVA           0x40200000ull
#define X_GPA           0x8000000000ull
#define YPT_GPA         (X_GPA + PAGE_1G)
#define GPT_POOL_PAGES  64

#define RSVD_BIT        (1ull << 51)    /* above MAXPHYADDR */
#define BIT8            (1ull << 8)

/* EXITINFO1 of #NPF: the page-fault error code, then GPA/GPT. */
#define PF_P            (1ull << 0)
#define PF_W            (1ull << 1)
#define PF_U            (1ull << 2)
#define PF_RSVD         (1ull << 3)
#define PF_ID           (1ull << 4)

static struct svm_vm vm;
static struct pt npt, gpt;
static struct page_pool gpt_pool;
static uint64_t x_hpa, y_pa, ypt_hpa;

enum access { READ, WRITE, FETCH };
static const char *const access_name[] = { "read", "write", "fetch" };

/* The host's paging modes for the nested walk. */
enum host_mode { PLAIN, NXE, SMEP };
static const char *const host_mode_name[] = { "", ", host EFER.NXE",
                                              ", host CR4.SMEP" };

static uint64_t vm_read(uint64_t va)
{
    return read64(va + 8);
}

static uint64_t vm_write(uint64_t va)
{
    write64(va + 8, 1);
    return 0;
}

static uint64_t vm_fetch(uint64_t va)
{
    ((void (*)(void))(uintptr_t)va)();
    return 0;
}

static const svm_guest_fn access_fn[] = { vm_read, vm_write, vm_fetch };

static void setup(void)
{
    uint64_t *pde, pool = pages_alloc(GPT_POOL_PAGES, PAGE_4K);

    npt_init(&npt, 4);
    pool_init(&gpt_pool, pool, GPT_POOL_PAGES * PAGE_4K);
    npt_map_range(&npt, pool, pool, GPT_POOL_PAGES * PAGE_4K, PAGE_4K);
    pt_init(&gpt, 4, &gpt_pool, 0);
    svm_map_image(&gpt, &npt, PAGE_2M);

    x_hpa = page_alloc();
    pt_map(&gpt, X_GVA, X_GPA, PAGE_4K, PTE_RW);
    npt_map(&npt, X_GPA, x_hpa, PAGE_4K);

    y_pa = page_alloc();
    pt_map(&gpt, Y_GVA, y_pa, PAGE_4K, PTE_RW);
    npt_map(&npt, y_pa, y_pa, PAGE_4K);
    /* Move Y's page table to YPT_GPA. */
    ypt_hpa = page_alloc();
    pde = pt_entry(&gpt, Y_GVA, 2);
    memcpy((void *)(uintptr_t)ypt_hpa,
           (void *)(uintptr_t)(*pde & PTE_ADDR_MASK), PAGE_4K);
    *pde = YPT_GPA | PTE_P | PTE_RW | PTE_US | PTE_A;
    npt_map(&npt, YPT_GPA, ypt_hpa, PAGE_4K);

    *(volatile uint8_t *)(uintptr_t)x_hpa = 0xc3;       /* ret */
    *(volatile uint8_t *)(uintptr_t)y_pa = 0xc3;

    svm_enable();
    svm_vm_init(&vm);
    svm_set_cr3(&vm, &gpt);
    svm_set_npt(&vm, &npt);
}

/* Runs @access of @va in the VM with the host in @mode. */
static uint64_t run(enum access access, uint64_t va, enum host_mode mode)
{
    uint64_t efer = rdmsr(MSR_EFER), cr4 = read_cr4(), code;

    if (mode == NXE) {
        wrmsr(MSR_EFER, efer | EFER_NXE);
    } else if (mode == SMEP) {
        write_cr4(cr4 | CR4_SMEP);
    }
    svm_prepare_call(&vm, access_fn[access], va);
    code = svm_run(&vm);
    write_cr4(cr4);
    wrmsr(MSR_EFER, efer);
    return code;
}

/*
 * With @bit set in nested entry @entry, @access of @va in the VM must give
 * #NPF with @info1 and @info2.
 */
static void check_npf(const char *what, uint64_t *entry, uint64_t bit,
                      enum access access, uint64_t va, enum host_mode mode,
                      uint64_t info1, uint64_t info2)
{
    uint64_t saved = *entry, code, got1, got2;

    *entry |= bit;
    code = run(access, va, mode);
    *entry = saved;
    got1 = vmcb_get(&vm, VMCB_EXIT_INFO1);
    got2 = vmcb_get(&vm, VMCB_EXIT_INFO2);
    ok(code == SVM_EXIT_NPF && got1 == info1 && got2 == info2,
       "%s, %s%s: #NPF %#lx/%#lx, got exit %s %#lx/%#lx", what,
       access_name[access], host_mode_name[mode], info1, info2,
       svm_exit_name(code), got1, got2);
}

/* Reserved bits at every nested level, every access, both walks. */
static void check_reserved(void)
{
    char what[64];

    for (int level = 4; level >= 1; level--) {
        uint64_t *xe = pt_entry(&npt, X_GPA, level);
        uint64_t *ye = pt_entry(&npt, YPT_GPA, level);

        snprintf(what, sizeof(what), "bit 51 of the level-%d entry, GPA",
                 level);
        for (enum access a = READ; a <= FETCH; a++) {
            uint64_t info1 = PF_P | PF_RSVD | PF_U | SVM_NPF_GPA_FINAL |
                             (a == WRITE ? PF_W : 0);

            check_npf(what, xe, RSVD_BIT, a, X_GVA, PLAIN, info1,
                      X_GPA + (a == FETCH ? 0 : 8));
        }
        for (enum host_mode m = NXE; m <= SMEP; m++) {
            check_npf(what, xe, RSVD_BIT, FETCH, X_GVA, m,
                      PF_P | PF_RSVD | PF_U | PF_ID | SVM_NPF_GPA_FINAL,
                      X_GPA);
        }
        snprintf(what, sizeof(what), "bit 51 of the level-%d entry, GPT",
                 level);
        for (enum access a = READ; a <= FETCH; a++) {
            check_npf(what, ye, RSVD_BIT, a, Y_GVA, a == FETCH ? NXE : PLAIN,
                      PF_P | PF_RSVD | PF_U | PF_W | SVM_NPF_GPT,
                      YPT_GPA + ((Y_GVA >> 12) & 511) * 8);
        }
    }
}

/* Must-be-zero bits of a PML4E; bit 8 of a non-leaf PDPE is ignored. */
static void check_mbz(void)
{
    uint64_t *pml4e = pt_entry(&npt, X_GPA, 4);
    uint64_t *pdpe = pt_entry(&npt, X_GPA, 3);
    uint64_t saved = *pdpe, code;

    check_npf("bit 8 of the PML4E, GPA", pml4e, BIT8, READ, X_GVA, PLAIN,
              PF_P | PF_RSVD | PF_U | SVM_NPF_GPA_FINAL, X_GPA + 8);
    check_npf("bit 7 of the PML4E, GPA", pml4e, PTE_PS, WRITE, X_GVA, PLAIN,
              PF_P | PF_RSVD | PF_U | PF_W | SVM_NPF_GPA_FINAL, X_GPA + 8);
    check_npf("bit 8 of the PML4E, GPT", pt_entry(&npt, YPT_GPA, 4), BIT8,
              READ, Y_GVA, PLAIN, PF_P | PF_RSVD | PF_U | PF_W | SVM_NPF_GPT,
              YPT_GPA + ((Y_GVA >> 12) & 511) * 8);
    *pdpe |= BIT8;
    write64(x_hpa + 8, 0x1234);
    code = run(READ, X_GVA, PLAIN);
    *pdpe = saved;
    ok(code == SVM_EXIT_VMMCALL && vmcb_get(&vm, VMCB_RAX) == 0x1234,
       "bit 8 of a non-leaf PDPE is ignored: the read completes (exit %s)",
       svm_exit_name(code));
}

/* Natively, a reserved bit gives #PF with P = 1 and RSVD = 1. */
static void check_native(void)
{
    struct pt hpt;
    uint64_t va = 0x200000000ull, val, *pte;
    int vector;

    host_pt_init(&hpt);
    pt_map(&hpt, va, y_pa, PAGE_4K, PTE_RW);
    write_cr3(hpt.root);
    pte = pt_entry(&hpt, va, 1);
    *pte |= RSVD_BIT;
    invlpg(va);
    vector = read64_safe(va, &val);
    ok(vector == EXC_PF && trap_fixup_error_code == (PF_P | PF_RSVD),
       "native read, bit 51 of the PTE: #PF error code %#lx, got %d/%#lx",
       (uint64_t)(PF_P | PF_RSVD), vector, trap_fixup_error_code);
    *pte &= ~RSVD_BIT;
    invlpg(va);
}

int guest_main(const char *cmdline)
{
    (void)cmdline;
    if (!ok(svm_available() && svm_npt_available() &&
            cpu_phys_addr_bits() <= 51, "CPU has SVM and NPT, "
            "MAXPHYADDR %u", cpu_phys_addr_bits())) {
        return tap_done();
    }
    setup();
    check_reserved();
    check_mbz();
    check_native();
    return tap_done();
}
