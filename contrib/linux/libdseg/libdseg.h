/*
 * libdseg: the user side of qemu-dseg's guest module (contrib/linux/dseg).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef LIBDSEG_H
#define LIBDSEG_H

#include <stddef.h>
#include <stdint.h>

#include "dseg_uapi.h"

/*
 * Map the calling process's primary region of SIZE bytes (rounded up to
 * 4 KiB): zeroed, physically contiguous, translated by the guest segment
 * while the process runs.  Returns NULL and sets errno on failure: EBUSY
 * if the process already has one, ENOMEM if the pool has no room, ENOENT
 * if /dev/dseg does not exist (the module is not loaded).
 */
void *dseg_region_alloc(size_t size);

/* The calling process's primary region: 0, or -1 and errno (ENOENT). */
int dseg_region_info(struct dseg_region_info *info);

/* DSEG_WINDOW_PORT: the counter-window device's port. */
#include "dseg_abi.h"

/*
 * Mark the start or the end of a counter window: write MARK to the
 * isa-dseg-window device, which stops the VM until a QMP client resumes
 * it.  Needs the right to use the port (root: ioperm); returns 0, or -1
 * and errno.
 */
int dseg_window_mark(uint32_t mark);

#endif
