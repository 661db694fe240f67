/*
 * qemu-dseg test guests: TAP (Test Anything Protocol) output on the console.
 *
 * A guest announces its plan, reports each check with ok() or ok_eq() and
 * returns tap_done() from guest_main(), so that its exit status is the
 * number of failed checks (0 when every check passed and the plan was met).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TAP_H
#define TAP_H

#include "libguest.h"

/* Prints the plan "1..N"; optional (tap_done() prints a trailing plan). */
void tap_plan(int count);

/* Reports check "ok N - description"; returns @cond. */
bool ok(bool cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ok(got == want), with both values shown on a failure. */
bool ok_eq(uint64_t got, uint64_t want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints a "# " comment line. */
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Ends the output: prints the trailing plan if there was none and returns
 * the exit status: the failures, plus one if a plan was not met, capped
 * below GUEST_EXIT_FAULT.
 */
int tap_done(void);

#endif /* TAP_H */
