"""A sweep's description, its runs, and what keys each run.

A sweep names an experiment (a subcommand of scripts/dseg-experiment.py),
the options all its runs share, and its axes: options with a list of
values each.  Every combination of the axes' values is one run, and a run
is one boot of the fork: one translation mode (--modes), for the
bare-metal experiment one workload (--workload), one round (--runs 1),
and no comparison with upstream.  The description is a TOML file::

    experiment = "bare-metal"
    [options]
    size-mb = 4
    iters = "gups=20000,chase=20000"
    [axes]
    modes = ["base-native", "vmm-direct"]
    workload = ["gups", "chase"]
    tlb-size = [64, 256]

or the same on the command line (dseg-sweep.py --experiment bare-metal
--option size-mb=4 --axis modes=base-native,vmm-direct ...; --option
NAME alone is a flag), which adds to and overrides the file.  A value is an option's argument; true is a
flag without one, false leaves the option out, and a list gives an
option of several arguments (the Linux experiment's --workloads).

A run's key is a digest of its options and of the content of everything
its result depends on (inputs()): the fork and its plugins, the test
guests, this package's code, and for the Linux experiment the Debian
kernel package.  A finished run is never repeated for the same key.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import contextlib
import glob
import hashlib
import io
import itertools
import json
import os
import tomllib
from dataclasses import dataclass

from .. import config
from ..experiment import cli

# Options that the sweep sets itself in every run's command line.
RESERVED = ('runs', 'max-runs', 'out', 'no-chart', 'chart', 'build', 'qemu',
            'guests', 'upstream-qemu', 'no-upstream')
# What must have one value per run, so that a run is one boot.
ONE_PER_RUN = {'bare-metal': ('modes', 'workload'), 'linux': ('modes',)}
# What the sweep adds to every run of an experiment for one boot.
ONE_BOOT = {'bare-metal': ('--runs', '1', '--no-upstream'),
            'linux': ('--runs', '1')}
# Options that change how a workload is translated, not what it computes:
# runs that differ only in these must agree on the workload's checksum.
TRANSLATION_OPTIONS = ('modes', 'tlb-size', 'tlb-model', 'tlb-model-options',
                       'no-tlb-model', 'nested-page', 'timeout')


class SweepError(Exception):
    """A sweep that cannot run as described."""


@dataclass(frozen=True)
class Run:
    """One run: the experiment, the values of the axes at its point, and
    all its options (the shared ones, then the axes'), each as (name,
    value) with value a string, True, or a tuple of strings."""
    experiment: str
    point: tuple
    options: tuple

    def argv(self):
        """The experiment's command line, without paths."""
        argv = [self.experiment, *ONE_BOOT[self.experiment]]
        for name, value in self.options:
            if value is True:
                argv.append('--' + name)
            elif isinstance(value, tuple):
                argv += ['--' + name, *value]
            else:
                argv += ['--' + name, value]
        return argv

    def label(self):
        """The point, for people: NAME=VALUE for each axis."""
        return ' '.join(f'{name}={_text(value)}' for name, value in self.point)

    def checksum_group(self):
        """What the workload computes: runs of the same group must agree
        on its checksum."""
        return (self.experiment,) + tuple(
            (n, v) for n, v in self.options if n not in TRANSLATION_OPTIONS)


def _text(value):
    return ','.join(value) if isinstance(value, tuple) else str(value)


def _value(where, name, value):
    """A TOML or command-line VALUE of option NAME as a Run's: a string,
    True, a tuple of strings, or None (false: left out)."""
    if value is True or value is False:
        return value or None
    if isinstance(value, list):
        if not value or not all(isinstance(v, (str, int)) and
                                not isinstance(v, bool) for v in value):
            raise SweepError(f'{where}: {name}: a list of strings or '
                             'numbers, not empty')
        return tuple(str(v) for v in value)
    if isinstance(value, (str, int, float)):
        return str(value)
    raise SweepError(f'{where}: {name}: {value!r} is not an option value')


def _name(where, name):
    if not isinstance(name, str) or not name or name.startswith('-'):
        raise SweepError(f'{where}: {name!r} is not an option name (the '
                         "experiment's long option without its dashes)")
    if name in RESERVED:
        raise SweepError(f'{where}: {name}: the sweep sets it itself')
    return name


def load(path):
    """The description in the TOML file PATH, as {experiment, options,
    axes}."""
    try:
        with open(path, 'rb') as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SweepError(f'{path}: {e}') from e
    unknown = set(doc) - {'experiment', 'options', 'axes'}
    if unknown:
        raise SweepError(f'{path}: unknown keys {sorted(unknown)}: a sweep '
                         'has experiment, [options] and [axes]')
    for table in ('options', 'axes'):
        if not isinstance(doc.get(table, {}), dict):
            raise SweepError(f'{path}: {table} must be a table')
    return {'experiment': doc.get('experiment'),
            'options': dict(doc.get('options', {})),
            'axes': dict(doc.get('axes', {}))}


def assignments(items, what):
    """--axis NAME=VALUE,... as {name: [values]}, or --option NAME=VALUE
    or NAME (a flag) as {name: value or True}."""
    out = {}
    for item in items:
        name, eq, value = item.partition('=')
        if not eq and what == 'option':
            out[name] = True
            continue
        if not eq:
            raise SweepError(f'--{what} {item}: use NAME=VALUE')
        out[name] = value.split(',') if what == 'axis' else value
    return out


def expand(spec):
    """The runs of SPEC ({experiment, options, axes}), every combination
    of the axes' values in order, the first axis slowest."""
    experiment = spec.get('experiment') or cli.COMMANDS[0]
    if experiment not in cli.COMMANDS:
        raise SweepError(f'experiment {experiment!r}: one of '
                         f'{", ".join(cli.COMMANDS)}')
    options = {}
    for name, value in spec['options'].items():
        value = _value('options', _name('options', name), value)
        if value is not None:
            options[name] = value
    axes = []
    for name, values in spec['axes'].items():
        _name('axes', name)
        if not isinstance(values, list) or not values:
            raise SweepError(f'axes: {name}: a list of values, not empty')
        vs = [_value('axes', name, v) for v in values]
        if len(set(vs)) != len(vs):
            raise SweepError(f'axes: {name}: a value twice')
        axes.append((name, vs))
    names = [n for n, _ in axes]
    both = set(names) & set(options)
    if both:
        raise SweepError(f'{", ".join(sorted(both))}: an axis and an option')
    for name in ONE_PER_RUN[experiment]:
        value = options.get(name)
        if name not in names and isinstance(value, tuple) and len(value) > 1:
            raise SweepError(f'options: {name}: one value per run (a run is '
                             'one boot); make it an axis')
    if 'modes' not in names and 'modes' not in options:
        raise SweepError('modes: each run boots one translation mode: name '
                         'it, as an option or an axis')
    workloads = [options.get('workload'), *dict(axes).get('workload', [])]
    if 'all' in workloads or ('all',) in workloads:
        raise SweepError('workload: all is three boots; make workload an '
                         'axis of the workloads instead')
    runs = []
    for combo in itertools.product(*(vs for _, vs in axes)):
        point = tuple((n, v) for n, v in zip(names, combo) if v is not None)
        for name, value in point:
            if name in ONE_PER_RUN[experiment] and \
                    isinstance(value, tuple) and len(value) > 1:
                raise SweepError(f'axes: {name}: one value per run (a run '
                                 'is one boot)')
        runs.append(Run(experiment, point, tuple(options.items()) + point))
    return runs


def check(runs, qemu, guests):
    """Parse each run's command line as the experiment would, with the
    fork QEMU and the guests GUESTS, its long options spelt out, so that
    a bad option stops the sweep before anything runs; {run: its
    options}."""
    parsed = {}
    for run in runs:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parsed[run] = cli.parse_args(
                    run.argv() + ['--qemu', qemu, '--guests', guests,
                                  '--out', os.devnull], allow_abbrev=False)
        except SystemExit as e:
            lines = err.getvalue().strip().splitlines()
            raise SweepError(f'run {run.label() or "(no axes)"}: '
                             f'{lines[-1] if lines else e}') from None
    return parsed


def _digest_files(paths):
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(os.path.basename(path).encode() + b'\0')
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
    return h.hexdigest()


def inputs(experiment, qemu, guests):
    """The digests of what a run's result depends on besides its options:
    {fork, plugins, guests, code (this package but the sweep and the
    tests' helpers)} and, for the Linux experiment, the Debian kernel
    package that its guest boots."""
    plugins = os.path.dirname(config.plugin('x', qemu))
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = [p for p in glob.glob(os.path.join(package, '**', '*.py'),
                                 recursive=True)
            if os.path.relpath(p, package).split(os.sep)[0]
            not in ('sweep', 'testing.py')]
    regular = [p for p in glob.glob(os.path.join(guests, '*'))
               if os.path.isfile(p)]
    found = {
        'fork': _digest_files([qemu]),
        'plugins': _digest_files(glob.glob(os.path.join(plugins, '*.so'))),
        'guests': _digest_files(regular),
        'code': _digest_files(code),
    }
    if experiment == 'linux':
        from ..assets import debian
        found['kernel'] = debian.kernel_package()
    return found


def key(run, found):
    """RUN's key: the digest of its experiment, its options in the order
    of their names, and FOUND (inputs())."""
    text = json.dumps({'experiment': run.experiment,
                       'options': sorted(run.options), 'inputs': found},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]
