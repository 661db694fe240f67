"""qemu-dseg's Python package: run the fork, model its counters, run experiments.

Modules:
  config      where the fork, its source tree, the test guests, the asset
              cache and the logs are (environment variables set by meson)
  machine     Machine, a QEMUMachine with a console log, checkpoints,
              resume and counter windows
  guests      the bare-metal test guests: images, arguments, exit status
  model       translation paths and modes, the escape filter's hashes and
              the reference model of docs/specs/direct-segments.rst, and
              the one check of a counter set
  assets      Debian's kernel, modules and busybox, recorded and verified;
              our modules built for it; initramfs images (by role:
              debian, kmod, initramfs, elf, linux)
  testing     the functional tests' base class, logs and TAP runner
  boot        the one builder of a Linux boot in a translation mode
  experiment  the translation experiment (Linux and bare metal), the
              overhead benchmark
  sweep       grids of experiment runs, here or on Slurm, merged

Import it with PYTHONPATH set as meson sets it (`meson devenv -C build`,
or the environment of `meson test`): this directory's parent and QEMU's
own python/ directory of the fetched source tree, for qemu.machine.

SPDX-License-Identifier: GPL-2.0-or-later
"""
