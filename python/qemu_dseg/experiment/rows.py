"""The rows of the experiment's results: one workload in one mode.

A row is what the tables (output.py) and the chart (chart.py) show of a
mode, and what results.json holds of it (json_default()).

SPDX-License-Identifier: GPL-2.0-or-later
"""

import dataclasses
from dataclasses import dataclass
from typing import Optional


@dataclass(kw_only=True)
class ModelFigures:
    """The figures of the modelled translation hierarchy's counters of a
    window (tlbmodel.summarise()).  A 'miss' is an L1 TLB miss that the
    L2 TLB did not hold, which a segment or a page walk translated (the
    'misses' of query-dseg's model paths)."""
    l1_misses: int          # data and instruction L1 TLB misses
    l2_hits: int
    l2_hit_share: float     # of the L1 misses
    misses: int
    refs: int               # walk references, after the walk caches
    cycles: int             # by the model's linear cycle model
    unmapped: int
    unmodelled: int
    refs_per_miss: Optional[float]
    guest_segment_share: float  # of the misses: tlbmodel.GUEST_SEGMENT_PATHS
    vmm_segment_share: float    # of the misses: tlbmodel.VMM_SEGMENT_PATHS
    l1_misses_per_op: float
    misses_per_op: float
    refs_per_op: float
    cycles_per_op: float
    paths: dict             # path: {misses, refs, share, refs_per_miss}
    counters: dict          # query-dseg's model, all vCPUs added up
                            # (tlbmodel.combine())


@dataclass(kw_only=True)
class ModeRow:
    """What both experiments report of a workload in a mode: its times
    and the figures of its counters (stats.summarise())."""
    mode: str
    label: str
    intended_path: str
    # The times of every run in the order they ran, their minimum and
    # median, and the one reported (stats.timing()); vCPU times are None
    # where the host does not tell them.
    wall_time_s: float
    vcpu_time_s: Optional[float]
    wall_s: list
    wall_min_s: float
    wall_median_s: float
    vcpu_s: Optional[list]
    vcpu_min_s: Optional[float]
    vcpu_median_s: Optional[float]
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
    # The modelled hierarchy's figures, when the model is on.
    model: Optional[ModelFigures] = None
    # Set by stats.add_ratios_to_base_native().
    wall_vs_base_native: Optional[float] = None
    vcpu_vs_base_native: Optional[float] = None


@dataclass(kw_only=True)
class BareMetalRow(ModeRow):
    """A row of the bare-metal experiment: whether the repeats counted
    alike, and the guest's own lines."""
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
    per_cpu_model: Optional[list] = None    # query-dseg's model per vCPU


def json_default(obj):
    """json.dump's default: a row as its fields."""
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    raise TypeError(f'{type(obj).__name__} is not JSON serialisable')
