"""Side-by-side timing: interleaved rounds, ratios with confidence
intervals, and a stop rule.

A *round* runs every series once, in an order rotated from round to
round, so that drift of the host (other jobs, frequency, caches) hits
every series alike.  A *ratio* compares two series A and B: round i gives
t_A,i / t_B,i, and the ratio reported is the geometric mean over the
rounds, with the 95% confidence interval of Student's t on the logarithms
of the per-round ratios (rounds are paired, so noise common to a round
cancels).  Rounds go on until every interval lies within +-TARGET of its
ratio, after at least MIN rounds, or until MAX rounds (the cap).

A ratio may carry a bound from the project's targets; its verdict is
"met" when the whole interval lies at or below the bound, "missed" when
the whole interval lies above it, and "undecided" otherwise.  Nothing
here asserts: the numbers are reported whichever way they fall.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Optional

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
         2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
         2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
         2.048, 2.045, 2.042)
_Z975 = 1.959964


@dataclass
class Measurement:
    """One run of a series: its times (the metrics, in seconds; vcpu_s
    None when unknown) and what it computed (RESULT), on which every run
    of a workload must agree."""
    wall_s: float
    vcpu_s: Optional[float]
    result: Optional[str] = None


def t975(df):
    """The 0.975 quantile of Student's t with DF degrees of freedom."""
    if df < 1:
        raise ValueError('a confidence interval needs two rounds or more')
    if df <= len(_T975):
        return _T975[df - 1]
    # Cornish-Fisher expansion; its error is below 1e-4 from df = 30 on.
    z = _Z975
    return (z + (z ** 3 + z) / (4 * df)
            + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2))


def ratio_interval(a, b):
    """The paired ratio of times A over times B (equal-length lists):
    {'ratio', 'low', 'high', 'half_width', 'rounds'}.  'half_width' is the
    larger distance from the ratio to an end of the interval, relative to
    the ratio; low, high and half_width are None for a single round."""
    if len(a) != len(b) or not a:
        raise ValueError('a paired ratio needs equal, non-empty series')
    logs = [math.log(x / y) for x, y in zip(a, b)]
    mean = statistics.fmean(logs)
    r = {'ratio': math.exp(mean), 'low': None, 'high': None,
         'half_width': None, 'rounds': len(logs)}
    if len(logs) > 1:
        h = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(
            len(logs))
        r['low'], r['high'] = math.exp(mean - h), math.exp(mean + h)
        r['half_width'] = math.exp(h) - 1
    return r


def verdict(r, bound):
    """'met', 'missed' or 'undecided' for ratio R against BOUND (None: no
    bound, no verdict)."""
    if bound is None or r['low'] is None:
        return None
    if r['high'] <= bound:
        return 'met'
    if r['low'] > bound:
        return 'missed'
    return 'undecided'


class Ratio:
    """A compared pair: series A over series B, with an optional bound
    (the ratio should be at most BOUND) and a label for people.  With
    PART, a run of a series measures several parts (a boot that runs
    several workloads): the times compared are those of its
    windows[PART]."""

    def __init__(self, label, a, b, bound=None, part=None):
        self.label = label
        self.a = a
        self.b = b
        self.bound = bound
        self.part = part


def default_metric():
    """'vcpu_s' (the vCPU thread's CPU time, which excludes the time other
    jobs on the host took from it) where Linux reports it, else 'wall_s'."""
    return 'vcpu_s' if os.path.exists('/proc/self/schedstat') else 'wall_s'


def rotation(items, i):
    """ITEMS rotated by I: round I starts with another item each time."""
    i %= len(items)
    return list(items[i:]) + list(items[:i])


def run_rounds(series, run, ratios, min_rounds, max_rounds, target,
               metric='vcpu_s', progress=None):
    """Run SERIES (names) round by round with RUN(name) -> a measurement
    (a Measurement, or any object with its wall_s and vcpu_s; for a ratio
    with a part, one with .windows[part] that has them).

    Stops after MIN_ROUNDS rounds once every ratio of RATIOS on METRIC has
    a half-width of at most TARGET (a fraction: 0.01 for +-1%), or after
    MAX_ROUNDS.  PROGRESS(text) hears one line per round.  Returns
    {'runs': {name: [measurement]}, 'rounds', 'stopped' (why),
    'ratios': [...]} with both metrics for every ratio."""
    if not 1 <= min_rounds <= max_rounds:
        raise ValueError('need 1 <= min rounds <= max rounds')
    runs = {name: [] for name in series}
    stopped = 'cap'
    start = time.monotonic()
    for i in range(max_rounds):
        for name in rotation(list(series), i):
            runs[name].append(run(name))
        widths = [ratio_interval(_times(runs[r.a], metric, r.part),
                                 _times(runs[r.b], metric, r.part)
                                 )['half_width'] for r in ratios]
        known = [w for w in widths if w is not None]
        widest = max(known) if known else None
        if progress:
            width = (f'widest interval +-{100 * widest:.2f}%'
                     if widest is not None else 'no interval yet')
            progress(f'round {i + 1}/{max_rounds}: {width} '
                     f'({time.monotonic() - start:.0f} s)')
        if (i + 1 >= min_rounds and len(known) == len(widths)
                and (widest is None or widest <= target)):
            stopped = 'target'
            break
    return {'runs': runs, 'rounds': i + 1, 'stopped': stopped,
            'metric': metric, 'target': target,
            'ratios': [summarise_ratio(r, runs) for r in ratios]}


def _times(measurements, metric, part=None):
    if part is not None:
        measurements = [m.windows[part] for m in measurements]
    times = [getattr(m, metric) for m in measurements]
    if None in times:
        raise ValueError(f'{metric} is unknown for some runs')
    return times


def summarise_ratio(r, runs):
    """The JSON-ready figures of ratio R from RUNS, for both metrics."""
    out = {'label': r.label, 'a': r.a, 'b': r.b, 'bound': r.bound,
           'part': r.part}
    for metric in ('wall_s', 'vcpu_s'):
        try:
            iv = ratio_interval(_times(runs[r.a], metric, r.part),
                                _times(runs[r.b], metric, r.part))
        except ValueError:
            iv = None
        if iv:
            iv['verdict'] = verdict(iv, r.bound)
        out[metric.replace('_s', '')] = iv
    return out


def format_ratio(r, metric='vcpu'):
    """One line for people: label, ratio, interval, half-width, rounds and
    the verdict against its bound."""
    iv = r[metric]
    if iv is None:
        return f'{r["label"]:<46} (no {metric} time)'
    text = f'{r["label"]:<46} {iv["ratio"]:7.4f}'
    if iv['low'] is None:
        text += f'{"(one round)":>26}'
    else:
        text += (f'  [{iv["low"]:.4f}, {iv["high"]:.4f}]'
                 f' +-{100 * iv["half_width"]:.2f}%')
    text += f'  n={iv["rounds"]}'
    if r['bound'] is not None and iv['verdict']:
        text += f'  target <= {r["bound"]:g}: {iv["verdict"]}'
    return text


def format_ratios(result, title):
    """The lines that report RESULT of run_rounds under TITLE."""
    metric = result['metric'].replace('_s', '')
    why = ('every interval within +-'
           f'{100 * result["target"]:g}%' if result['stopped'] == 'target'
           else 'the cap')
    lines = [f'{title}: {result["rounds"]} interleaved rounds (stopped by '
             f'{why}); ratio = geometric mean of per-round ratios of '
             f'{"vCPU" if metric == "vcpu" else "wall"} time, [95% '
             f'confidence interval]']
    lines += ['  ' + format_ratio(r, metric) for r in result['ratios']]
    return lines


def stderr_progress(prefix):
    """A PROGRESS callback that rewrites one status line on stderr."""
    def say(text):
        print(f'  {prefix}: {text}', end='\r', file=sys.stderr, flush=True)
    return say
