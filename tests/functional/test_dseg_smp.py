#!/usr/bin/env python3
"""Two vCPUs under MTTCG, each with its own guest segment, at the same time.

The guest (tests/guest/dseg_smp.c) starts its AP, gives each CPU a guest
segment over a region of its own (different BASE and OFFSET), and runs
counter windows in which the CPUs store to pages through their segment and,
by the page walk, to the other CPU's region, in lock step.  The guest
checks where the stores landed (TAP); this test checks that the run used
two vCPU threads and, from query-dseg, that each CPU's registers are its
own and its counters count exactly its own fills:

  window "both":    cpu c: native-direct fills = guest-segment-hits = K_c,
                    4 KiB native-walk fills = W_c, with K_0 != K_1;
  window "ap-only": the same for cpu 1 alone, and all zero on cpu 0.

All other native-walk fills are of the image, which is mapped with 1 GiB
pages: a 4-level walk reads 2 entries for those and 4 for a 4 KiB page, so
the 4 KiB fills are (guest-refs - 2 * fills) / 2 exactly.

The same run with the modelled TLB hierarchy on (the dseg-tlb plugin)
must give the same counters, and each vCPU's model counts its own
accesses: in "ap-only" cpu 0's model sees no segment translation and
cpu 1's sees some, no more than its segment pages.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg import config, guests, model, testing
from qemu_dseg.model import MASK64, PAGE_1G, PAGE_4K

GUEST = 'dseg_smp'
CPU = 'max,+dseg'
SMP_ARGS = ['-smp', '2', '-accel', 'tcg,thread=multi']

# Pages per window: (segment pages, walk pages) of cpu 0 and cpu 1.
WINDOWS = {
    'both': ((24, 6), (40, 10)),
    'ap-only': ((0, 0), (12, 4)),
}
APPEND = 'k0=24 w0=6 k1=40 w1=10 k2=12 w2=4'

# The guest's layout (tests/guest/dseg_smp.c).
REGION_SIZE = 128 * PAGE_4K


def seg_va(c):
    return 0x4000000000 + c * 0x800000000


def tgt_pa(c):
    return 0x08000000 + c * 0x100000


IMAGE_WALK = model.walk_len(4, PAGE_1G)
PAGE_WALK = model.walk_len(4, PAGE_4K)


def walk_fills_4k(walk):
    """4 KiB fills among native-walk fills that are otherwise 1 GiB ones."""
    extra = walk['guest-refs'] - IMAGE_WALK * walk['fills']
    per_fill = PAGE_WALK - IMAGE_WALK
    return extra // per_fill if extra % per_fill == 0 else None


class DsegSmpTest(testing.TestCase):

    def run_smp(self, extra_args=()):
        """Run the guest; return (status, console, windows, cpus)."""
        windows, cpus = {}, []

        def at_checkpoint(name):
            if not cpus:
                cpus.extend(vm.cmd('query-cpus-fast'))
            windows[name] = vm.counter_window()

        args = guests.args(GUEST, append=APPEND, cpu=CPU,
                           extra_args=SMP_ARGS + list(extra_args))
        with self.machine(args, name=GUEST) as vm:
            vm.launch()
            status = vm.serve_checkpoints(at_checkpoint, 60)
            return status, vm.console(), windows, cpus

    def check_cpu(self, info, c, seg, walk, window):
        where = f'{window}: cpu {c}'
        self.assertEqual(info['cpu-index'], c)
        self.assertTrue(info['enabled'], where)
        self.assertFalse(info['guest-mode'], where)
        self.assertEqual(info['guest-segment'], {
            'base': seg_va(c), 'limit': seg_va(c) + REGION_SIZE,
            'offset': (tgt_pa(c) - seg_va(c)) & MASK64}, where)
        c = info['counters']
        nw = c['native-walk']
        self.assertEqual(walk_fills_4k(nw), walk,
                         f'{where}: 4 KiB page-walk fills in {nw}')
        model.assert_counters(c, {
            'native-walk': {'fills': nw['fills'],
                            'guest-refs': nw['guest-refs'],
                            'arch-refs': nw['guest-refs']},
            'native-direct': {'fills': seg},
            'guest-segment-hits': seg}, where)

    def test_two_vcpus(self):
        self.check_run(*self.run_smp())

    def test_two_vcpus_with_model(self):
        windows = self.check_run(*self.run_smp(
            ['-plugin', f'{config.TLB_PLUGIN},preset=skylake']))
        direct = [[p['misses'] for p in info['model']['paths']
                   if p['path'] == 'native-direct'][0]
                  for info in windows['ap-only']]
        seg = WINDOWS['ap-only'][1][0]
        self.assertEqual(direct[0], 0, windows['ap-only'][0]['model'])
        self.assertTrue(0 < direct[1] <= seg, windows['ap-only'][1]['model'])

    def check_run(self, status, console, windows, cpus):
        self.assert_guest_passed(status, console)

        # MTTCG: one host thread per vCPU.
        self.assertEqual([cpu['cpu-index'] for cpu in cpus], [0, 1])
        threads = {cpu['thread-id'] for cpu in cpus}
        self.assertEqual(len(threads), 2, f'vCPU threads: {cpus}')

        self.assertEqual(list(windows), ['begin-both', 'both',
                                         'begin-ap-only', 'ap-only'])
        for name, plan in WINDOWS.items():
            infos = windows[name]
            self.assertEqual(len(infos), 2, name)
            for c, (seg, walk) in enumerate(plan):
                self.check_cpu(infos[c], c, seg, walk, name)
        return windows


if __name__ == '__main__':
    testing.main()
