# Devices of the lean qemu-dseg build (configure --without-default-devices
# --with-devices-x86_64=qemu-dseg): the PC boards with the devices they
# select themselves, plus what the test suite and the demo use.
CONFIG_Q35=y
CONFIG_I440FX=y
CONFIG_ISA_DEBUG=y
# The Linux experiment's network path: a virtio NIC, and under the thin
# hypervisor the IOMMU that translates its DMA with the nested page tables.
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_NET=y
CONFIG_VTD=y
