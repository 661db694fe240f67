"""The rows of the experiment's results: one workload in one mode.

A row is what the tables (output.py) and the chart (chart.py) show of a
mode, and what results.json holds of it (json_default()).

SPDX-License-Identifier: GPL-2.0-or-later
"""

import dataclasses
from dataclasses import dataclass
from typing import Optional


@dataclass(kw_only=True)
class ModeRow:
    """What both experiments report of a workload in a mode: its times
    and the figures of its counters (stats.summarise())."""
    mode: str
    label: str
    intended_path: str
    wall_time_s: float
    vcpu_time_s: Optional[float]
    fills: int
    arch_refs: int
    performed_refs: int
    arch_per_fill: float
    performed_per_fill: float
    dominant_path: str
    paths: dict             # path: {fills, share, arch_per_fill, ...}
    filter_hits: int
    filter_probes: int
    guest_segment_hits: int
    vmm_segment_hits: int
    counters: dict          # query-dseg's counters
    # Set by stats.add_ratios_to_base_native().
    wall_vs_base_native: Optional[float] = None
    vcpu_vs_base_native: Optional[float] = None


@dataclass(kw_only=True)
class BareMetalRow(ModeRow):
    """A row of the bare-metal experiment: the times of every repeat
    (stats.timing()), and the guest's own lines."""
    wall_s: list
    wall_min_s: float
    wall_median_s: float
    vcpu_s: Optional[list]
    vcpu_min_s: Optional[float]
    vcpu_median_s: Optional[float]
    counters_identical_in_repeats: bool
    guest_lines: list


@dataclass(kw_only=True)
class LinuxRow(ModeRow):
    """A row of the Linux experiment: whether the workload's result was
    right, and the figures per operation of its window."""
    ok: bool
    result: str
    checksum: Optional[str]
    ops: int
    arch_refs_per_op: float
    fills_per_op: float
    per_cpu_counters: list


def json_default(obj):
    """json.dump's default: a row as its fields."""
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    raise TypeError(f'{type(obj).__name__} is not JSON serialisable')
