/*
 * dseg-window: exact counter windows for software in the guest (qemu-dseg).
 *
 * A guest program marks the start and the end of the work it wants
 * measured by writing a 32-bit mark to this ISA device's port.  The write
 * stops the VM and emits the QMP event DSEG_WINDOW with the mark and the
 * vCPU that wrote it, so that a QMP client reads (query-dseg) and resets
 * (dseg-reset-counters) the counters of exactly the code between two
 * marks, then resumes the VM with "cont".  It works in every translation
 * mode: natively, and in an SVM guest whose hypervisor lets it reach the
 * port.  See docs/specs/direct-segments.rst, "Measurement windows".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "hw/core/cpu.h"
#include "hw/isa/isa.h"
#include "hw/qdev-properties.h"
#include "qapi/qapi-events-dseg-target.h"
#include "qom/object.h"
#include "system/cpus.h"
#include "system/runstate.h"

#define TYPE_DSEG_WINDOW "isa-dseg-window"
OBJECT_DECLARE_SIMPLE_TYPE(DsegWindowState, DSEG_WINDOW)


struct DsegWindowState {
    ISADevice parent_obj;

    uint32_t iobase;
    MemoryRegion io;
};

static uint64_t dseg_window_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0;
}

static void dseg_window_write(void *opaque, hwaddr addr, uint64_t val,
                              unsigned size)
{
    CPUState *cpu;

    qapi_event_send_dseg_window(current_cpu ? current_cpu->cpu_index : -1,
                                val);
    /*
     * An OUT is the last instruction of its translation block, so in the
     * vCPU thread vm_stop() stops the writer right after the write, before
     * its next instruction; window_stopped keeps it from taking an
     * interrupt on its way out.  The other vCPUs are stopped here, as
     * pause_all_vcpus() would, so that they stop at the end of their
     * current translation block rather than when the main loop gets to
     * the stop request.
     */
    CPU_FOREACH(cpu) {
        if (cpu == current_cpu) {
            X86_CPU(cpu)->env.dseg.window_stopped = true;
        } else {
            cpu->stop = true;
            qemu_cpu_kick(cpu);
        }
    }
    vm_stop(RUN_STATE_PAUSED);
}

static void dseg_window_vm_state_change(void *opaque, bool running,
                                        RunState state)
{
    CPUState *cpu;

    if (running) {
        CPU_FOREACH(cpu) {
            X86_CPU(cpu)->env.dseg.window_stopped = false;
        }
    }
}

static const MemoryRegionOps dseg_window_ops = {
    .read = dseg_window_read,
    .write = dseg_window_write,
    .valid.min_access_size = 4,
    .valid.max_access_size = 4,
    .endianness = DEVICE_LITTLE_ENDIAN,
};

static void dseg_window_realize(DeviceState *dev, Error **errp)
{
    DsegWindowState *s = DSEG_WINDOW(dev);

    memory_region_init_io(&s->io, OBJECT(dev), &dseg_window_ops, s,
                          TYPE_DSEG_WINDOW, 4);
    memory_region_add_subregion(isa_address_space_io(ISA_DEVICE(dev)),
                                s->iobase, &s->io);
    qemu_add_vm_change_state_handler(dseg_window_vm_state_change, s);
}

static const Property dseg_window_properties[] = {
    DEFINE_PROP_UINT32("iobase", DsegWindowState, iobase,
                       DSEG_WINDOW_PORT),
};

static void dseg_window_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);

    dc->realize = dseg_window_realize;
    dc->desc = "qemu-dseg counter windows: a write stops the VM";
    device_class_set_props(dc, dseg_window_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo dseg_window_info = {
    .name = TYPE_DSEG_WINDOW,
    .parent = TYPE_ISA_DEVICE,
    .instance_size = sizeof(DsegWindowState),
    .class_init = dseg_window_class_init,
};

static void dseg_window_register_types(void)
{
    type_register_static(&dseg_window_info);
}

type_init(dseg_window_register_types)
