"""The modelled translation hierarchy as the experiment uses it.

The fork's dseg-tlb plugin (contrib/plugins/dseg-tlb.c; the model in
target/i386/dseg-tlb.c, docs/devel/dseg-tlb-model.rst) looks every guest
access up in a per-vCPU model of a CPU's TLBs and walk caches, and
query-dseg reports its counters per vCPU under 'model'.  Here: the
plugin's arguments, a check of its options before the experiment's
boots (query-dseg-model of an emulator that runs no machine), and the
figures the experiment derives from the counters of a window.

In the model an L1 TLB miss is either held by the L2 TLB (l2-hits) or
translated: by a direct segment, beside the L2, or by a page walk after
the walk caches.  Each translation is counted as a 'miss' of the path
that made it, with the memory references it cost; an L1 miss whose walk
found no mapping is 'unmapped'.  So, per window,

    l1d-misses + l1i-misses = l2-hits + sum of the paths' misses
                              + unmapped
    cycles = l2-cycles x (l1d-misses + l1i-misses)
             + ref-cycles x sum of the paths' refs

SPDX-License-Identifier: GPL-2.0-or-later
"""

import json
import subprocess
import sys

from .. import config
from ..model import MODES, PATHS
from .rows import ModelFigures

# The paths on which the segment of the guest dimension translated the
# linear address (the guest segment of a primary region, or the native
# one), and those on which the VMM segment translated the final gPA.
GUEST_SEGMENT_PATHS = tuple(m.path for m in MODES if m.guest_segment)
VMM_SEGMENT_PATHS = tuple(m.path for m in MODES if m.vmm_segment)


class ModelError(Exception):
    """The plugin is missing or refused its options."""


def plugin_options(preset, extra=''):
    """The plugin's options: PRESET (none: the plugin's default, which
    query-dseg-model names), then EXTRA (PART=VALUE joined by ',', as
    docs/devel/dseg-tlb-model.rst gives them)."""
    return ','.join(o for o in (preset and f'preset={preset}', extra) if o)


def options_of(opts):
    """The plugin's options of an experiment's OPTS (tlb_model: a preset,
    '' for the plugin's default or None for no model; tlb_model_options),
    or None when the model is off."""
    if opts.tlb_model is None:
        return None
    return plugin_options(opts.tlb_model, opts.tlb_model_options)


def plugin(qemu):
    """The model's plugin of the fork QEMU, built beside it."""
    return config.plugin('dseg-tlb', qemu)


def plugin_args(qemu, options):
    """QEMU's arguments that load the plugin of the fork QEMU with
    OPTIONS (plugin_options())."""
    return ['-plugin', ','.join(o for o in (plugin(qemu), options) if o)]


def query_model(qemu, options, timeout=60):
    """query-dseg-model of the fork QEMU with the plugin's OPTIONS, from
    an emulator that runs no machine; ModelError with the plugin's own
    message when it refuses them."""
    path = plugin(qemu)
    try:
        open(path, 'rb').close()
    except OSError as e:
        raise ModelError(f'the TLB model\'s plugin {path} is not there '
                         f'({e.strerror}); it is built with the fork '
                         f'(scripts/build-qemu.sh)') from e
    qmp = ''.join(json.dumps({'execute': c}) + '\n' for c in
                  ('qmp_capabilities', 'query-dseg-model', 'quit'))
    proc = subprocess.run(
        [qemu, '-M', 'none', '-display', 'none', '-nodefaults',
         '-qmp', 'stdio', *plugin_args(qemu, options)],
        input=qmp, capture_output=True, text=True, timeout=timeout,
        check=False)
    for line in proc.stdout.splitlines():
        answer = json.loads(line)
        if isinstance(answer.get('return'), dict) and \
                'preset' in answer['return']:
            return answer['return']
    why = [line for line in proc.stderr.splitlines()
           if line.startswith('dseg-tlb:')] or \
        proc.stderr.strip().splitlines()[-1:] or [f'exit {proc.returncode}']
    raise ModelError(f'the TLB model refused its options {options!r}: '
                     + '; '.join(why))


def record(info, qemu, options):
    """The model's configuration for results.json: query-dseg-model's
    answer INFO, and the plugin of the fork QEMU with its OPTIONS."""
    return {'preset': info['preset'], 'geometry': info['geometry'],
            'l2_cycles': info['l2-cycles'],
            'ref_cycles': info['ref-cycles'],
            'plugin': plugin(qemu), 'plugin_options': options}


def start(qemu, options):
    """The model's configuration (record()) of the fork QEMU with the
    plugin's OPTIONS, checked before an experiment's runs: SystemExit
    with the plugin's message when it refuses them."""
    try:
        return record(query_model(qemu, options), qemu, options)
    except ModelError as e:
        sys.exit(f'experiment: {e}')


def describe(rec):
    """One line for people on the model's configuration REC (record())."""
    return (f"TLB model: preset {rec['preset']}, {rec['geometry']}; "
            f"cycles = {rec['l2_cycles']} per L1 TLB miss + "
            f"{rec['ref_cycles']} per walk reference")


def combine(models):
    """The model's counters MODELS (query-dseg's 'model' of each vCPU)
    added up: the numbers, and 'paths' {path: {'misses', 'refs'}} of
    every path; None if a vCPU has none (the model is off)."""
    if not models or None in models:
        return None
    total = {'paths': {p: {'misses': 0, 'refs': 0} for p in PATHS}}
    for cpu in models:
        for key, value in cpu.items():
            if key != 'paths':
                total[key] = total.get(key, 0) + value
        for p in cpu['paths']:
            t = total['paths'][p['path']]
            t['misses'] += p['misses']
            t['refs'] += p['refs']
    return total


def _share(part, whole):
    return part / whole if whole else 0.0


def summarise(counters, ops):
    """The figures (rows.ModelFigures) of the model's COUNTERS (combine())
    of a window that did OPS operations."""
    paths = counters['paths']
    l1 = counters['l1d-misses'] + counters['l1i-misses']
    misses = sum(p['misses'] for p in paths.values())
    refs = sum(p['refs'] for p in paths.values())
    return ModelFigures(
        l1_misses=l1, l2_hits=counters['l2-hits'],
        l2_hit_share=_share(counters['l2-hits'], l1),
        misses=misses, refs=refs, cycles=counters['cycles'],
        unmapped=counters['unmapped'], unmodelled=counters['unmodelled'],
        refs_per_miss=refs / misses if misses else None,
        guest_segment_share=_share(sum(paths[p]['misses'] for p in
                                       GUEST_SEGMENT_PATHS), misses),
        vmm_segment_share=_share(sum(paths[p]['misses'] for p in
                                     VMM_SEGMENT_PATHS), misses),
        l1_misses_per_op=l1 / ops, misses_per_op=misses / ops,
        refs_per_op=refs / ops, cycles_per_op=counters['cycles'] / ops,
        paths={p: {'misses': c['misses'], 'refs': c['refs'],
                   'share': _share(c['misses'], misses),
                   'refs_per_miss': (c['refs'] / c['misses']
                                     if c['misses'] else None)}
               for p, c in paths.items()},
        counters=counters)
