#!/usr/bin/env python3
"""Races with another vCPU (MTTCG): counters of walks that race
accessed-bit updates, and VMRUN racing a rewrite of its VMCB's EVENTINJ.

The guest (tests/guest/dseg_race.c) makes, in each of WINDOWS windows,
ROUNDS x 64 native-walk fills of 4 KiB pages on the BSP while its AP clears the accessed bits of those
walks' entries, so that walks re-read entries and restart (MTTCG).  From
query-dseg of the BSP's window this test checks, exactly, that arch-refs
counts each completed translation once (4 per 4 KiB fill, 2 per fill of
the image's 1 GiB pages) however often its walk restarted, and that
guest-refs counts every read made, so it exceeds arch-refs by the re-reads,
of which the windows together must have had some.

test_vmrun_eventinj_race runs tests/guest/dseg_eventinj.c: VMRUN reads
EVENTINJ once, so each VMRUN either fails having switched nothing or runs
the VM on its own guest copy; the guest checks every round.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from qemu_dseg import guests, model, testing
from qemu_dseg.model import PAGE_1G, PAGE_4K

ROUNDS = 1024
WINDOWS = 16
FILLS_4K = ROUNDS * 64
SMP_ARGS = ['-smp', '2', '-accel', 'tcg,thread=multi']
VMRUNS = 4096


class DsegRaceTest(testing.TestCase):

    def test_restarted_walks(self):
        windows = {}

        def at_checkpoint(name):
            windows[name] = vm.counter_window()[0]['counters']

        args = guests.args('dseg_race',
                           append=f'rounds={ROUNDS} windows={WINDOWS}',
                           cpu='max,+dseg', extra_args=SMP_ARGS)
        with self.machine(args, name='dseg_race') as vm:
            vm.launch()
            status = vm.serve_checkpoints(at_checkpoint, 120)
            console = vm.console()
        self.assert_guest_passed(status, console)

        rereads = 0
        for w in range(WINDOWS):
            counters = windows[f'race-{w}']
            walk = counters['native-walk']
            image_fills = walk['fills'] - FILLS_4K
            self.assertGreaterEqual(image_fills, 0, walk)
            model.assert_counters(counters, {
                'native-walk': {
                    'fills': walk['fills'],
                    'guest-refs': walk['guest-refs'],
                    'arch-refs': model.walk_len(4, PAGE_4K) * FILLS_4K +
                    model.walk_len(4, PAGE_1G) * image_fills},
            }, f'race-{w}')
            self.assertGreaterEqual(walk['guest-refs'], walk['arch-refs'])
            rereads += walk['guest-refs'] - walk['arch-refs']
        # Each window can be unlucky on a loaded machine; all of them
        # together must have raced.
        print(f'# {WINDOWS} x {FILLS_4K} fills, {rereads} entries re-read')
        self.assertGreater(rereads, 0, 'no walk re-read an entry')

    def test_vmrun_eventinj_race(self):
        status, console = self.run_guest(
            'dseg_eventinj', append=f'rounds={VMRUNS}', timeout=120,
            cpu='max,+dseg', extra_args=SMP_ARGS)
        self.assert_guest_passed(status, console)
        for line in console.splitlines():
            if line.startswith('# ') and 'VMRUNs' in line:
                print(line)


if __name__ == '__main__':
    testing.main()
