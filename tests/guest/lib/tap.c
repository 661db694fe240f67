/*
 * qemu-dseg test guests: TAP output.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "tap.h"

static int tap_planned = -1;
static int tap_count;
static int tap_failed;

void tap_plan(int count)
{
    tap_planned = count;
    printf("1..%d\n", count);
}

static bool vok(bool cond, const char *fmt, va_list ap)
{
    char desc[256];

    vsnprintf(desc, sizeof(desc), fmt, ap);
    tap_count++;
    if (!cond) {
        tap_failed++;
    }
    printf("%sok %d - %s\n", cond ? "" : "not ", tap_count, desc);
    return cond;
}

bool ok(bool cond, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vok(cond, fmt, ap);
    va_end(ap);
    return cond;
}

bool ok_eq(uint64_t got, uint64_t want, const char *fmt, ...)
{
    bool cond = got == want;
    va_list ap;

    va_start(ap, fmt);
    vok(cond, fmt, ap);
    va_end(ap);
    if (!cond) {
        diag("got 0x%lx, want 0x%lx", got, want);
    }
    return cond;
}

void diag(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint_line("# ", fmt, ap);
    va_end(ap);
}

int tap_done(void)
{
    int status = tap_failed;

    if (tap_planned < 0) {
        printf("1..%d\n", tap_count);
    } else if (tap_planned != tap_count) {
        diag("planned %d checks but ran %d", tap_planned, tap_count);
        status++;
    }
    return status < GUEST_EXIT_FAULT ? status : GUEST_EXIT_FAULT - 1;
}
