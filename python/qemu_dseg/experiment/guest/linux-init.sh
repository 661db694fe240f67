#!/bin/sh
@prelude@
ifconfig lo 127.0.0.1 up
# The NIC (boot.nic_args()) on QEMU's user network, and the control line.
load_modules
ifconfig eth0 @guest_ip@ netmask 255.255.255.0 up || echo NO-NIC
# An IOMMU that the guest saw would have its ACPI table (DMAR) logged.
echo "DMAR-LINES $(dmesg | grep -c DMAR)"
exec 3</dev/ttyS1
echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
# As redis asks: jemalloc then never remaps memory to decommit it.
echo 1 > /proc/sys/vm/overcommit_memory
region=0
if grep -q @region_flag@ /proc/cmdline; then
    region=1
    insmod /lib/modules/dseg.ko pool_base=@pool_base@ \
        pool_size=@pool_size@ || echo INSMOD-FAILED
fi
# run_in_region MB PROGRAM...: in the direct modes of the guest dimension,
# PROGRAM's large allocations go to a primary region of MB MiB; the
# library says on stderr whether it got the region.
run_in_region() {
    mb=$1; shift
    if [ $region = 1 ]; then
        LD_PRELOAD=/lib/libdseg-preload.so DSEG_REGION_MB=$mb \
            DSEG_VERBOSE=1 "$@"
    else
        "$@"
    fi
}
# serve NAME: the server NAME is started; the host measures its load
# generator against it and checks the answers, then sends a line.
serve() {
    echo "SERVE $1"
    read -r go <&3
}
