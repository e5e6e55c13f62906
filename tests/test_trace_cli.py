"""How the teaching views run a script, and what they say when they are called wrongly.

* A task is one row, under one label: an asyncio task named at creation
  (``asyncio.create_task(coro, name=...)``, ``TaskGroup.create_task``), which Python 3.11
  names only after its first step is queued, is labelled by that name from its first record.
* A script with no ``main()`` is run once, as ``__main__``, and recorded however it asks for
  its loop (``asyncio.run()``, ``asyncio.new_event_loop()``, ``kernel.aio.run()``...) -- on
  the adapter as on asyncio's own loop; it is not run before that to look for ``main``.
* A usage mistake -- a script that is not there, not Python, with no ``main()`` without
  ``--asyncio``; a bad ``--limit``, ``--width``; an output file that cannot be written -- is
  one line on stderr, ``python -m kernel <view>: error: ...``, and exit status 2, the same in
  every view; an exception raised by the program keeps its traceback.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kernel.__main__ as cli
from kernel.trace import asyncio_script
from kernel.trace.compare import compare
from kernel.trace.labels import Labels
from kernel.trace.records import Record
from kernel.trace.script import UsageError, trace
from kernel.trace.timeline import build

ROOT = Path(__file__).resolve().parent.parent


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(source, encoding="utf-8")
    return path


def task_labels(records: list[Record]) -> set[str]:
    """Every label a record gives an asyncio task (as the task a record is about)."""
    return {record["task"] for record in records if record.get("task")}


# -- one task, one label ------------------------------------------------------------------------

NAMED = """\
import asyncio


async def work(seconds):
    await asyncio.sleep(seconds)


async def main():
    await asyncio.create_task(work(1), name="worker")
    async with asyncio.TaskGroup() as group:
        group.create_task(work(1), name="grouped")
        group.create_task(work(2))
"""


@pytest.mark.parametrize("loop", ["kernel.aio", "asyncio"])
def test_a_task_named_at_creation_has_one_label_from_its_first_record(
    loop: str, tmp_path: Path
) -> None:
    script = write(tmp_path, "named.py", NAMED)
    if loop == "asyncio":
        traced = asyncio_script.trace(script, deterministic=True)
    else:
        traced = trace(script, aio=True, deterministic=True)
    assert traced.error is None
    # Task-1 is main(); the one unnamed task of the group is the second default name.
    assert task_labels(traced.records) == {"Task-1", "worker", "grouped", "Task-2"}
    first_step = next(r for r in traced.records if r["event"] == "call_soon" and r.get("coro"))
    assert first_step["callback"] == "Task-1.__step"
    queued = [r["callback"] for r in traced.records if r["event"] == "call_soon"]
    assert "worker.__step" in queued and "grouped.__step" in queued
    rows = build(traced.records, virtual=True).rows
    assert sorted(rows) == ["Task-1", "Task-2", "callbacks", "grouped", "worker"]


def test_a_task_named_at_creation_keeps_its_name_in_real_time_too(tmp_path: Path) -> None:
    script = write(tmp_path, "named.py", NAMED.replace("work(1)", "work(0)").replace("(2)", "(0)"))
    traced = trace(script, aio=True)
    labels = task_labels(traced.records)
    assert {"worker", "grouped"} <= labels
    assert len(labels) == 4  # main(), worker, grouped and one unnamed: nobody twice


def test_a_task_keeps_its_first_label_when_renamed() -> None:
    async def rename() -> list[str]:
        task = asyncio.current_task()
        assert task is not None
        labels = Labels(deterministic=True)
        before = labels.future(task)
        task.set_name("renamed")
        return [before, labels.future(task)]

    first, second = asyncio.run(rename())
    assert first == second == "Task-1"


# -- a script with no main(): run once, recorded however it asks for its loop -------------------

COUNTED = """\
import asyncio
from pathlib import Path

with Path(__file__).with_suffix(".log").open("a") as log:
    log.write("executed\\n")


async def hello():
    await asyncio.sleep(1)
    print("hello")


{run}
"""


def runs_of(script: Path) -> int:
    log = script.with_suffix(".log")
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.parametrize(
    "run",
    [
        'if __name__ == "__main__":\n    asyncio.run(hello())',
        "asyncio.run(hello())",
        "loop = asyncio.new_event_loop()\nloop.run_until_complete(hello())\nloop.close()",
        "import kernel.aio\nkernel.aio.run(hello())",
    ],
    ids=["asyncio.run-under-main-guard", "asyncio.run", "asyncio.new_event_loop", "aio.run"],
)
def test_a_script_without_main_runs_once_on_the_recording_loop(run: str, tmp_path: Path) -> None:
    script = write(tmp_path, "no_main.py", COUNTED.format(run=run))
    traced = trace(script, aio=True, deterministic=True)
    assert traced.error is None and traced.as_main
    assert runs_of(script) == 1
    events = [record["event"] for record in traced.records]
    assert "call_at" in events  # the sleep's TimerHandle: the loop was the recording one
    output = [r for r in traced.records if r["event"] == "output"]
    assert [(r["text"], r["t"]) for r in output] == [("hello", 1.0)]  # on the virtual clock
    rows = build(traced.records, virtual=True).rows
    assert rows[0] == "Task-1" and "T" in {s.symbol for s in build(traced.records).slices}


def test_explain_and_timeline_record_a_script_that_calls_asyncio_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = write(tmp_path, "no_main.py", COUNTED.format(run="asyncio.run(hello())"))
    assert cli.main(["timeline", str(script), "--asyncio", "--deterministic"]) == 0
    timeline, _ = capsys.readouterr()
    assert "\nTask-1 " in timeline and "on the virtual clock" in timeline
    assert cli.main(["explain", str(script), "--asyncio", "--deterministic"]) == 0
    narration, _ = capsys.readouterr()
    assert "TimerHandle" in narration and "Task-1.__step" in narration
    assert runs_of(script) == 2  # once per view


def test_compare_runs_a_script_without_main_once_on_each_loop(tmp_path: Path) -> None:
    script = write(tmp_path, "no_main.py", COUNTED.format(run="asyncio.run(hello())"))
    comparison = compare(script, deterministic=True)
    assert comparison.verdict != "diverge"
    assert runs_of(script) == 2


def test_a_script_with_main_is_imported_once(tmp_path: Path) -> None:
    source = COUNTED.format(run="async def main():\n    await hello()")
    script = write(tmp_path, "with_main.py", source)
    traced = trace(script, aio=True, deterministic=True)
    assert not traced.as_main and runs_of(script) == 1


@pytest.mark.parametrize(
    "defines",
    [
        "def main():\n    return hello()",
        "main = hello",
        "from asyncio import sleep as main",
        "if True:\n    async def main():\n        pass",
        "try:\n    main = hello\nexcept ImportError:\n    pass",
    ],
)
def test_main_is_found_in_the_source(defines: str, tmp_path: Path) -> None:
    script = write(tmp_path, "main.py", COUNTED.format(run=defines))
    assert not trace(script, aio=True, deterministic=True).as_main


@pytest.mark.parametrize(
    "no_main",
    [
        "def run():\n    main = 1",  # a local of another function
        "class Box:\n    main = 1",
        "squares = [main for main in range(3)]",
        'if __name__ == "__main__":\n    async def main():\n        pass',
    ],
)
def test_a_main_of_another_scope_is_no_main(no_main: str, tmp_path: Path) -> None:
    script = write(tmp_path, "no_main.py", COUNTED.format(run=no_main))
    assert trace(script, aio=True, deterministic=True).as_main
    with pytest.raises(UsageError, match="has no main"):
        trace(script, deterministic=True)
    assert runs_of(script) == 1  # the --asyncio run; the refused one ran nothing


# -- usage mistakes: one line, status 2 -----------------------------------------------------------


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``python -m kernel <argv>`` in this process; it must stop with status 2 and one
    line on stderr. Return that line."""
    with pytest.raises(SystemExit) as stopped:
        cli.main(list(argv))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"python -m kernel {argv[0]}: error: ")
    return lines[0]


@pytest.fixture
def script(tmp_path: Path) -> Path:
    return write(tmp_path, "ok.py", "import asyncio\n\n\nasync def main():\n    return 1\n")


@pytest.mark.parametrize("view", ["explain", "timeline", "compare", "run"])
def test_a_script_that_is_not_there_or_not_python(
    view: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.py")
    assert f"no such file: {missing}" in usage_error(capsys, view, missing)
    assert "is not a file" in usage_error(capsys, view, str(tmp_path))
    readme = str(ROOT / "README.md")
    assert f"{readme} is not a Python script" in usage_error(capsys, view, readme)


@pytest.mark.parametrize("view", ["explain", "timeline", "run"])
def test_a_script_without_main_needs_asyncio(
    view: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = write(tmp_path, "no_main.py", COUNTED.format(run="asyncio.run(hello())"))
    line = usage_error(capsys, view, str(script))
    assert "has no main() to run" in line and "--asyncio" in line
    assert runs_of(script) == 0


@pytest.mark.parametrize("value", ["abc", "0", "-3", "2.5"])
def test_limit_must_be_a_whole_number_of_steps(
    value: str, script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = usage_error(capsys, "explain", str(script), "--asyncio", "--limit", value)
    assert f"argument --limit: expected a whole number of steps, 1 or more, not '{value}'" in line


@pytest.mark.parametrize("value", ["x", "20", "80.5"])
def test_width_must_be_forty_columns_or_more(
    value: str, script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = usage_error(capsys, "timeline", str(script), "--asyncio", "--width", value)
    assert "argument --width: expected a width of at least 40 columns" in line
    assert f"not '{value}'" in line


@pytest.mark.parametrize("option", ["-o", "--chrome-trace"])
def test_an_output_file_where_none_can_be_written_is_refused_before_the_run(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = write(tmp_path, "no_main.py", COUNTED.format(run="asyncio.run(hello())"))
    missing = tmp_path / "no" / "such" / "x.html"
    line = usage_error(capsys, "timeline", str(script), "--asyncio", option, str(missing))
    assert f"there is no directory {missing.parent}" in line
    line = usage_error(capsys, "timeline", str(script), "--asyncio", option, str(tmp_path))
    assert "is a directory" in line
    assert runs_of(script) == 0


def test_an_output_file_that_fails_to_be_written_is_one_line_too(
    script: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(self: Path, *_: object, **__: object) -> int:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    page = str(tmp_path / "page.html")
    line = usage_error(capsys, "timeline", str(script), "--asyncio", "-o", page)
    assert line.endswith(f"error: cannot write {page}: Permission denied")


def run_python_dash_m_kernel(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernel", *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_from_the_shell_a_usage_error_is_one_line_and_a_program_error_a_traceback(
    tmp_path: Path,
) -> None:
    done = run_python_dash_m_kernel("timeline", str(tmp_path / "missing.py"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no such file" in done.stderr
    # The program's own exception, raised as it is imported: its traceback, not a one-liner.
    broken = write(
        tmp_path,
        "broken.py",
        "raise RuntimeError('the program broke')\n\n\ndef main():\n    pass\n",
    )
    done = run_python_dash_m_kernel("explain", str(broken))
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError: the program broke" in done.stderr


# -- the script sees the world that python script.py shows it -------------------------------------


@pytest.mark.parametrize("view", ["explain", "timeline"])
def test_sys_exit_ends_the_program_and_the_view_still_shows_it(
    view: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = (
        "import sys\nimport kernel\n\n\nasync def main():\n"
        "    print('about to exit')\n    await kernel.sleep(1)\n    sys.exit({code})\n"
    )
    for code, status in (("3", 1), ("", 0), ("0", 0)):
        exits = write(tmp_path, "exits.py", program.format(code=code))
        assert cli.main([view, str(exits), "--deterministic"]) == status
        out, err = capsys.readouterr()
        assert "main (task 1)" in out  # the narration or chart, up to the exit
        assert ("SystemExit(3)" in err) == (code == "3")
    traced = trace(exits, deterministic=True)
    assert traced.error is None and traced.records[-1]["event"] == "close"


def test_the_script_sees_its_own_argv_path_and_module(tmp_path: Path) -> None:
    write(tmp_path, "helper.py", "VALUE = 7\n")
    script = write(
        tmp_path,
        "world.py",
        "from __future__ import annotations\n"
        "import dataclasses, pickle, sys\n\n\n"
        "@dataclasses.dataclass\nclass Job:\n    name: str\n\n\n"
        "async def main():\n"
        "    import helper  # imported late: the folder is on the path for the whole run\n"
        "    job = pickle.loads(pickle.dumps(Job('a')))\n"
        "    return sys.argv, helper.VALUE, job.name\n",
    )
    argv = sys.argv
    for traced in (trace(script, deterministic=True), trace(script, aio=False, capture=False)):
        assert traced.error is None, traced.error
        assert traced.result == ([str(script)], 7, "a")
    assert sys.argv is argv and str(tmp_path) not in sys.path


def test_the_program_writes_to_a_real_text_stdout(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "stdout.py",
        "import sys\n\n\nasync def main():\n"
        "    print('encoding', sys.stdout.encoding)\n"
        "    sys.stdout.buffer.write('bytes: é\\n'.encode())\n"
        "    print('not finished', end='', flush=True)\n"
        "    print(' -- finished')\n"
        "    sys.stdout.write('the end, with no newline')\n",
    )
    traced = trace(script, deterministic=True)
    assert traced.error is None, traced.error
    assert [r["text"] for r in traced.records if r["event"] == "output"] == [
        "encoding utf-8",
        "bytes: é",
        "not finished -- finished",
        "the end, with no newline",
    ]


@pytest.mark.parametrize("loop", ["kernel.aio", "asyncio"])
def test_two_tasks_with_one_name_get_two_labels(loop: str, tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "twins.py",
        "import asyncio\n\n\nasync def main():\n"
        "    one = asyncio.create_task(asyncio.sleep(1), name='worker')\n"
        "    two = asyncio.create_task(asyncio.sleep(2), name='worker')\n"
        "    three = asyncio.create_task(asyncio.sleep(3), name='callbacks')\n"
        "    await asyncio.gather(one, two, three)\n",
    )
    if loop == "asyncio":
        traced = asyncio_script.trace(script, deterministic=True)
    else:
        traced = trace(script, aio=True, deterministic=True)
    assert traced.error is None
    assert task_labels(traced.records) == {"Task-1", "worker", "worker#2", "callbacks#2"}
    rows = build(traced.records, virtual=True).rows
    assert sorted(rows) == ["Task-1", "callbacks", "callbacks#2", "worker", "worker#2"]


@pytest.mark.parametrize("view", ["explain", "timeline", "compare"])
def test_an_asyncio_main_that_is_not_async_is_a_usage_error(
    view: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = write(
        tmp_path,
        "sync_main.py",
        "import asyncio\n\n\nasync def amain():\n    return 5\n\n\n"
        "def main():\n    return asyncio.run(amain())\n",
    )
    flags = [] if view == "compare" else ["--asyncio"]
    line = usage_error(capsys, view, str(script), *flags)
    assert "main() must be an async def" in line and "returned 5" in line
    assert "if __name__ ==" in line


def test_a_task_filter_that_matches_no_task_says_which_there_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = str(ROOT / "examples/03_spawn_join.py")
    line = usage_error(capsys, "explain", script, "--deterministic", "--task", "nosuch")
    assert "--task 'nosuch' matches no task of this run" in line
    assert "'main (task 1)', 'nap-1 (task 2)'" in line
