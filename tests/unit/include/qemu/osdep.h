/*
 * Stand-in for QEMU's qemu/osdep.h in the unit-test build of
 * target/i386/dseg-core.c and dseg-tlb-model.c.
 *
 * QEMU's style makes qemu/osdep.h the first include of every .c file, and
 * those follow it; outside the QEMU tree, this header gives it the
 * few standard headers it needs instead.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_DSEG_UNIT_OSDEP_H
#define QEMU_DSEG_UNIT_OSDEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The two macros of QEMU's osdep.h that our QEMU-independent code uses. */
#define ARRAY_SIZE(x)   (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b)       ((a) < (b) ? (a) : (b))

#endif
