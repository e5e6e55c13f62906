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
