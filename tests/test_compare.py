"""``python -m kernel compare``: one asyncio program on asyncio's own loop and on kernel.aio.

* Golden reports, on the virtual clock, for the course's programs (examples 15, 17, 18) and
  for the programs beside the golden files (tests/golden/compare/*.py): a gather of sleeps, a
  Queue producer/consumer, a script that calls ``asyncio.run()`` -- all of which match -- and
  four timers with one deadline, where the two loops really do differ. To rewrite them after
  a deliberate change of wording, run ``KERNEL_UPDATE_GOLDEN=1 python -m pytest
  tests/test_compare.py`` and read the diff.
* The recording loop speaks the adapter's vocabulary: for the programs that match, its records
  are the adapter's, field for field, except the ``select`` records of the turns in which the
  kernel skips select(). It names the tasks behind the C Task's callbacks and the Python
  Task's alike, and its virtual clock jumps instead of sleeping.
* A divergence is found where it is: the adapter, made to run its ready queue in another
  order, is caught at the first callback that differs; the alignment itself, on hand-made
  schedules, tells a different order from different turn boundaries.
* The command line, --json, the reports pasted in docs/views.md, and Python 3.13.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

import kernel
import kernel.__main__ as cli
from kernel.scheduler import Callback, Kernel
from kernel.trace import compare
from kernel.trace.asyncio_recorder import RecordingEventLoop
from kernel.trace.compare import Ran, align

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "compare"
PYTHON313 = Path("/root/.pyenv/versions/3.13.0/bin/python3.13")

# program -> its golden report (--deterministic), and whether the schedules match.
REPORTS = {
    "examples/15_asyncio_sleep_then_123.py": ("15_asyncio_sleep_then_123.txt", True),
    "examples/17_asyncio_done_callback.py": ("17_asyncio_done_callback.txt", True),
    "examples/18_asyncio_run_forever_stop.py": ("18_asyncio_run_forever_stop.txt", True),
    "tests/golden/compare/gather_sleeps.py": ("gather_sleeps.txt", True),
    "tests/golden/compare/producer_consumer.py": ("producer_consumer.txt", True),
    "tests/golden/compare/asyncio_run.py": ("asyncio_run.txt", True),
    "tests/golden/compare/equal_deadlines.py": ("equal_deadlines.txt", False),
}
MATCHING = sorted(program for program, (_, matches) in REPORTS.items() if matches)
# asyncio.run() also runs the loop's own coroutines (shutdown_asyncgens...), whose names are
# the class's: BaseEventLoop's on asyncio, EventLoop's on the adapter.
SAME_RECORDS = sorted(set(MATCHING) - {"tests/golden/compare/asyncio_run.py"})


def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str
) -> tuple[int, str, str]:
    """Run ``python -m kernel <argv>`` in this process, from the repository's root."""
    monkeypatch.chdir(ROOT)
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("program", sorted(REPORTS))
def test_golden_report(
    program: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = run_cli(capsys, monkeypatch, "compare", program, "--deterministic")
    golden, matches = REPORTS[program]
    assert (status, err) == (0 if matches else 1, "")
    if os.environ.get("KERNEL_UPDATE_GOLDEN"):
        (GOLDEN / golden).write_text(out, encoding="utf-8")
    assert out == (GOLDEN / golden).read_text(encoding="utf-8")


@pytest.mark.parametrize("program", ["examples/15_asyncio_sleep_then_123.py"])
def test_the_course_program_matches_on_the_real_clock(program: str) -> None:
    # On the real clock too (one second of real sleep), and with asyncio's task names taken
    # from a counter this test process has long been running up: the names are renumbered.
    comparison = compare.compare(ROOT / program)
    assert (comparison.verdict, comparison.at) == ("match", None)
    assert [entry.what for entry in comparison.runs[0].schedule] == [
        "Task-1.__step",
        "TimerHandle(futures._set_result_unless_cancelled(Future-1, None))",
        "Task-1.__wakeup(Future-1)",
        "_run_until_complete_cb(Task-1)",
    ]


# -- the recording loop ------------------------------------------------------------------------


def without_select(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "step"} for r in records if r["event"] != "select"]


@pytest.mark.parametrize("program", SAME_RECORDS)
def test_the_recording_loop_speaks_the_adapters_vocabulary(program: str) -> None:
    on_asyncio, on_adapter = (
        run.traced for run in compare.compare(ROOT / program, deterministic=True).runs
    )
    # Every record the same -- event, turn, phase, time, labels, the three structures --
    assert without_select(on_asyncio.records) == without_select(on_adapter.records)
    # -- and where both called select(), the same select().
    selects = {r["tick"]: r for r in on_asyncio.records if r["event"] == "select"}
    for record in on_adapter.records:
        if record["event"] == "select":
            mine = selects.pop(record["tick"])
            assert {**mine, "step": 0} == {**record, "step": 0}
    # The others are the turns where the kernel skipped it: asyncio's select(0).
    assert {r["timeout"] for r in selects.values()} <= {0}


def test_the_python_task_is_named_as_the_c_task_is() -> None:
    def records(task_factory: Any) -> list[tuple[str, Any, Any]]:
        loop = RecordingEventLoop(clock=kernel.VirtualClock(), deterministic=True)
        loop.set_task_factory(task_factory)
        try:
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(loop.create_task(asyncio.sleep(1)))
        finally:
            loop.close()
        return [(r["event"], r["task"], r.get("callback")) for r in loop.records]

    python_task = getattr(asyncio.tasks, "_PyTask")  # noqa: B009 (private: no attribute in typeshed)

    class PythonTask(python_task):  # type: ignore[misc, valid-type]
        def set_name(self, value: object) -> None:
            # CPython 3.13.0's create_task calls set_name(name) after a task factory even
            # when no name was given, which would rename the task "None".
            if value is not None:
                super().set_name(value)

    def python_tasks(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        return PythonTask(coro, loop=loop, **kwargs)

    c_tasks = records(None)
    assert ("callback", "Task-2", "Task-2.__wakeup(Future-1)") in c_tasks
    assert records(python_tasks) == c_tasks


def test_the_virtual_clock_jumps_on_asyncio_too() -> None:
    loop = RecordingEventLoop(clock=kernel.VirtualClock())
    try:
        assert loop.run_until_complete(asyncio.sleep(3600, result="later")) == "later"
        assert loop.time() == 3600.0
    finally:
        loop.close()
    select = next(r for r in loop.records if r["event"] == "select" and r["timeout"])
    assert (select["timeout"], select["nearest"]["until"]) == (3600.0, 3600.0)


# Programs whose callbacks the adapter once ran unrecorded, or recorded without running them:
# each gave a false divergence.
SAME_SCHEDULE = {
    "call_soon_threadsafe": """
        import asyncio
        import threading

        def hello(future):
            print("hello from a callback")
            future.set_result(1)

        async def main():
            loop = asyncio.get_running_loop()
            here, there = loop.create_future(), loop.create_future()
            loop.call_soon_threadsafe(hello, here)  # from the loop's own thread
            await here
            thread = threading.Thread(target=loop.call_soon_threadsafe, args=(hello, there))
            thread.start()
            await there
            thread.join()
            return await asyncio.to_thread(sum, [1, 2])  # a worker hands the result back
        """,
    "cancelled_handle": """
        import asyncio

        async def main():
            loop = asyncio.get_running_loop()
            loop.call_soon(print, "never printed").cancel()
            await asyncio.sleep(0)
            return "done"
        """,
    "infinite_sleep": """
        import asyncio
        import math

        async def forever():
            await asyncio.sleep(math.inf)  # a timer that never comes

        async def main():
            task = asyncio.create_task(forever())
            await asyncio.sleep(1)
            task.cancel()
            return "done"
        """,
}


@pytest.mark.parametrize("name", sorted(SAME_SCHEDULE))
def test_what_both_loops_run_is_compared(
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    program = tmp_path / f"{name}.py"
    program.write_text(textwrap.dedent(SAME_SCHEDULE[name]), encoding="utf-8")
    status, out, err = run_cli(capsys, monkeypatch, "compare", str(program), "--deterministic")
    assert (status, err) == (0, "")
    assert "The schedules match" in out


# -- divergences -------------------------------------------------------------------------------


def test_the_heap_tie_is_found_and_explained() -> None:
    comparison = compare.compare(GOLDEN / "equal_deadlines.py", deterministic=True)
    assert (comparison.verdict, comparison.at) == ("diverge", 6)
    on_asyncio, on_adapter = (run.schedule[6] for run in comparison.runs)
    assert (
        (on_asyncio.turn, on_asyncio.position) == (on_adapter.turn, on_adapter.position) == (3, 2)
    )
    assert "Future-3" in on_asyncio.what and "Future-2" in on_adapter.what
    assert comparison.why is not None and comparison.why.startswith("Known difference: timers")
    assert comparison.runs[0].traced.result == comparison.runs[1].traced.result


def test_a_reordered_adapter_is_caught_at_the_first_difference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Make the kernel's ready queue last in, first out for callbacks: kernel.aio now runs the
    # three steps that main() queues in the reverse order.
    def call_soon_lifo(self: Kernel, callback: Callback) -> None:
        self._ready.appendleft(callback)

    monkeypatch.setattr(Kernel, "call_soon", call_soon_lifo)
    comparison = compare.compare(GOLDEN / "gather_sleeps.py", deterministic=True)
    assert (comparison.verdict, comparison.at) == ("diverge", 1)
    on_asyncio, on_adapter = (run.schedule[1] for run in comparison.runs)
    assert (on_asyncio.what, on_adapter.what) == ("Task-2.__step", "Task-4.__step")
    assert comparison.why is not None and "not a documented difference" in comparison.why
    report = compare.render(comparison)
    assert "The schedules diverge at callback 2 (asyncio: turn 2, position 1; kernel.aio: " in (
        report
    )
    assert re.search(r"asyncio ran +Task-2.__step\n  kernel.aio ran +Task-4.__step\n", report)
    assert "Before it, both loops ran:\n  turn 1, t=0.000\n      1. Task-1.__step" in report
    assert "  >   2. Task-4.__step: nap() starts" in report


def ran(turns: list[int], names: str = "ABCDEFGH") -> list[Ran]:
    """A hand-made schedule: callback ``names[i]`` in turn ``turns[i]``."""
    schedule = []
    for i, turn in enumerate(turns):
        position = 1 + turns[:i].count(turn)
        schedule.append(Ran(i + 1, turn, position, 0.0, names[i], "callback"))
    return schedule


def test_alignment_is_strict_on_order_and_tolerant_of_turns() -> None:
    assert align(ran([1, 1, 2]), ran([1, 1, 2]), virtual=True) == ("match", None)
    # Turn numbers may differ (an empty turn on one side) if the cuts fall in the same places.
    assert align(ran([1, 1, 2]), ran([1, 1, 3]), virtual=True) == ("match", None)
    assert align(ran([1, 1, 2]), ran([1, 2, 2]), virtual=True) == ("turns", 1)
    assert align(ran([1, 2]), ran([1, 2], names="AC"), virtual=True) == ("diverge", 1)
    assert align(ran([1, 2, 3]), ran([1, 2]), virtual=True) == ("diverge", 2)
    # Timers set with other delays make another callback; on the virtual clock, so does time.
    late = ran([1, 2])
    late[1].t = 1.0
    assert align(ran([1, 2]), late, virtual=True) == ("diverge", 1)
    assert align(ran([1, 2]), late, virtual=False) == ("match", None)
    longer = ran([1, 2])
    longer[0].delays = [2.0]
    assert align(ran([1, 2]), longer, virtual=False) == ("diverge", 0)


def test_different_turn_boundaries_are_reported_as_such() -> None:
    comparison = compare.compare(GOLDEN / "gather_sleeps.py", deterministic=True)
    # Cut the adapter's schedule differently: its callback 7 joins the turn of callback 6.
    on_adapter = comparison.runs[1]
    for entry in on_adapter.schedule[6:]:
        entry.turn -= 1
    assert (comparison.judge().verdict, comparison.at) == ("turns", 6)
    report = compare.render(comparison)
    assert "Same order, different turn boundaries: the 15 callbacks ran in the same order" in (
        report
    )
    assert "on asyncio it ran in turn 5, in the turn after callback 6." in report
    assert "on kernel.aio it ran in turn 4, in the same turn as callback 6." in report
    assert "Why: Turn boundaries decide only which select() a callback waits behind" in report


# -- the command line, the docs, Python 3.13 ---------------------------------------------------


def test_json_holds_the_verdict_and_both_schedules(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, _ = run_cli(
        capsys,
        monkeypatch,
        "compare",
        "tests/golden/compare/equal_deadlines.py",
        "--deterministic",
        "--json",
    )
    data = json.loads(out)
    assert (status, data["verdict"], data["at"]) == (1, "diverge", 6)
    schedules = [data["runs"][loop]["schedule"] for loop in ("asyncio", "kernel.aio")]
    assert [len(schedule) for schedule in schedules] == [19, 19]
    assert schedules[0][6]["what"] != schedules[1][6]["what"]
    assert data["runs"]["asyncio"]["result"] == "['a', 'b', 'c', 'd']"


def test_a_failing_program_is_compared_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "failing.py"
    program.write_text(
        "import asyncio\n\n\nasync def main() -> None:\n"
        "    await asyncio.sleep(0.5)\n    raise ValueError('no such file')\n",
        encoding="utf-8",
    )
    status, out, err = run_cli(capsys, monkeypatch, "compare", str(program), "--deterministic")
    assert status == 1
    assert "The schedules match: 4 callbacks in 4 turns" in out
    assert "On both loops, main() raised ValueError('no such file')." in out
    assert err.splitlines() == [
        f"compare: on {loop} the program raised ValueError('no such file')"
        for loop in ("asyncio", "kernel.aio")
    ]


def test_the_docs_paste_the_golden_reports() -> None:
    views = (ROOT / "docs" / "views.md").read_text(encoding="utf-8")
    section = views.split("\n## compare:", 1)[1].split("\n## ", 1)[0]
    pasted = re.findall(r"^```text\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    whole = (GOLDEN / "15_asyncio_sleep_then_123.txt").read_text(encoding="utf-8")
    diverging = (GOLDEN / "equal_deadlines.txt").read_text(encoding="utf-8")
    assert pasted[0] == whole
    assert len(pasted) == 3 and all(block in diverging for block in pasted[1:])


@pytest.mark.skipif(not PYTHON313.exists(), reason="Python 3.13 is not installed here")
def test_the_same_reports_on_python_3_13() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for program in (
        "examples/15_asyncio_sleep_then_123.py",
        "tests/golden/compare/equal_deadlines.py",
    ):
        golden, matches = REPORTS[program]
        done = subprocess.run(
            [str(PYTHON313), "-W", "error", "-m", "kernel", "compare", program, "--deterministic"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stderr) == (0 if matches else 1, "")
        assert done.stdout == (GOLDEN / golden).read_text(encoding="utf-8")
