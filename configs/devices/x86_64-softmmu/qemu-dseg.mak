# Devices of the lean qemu-dseg build (configure --without-default-devices
# --with-devices-x86_64=qemu-dseg): the PC boards with the devices they
# select themselves, plus what the test suite and the demo use.
CONFIG_Q35=y
CONFIG_I440FX=y
CONFIG_ISA_DEBUG=y
