"""The experiment's output for people: the tables of its results, of
the Linux experiment and of the bare-metal one.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from ..model import MODE_BY_NAME, PATHS
from . import stats, tlbmodel
from .compare import format_ratios

# Short path names for the share table.
PATH_ABBREV = {'native-walk': 'walk', 'native-direct': 'n-dir',
               'walk-2d': '2d', 'guest-direct': 'g-dir',
               'vmm-direct': 'v-dir', 'dual-direct': 'dual'}


def fmt(v, spec, none='-'):
    """V formatted with SPEC, or NONE for None."""
    return none if v is None else format(v, spec)


def stat_text(cfg, rounds=None):
    """How the reported time was chosen from the repeats, for people:
    ROUNDS of them, or as many as the configuration allows."""
    n = rounds or cfg['runs']
    if rounds is None and cfg.get('max_runs', n) != n:
        n = f"{n} to {cfg['max_runs']}"
    if n == 1:
        return 'one run'
    return (f'fastest of {n} runs' if cfg['time_statistic'] == 'min'
            else f'median of {n} runs')


def format_bare_metal(res):
    """The human-readable tables of the bare-metal experiment's results
    RES."""
    cfg = res['config']
    lines = []
    fork = cfg['emulators']['fork-dseg']
    lines.append(f"{fork['version']}; -cpu {fork['cpu']} "
                 f"{' '.join(fork['accel'])}")
    lines.append(cfg['tlb_geometry'])
    model_cfg = cfg.get('tlb_model')
    if model_cfg:
        lines.append(tlbmodel.describe(model_cfg) + '; the mode runs load '
                     'it, and their times include its work')
    lines.append(f"Paging: {cfg['paging']}; one vCPU; times: "
                 f"{stat_text(cfg)} of the workload loop alone")
    host = cfg['host']
    load = host['load_average_before'][0]
    if load > 0.5:
        lines.append(f"Note: host load average {load:.2f} before the runs "
                     f"on {host['cpus']} CPUs; other jobs inflate wall "
                     f"times more than vCPU times")
    for wl in res['workloads']:
        lines.append('')
        lines.append(f"Workload {wl['kind']}: {wl['what']}, "
                     f"{wl['size_mb']} MiB table, {wl['iters']} iterations, "
                     f"seed {wl['seed']}; checksum {wl['checksum']} in every "
                     f"run; times: "
                     f"{stat_text(cfg, wl['rounds']['rounds'])}")
        lines.append('')
        hdr = (f"{'mode':<17}{'path':<14}{'fills':>9}{'arch/fill':>10}"
               f"{'perf/fill':>10}{'on path':>9}{'filter':>7}"
               f"{'wall s':>8}{'x nat':>7}{'vCPU s':>8}{'x nat':>7}")
        lines.append(hdr)
        lines.append('-' * len(hdr))
        for r in wl['modes']:
            lines.append(
                f"{r.label:<17}{r.intended_path:<14}{r.fills:>9}"
                f"{r.arch_per_fill:>10.2f}{r.performed_per_fill:>10.2f}"
                f"{100 * r.paths[r.intended_path]['share']:>8.2f}%"
                f"{r.filter_hits:>7}{r.wall_time_s:>8.3f}"
                f"{fmt(r.wall_vs_base_native, '.2f'):>7}"
                f"{fmt(r.vcpu_time_s, '.3f'):>8}"
                f"{fmt(r.vcpu_vs_base_native, '.2f'):>7}")
        lines.append('')
        lines += path_shares('Share of fills by path (%):', wl['modes'],
                             lambda r: r.paths, short=True)
        if model_cfg:
            lines.append('')
            lines += format_model(wl['modes'], wl['unit'], model_cfg)
        if wl['overhead']:
            lines.append('')
            lines.append('Overhead of the fork against upstream QEMU (same '
                         'source, no qemu-dseg code).')
            lines.append('Both with -cpu max (direct segments off) and '
                         'without tlb-size, which upstream lacks,')
            lines.append("so both use QEMU's dynamic TLB; "
                         "ratio = fork / upstream:")
            lines.append(f"{'mode':<17}{'fork s':>9}{'upstream s':>12}"
                         f"{'ratio':>7}{'fork vCPU':>11}{'upstream':>10}"
                         f"{'ratio':>7}")
            for o in wl['overhead']:
                lines.append(
                    f"{MODE_BY_NAME[o['mode']].label:<17}"
                    f"{o['fork_off']['wall_time_s']:>9.3f}"
                    f"{o['upstream']['wall_time_s']:>12.3f}"
                    f"{fmt(o['wall_ratio'], '.3f'):>7}"
                    f"{fmt(o['fork_off']['vcpu_time_s'], '.3f'):>11}"
                    f"{fmt(o['upstream']['vcpu_time_s'], '.3f'):>10}"
                    f"{fmt(o['vcpu_ratio'], '.3f'):>7}")
        if wl['rounds']['ratios']:
            lines.append('')
            lines += format_ratios(wl['rounds'], 'Ratios')
        if wl['claims']:
            lines.append('')
            lines.append("The paper's claims, checked on these numbers "
                         "(what we measure; no pass/fail):")
            text = {'vmm-direct': 'VMM direct near base native',
                    'dual-direct': 'dual direct better than base native'}
            for name, c in wl['claims'].items():
                lines.append(
                    f"  {text[name]}: wall "
                    f"{fmt(c['wall_vs_base_native'], '.2f')}x, vCPU "
                    f"{fmt(c['vcpu_vs_base_native'], '.2f')}x base native; "
                    f"{c['arch_per_fill']:.2f} vs "
                    f"{c['base_native_arch_per_fill']:.2f} arch refs/fill"
                    + (f"; {c['cycles_per_op']:.2f} vs "
                       f"{c['base_native_cycles_per_op']:.2f} modelled "
                       f"cycles/{wl['unit']}" if 'cycles_per_op' in c
                       else ''))
    return '\n'.join(lines)


def pct(share, sign=''):
    """A share as a percentage (followed by SIGN), or '-' when it is
    exactly zero."""
    return f'{100 * share:.2f}{sign}' if share else '-'


def format_model(rows, unit, model_cfg):
    """The lines of the TLB model's tables of ROWS (rows.ModeRow with
    their model figures), with operations of UNIT, by the model of
    configuration MODEL_CFG (tlbmodel.record())."""
    lines = [f"Modelled TLBs ({model_cfg['preset']} preset; cycles = "
             f"{model_cfg['l2_cycles']} x L1 misses + "
             f"{model_cfg['ref_cycles']} x walk references); a miss is an "
             f"L1 TLB miss that the L2 TLB did not hold:", '']
    # Columns named by UNIT widen for a long one.
    w_l1, w_refs, w_cycles = (max(width, len(name) + len(unit) + 2)
                              for width, name in ((16, 'L1 miss/'),
                                                  (14, 'refs/'),
                                                  (16, 'cycles/')))
    hdr = (f"{'mode':<17}{'L1 miss/' + unit:>{w_l1}}{'L2 hit':>8}"
           f"{'refs/miss':>11}{'g-seg':>8}{'v-seg':>8}"
           f"{'refs/' + unit:>{w_refs}}{'cycles/' + unit:>{w_cycles}}"
           f"{'x nat':>7}")
    lines.append(hdr)
    lines.append('-' * len(hdr))
    native = next((r.model.cycles_per_op for r in rows
                   if r.mode == 'base-native'), None)
    for r in rows:
        m = r.model
        vs_native = stats.ratio(m.cycles_per_op, native)
        lines.append(
            f"{r.label:<17}{m.l1_misses_per_op:>{w_l1}.3f}"
            f"{pct(m.l2_hit_share, '%'):>8}{fmt(m.refs_per_miss, '.2f'):>11}"
            f"{pct(m.guest_segment_share, '%'):>8}"
            f"{pct(m.vmm_segment_share, '%'):>8}"
            f"{m.refs_per_op:>{w_refs}.3f}"
            f"{m.cycles_per_op:>{w_cycles}.2f}{fmt(vs_native, '.2f'):>7}")
    for field, what in (('unmapped', 'L1 misses whose walk found no '
                         'mapping (in no path)'),
                        ('unmodelled', 'accesses with legacy paging, not '
                         'modelled')):
        odd = [f'{r.label} {getattr(r.model, field)}' for r in rows
               if getattr(r.model, field)]
        if odd:
            lines.append(f"Note: {what}: {', '.join(odd)}")
    lines.append('')
    lines += path_shares('Share of modelled misses by path (%):', rows,
                         lambda r: r.model.paths)
    return lines


def path_shares(title, rows, paths_of, short=False):
    """TITLE, then a line per row of ROWS: its shares by path, in
    percent, of the paths PATHS_OF(row) gives; SHORT: under the paths'
    short names."""
    width = 8 if short else 14
    lines = [title, f"{'mode':<17}" + ''.join(
        f'{PATH_ABBREV[p] if short else p:>{width}}' for p in PATHS)]
    for r in rows:
        lines.append(f"{r.label:<17}" + ''.join(
            f"{pct(paths_of(r)[p]['share']):>{width}}" for p in PATHS))
    return lines


def format_linux(res):
    """The human-readable tables of the Linux experiment's results RES."""
    cfg = res['config']
    model_cfg = cfg.get('tlb_model')
    lines = [f"{cfg['emulator']['version']}; -cpu max,+dseg; "
             f"{cfg['tlb_geometry']}",
             tlbmodel.describe(model_cfg) if model_cfg else
             'TLB model: off (--no-tlb-model)',
             f"Linux: {cfg['guest_mb']} MiB of guest RAM, "
             f"{cfg['vcpus']} vCPU(s), {cfg['paging']}; "
             + ', '.join(f"{p['package']} {p['version']}"
                         for p in cfg['packages'][:1])]
    if cfg['thinvmm_layout']:
        lines.append(f"thinvmm: {cfg['thinvmm_layout']}")
    lines.append('Boot to the first workload (s): ' + ', '.join(
        f'{MODE_BY_NAME[m].label} {s:.1f}' for m, s in cfg['boot_s'].items()))
    for wl in res['workloads']:
        lines.append('')
        status = 'correct in every mode' if wl['all_ok'] else \
            'FAILED in ' + ', '.join(r.label for r in wl['modes']
                                     if not r.ok)
        lines.append(f"Workload {wl['kind']}: {wl['what']}; {status}"
                     + (f"; checksum {wl['checksum']}" if wl['checksum']
                        else ''))
        lines.append('Primary region in the direct modes of the guest '
                     'dimension: ' + (wl['primary_region'] or
                                      'none (the program uses its own '
                                      'memory in every mode)'))
        lines.append('')
        unit = wl['unit']
        if model_cfg:
            lines += format_model(wl['modes'], unit, model_cfg)
            lines.append('')
            lines.append("The emulator's own view, its softmmu TLB's fills "
                         "(QEMU's cache, flushed at every CR3 write: not a "
                         "CPU's TLB):")
            lines.append('')
        w_refs = max(13, len(unit) + 7)
        hdr = (f"{'mode':<17}{'path':<14}{'fills':>9}{'arch/fill':>10}"
               f"{'perf/fill':>10}{'on path':>9}{'filter':>7}"
               f"{'refs/' + unit:>{w_refs}}{'wall s':>8}{'x nat':>7}"
               f"{'vCPU s':>8}")
        lines.append(hdr)
        lines.append('-' * len(hdr))
        for r in wl['modes']:
            share = r.paths[r.intended_path]['share']
            lines.append(
                f"{r.label:<17}{r.intended_path:<14}{r.fills:>9}"
                f"{r.arch_per_fill:>10.2f}{r.performed_per_fill:>10.2f}"
                f"{100 * share:>8.2f}%{r.filter_hits:>7}"
                f"{r.arch_refs_per_op:>{w_refs}.2f}{r.wall_time_s:>8.2f}"
                f"{fmt(r.wall_vs_base_native, '.2f'):>7}"
                f"{fmt(r.vcpu_time_s, '.2f'):>8}")
        lines.append('')
        lines += path_shares('Share of fills by path (%):', wl['modes'],
                             lambda r: r.paths)
        if wl.get('model_claims'):
            lines.append('')
            lines.append("The paper's claims, by the TLB model (walk "
                         f"references per {unit} against base virtualised, "
                         f"translation cycles per {unit} against base "
                         "native; no pass/fail):")
            for name, c in wl['model_claims'].items():
                saved = c['refs_saved_vs_base_virtualised']
                lines.append(
                    f"  {MODE_BY_NAME[name].label}: "
                    f"{c['refs_per_op']:.3f} vs "
                    f"{c['base_virtualised_refs_per_op']:.3f} refs/{unit} "
                    f"({100 * abs(saved):.1f}% "
                    f"{'fewer' if saved >= 0 else 'more'}); "
                    f"{c['cycles_per_op']:.2f} vs "
                    f"{fmt(c['base_native_cycles_per_op'], '.2f')} "
                    f"cycles/{unit}, "
                    f"{fmt(c['cycles_vs_base_native'], '.2f')}x base "
                    f"native")
        elif wl['claims']:
            lines.append('')
            lines.append("The paper's claims, as measured (page-walk "
                         f"references per {unit} against base "
                         "virtualised; no pass/fail):")
            for name, c in wl['claims'].items():
                saved = c['refs_saved_vs_base_virtualised']
                lines.append(
                    f"  {MODE_BY_NAME[name].label}: "
                    f"{c['arch_refs_per_op']:.2f} vs "
                    f"{c['base_virtualised_arch_refs_per_op']:.2f} refs/"
                    f"{unit} ({100 * abs(saved):.1f}% "
                    f"{'fewer' if saved >= 0 else 'more'}); wall "
                    f"{fmt(c['wall_vs_base_native'], '.2f')}x base native")
        lines.append('')
        lines += format_ratios(wl['rounds'], 'Time ratios' + (
            " (with the TLB model's plugin, whose work differs by mode: "
            "no verdicts; the targets are the emulator's, judged with "
            "--no-tlb-model)" if model_cfg else ''))
    return '\n'.join(lines)
