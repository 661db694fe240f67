/*
 * A window mark is exact for the vCPU that writes it, even with an
 * interrupt pending (docs/specs/direct-segments.rst, "Measurement
 * windows").
 *
 * The guest closes two windows of the same code: a CR3 write (which
 * empties the TLB), STI, and the OUT of the closing mark, which STI's
 * interrupt shadow covers.  Before the second, it sends itself a fixed
 * interrupt while IF is clear, so that the interrupt is taken right after
 * the OUT.  Its delivery (the IDT read and the push on the stack, each a
 * TLB miss after the CR3 write) belongs to the next window:
 * test_dseg_window.py checks that both windows count exactly the same.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"
#include "dseg.h"
#include "smp.h"
#include "tap.h"

#define ROUNDS          2               /* without, then with the interrupt */

int guest_main(const char *cmdline)
{
    (void)cmdline;
    self_irq_init();
    for (uint32_t round = 0; round < ROUNDS; round++) {
        bool irq = round == 1;

        if (irq) {
            self_irq_send();
        }
        outl(DSEG_WINDOW_PORT, 2 * round);          /* opens */
        asm volatile("mov %%cr3, %%rcx\n"
                     "mov %%rcx, %%cr3\n"
                     "sti\n"
                     "outl %%eax, %%dx\n"           /* closes */
                     "cli"
                     : : "a"(2 * round + 1), "d"(DSEG_WINDOW_PORT)
                     : "rcx", "memory");
        ok(self_irq_count == (irq ? 1 : 0), "round %u: %lu interrupts taken",
           round, self_irq_count);
    }
    return tap_done();
}
