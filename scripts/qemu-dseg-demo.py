#!/usr/bin/env python3
"""qemu-dseg main job (preliminary): boot Debian's cloud kernel under the
fork and show, over QMP, the machine's status and the CPU model it runs.

The translation-mode experiment replaces this once the direct-segment
hardware lands.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'functional'))
import harness  # noqa: E402
import linux_assets  # noqa: E402

INIT = f"""#!/bin/sh
{linux_assets.INIT_PRELUDE}
echo "demo: Linux $(uname -r) is up; $(grep -c ^processor /proc/cpuinfo) CPU(s)"
echo DEMO-READY
sleep 1
{linux_assets.EPILOGUE}"""


def main():
    print('demo: preparing the Linux guest (Debian cloud kernel, busybox)')
    kernel, initrd = linux_assets.linux_guest(INIT, modules=())
    args = ['-M', 'q35', '-cpu', 'max', '-m', '1G', '-kernel', kernel,
            '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 quiet']
    print(f'demo: booting {os.path.basename(kernel)} under {harness.QEMU}')
    with harness.Machine(args, name='demo') as vm:
        vm.launch()
        vm.wait_console(r'^DEMO-READY', timeout=300)
        version = vm.qmp('query-version')
        status = vm.qmp('query-status')
        cpus = vm.qmp('query-cpus-fast')
        cpu = {p: vm.qmp('qom-get', path=cpus[0]['qom-path'], property=p)
               for p in ('type', 'model-id', 'svm', 'npt')}
        line = vm.wait_console(r'^demo: Linux .*$', timeout=10).group(0)
        vm.wait(60)

    print(line)
    print(f"QEMU:          {version['qemu']['major']}."
          f"{version['qemu']['minor']}.{version['qemu']['micro']} "
          f"({version['package'].strip()})")
    print(f"query-status:  {json.dumps(status)}")
    print(f"CPU model:     {cpu['type']} \"{cpu['model-id']}\" "
          f"({len(cpus)} vCPU, target {cpus[0]['target']})")
    print('CPU features:  ' + ', '.join(f'{f}={"on" if cpu[f] else "off"}'
                                        for f in ('svm', 'npt')))


if __name__ == '__main__':
    main()
