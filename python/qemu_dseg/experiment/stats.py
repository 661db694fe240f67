"""Statistics of the experiment: derived counter figures, times, ratios.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import statistics

from ..model import PATHS


def summarise(counters):
    """Derived figures of one query-dseg counter set (see the docs)."""
    fills = sum(counters[p]['fills'] for p in PATHS)
    arch = sum(counters[p]['arch-refs'] for p in PATHS)
    perf = sum(counters[p]['guest-refs'] + counters[p]['nested-refs']
               for p in PATHS)
    per_path = {}
    for p in PATHS:
        c = counters[p]
        n = c['fills']
        per_path[p] = {
            'fills': n,
            'share': n / fills if fills else 0.0,
            'arch_per_fill': c['arch-refs'] / n if n else None,
            'performed_per_fill': ((c['guest-refs'] + c['nested-refs']) / n
                                   if n else None),
        }
    return {
        'fills': fills,
        'arch_refs': arch,
        'performed_refs': perf,
        'arch_per_fill': arch / fills if fills else 0.0,
        'performed_per_fill': perf / fills if fills else 0.0,
        'dominant_path': max(PATHS, key=lambda p: counters[p]['fills']),
        'paths': per_path,
        'filter_hits': counters['filter-hits'],
        'filter_probes': counters['filter-probes'],
        'guest_segment_hits': counters['guest-segment-hits'],
        'vmm_segment_hits': counters['vmm-segment-hits'],
    }


def timing(runs, stat):
    """Wall and vCPU times of RUNS: all of them, their minimum and median,
    and as 'wall_time_s' and 'vcpu_time_s' the one that STAT names."""
    walls = [r.wall_s for r in runs]
    cpus = [r.vcpu_s for r in runs]
    known = None not in cpus
    t = {'wall_s': walls, 'wall_min_s': min(walls),
         'wall_median_s': statistics.median(walls),
         'vcpu_s': cpus if known else None,
         'vcpu_min_s': min(cpus) if known else None,
         'vcpu_median_s': statistics.median(cpus) if known else None}
    t['wall_time_s'] = t[f'wall_{stat}_s']
    t['vcpu_time_s'] = t[f'vcpu_{stat}_s']
    return t


def ratio(a, b):
    """A / B, or None when either is unknown."""
    return a / b if a is not None and b else None


def add_ratios_to_base_native(rows):
    """Give every row of ROWS (rows.ModeRow, one per mode) its
    wall_vs_base_native and vcpu_vs_base_native; returns the rows by
    mode."""
    by_mode = {r.mode: r for r in rows}
    native = by_mode.get('base-native')
    for r in rows:
        r.wall_vs_base_native = ratio(
            r.wall_time_s, native.wall_time_s if native else None)
        r.vcpu_vs_base_native = ratio(
            r.vcpu_time_s, native.vcpu_time_s if native else None)
    return by_mode
