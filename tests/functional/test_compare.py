#!/usr/bin/env python3
"""The benchmarks' statistics (qemu_dseg/experiment/compare.py).

Ratios with 95% confidence intervals and the stop rule decide what the
benchmarks report, so they are checked here against values computed by
hand and against fake series whose times are known: Student's t
quantiles, the interval of a paired ratio, verdicts against a bound, the
rotation of the order within rounds, and that rounds stop exactly when
every interval is within the target, or at the cap.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import math

from qemu_dseg import testing
from qemu_dseg.experiment import compare
from qemu_dseg.experiment.compare import Ratio


class CompareTest(testing.TestCase):

    def test_t_quantiles(self):
        # Tables of Student's t (two-sided 95%).
        for df, t in ((1, 12.706), (4, 2.776), (10, 2.228), (30, 2.042),
                      (40, 2.021), (60, 2.000), (120, 1.980)):
            self.assertAlmostEqual(compare.t975(df), t, delta=0.0015,
                                   msg=f'df {df}')
        self.assertAlmostEqual(compare.t975(10 ** 6), 1.960, places=3)
        with self.assertRaises(ValueError):
            compare.t975(0)

    def test_ratio_interval(self):
        # Per-round ratios 2, 2.2 and 1.8: by hand, the mean of their
        # logarithms, its standard error and t(2) = 4.303.
        r = compare.ratio_interval([2.0, 4.4, 0.9], [1.0, 2.0, 0.5])
        logs = [math.log(2.0), math.log(2.2), math.log(1.8)]
        mean = sum(logs) / 3
        sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2)
        h = 4.303 * sd / math.sqrt(3)
        self.assertAlmostEqual(r['ratio'], math.exp(mean), places=12)
        self.assertAlmostEqual(r['low'], math.exp(mean - h), places=12)
        self.assertAlmostEqual(r['high'], math.exp(mean + h), places=12)
        self.assertAlmostEqual(r['half_width'], math.exp(h) - 1, places=12)
        self.assertEqual(r['rounds'], 3)
        # A constant ratio has no width; one round has no interval.
        r = compare.ratio_interval([3.0, 6.0, 1.5], [2.0, 4.0, 1.0])
        self.assertAlmostEqual(r['ratio'], 1.5, places=12)
        self.assertAlmostEqual(r['half_width'], 0.0, places=12)
        r = compare.ratio_interval([3.0], [2.0])
        self.assertEqual((r['ratio'], r['low'], r['half_width']),
                         (1.5, None, None))
        with self.assertRaises(ValueError):
            compare.ratio_interval([1.0, 2.0], [1.0])

    def test_verdict(self):
        iv = {'low': 0.99, 'high': 1.01}
        self.assertEqual(compare.verdict(iv, 1.02), 'met')
        self.assertEqual(compare.verdict(iv, 1.01), 'met')
        self.assertEqual(compare.verdict(iv, 1.0), 'undecided')
        self.assertEqual(compare.verdict(iv, 0.98), 'missed')
        self.assertIsNone(compare.verdict(iv, None))
        self.assertIsNone(compare.verdict({'low': None}, 1.0))

    def fake(self, times):
        """A run function over TIMES {name: [time per round]}, and the
        order of its calls."""
        calls = []

        def run(name):
            t = times[name][sum(c == name for c in calls)]
            calls.append(name)
            return compare.Measurement(t, t / 2)
        return run, calls

    def test_stop_rule(self):
        # a / b alternates between 1.01 and 0.99: the interval narrows
        # with every pair of rounds and passes +-1% at a known round.
        n = 60
        times = {'a': [1.01 if i % 2 == 0 else 0.99 for i in range(n)],
                 'b': [1.0] * n, 'c': [2.0] * n}
        first = None
        for k in range(3, n + 1):
            hw = compare.ratio_interval(times['a'][:k],
                                        times['b'][:k])['half_width']
            if hw <= 0.01:
                first = k
                break
        self.assertIsNotNone(first)
        run, calls = self.fake(times)
        res = compare.run_rounds(['a', 'b', 'c'], run,
                                 [Ratio('a/b', 'a', 'b', 1.0),
                                  Ratio('c/b', 'c', 'b')],
                                 3, n, 0.01)
        self.assertEqual((res['rounds'], res['stopped']), (first, 'target'))
        self.assertEqual([len(v) for v in res['runs'].values()],
                         [first] * 3)
        # Rounds rotate the order of the series.
        self.assertEqual(calls[:9], ['a', 'b', 'c', 'b', 'c', 'a',
                                     'c', 'a', 'b'])
        ab, cb = res['ratios']
        self.assertLessEqual(ab['vcpu']['half_width'], 0.01)
        self.assertEqual(ab['vcpu']['verdict'], 'undecided')
        self.assertAlmostEqual(cb['wall']['ratio'], 2.0, places=12)
        self.assertIsNone(cb['wall']['verdict'])

    def test_cap(self):
        times = {'a': [1.0, 1.5] * 5, 'b': [1.0] * 10}
        run, _ = self.fake(times)
        res = compare.run_rounds(['a', 'b'], run, [Ratio('a/b', 'a', 'b')],
                                 2, 6, 0.01, metric='wall_s')
        self.assertEqual((res['rounds'], res['stopped']), (6, 'cap'))
        self.assertGreater(res['ratios'][0]['wall']['half_width'], 0.01)
        text = '\n'.join(compare.format_ratios(res, 'fake'))
        self.assertIn('fake: 6 interleaved rounds (stopped by the cap)',
                      text)
        self.assertIn('n=6', text)
        with self.assertRaises(ValueError):
            compare.run_rounds(['a'], run, [], 3, 2, 0.01)


if __name__ == '__main__':
    testing.main()
