/*
 * Walks racing accessed-bit updates (MTTCG): the counters of walks that
 * re-read entries or restart.
 *
 * The BSP reads each of PAGES 4 KiB pages at RACE_VA ROUNDS times, each
 * time after INVLPG, so every read is a native-walk fill of 4 entries.
 * Meanwhile the AP keeps clearing the accessed bit of every entry on the
 * walk of the page being read and toggling one of its software-available
 * bits.  A walk that
 * reads an entry with A clear sets A with a compare-and-exchange; when the
 * AP changed the entry in between, the exchange fails and the walk reads
 * the entry again (a PML4E, PDPE or PDE) or restarts from the root (a
 * PTE).  So some fills read more than 4 entries, but each completes one
 * 4-entry translation.
 *
 * Counter windows "race-N", N < windows= (test_dseg_race.py checks
 * query-dseg of the BSP, reset at "begin-race-N"): arch-refs counts 4 per 4 KiB fill and 2 per fill
 * of the image (1 GiB pages), guest-refs every read made.  The guest
 * checks that every read returned the page's own word.
 *
 * Command line: rounds= (default 64), windows= (default 1).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "paging.h"
#include "smp.h"
#include "tap.h"

#define RACE_VA         0x4000000000ull     /* outside the image's pages */
#define PAGES           64
#define PTE_AVL         (1ull << 9)         /* ignored by the walk */

static struct pt hpt;
static uint64_t race_pa;
static uint64_t *entries[PAGES + 3];        /* the PTEs, PDE, PDPE, PML4E */
static unsigned nr_entries;
static volatile bool ap_stop, ap_running;
static volatile unsigned race_page;          /* the page the BSP reads */
static volatile uint64_t ap_updates;

static void setup(void)
{
    race_pa = pages_alloc(PAGES, PAGE_4K);
    mem_fill_tags(race_pa, PAGES);
    host_pt_init(&hpt);
    pt_map_range(&hpt, RACE_VA, race_pa, PAGES * PAGE_4K, PAGE_4K, PTE_RW);
    for (unsigned i = 0; i < PAGES; i++) {
        entries[nr_entries++] = pt_entry(&hpt, RACE_VA + i * PAGE_4K, 1);
    }
    for (int level = 2; level <= hpt.levels; level++) {
        entries[nr_entries++] = pt_entry(&hpt, RACE_VA, level);
    }
    write_cr3(hpt.root);
}

/* Clears A of *@entry and toggles one of its AVL bits. */
static void disturb(uint64_t *entry)
{
    __atomic_fetch_and(entry, ~PTE_A, __ATOMIC_RELAXED);
    __atomic_fetch_xor(entry, PTE_AVL, __ATOMIC_RELAXED);
}

/*
 * The AP, until stopped: disturbs the entries on the walk of the page the
 * BSP reads now, its PTE and the three above it.
 */
static void ap_race(void *arg __attribute__((unused)))
{
    uint64_t n = 0;

    write_cr3(hpt.root);
    ap_running = true;
    while (!ap_stop) {
        disturb(entries[race_page]);
        for (unsigned i = PAGES; i < nr_entries; i++) {
            disturb(entries[i]);
        }
        n++;
    }
    ap_updates = n;
    ap_running = false;
}

int guest_main(const char *cmdline)
{
    unsigned rounds = cmdline_get_u64(cmdline, "rounds", 64);
    unsigned windows = cmdline_get_u64(cmdline, "windows", 1);
    unsigned bad = 0;

    if (paging_levels() != 4) {
        panic("dseg_race expects 4-level paging");
    }
    setup();
    if (!ok(smp_start_ap(1, ap_race, NULL), "AP started")) {
        return tap_done();
    }
    while (!ap_running) {
        cpu_relax();
    }
    for (unsigned w = 0; w < windows; w++) {
        checkpoint("begin-race-%u", w);
        for (unsigned r = 0; r < rounds; r++) {
            for (unsigned i = 0; i < PAGES; i++) {
                uint64_t va = RACE_VA + i * PAGE_4K + 8 * (r % 512);

                race_page = i;
                invlpg(va);
                bad += mem_origin(read64(va)) != race_pa + (va - RACE_VA);
            }
        }
        checkpoint("race-%u", w);
    }
    ap_stop = true;
    while (ap_running) {
        cpu_relax();
    }
    diag("%u windows of %u 4 KiB fills, %lu rounds of AP updates", windows,
         rounds * PAGES, ap_updates);
    ok(bad == 0, "every read returned its page's own word (%u wrong)", bad);
    ok(ap_updates > 0, "the AP raced the walks");
    return tap_done();
}
