/*
 * Smoke guest: prints a greeting and exits with the status given as
 * "status=N" on the command line (default 0).  With "fault=1" it executes
 * an undefined instruction instead, to check that exceptions are reported.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "libguest.h"

int guest_main(const char *cmdline)
{
    int status = cmdline_get_u64(cmdline, "status", 0);

    printf("qemu-dseg smoke guest: hello from long mode (cmdline '%s')\n",
           cmdline);
    if (cmdline_get_u64(cmdline, "fault", 0)) {
        asm volatile("ud2");
    }
    printf("exiting with status %d\n", status);
    return status;
}
