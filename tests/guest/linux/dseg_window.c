/*
 * dseg-window: mark the start or the end of a counter window from a shell
 * script, around a command that is not written for libdseg.
 *
 * Usage: dseg-window MARK
 *   writes MARK (a positive 32-bit number) to the isa-dseg-window device
 *   (docs/specs/direct-segments.rst, "Measurement windows"); the VM stops
 *   until a QMP client resumes it.  Needs root (ioperm).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libdseg.h"

int main(int argc, char **argv)
{
    char *end;
    unsigned long mark;

    if (argc != 2) {
        fprintf(stderr, "usage: dseg-window MARK\n");
        return 2;
    }
    errno = 0;
    mark = strtoul(argv[1], &end, 0);
    if (errno || *end || !mark || mark > 0xffffffffUL) {
        fprintf(stderr, "dseg-window: bad mark '%s'\n", argv[1]);
        return 2;
    }
    if (dseg_window_mark((uint32_t)mark)) {
        fprintf(stderr, "dseg-window: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
