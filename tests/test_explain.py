"""``python -m kernel explain`` (and ``run``): narrations generated from live traces.

* Golden narrations, on the virtual clock, for examples and for the small programs beside the
  golden files (tests/golden/explain/*.py): an Event and a Lock (who woke whom), a timeout and
  a cancel, an I/O wait on a socket pair. To rewrite them after a deliberate change of
  wording, run ``KERNEL_UPDATE_GOLDEN=1 python -m pytest tests/test_explain.py`` and read the
  diff.
* The asyncio narration of examples/15 tells every step of the walk-through in
  ../shared/seeds/000_bf04dc31a9e7084a.txt, in order; a variant of the program shows the
  narration follows the program, not a script.
* The command line: filters, --limit, --json, ``run``, errors, and the same output on Python
  3.13 when it is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kernel.__main__ as cli
from kernel.trace.explain import narrate, select, steps
from kernel.trace.script import trace

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "explain"
PYTHON313 = Path("/root/.pyenv/versions/3.13.0/bin/python3.13")

# (script, run on kernel.aio?) -> its golden narration.
NARRATIONS = {
    ("examples/02_sleep_then_123.py", False): "02_sleep_then_123.txt",
    ("examples/03_spawn_join.py", False): "03_spawn_join.txt",
    ("examples/15_asyncio_sleep_then_123.py", True): "15_asyncio_sleep_then_123.txt",
    ("examples/17_asyncio_done_callback.py", True): "17_asyncio_done_callback.txt",
    ("tests/golden/explain/event_and_lock.py", False): "event_and_lock.txt",
    ("tests/golden/explain/timeout_and_cancel.py", False): "timeout_and_cancel.txt",
    ("tests/golden/explain/socketpair_io.py", False): "socketpair_io.txt",
}


def explain(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str
) -> tuple[int, str, str]:
    """Run ``python -m kernel <argv>`` in this process, from the repository's root."""
    monkeypatch.chdir(ROOT)
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(("script", "aio"), sorted(NARRATIONS), ids=lambda value: str(value))
def test_golden_narration(
    script: str, aio: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = ["--asyncio"] if aio else []
    status, out, err = explain(capsys, monkeypatch, "explain", script, "--deterministic", *flags)
    assert (status, err) == (0, "")
    golden = GOLDEN / NARRATIONS[script, aio]
    if os.environ.get("KERNEL_UPDATE_GOLDEN"):
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8")


# The walk-through of ../shared/seeds/000_bf04dc31a9e7084a.txt, one entry per step it tells,
# each as phrases the narration must contain, in this order. (The seed runs the timer in a
# third _run_once; here, as in asyncio when select() waits long enough, it runs in the
# second, right after select() returns -- and the narration says so.)
SEED_WALK_THROUGH = [
    # run_until_complete wraps main() in a Task, whose __init__ schedules __step (call_soon)
    ["loop.run_until_complete(main())", "wraps it in a Task, Task-1", "Task.__init__"],
    ["loop.call_soon(Task-1.__step)", "appends it to _ready"],
    # ... adds the callback that will stop the loop, and runs run_forever
    ["adds a done callback to Task-1: _run_until_complete_cb", "stop the loop"],
    ["calls loop.run_forever()"],
    # the first _run_once: _ready holds the __step
    ["_run_once #1", "_ready holds [Task-1.__step]"],
    # __step calls coro.send(None): main() runs up to await sleep(1)
    ["Task-1.__step runs: it calls coro.send(None)", "main() starts running"],
    # sleep makes a Future and, with call_later, a TimerHandle in _scheduled
    ["asyncio.sleep(1)", "sleep creates Future-1", "loop.call_later(1", "TimerHandle"],
    ["into _scheduled"],
    # the future is yielded back to __step, which adds __wakeup as its done callback
    ["yields Future-1 back", "Task-1.__step", "Future-1.add_done_callback(Task-1.__wakeup)"],
    # the second _run_once: _ready is empty; the nearest TimerHandle decides the timeout
    ["_run_once #2", "_ready is empty", "nearest TimerHandle in _scheduled is not due yet"],
    ["selector.select(timeout=1.000) blocks for 1.000 s"],
    # the TimerHandle is due: it runs
    ["is due: it moves from _scheduled to _ready", "The TimerHandle runs"],
    # it sets the result of sleep's future, whose done callback (__wakeup) goes to call_soon
    ["Future-1.set_result(None)", "schedules its done callbacks with loop.call_soon"],
    ["Task-1.__wakeup(Future-1)"],
    # __wakeup -> __step -> coro.send(): main() carries on after its await
    ["Task-1.__wakeup(Future-1) runs", "__wakeup calls __step()", "coro.send(None)"],
    # main returns 123: StopIteration, the Task's set_result(123), its done callbacks scheduled
    ["main() returns 123", "StopIteration(123)", "set_result(123) on Task-1"],
    ["a Task is a Future", "done callbacks", "_run_until_complete_cb(Task-1)"],
    # _run_until_complete_cb stops the loop
    ["_run_until_complete_cb(Task-1) runs", "loop.stop()"],
    # the loop finishes the turn; run_forever returns
    ["finishes this turn", "run_forever returns"],
    # run_until_complete returns future.result(), 123
    ["run_until_complete returns future.result(): 123"],
]


def asyncio_narration(script: Path) -> str:
    traced = trace(script, aio=True, deterministic=True)
    assert traced.error is None
    return narrate(traced.records, asyncio=True, virtual=True)


def test_the_asyncio_narration_tells_the_seed_walk_through_in_order() -> None:
    text = " ".join(asyncio_narration(ROOT / "examples/15_asyncio_sleep_then_123.py").split())
    position = 0
    for phrases in SEED_WALK_THROUGH:
        for phrase in phrases:
            found = text.find(phrase, position)
            assert found >= 0, f"{phrase!r} missing after: {text[position : position + 300]!r}"
            position = found + len(phrase)


def test_the_narration_follows_the_program(tmp_path: Path) -> None:
    variant = tmp_path / "variant.py"
    variant.write_text(
        "import asyncio\n\n\n"
        "async def main() -> int:\n    await asyncio.sleep(2.5)\n    return 7\n",
        encoding="utf-8",
    )
    text = " ".join(asyncio_narration(variant).split())
    assert "main() calls asyncio.sleep(2.5)" in text
    assert "selector.select(timeout=2.500) blocks for 2.500 s" in text
    assert "main() returns 7" in text and "run_until_complete returns future.result(): 7" in text
    assert "123" not in text


def test_task_filters_the_steps(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, _ = explain(
        capsys,
        monkeypatch,
        "explain",
        "examples/03_spawn_join.py",
        "--deterministic",
        "--task",
        "nap-2",
    )
    assert status == 0
    numbered = [line for line in out.splitlines() if line.startswith("step ")]
    assert numbered and all("nap-2" in line or "task 3" in line for line in numbered)
    # The step numbers are those of the whole narration.
    traced = trace(ROOT / "examples/03_spawn_join.py", deterministic=True)
    chosen = select(steps(traced.records), task="3", limit=None)
    assert [f"step {s.number} —" for s in chosen] == [
        line.split(" — ")[0] + " —" for line in numbered
    ]


def test_limit_stops_after_n_steps(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, _ = explain(
        capsys,
        monkeypatch,
        "explain",
        "examples/02_sleep_then_123.py",
        "--deterministic",
        "--limit",
        "3",
    )
    assert status == 0
    assert [line.split(" — ")[0] for line in out.splitlines() if line.startswith("step ")] == [
        "step 1",
        "step 2",
        "step 3",
    ]
    golden = (GOLDEN / "02_sleep_then_123.txt").read_text(encoding="utf-8")
    assert golden.startswith(out.rstrip("\n").rsplit("\n", 1)[0])


def test_json_prints_the_records_of_the_steps(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, _ = explain(
        capsys,
        monkeypatch,
        "explain",
        "examples/15_asyncio_sleep_then_123.py",
        "--asyncio",
        "--deterministic",
        "--json",
        "--limit",
        "2",
    )
    assert status == 0
    records = json.loads(out)
    assert [r["event"] for r in records] == ["run_until_complete", "call_soon", "add_done_callback"]


def test_run_prints_what_main_returns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = explain(
        capsys, monkeypatch, "run", "examples/02_sleep_then_123.py", "--virtual-clock"
    )
    assert (status, out, err) == (0, "main woke up after 1.0s\n123\n", "")


def test_run_trace_writes_json_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = explain(
        capsys,
        monkeypatch,
        "run",
        "examples/15_asyncio_sleep_then_123.py",
        "--asyncio",
        "--deterministic",
        "--trace",
    )
    assert status == 0 and out == "main woke up after 1.0s\n123\n"
    records = [json.loads(line) for line in err.splitlines()]
    assert records[0]["event"] == "run_until_complete"
    assert sorted(r["step"] for r in records) == list(range(1, len(records) + 1))


def test_a_failing_program_is_told_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "failing.py"
    script.write_text("async def main() -> None:\n    raise ValueError('bad')\n", encoding="utf-8")
    status, out, err = explain(capsys, monkeypatch, "explain", str(script), "--deterministic")
    assert status == 1
    assert "main (task 1) raises ValueError('bad')" in " ".join(out.split())
    assert "ValueError('bad')" in err
    status, out, err = explain(capsys, monkeypatch, "run", str(script), "--deterministic")
    assert status == 1 and "ValueError: bad" in err


def test_the_command_line_explains_its_mistakes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = explain(capsys, monkeypatch)
    assert status == 2 and "explain" in err and "timeline" in err and "compare" in err
    assert explain(capsys, monkeypatch, "--help")[0] == 0
    monkeypatch.setitem(cli.SUBCOMMANDS, "later", ("kernel.trace.not_written_yet", "soon"))
    status, _, err = explain(capsys, monkeypatch, "later", "x.py")
    assert status == 2 and "not available yet" in err
    with pytest.raises(SystemExit):
        explain(capsys, monkeypatch, "explain", "examples/02_sleep_then_123.py", "--limit", "0")


@pytest.mark.skipif(not PYTHON313.exists(), reason="Python 3.13 is not installed here")
def test_the_same_narration_on_python_3_13() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for (script, aio), golden in [
        (("examples/15_asyncio_sleep_then_123.py", True), "15_asyncio_sleep_then_123.txt"),
        (("tests/golden/explain/timeout_and_cancel.py", False), "timeout_and_cancel.txt"),
    ]:
        argv = [
            "-m",
            "kernel",
            "explain",
            script,
            "--deterministic",
            *(["--asyncio"] if aio else []),
        ]
        done = subprocess.run(
            [str(PYTHON313), "-W", "error", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout == (GOLDEN / golden).read_text(encoding="utf-8")


def test_python_dash_m_kernel_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "kernel", "run", "examples/01_hello.py"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[-1] == "'main returned'"


# -- what the loop does that is easy to miss, told as it happened ---------------------------------


def narration(tmp_path: Path, source: str, aio: bool = False) -> str:
    """The narration of a small program, on one line."""
    path = tmp_path / "program.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    traced = trace(path, aio=aio, deterministic=True)
    assert traced.error is None
    return " ".join(narrate(traced.records, asyncio=aio, virtual=True).split())


def test_a_callback_queued_with_call_soon_threadsafe_is_told(tmp_path: Path) -> None:
    text = narration(
        tmp_path,
        """
        import asyncio

        def hello(future):
            print("hello from a callback")
            future.set_result(1)

        async def main():
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            loop.call_soon_threadsafe(hello, future)
            return await future
        """,
        aio=True,
    )
    queued = "Task-1.__step calls loop.call_soon_threadsafe(hello(Future-1)): as with"
    assert queued in text
    assert text.index(queued) < text.index("hello(Future-1) runs")
    assert text.index("hello(Future-1) runs") < text.index("prints 'hello from a callback'")


def test_a_cancelled_handle_is_not_told_as_run(tmp_path: Path) -> None:
    text = narration(
        tmp_path,
        """
        import asyncio

        async def main():
            loop = asyncio.get_running_loop()
            loop.call_soon(print, "never printed").cancel()
            await asyncio.sleep(0)
        """,
        aio=True,
    )
    assert "calls loop.call_soon(print('never printed'))" in text
    assert "never printed') runs" not in text and "<cancelled>" not in text


def test_a_bad_yield_is_told(tmp_path: Path) -> None:
    text = narration(
        tmp_path,
        """
        import asyncio
        import kernel

        async def main():
            try:
                await asyncio.sleep(0)  # asyncio's bare yield: not a kernel trap
            except TypeError:
                return "TypeError"
        """,
    )
    assert (
        "main (task 1) yields None, which is not a trap, so the kernel cannot act on it: it "
        "puts main (task 1) at the back of the ready queue, as sleep(0) would, with a "
        "TypeError to throw into it when its turn comes" in text
    )
    assert "the kernel resumes it with coro.throw(TypeError(" in text


@pytest.mark.usefixtures("no_timeout_signal")
def test_a_deadlock_is_told_as_the_detector_breaking_it(tmp_path: Path) -> None:
    text = narration(
        tmp_path,
        """
        import kernel

        async def main():
            try:
                await kernel.Event().wait()
            except kernel.Deadlock:
                return "deadlock caught"
        """,
    )
    assert "── turn 2, t=0.000 ── step 5 — Phase 1 would now block in select()" in text
    assert "Every task is blocked for good: a deadlock." in text
    assert (
        "the kernel's deadlock detector takes the main task, main (task 1), out of the wait "
        "queue of Event-1 (EVENT_WAIT) and puts it in the ready queue, to have a Deadlock"
    ) in text
    assert "handed work over (call_threadsafe)" not in text and "tasks are ready" not in text


def test_a_task_waiting_on_a_thread_is_woken_by_the_thread(tmp_path: Path) -> None:
    text = narration(
        tmp_path,
        """
        import sys
        import threading
        import time
        import kernel

        def when_the_kernel_waits(kernel_thread):
            # Hand the result over only once the kernel's thread waits in select(): a
            # condition, checked every millisecond, not a guess at how long it takes.
            while sys._current_frames()[kernel_thread].f_code.co_name != "select":
                time.sleep(0.001)

        async def main():
            return await kernel.run_in_thread(when_the_kernel_waits, threading.get_ident())
        """,
    )
    assert (
        "it is parked in the wait queue of _Job-1 (THREAD) until the worker thread running "
        "the function is done and hands the result over (call_threadsafe)."
    ) in text
    assert "another task wakes it" not in text
    assert (
        "No file descriptor of the program becomes ready, but another thread has handed work "
        "over: the byte it wrote to the kernel's wake-up socket, which select() always "
        "watches, makes it return. step 7 — Phase 1 runs what other threads handed over: the "
        "worker thread of _Job-1 is done"
    ) in text


def test_a_kernel_task_started_from_an_asyncio_task_is_spawned_by_it(tmp_path: Path) -> None:
    text = narration(
        tmp_path,
        """
        import kernel
        import kernel.aio

        async def ktask():
            await kernel.sleep(1)

        async def main():
            await kernel.aio.run_kernel(ktask)
        """,
        aio=True,
    )
    assert "Task-1.__step calls Kernel.start_task, which spawns ktask (task 1)" in text
    assert "Code outside any task" not in text


def test_an_infinite_sleep_is_told_and_written_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "forever.py"
    script.write_text(
        textwrap.dedent(
            """
            import math
            import kernel

            async def forever():
                await kernel.sleep(math.inf)

            async def main():
                task = await kernel.spawn(forever)
                await kernel.sleep(1)
                await task.cancel()
            """
        ),
        encoding="utf-8",
    )
    status, out, _ = explain(capsys, monkeypatch, "explain", str(script), "--deterministic")
    assert status == 0
    assert (
        "forever (task 2) yields ('sleep', inf): it is parked on the sleeping queue, until a "
        "deadline that never comes." in " ".join(out.split())
    )

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    status, out, _ = explain(
        capsys, monkeypatch, "explain", str(script), "--deterministic", "--json"
    )
    assert status == 0 and json.loads(out, parse_constant=refuse)
    status, _, err = explain(capsys, monkeypatch, "run", str(script), "--deterministic", "--trace")
    assert status == 0 and [json.loads(line, parse_constant=refuse) for line in err.splitlines()]
