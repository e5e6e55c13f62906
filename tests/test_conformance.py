"""The conformance runner (tests/conformance/runner.py): its own logic, then the CI subset.

The runner's logic is tested with asyncio's ``SelectorEventLoop`` as the stand-in factory, so
these tests need no adapter: a sample module whose tests use the factory's loop, their own
loop or none, fail, hang, or ignore their interrupt, and two real ``test.test_asyncio``
modules whose loop-hook classes the runner binds. The last test runs the fast subset on
``kernel.aio`` itself.
"""

import signal
import sys
import textwrap

import pytest

# tests/ is on sys.path under pytest (it has no __init__.py), so the runner is `conformance`.
from conformance import runner

STAND_IN = "asyncio:SelectorEventLoop"

#: The fast subset must run at least this many tests on the adapter's loop: on Python 3.11
#: it holds 231 tests that run on the factory's loop with the stand-in (267 on 3.13). A
#: factory that leaves most of them on other loops, or a harness that stops installing it,
#: must not pass for conformance.
FAST_FLOOR = 200


def test_expected_failures_parse() -> None:
    text = textwrap.dedent(
        """\
        # a comment, then a blank line

        test_tasks.CTask_CFuture_Tests.test_repr  # checks the C Task's repr
          test_events.AdapterEventLoopTests.test_x   #  reads loop._selector
        """
    )
    assert runner.parse_expected_failures(text) == {
        "test_tasks.CTask_CFuture_Tests.test_repr": "checks the C Task's repr",
        "test_events.AdapterEventLoopTests.test_x": "reads loop._selector",
    }


def test_expected_failures_for_some_pythons_only() -> None:
    text = textwrap.dedent(
        """        test_server.A.test_old @3.12  # 3.12's private counter
        test_server.A.test_older @3.11,3.12  # gone in 3.13
        test_events.A.test_all  # every version
        """
    )
    assert set(runner.parse_expected_failures(text)) == {
        "test_server.A.test_old",
        "test_server.A.test_older",
        "test_events.A.test_all",
    }
    assert set(runner.parse_expected_failures(text, python="3.12")) == {
        "test_server.A.test_old",
        "test_server.A.test_older",
        "test_events.A.test_all",
    }
    assert set(runner.parse_expected_failures(text, python="3.11")) == {
        "test_server.A.test_older",
        "test_events.A.test_all",
    }
    assert set(runner.parse_expected_failures(text, python="3.13")) == {"test_events.A.test_all"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("test_tasks.Class.test_name", "no reason"),
        ("test_tasks.Class.test_name  #   ", "no reason"),
        ("test_tasks.test_name  # too short", "is not 'test_module.Class.test_name"),
        ("test_tasks.A.b test_tasks.A.c  # two ids", "is not '@3.X'"),
        ("test_tasks.A.b @3.12 @3.13  # two qualifiers", "is not 'test_module.Class.test_name"),
        ("test_tasks.A.b @3.x  # not a version", "is not '@3.X'"),
        ("test_tasks.A.b 3.12  # no @", "is not '@3.X'"),
        ("test_tasks.A.b  # once\ntest_tasks.A.b @3.12  # twice", "listed twice"),
    ],
)
def test_expected_failures_reject_bad_lines(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        runner.parse_expected_failures(line)


def test_shipped_expected_failures_name_target_modules() -> None:
    entries = runner.load_expected_failures()
    assert {test_id.split(".")[0] for test_id in entries} <= set(runner.TARGET_MODULES)


@pytest.mark.parametrize(
    ("use", "where"),
    [
        (runner.LoopUse(created=1, ran=True, others=2), "adapter"),
        (runner.LoopUse(created=0, ran=True), "adapter"),  # a loop built before the test
        (runner.LoopUse(created=2, others=1), "idle"),
        (runner.LoopUse(others=1), "own"),
        (runner.LoopUse(), "none"),
    ],
)
def test_loop_use_classifies(use: runner.LoopUse, where: str) -> None:
    assert use.where() == where


SAMPLE = """\
import asyncio
import signal
import unittest

from test.test_asyncio import utils as test_utils


async def fail() -> None:
    raise AssertionError("boom")


class Sample(test_utils.TestCase):
    def test_a_factory_loop(self):
        loop = asyncio.new_event_loop()
        self.addCleanup(loop.close)
        self.assertEqual(loop.run_until_complete(asyncio.sleep(0, "ok")), "ok")

    def test_b_asyncio_run(self):
        asyncio.run(asyncio.sleep(0))

    def test_c_resets_policy(self):
        asyncio.set_event_loop_policy(None)

    def test_d_after_reset(self):
        asyncio.run(asyncio.sleep(0))

    def test_e_idle(self):
        asyncio.new_event_loop().close()

    def test_f_test_loop(self):
        self.new_test_loop().run_until_complete(asyncio.sleep(0))

    def test_g_selector_loop(self):
        loop = asyncio.SelectorEventLoop()
        self.addCleanup(loop.close)
        loop.run_until_complete(asyncio.sleep(0))

    def test_h_no_loop(self):
        pass

    def test_i_fails(self):
        asyncio.run(fail())

    def test_j_listed_fails(self):
        asyncio.run(fail())

    def test_k_listed_passes(self):
        asyncio.run(asyncio.sleep(0))

    def test_l_hangs(self):
        asyncio.run(asyncio.sleep(60))

    def test_m_ignores_interrupt(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
        asyncio.run(asyncio.sleep(60))

    def test_n_after_restart(self):
        asyncio.run(asyncio.sleep(0))

    def test_o_skipped(self):
        self.skipTest("not today")


class Isolated(unittest.IsolatedAsyncioTestCase):
    async def test_isolated(self):
        await asyncio.sleep(0)
"""


def test_runner_classifies_times_out_and_restarts(pytester: pytest.Pytester) -> None:
    package = pytester.mkpydir("confsample")
    (package / "sample.py").write_text(SAMPLE)
    options = runner.RunOptions(
        factory=STAND_IN, timeout=1.0, grace=1.0, search_path=(str(pytester.path),)
    )
    prefix = "confsample.sample.Sample."
    expected = {
        prefix + "test_j_listed_fails": "fails on purpose",
        prefix + "test_k_listed_passes": "passes on purpose",
    }
    report = runner.run_conformance(["confsample.sample"], options, expected)
    (run,) = report.runs
    seen = {r.test_id.removeprefix(prefix): (r.where, r.outcome) for r in run.records}
    assert seen == {
        "test_a_factory_loop": ("adapter", "pass"),
        "test_b_asyncio_run": ("adapter", "pass"),
        "test_c_resets_policy": ("none", "pass"),
        "test_d_after_reset": ("adapter", "pass"),
        "test_e_idle": ("idle", "pass"),
        "test_f_test_loop": ("own", "pass"),
        "test_g_selector_loop": ("own", "pass"),
        "test_h_no_loop": ("none", "pass"),
        "test_i_fails": ("adapter", "fail"),
        "test_j_listed_fails": ("adapter", "fail"),
        "test_k_listed_passes": ("adapter", "pass"),
        "test_l_hangs": ("adapter", "timeout"),
        "test_m_ignores_interrupt": ("adapter", "timeout"),
        "test_n_after_restart": ("adapter", "pass"),
        "test_o_skipped": ("none", "skip"),
        "confsample.sample.Isolated.test_isolated": ("adapter", "pass"),
    }
    (row,) = report.rows
    assert (row.adapter, row.idle, row.own, row.none, row.skipped) == (10, 1, 2, 2, 1)
    assert (row.passed, row.failed, row.timeouts, row.xfail, row.xpass) == (7, 1, 2, 1, 1)
    assert {r.test_id for r in report.unexpected} == {
        prefix + "test_i_fails",
        prefix + "test_l_hangs",
        prefix + "test_m_ignores_interrupt",
    }
    assert row.unexpected_passes == [prefix + "test_k_listed_passes"]
    assert row.skip_reasons == {"not today": 1}
    assert row.not_run == 0
    assert "child restarted 1x after a test hung or killed it" in row.notes
    assert not report.ok
    text = runner.render_text(report)
    assert "Unexpected passes: remove these from EXPECTED_FAILURES:" in text
    assert "| confsample.sample | 10 | 7 | 1 |" in runner.render_markdown(report)


def test_runner_binds_loop_hook_mixins() -> None:
    options = runner.RunOptions(factory=STAND_IN, timeout=30.0)
    report = runner.run_conformance(["test_server", "test_runners"], options, {}, jobs=2)
    if not report.ok:
        pytest.fail(runner.render_text(report, verbose=True), pytrace=False)
    server, runners = report.runs
    assert server.bound == ["AdapterStartServerTests"]
    assert runners.bound == ["AdapterRunTests", "AdapterRunnerTests"]
    for run in report.runs:
        assert run.replaced > 0
        bound = tuple(f"{run.module}.{name}." for name in run.bound)
        from_bound = [r for r in run.records if r.test_id.startswith(bound)]
        # Every bound test ran on the factory's loop, except two that choose their loop
        # themselves: test_custom_factory uses a mock ("none"), and 3.13's
        # test_loop_factory_default_event_loop passes asyncio.EventLoop ("own").
        # And the selector classes did not run.
        elsewhere = {
            r.test_id.rpartition(".")[2]: r.where for r in from_bound if r.where != "adapter"
        }
        assert (
            elsewhere.items()
            <= {
                "test_custom_factory": "none",
                "test_loop_factory_default_event_loop": "own",
            }.items()
        )
        assert not [r for r in run.records if "Selector" in r.test_id]


def test_tests_that_press_ctrl_c_run_when_the_runner_inherits_it_ignored() -> None:
    # A shell starts background jobs (`make conformance &`) with SIGINT ignored; children
    # inherit that, and a test that simulates Ctrl-C with _thread.interrupt_main() would
    # then wait forever -- on asyncio's own loop too. The children restore the default.
    options = runner.RunOptions(factory=STAND_IN, timeout=10.0, patterns=("test_interrupt_wait",))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        report = runner.run_conformance(["test_runners"], options, {})
    finally:
        signal.signal(signal.SIGINT, previous)
    if not report.ok:
        pytest.fail(runner.render_text(report, verbose=True), pytrace=False)
    (row,) = report.rows
    assert row.passed >= 1 and row.timeouts == 0


@pytest.mark.timeout(240)  # let the runner's own time limits report a hang, not pytest's
def test_fast_conformance_on_the_adapter() -> None:
    options = runner.RunOptions(factory=runner.DEFAULT_FACTORY, timeout=10.0, module_timeout=45.0)
    expected = runner.load_expected_failures(python=runner.python_version(sys.executable))
    report = runner.run_conformance(runner.FAST_MODULES, options, expected, jobs=2)
    if not report.ok:
        pytest.fail(runner.render_text(report, verbose=True), pytrace=False)
    ran = report.total().adapter
    assert ran >= FAST_FLOOR, f"only {ran} tests ran on the adapter\n{runner.render_text(report)}"
