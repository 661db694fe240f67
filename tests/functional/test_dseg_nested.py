#!/usr/bin/env python3
"""Direct segments under SVM nested paging: the four guest-mode paths.

The guest (tests/guest/dseg_nested.c) is a hypervisor whose VM touches N
pages per counter window, each window set up so that the touched pages
take one translation path and the VM's own code, stack and data another.
This test checks the counters of docs/specs/direct-segments.rst exactly:
fills, guest-refs and arch-refs of both paths (from the reference model
arch = sum over guest entries of (1 + nested cost) + nested cost of the
final gPA) and the segment and filter events, one per nested step of a
fill in the VMM segment.  nested-refs is checked against its bounds,
since QEMU's nested TLB may skip nested walks of gPAs outside the VMM
segment, except for guest-direct fills, which never use it.  The guest checks translations, edges, faults and TLB behaviour
itself and reports TAP.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import re

from qemu_dseg import model, testing
from qemu_dseg.model import ANY

PAGES = 16


class DsegNestedTest(testing.TestCase):

    def assert_path(self, c, path, fills, guest_refs, arch, window,
                    nested_exact=False):
        got = c[path]
        self.assertEqual((got['fills'], got['guest-refs'], got['arch-refs']),
                         (fills, guest_refs, arch), f'{window}: {path}')
        nested = got['nested-refs']
        if nested_exact:
            self.assertEqual(nested, arch - guest_refs, f'{window}: {path}')
        else:
            self.assertLessEqual(nested, arch - guest_refs,
                                 f'{window}: {path}')

    def assert_code_path(self, c, path, per_fill, guest_per_fill, window):
        """The VM's own fills: all on PATH at PER_FILL arch-refs each.  A
        guest-direct fill makes the nested walk of its final gPA every
        time, so its nested-refs are exact."""
        fills = c[path]['fills']
        self.assertGreater(fills, 0, f'{window}: code path {path}')
        self.assert_path(c, path, fills, fills * guest_per_fill,
                         fills * per_fill, window,
                         nested_exact=path == 'guest-direct')

    def check(self, windows, n, m, console):
        N = PAGES
        # Costs of the VM's own fills (image: 2 MiB guest and nested pages).
        code_gd = m - 1
        code_2d = (n - 1) * (1 + m) + (m - 1)
        code_2d_pt_in = (n - 1) + (m - 1)

        for name, g_len, final in (('walk-2d', n, m),
                                   ('walk-2d-g2m', n - 1, m),
                                   ('walk-2d-n2m', n, m - 1),
                                   ('walk-2d-n1g', n, m - 2)):
            c = windows[name]['counters']
            arch = model.arch_refs_nested(g_len, m, final)
            self.assert_path(c, 'walk-2d', N, N * g_len, N * arch, name)
            self.assertGreaterEqual(c['walk-2d']['nested-refs'], N * final)
            self.assert_code_path(c, 'guest-direct', code_gd, 0, name)
            model.assert_counters(c, {
                'native-walk': ANY, 'walk-2d': ANY, 'guest-direct': ANY,
                'guest-segment-hits': c['guest-direct']['fills']}, name)

        for name, final in (('guest-direct', m), ('guest-direct-n2m', m - 1)):
            c = windows[name]['counters']
            self.assert_path(c, 'guest-direct', N, 0, N * final, name,
                             nested_exact=True)
            self.assert_code_path(c, 'walk-2d', code_2d, n - 1, name)
            model.assert_counters(c, {
                'native-walk': ANY, 'walk-2d': ANY, 'guest-direct': ANY,
                'guest-segment-hits': N}, name)

        c = windows['vmm-direct']['counters']
        self.assert_path(c, 'vmm-direct', N, N * n, N * n, 'vmm-direct',
                         nested_exact=True)
        self.assert_code_path(c, 'walk-2d', code_2d_pt_in, n - 1,
                              'vmm-direct')
        # Every nested step of a fill whose gPA is in the VMM segment is
        # a probe: all n + 1 of a VMM-direct fill (its page tables are in
        # the segment), the n - 1 guest entries of a code fill.
        steps = N * (n + 1) + c['walk-2d']['fills'] * (n - 1)
        model.assert_counters(c, {
            'native-walk': ANY, 'walk-2d': ANY, 'vmm-direct': ANY,
            'vmm-segment-hits': steps, 'filter-probes': steps},
            'vmm-direct')

        c = windows['vmm-direct-pt-out']['counters']
        self.assert_path(c, 'vmm-direct', N, N * n, N * n * (1 + m),
                         'vmm-direct-pt-out')
        self.assert_code_path(c, 'guest-direct', code_gd, 0,
                              'vmm-direct-pt-out')
        model.assert_counters(c, {
            'native-walk': ANY, 'guest-direct': ANY, 'vmm-direct': ANY,
            'guest-segment-hits': ANY, 'vmm-segment-hits': N,
            'filter-probes': N}, 'vmm-direct-pt-out')

        c = windows['dual-direct']['counters']
        self.assert_path(c, 'dual-direct', N, 0, 0, 'dual-direct',
                         nested_exact=True)
        self.assert_code_path(c, 'walk-2d', code_2d, n - 1, 'dual-direct')
        model.assert_counters(c, {
            'native-walk': ANY, 'walk-2d': ANY, 'dual-direct': ANY,
            'guest-segment-hits': N, 'vmm-segment-hits': N,
            'filter-probes': N}, 'dual-direct')

        self.check_escape(windows['escape'], n, m, console)

    def check_escape(self, info, n, m, console):
        N = PAGES
        match = re.search(r'escape window: D gPA (0x[0-9a-f]+), (\d+) pages, '
                          r'(\d+) reported', console)
        self.assertIsNotNone(match)
        d_gpa, reported = int(match.group(1), 16), int(match.group(3))
        words = model.filter_words((d_gpa + 0x1000, d_gpa + 0x5000))
        self.assertEqual(info['filter']['words'], words)
        self.assertEqual(sum(model.filter_reports(words, d_gpa + i *
                                                       0x1000)
                             for i in range(N)), reported)
        c = info['counters']
        self.assert_path(c, 'walk-2d', reported, reported * n,
                         reported * model.arch_refs_nested(n, m, m),
                         'escape')
        self.assert_path(c, 'vmm-direct', N - reported, (N - reported) * n,
                         (N - reported) * n * (1 + m), 'escape')
        self.assert_code_path(c, 'guest-direct', m - 1, 0, 'escape')
        self.assertEqual((c['vmm-segment-hits'], c['filter-probes'],
                          c['filter-hits']), (N - reported, N, reported))

    def run_nested(self, image, guest_levels, nested_levels):
        status, console, windows = self.run_guest_windows(
            image, append=f'pages={PAGES} guest_levels={guest_levels}')
        self.assert_guest_passed(status, console)
        self.assertIn(f'guest paging {guest_levels} levels, nested paging '
                      f'{nested_levels} levels', console)
        self.check(windows, guest_levels, nested_levels, console)

    def test_guest4_nested4(self):
        self.run_nested('dseg_nested', 4, 4)

    def test_guest5_nested4(self):
        self.run_nested('dseg_nested', 5, 4)

    def test_guest4_nested5(self):
        self.run_nested('dseg_nested-la57', 4, 5)

    def test_guest5_nested5(self):
        self.run_nested('dseg_nested-la57', 5, 5)

    def test_model(self):
        # The figures of docs/specs/direct-segments.rst.
        self.assertEqual(model.arch_refs_nested(4, 4, 4), 24)
        self.assertEqual(model.arch_refs_nested(5, 5, 5), 35)
        self.assertEqual(model.arch_refs_nested(5, 4, 4), 29)
        self.assertEqual(model.arch_refs_nested(4, 5, 5), 29)
        self.assertEqual(model.arch_refs_nested(3, 4, 4), 19)
        self.assertEqual(model.arch_refs_nested(2, 2, 2), 8)
        self.assertEqual(model.arch_refs_nested(4, 4, 0), 20)

    def test_assert_counters(self):
        zero = {p: dict.fromkeys(model.REF_FIELDS, 0) for p in model.PATHS}
        zero.update(dict.fromkeys(model.EVENTS, 0))
        c = {**zero, 'walk-2d': {'fills': 2, 'guest-refs': 8,
                                 'nested-refs': 5, 'arch-refs': 48},
             'filter-probes': 3}
        expect = {'walk-2d': {'fills': 2, 'guest-refs': 8,
                              'nested-refs': ANY, 'arch-refs': 48},
                  'filter-probes': 3}
        model.assert_counters(c, expect)
        model.assert_counters(c, {'walk-2d': ANY, 'filter-probes': ANY})
        for wrong in ({**expect, 'filter-probes': 2},
                      {**expect, 'walk-2d': {'fills': 2, 'arch-refs': 48,
                                             'nested-refs': ANY}},
                      {'walk-2d': ANY}):
            with self.assertRaises(AssertionError):
                model.assert_counters(c, wrong)
        with self.assertRaises(ValueError):
            model.assert_counters(c, {'walk-3d': {}})


if __name__ == '__main__':
    testing.main()
