/*
 * Direct segments (qemu-dseg): the programming interface that software
 * sees, defined once (docs/specs/direct-segments.rst, "Registers").
 *
 * Constants only, no types and no includes, so that every side uses this
 * one file: QEMU (target/i386/dseg.h), the test guests
 * (tests/guest/lib/dseg.h), the Linux modules and libdseg (contrib/linux).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TARGET_I386_DSEG_ABI_H
#define TARGET_I386_DSEG_ABI_H

/* CPUID Fn8000_0001 ECX[31]: direct segments. */
#define CPUID_EXT3_DSEG             (1U << 31)

/* The guest segment (G) and the VMM segment (V). */
#define MSR_DSEG_BASE_G             0xc0011f00
#define MSR_DSEG_LIMIT_G            0xc0011f01
#define MSR_DSEG_OFFSET_G           0xc0011f02
#define MSR_DSEG_BASE_V             0xc0011f04
#define MSR_DSEG_LIMIT_V            0xc0011f05
#define MSR_DSEG_OFFSET_V           0xc0011f06
/* The escape filter. */
#define MSR_DSEG_FILTER_CFG         0xc0011f08
#define MSR_DSEG_FILTER_INSERT      0xc0011f09
#define MSR_DSEG_FILTER_CLEAR       0xc0011f0a
#define MSR_DSEG_FILTER_BITS0       0xc0011f40  /* + word, up to 64 words */
/* The whole block of MSR numbers that belongs to DSEG, registers or not. */
#define MSR_DSEG_BLOCK_FIRST        0xc0011f00
#define MSR_DSEG_BLOCK_LAST         0xc0011f7f

/* VMCB offsets of the guest copy of the guest segment. */
#define VMCB_DSEG_BASE_G            0xc00
#define VMCB_DSEG_LIMIT_G           0xc08
#define VMCB_DSEG_OFFSET_G          0xc10

/*
 * The default port of the counter-window device (-device isa-dseg-window,
 * "Measurement windows"): a 32-bit write of a mark opens or closes one.
 */
#define DSEG_WINDOW_PORT            0x5d0

#endif /* TARGET_I386_DSEG_ABI_H */
