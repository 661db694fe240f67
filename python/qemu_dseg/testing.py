"""The base of qemu-dseg's functional tests: logs, guests, TAP.

Every test gets a log directory of its own,
QEMU_DSEG_LOG_DIR/<test file>/<Class>.<method> (build/tests/functional/...
under meson; a class's log_group, if set, in place of <test file>),
emptied when the test starts and kept afterwards, pass or fail; each
machine it starts writes NAME-console.log (the serial console) and
NAME.log (QEMU's own output) there.  setUpClass work logs to
<test file>/<Class>.  A failing test prints its log directory.

SPDX-License-Identifier: GPL-2.0-or-later
"""

import contextlib
import io
import json
import os
import shutil
import sys
import unittest

from . import assets, config, guests
from .machine import Machine


def log_dir(*parts):
    """An empty log directory QEMU_DSEG_LOG_DIR/PARTS."""
    path = os.path.join(config.LOG_DIR, *parts)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def linux_image(logs, init_script, **kwargs):
    """assets.linux_guest(INIT_SCRIPT, **KWARGS), with the Debian
    packages it is made of printed and written to LOGS/packages.json."""
    image = assets.linux_guest(init_script, **kwargs)
    with open(os.path.join(logs, 'packages.json'), 'w') as f:
        json.dump(image.records(), f, indent=1)
    for pkg in image.packages:
        print(f'# package: {pkg}', file=sys.stderr, flush=True)
    return image


def read_files(sources):
    """{path in the guest: bytes} of {path in the guest: host file}."""
    files = {}
    for dst, src in sources.items():
        with open(src, 'rb') as f:
            files[dst] = f.read()
    return files


def _test_file(cls):
    if cls.log_group:
        return cls.log_group
    module = sys.modules[cls.__module__]
    return os.path.splitext(os.path.basename(module.__file__))[0]


class TestCase(unittest.TestCase):
    """A functional test: machines log to the test's own directory."""

    # The first part of the class's log directories; None: the name of
    # the test file.
    log_group = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.logs = log_dir(_test_file(cls), cls.__name__)
        cls._names = set()

    @classmethod
    def run_bench(cls, argv):
        """The overhead benchmark (qemu_dseg.experiment.overhead) with ARGV
        and the fork and guests under test, writing into the class's logs:
        what it printed (shown as TAP comments too) and its results."""
        from .experiment import overhead

        out = os.path.join(cls.logs, 'bench')
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            overhead.main([*argv, '--qemu', config.QEMU,
                           '--guests', config.GUESTS, '--out', out])
        print(''.join(f'# {line}\n' for line in
                      text.getvalue().splitlines()))
        with open(os.path.join(out, 'results.json')) as f:
            return text.getvalue(), json.load(f)

    def setUp(self):
        super().setUp()
        self.logs = log_dir(_test_file(type(self)),
                            f'{type(self).__name__}.{self._testMethodName}')
        self._names = set()

    def run(self, result=None):
        result = result or self.defaultTestResult()
        bad = len(result.failures) + len(result.errors)
        super().run(result)
        if len(result.failures) + len(result.errors) > bad:
            print(f'# logs of {self.id()}: {self.logs}', file=sys.stderr,
                  flush=True)
        return result

    def machine(self, args, name='vm', **kwargs):
        """A Machine logging to this test's directory, under a name that
        is unique in it."""
        unique, n = name, 1
        while unique in self._names:
            n += 1
            unique = f'{name}-{n}'
        self._names.add(unique)
        return Machine(args, name=unique, log_dir=self.logs, **kwargs)

    def linux_image(self, init_script, **kwargs):
        """A Linux guest of Debian's packages, recorded in the test's
        logs (see linux_image())."""
        return linux_image(self.logs, init_script, **kwargs)

    # --- bare-metal test guests ---------------------------------------

    def run_guest(self, name, append='', timeout=60, **kwargs):
        """Run test guest NAME to its end; return (status, console).
        KWARGS go to guests.args()."""
        with self.machine(guests.args(name, append, **kwargs), name=name,
                          qmp=False) as vm:
            vm.launch()
            return vm.wait_guest_exit(timeout), vm.console()

    def run_guest_windows(self, name, append='', cpu='max,+dseg',
                          timeout=60, **kwargs):
        """Run guest NAME, closing a counter window at each checkpoint.

        Returns (status, console, {checkpoint: DsegCpuInfo of vCPU 0}):
        the counters read at checkpoint N are those since checkpoint N-1.
        """
        windows = {}

        def at_checkpoint(cp):
            windows[cp] = vm.counter_window()[0]

        with self.machine(guests.args(name, append, cpu=cpu, **kwargs),
                          name=name) as vm:
            vm.launch()
            status = vm.serve_checkpoints(at_checkpoint, timeout)
            return status, vm.console(), windows

    def assert_guest_passed(self, status, console):
        """Fail unless the guest met its TAP plan with every check ok."""
        plan, results = guests.tap(console)
        tail = '\n--- console ---\n' + console[-4000:]
        failed = [f'{n} - {text}' for passed, n, text in results
                  if not passed]
        self.assertEqual(failed, [], 'guest checks failed' + tail)
        self.assertIsNotNone(plan, 'guest printed no single TAP plan' + tail)
        self.assertEqual([n for _, n, _ in results], list(range(1, plan + 1)),
                         'guest did not run its planned checks' + tail)
        self.assertEqual(status, 0, 'guest exit status' + tail)


def main(argv=None):
    """Run the calling module's test cases with TAP output; ARGV, if
    given, in place of sys.argv for unittest."""
    import pycotap

    class Result(pycotap.TAPTestResult):
        """pycotap's result, which has no addSubTest: a failing subtest
        would leave its test with no TAP line and its message unsaid."""

        def __init__(self, *args):
            super().__init__(*args)
            self.failed_subtests = set()
            self.reported = set()

        def not_ok(self, test):
            self.reported.add(test.id())
            super().not_ok(test)

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is not None:
                failed = (self.failures if issubclass(
                    err[0], test.failureException) else self.errors)
                self.message.write(f'{subtest}: {failed[-1][1]}\n')
                self.failed_subtests.add(test.id())

        def stopTest(self, test):
            if (test.id() in self.failed_subtests and
                    test.id() not in self.reported):
                self.not_ok(test)
            super().stopTest(test)

    class Runner(pycotap.TAPTestRunner):
        def run(self, test):
            result = Result(self.output_stream, self.error_stream,
                            self.message_log, self.test_output_log)
            test(result)
            result.printErrors()
            return result

    unittest.main(argv=argv, testRunner=Runner(
        message_log=pycotap.LogMode.LogToError,
        test_output_log=pycotap.LogMode.LogToError), verbosity=0)
