"""Merging a sweep's runs: one JSON, one table and a chart per axis.

The merge reads every run's status and results, checks that runs which
compute the same thing (spec.Run.checksum_group()) agree on each
workload's checksum, marks those that do not 'wrong-checksum' (so that
the next sweep runs them again), and writes into OUT:

  sweep.json   the description, the axes, and per run its point, key,
               status, log, provenance (host, start, the fork's and the
               guests' digests, Debian packages, seed) and results
  sweep.txt    the table: a line per run and workload
  charts/AXIS.png  for each axis with more than one value: the
               architectural references per fill (and, with the TLB
               model, modelled cycles per operation) over its values, a
               line per combination of the other axes' values

SPDX-License-Identifier: GPL-2.0-or-later
"""

import os
from collections import Counter, defaultdict

from . import runner

def ops(wl, row):
    """The operations of ROW's window: the Linux experiment's count, or
    the bare-metal workload's iterations."""
    return row.get('ops') or wl['iters']


# The table's figures of a row: (header, width, function of the workload
# and the row).
FIGURES = (
    ('fills', 10, lambda w, r: f"{r['fills']}"),
    ('fills/op', 8, lambda w, r: f"{r['fills'] / ops(w, r):.4f}"),
    ('refs/fill', 9, lambda w, r: f"{r['arch_per_fill']:.2f}"),
    ('refs/op', 8, lambda w, r: f"{r['arch_refs'] / ops(w, r):.3f}"),
    ('path', 13, lambda w, r: r['dominant_path']),
    ('time s', 8, lambda w, r: f"{r['wall_time_s']:.3f}"),
    ('model cyc/op', 12, lambda w, r: f"{r['model']['cycles_per_op']:.1f}"
     if r.get('model') else '-'),
)
# The charts' figures: (label, function of the workload and the row).
CHART_FIGURES = (
    ('TLB fills per operation', lambda w, r: r['fills'] / ops(w, r)),
    ('architectural references per operation',
     lambda w, r: r['arch_refs'] / ops(w, r)),
)
MODEL_FIGURE = ('modelled translation cycles per operation',
                lambda w, r: r['model']['cycles_per_op']
                if r.get('model') else None)


def _kind(e, wl):
    """The workload's name where the point does not say it already."""
    return '' if wl['kind'] in dict(e['run'].point).values() else wl['kind']


def _mark_checksums(entries):
    """Mark the runs whose workload checksum differs from the right one of
    their group: the one the group's base-native runs agree on, else the
    one most runs give.  If that is not clear (base native's runs
    disagree, or a tie), every run of the group is marked: none can be
    trusted."""
    groups = defaultdict(list)
    for e in entries:
        if e['status'] == 'ok':
            for wl in e['results']['workloads']:
                groups[(e['run'].checksum_group(), wl['kind'])].append(
                    (e, wl))
    for members in groups.values():
        native = Counter(wl['checksum'] for e, wl in members
                         if dict(e['run'].options).get('modes') in
                         ('base-native', ('base-native',)))
        votes = native or Counter(wl['checksum'] for _, wl in members)
        (want, n), *rest = votes.most_common(2) + [(None, 0)]
        if len(native) > 1 or rest[0][1] == n:
            want = None
        for e, wl in members:
            if wl['checksum'] != want or not wl.get('all_ok', True):
                e['status'] = 'wrong-checksum'
                st = dict(e['status_file'], status='wrong-checksum',
                          expected_checksum=want, checksum=wl['checksum'])
                runner.write_json(os.path.join(runner.run_dir(
                    e['out'], e['key']), 'status.json'), st)


def collect(out, runs):
    """The entries of RUNS ([(run, key)]) under OUT: their status
    ('todo' for a run that never ended), log and results."""
    entries = []
    for run, key in runs:
        d = runner.run_dir(out, key)
        st = runner.status(out, key)
        entries.append({
            'run': run, 'key': key, 'out': out, 'status_file': st,
            'status': st['status'] if st else 'todo',
            'log': os.path.join(d, 'log.txt'),
            'results': runner.read_json(os.path.join(d, 'results.json'))
            if st and st['status'] == 'ok' else None,
            'inputs': (runner.read_json(os.path.join(d, 'run.json'))
                       or {}).get('inputs')})
    _mark_checksums(entries)
    return entries


def _provenance(e):
    res = e['results'] or {}
    cfg = res.get('config', {})
    st = e['status_file'] or {}
    return {'host': st.get('host'), 'started': st.get('started'),
            'seconds': st.get('seconds'), 'inputs': e['inputs'],
            'emulator': cfg.get('emulators', {}).get('fork-dseg',
                                                     cfg.get('emulator')),
            'packages': cfg.get('packages'), 'seed': cfg.get('seed'),
            'argv': e['run'].argv()}


def document(spec, entries):
    """sweep.json's content."""
    axes = {n: [v for v in vs] for n, vs in spec['axes'].items()}
    return {
        'description': spec, 'axes': axes,
        'counts': dict(Counter(e['status'] for e in entries)),
        'runs': [{'key': e['key'], 'point': dict(e['run'].point),
                  'status': e['status'], 'log': e['log'],
                  'provenance': _provenance(e), 'results': e['results']}
                 for e in entries]}


def rows(entries):
    """(entry, workload, row) of every finished run's results."""
    for e in entries:
        if e['status'] == 'ok':
            for wl in e['results']['workloads']:
                for row in wl['modes']:
                    yield e, wl, row


def table(entries, axis_names):
    """The table for people: a line per run and workload."""
    head = [(n, max(len(n), *(len(str(dict(e['run'].point).get(n, '')))
                              for e in entries))) for n in axis_names]
    kinds = any(_kind(e, wl) for e, wl, _ in rows(entries))
    head += [('workload', 10)] * kinds + [(h, w) for h, w, _ in FIGURES]
    lines = ['  '.join(f'{h:<{w}}' for h, w in head).rstrip()]
    for e, wl, row in rows(entries):
        point = dict(e['run'].point)
        cells = [str(point.get(n, '')) for n in axis_names]
        cells += [wl['kind']] * kinds + [f(wl, row) for _, _, f in FIGURES]
        lines.append('  '.join(f'{c:<{w}}' for c, (_, w) in
                               zip(cells, head)).rstrip())
    failed = [e for e in entries if e['status'] != 'ok']
    for e in failed:
        lines.append(f"{e['status']}: {e['run'].label()}: {e['log']}")
    return '\n'.join(lines)


def charts(entries, axis_names, directory):
    """A PNG per axis with more than one value; returns their paths."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    data = list(rows(entries))
    model = any(row.get('model') for _, _, row in data)
    paths = []
    for axis in axis_names:
        values = []
        for e, _, _ in data:
            v = dict(e['run'].point).get(axis)
            if v is not None and v not in values:
                values.append(v)
        if len(values) < 2:
            continue
        lines = defaultdict(dict)
        for e, wl, row in data:
            point = dict(e['run'].point)
            rest = ' '.join(f'{n}={point[n]}' for n in axis_names
                            if n != axis and n in point)
            lines[f"{_kind(e, wl)} {rest}".strip()][point.get(axis)] = \
                (wl, row)
        figures = CHART_FIGURES + ((MODEL_FIGURE,) if model else ())
        fig, axs = pyplot.subplots(1, len(figures),
                                   figsize=(6 * len(figures), 4.5),
                                   squeeze=False)
        xs = list(range(len(values)))
        for ax, (label, f) in zip(axs[0], figures):
            for name, by_value in sorted(lines.items())[:16]:
                ys = [f(*by_value[v]) if v in by_value else None
                      for v in values]
                ax.plot([x for x, y in zip(xs, ys) if y is not None],
                        [y for y in ys if y is not None], marker='o',
                        label=name)
            ax.set_xticks(xs, [str(v) for v in values], rotation=20,
                          fontsize=8)
            ax.set_xlabel(axis)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axs[0][0].legend(fontsize=7)
        fig.suptitle(f'sweep: {axis}')
        fig.tight_layout()
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{axis}.png")
        fig.savefig(path, dpi=110)
        pyplot.close(fig)
        paths.append(path)
    return paths
