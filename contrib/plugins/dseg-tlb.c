/*
 * dseg-tlb: feed qemu-dseg's modelled translation hierarchy.
 *
 * The model, its counters and what invalidates it live in the emulator
 * (target/i386/dseg-tlb.c), where the CPU state, the direct-segment
 * registers and the architectural events are at hand.  This plugin only
 * instruments: every memory access and, per translation block, the fetch
 * of each code page it reads, passed to the emulator's entry points
 * (qemu_plugin_dseg_tlb_*).  Its arguments are the model's options:
 *
 *   -plugin contrib/plugins/libdseg-tlb.so,preset=zen,l2=2048x16:4k+2m
 *
 * See docs/devel/dseg-tlb-model.rst; query-dseg reports the counters.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <glib.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* x86's smallest page: a TB fetches from a new page where it crosses one. */
#define DSEG_TLB_PAGE_MASK  (~(uint64_t)0xfff)

static void dseg_tlb_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t start = qemu_plugin_tb_vaddr(tb);
    uint64_t page = start & DSEG_TLB_PAGE_MASK;
    size_t n = qemu_plugin_tb_n_insns(tb);

    qemu_plugin_register_vcpu_tb_exec_cb(tb, qemu_plugin_dseg_tlb_tb,
                                         QEMU_PLUGIN_CB_NO_REGS, NULL);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t end = qemu_plugin_insn_vaddr(insn) +
                       qemu_plugin_insn_size(insn) - 1;

        /*
         * x86 ends a TB at a page boundary, so only an instruction that
         * straddles one (its first) reaches the next page: its fetch of
         * that page, at its distance from the TB's start, which the TB
         * keeps wherever it runs (CF_PCREL).
         */
        if ((end & DSEG_TLB_PAGE_MASK) != page) {
            page = end & DSEG_TLB_PAGE_MASK;
            qemu_plugin_register_vcpu_insn_exec_cb(
                insn, qemu_plugin_dseg_tlb_page, QEMU_PLUGIN_CB_NO_REGS,
                (void *)(uintptr_t)(page - start));
        }
        qemu_plugin_register_vcpu_mem_cb(insn, qemu_plugin_dseg_tlb_mem,
                                         QEMU_PLUGIN_CB_NO_REGS,
                                         QEMU_PLUGIN_MEM_RW, NULL);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    g_autoptr(GString) options = g_string_new(NULL);
    g_autofree char *err = NULL;

    if (!info->system_emulation ||
        strcmp(info->target_name, "x86_64") != 0) {
        fprintf(stderr, "dseg-tlb: models x86_64 system emulation only "
                "(this is %s)\n", info->target_name);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        g_string_append_printf(options, "%s%s", i ? "," : "", argv[i]);
    }
    err = qemu_plugin_dseg_tlb_start(options->str);
    if (err) {
        fprintf(stderr, "dseg-tlb: %s\n", err);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, dseg_tlb_translate);
    return 0;
}
