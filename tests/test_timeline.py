"""``python -m kernel timeline``: the per-task timeline as text, as an HTML page, as a Chrome trace.

* Golden timelines, on the virtual clock, for examples on the kernel and on the adapter. To
  rewrite them after a deliberate change, run ``KERNEL_UPDATE_GOLDEN=1 python -m pytest
  tests/test_timeline.py`` and read the diff; docs/views.md shows one of them, and a test
  below checks that it still shows it exactly.
* The model (``build``) on records written by hand: what ends a slice, what does not, and
  the state of every task between slices.
* The Chrome trace is valid JSON in the trace event format, one "X" event per slice.
* The HTML page holds everything it needs and escapes what the program names. (It is opened
  in a real browser in tests/test_timeline_browser.py.)
"""

from __future__ import annotations

import itertools
import json
import os
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import kernel.__main__ as cli
from kernel.trace.records import Record
from kernel.trace.script import trace
from kernel.trace.timeline import (
    BLOCKED,
    READY,
    SYMBOLS,
    Timeline,
    build,
    render_text,
)
from kernel.trace.timeline_html import render_html

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "timeline"

# (script, arguments after it) -> its golden timeline.
TIMELINES = {
    ("examples/03_spawn_join.py", ()): "03_spawn_join.txt",
    ("examples/03_spawn_join.py", ("--axis", "time")): "03_spawn_join_time.txt",
    ("examples/05_taskgroup.py", ()): "05_taskgroup.txt",
    ("examples/06_producer_consumer.py", ("--width", "50")): "06_producer_consumer_50.txt",
    ("examples/15_asyncio_sleep_then_123.py", ("--asyncio",)): "15_asyncio_sleep_then_123.txt",
    ("examples/17_asyncio_done_callback.py", ("--asyncio",)): "17_asyncio_done_callback.txt",
}


def timeline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str
) -> tuple[int, str, str]:
    """Run ``python -m kernel timeline <argv>`` in this process, from the repository's root."""
    monkeypatch.chdir(ROOT)
    status = cli.main(["timeline", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(("script", "flags"), sorted(TIMELINES), ids=lambda value: str(value))
def test_golden_timeline(
    script: str,
    flags: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, out, err = timeline(capsys, monkeypatch, script, "--deterministic", *flags)
    assert (status, err) == (0, "")
    golden = GOLDEN / TIMELINES[script, flags]
    if os.environ.get("KERNEL_UPDATE_GOLDEN"):
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8")
    width = int(flags[flags.index("--width") + 1]) if "--width" in flags else 100
    assert max(len(line) for line in out.splitlines()) <= width


def test_the_docs_show_a_golden_timeline_as_it_is() -> None:
    """docs/views.md pastes outputs: each must be a golden file's, so that it cannot go stale."""
    views = (ROOT / "docs" / "views.md").read_text(encoding="utf-8")
    sections = {
        section.split("\n", 1)[0].split(":")[0]: re.findall(
            r"^```text\n(.*?)^```$", section, re.MULTILINE | re.DOTALL
        )
        for section in views.split("\n## ")[1:]
    }
    # The timeline section shows a golden timeline, whole.
    golden = (GOLDEN / "03_spawn_join.txt").read_text(encoding="utf-8")
    assert sections["timeline"] == [golden]
    # The explain section shows excerpts of a golden narration.
    narration = ROOT / "tests" / "golden" / "explain" / "02_sleep_then_123.txt"
    told = narration.read_text(encoding="utf-8")
    assert sections["explain"] and all(block in told for block in sections["explain"])


def test_a_wide_timeline_is_cut_into_bands() -> None:
    traced = trace(ROOT / "examples/05_taskgroup.py", deterministic=True)
    text = render_text(build(traced.records, virtual=True), width=40)
    assert all(len(line) <= 40 for line in text.splitlines())
    rulers = [line for line in text.splitlines() if line.startswith("turn ")]
    assert len(rulers) > 1  # the columns go on in a second band
    assert rulers[1].split()[1] != "1"  # ... which starts where the first one stopped


def terminal_columns(text: str) -> int:
    """Columns ``text`` takes in a terminal: 2 for a wide character, 0 for a combining mark."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def timeline_of_names(folder: Path, names: list[str]) -> Timeline:
    """The timeline of a main() that spawns a task of each name, each of which naps."""
    spawns = "".join(f"    await kernel.spawn(kernel.sleep, 1, name={name!r})\n" for name in names)
    script = folder / "names.py"
    script.write_text(
        f"import kernel\n\n\nasync def main() -> None:\n{spawns}    await kernel.sleep(2)\n",
        encoding="utf-8",
    )
    return build(trace(script, deterministic=True).records, virtual=True)


@pytest.mark.parametrize("axis", ["ticks", "time"])
def test_wide_and_combining_names_keep_the_chart_in_line(axis: str, tmp_path: Path) -> None:
    """A name in CJK characters (two columns each) or with a combining accent (none) takes
    as many columns as an ASCII one of the same width: the chart is drawn the same."""
    # Each wide name, and an ASCII name that takes as many columns in a terminal.
    same_width = {
        "下载器": "xxxxxx",  # "downloader"
        "cafe\u0301": "cafe",  # e with a combining acute accent
        "a" + "队列" * 10: "a" + "qq" * 10,  # too long for the label: cut, on a character
    }
    wide = timeline_of_names(tmp_path, [*same_width, "abc"])
    narrow = timeline_of_names(tmp_path, [*same_width.values(), "abc"])
    wide_text = render_text(wide, axis=axis, width=60)
    assert all(terminal_columns(line) <= 60 for line in wide_text.splitlines())
    assert "a队列队列队列.. (task 4)" in wide_text  # cut to 13 columns, as "a" + 12 "q"
    for name, stand_in in [*same_width.items(), ("a队列队列队列", "a" + "q" * 12)]:
        wide_text = wide_text.replace(name, stand_in)
    assert wide_text == render_text(narrow, axis=axis, width=60)


def test_control_characters_in_a_name_do_not_break_its_row(tmp_path: Path) -> None:
    chart = render_text(timeline_of_names(tmp_path, ["two\nlines", "tab\there"]), width=60)
    rows = [line for line in chart.splitlines() if "(task " in line]
    assert [row.split("  ")[0] for row in rows] == [
        "main (task 1)",
        "two\\nlines (task 2)",
        "tab\\there (task 3)",
    ]


# -- the model, on records written by hand ---------------------------------------------------------


def record(tick: int, event: str, task: str | None = None, t: float = 0.0, **fields: Any) -> Record:
    return {"tick": tick, "t": t, "event": event, "task": task, **fields}


def test_a_slice_runs_from_resumed_to_parked_and_carries_on_past_quick_traps() -> None:
    records = [
        record(0, "spawn", "main (task 1)"),
        record(1, "turn"),
        record(1, "run", "main (task 1)"),
        record(1, "trap", "main (task 1)", trap="clock", args=[]),
        record(1, "run", "main (task 1)"),
        record(1, "trap", "main (task 1)", trap="spawn", args=["<coroutine f>", "False", "None"]),
        record(1, "spawn", "f (task 2)"),
        record(1, "run", "main (task 1)"),
        record(1, "output", "main (task 1)", text="hello"),
        record(
            1, "trap", "main (task 1)", trap="wait_on", args=["<wait queue of Lock-1>", "'LOCK'"]
        ),
        record(1, "park", "main (task 1)", why="LOCK", to="wait", on="Lock-1"),
        record(2, "turn"),
        record(2, "run", "f (task 2)"),
        record(2, "trap", "f (task 2)", trap="sleep", args=["1"]),
        record(2, "park", "f (task 2)", why="SLEEPING", to="sleeping", until=1.0),
        record(3, "turn"),  # nothing runs in this turn
        record(4, "turn", t=1.0),
        record(4, "wake", "f (task 2)", t=1.0),
        record(4, "run", "f (task 2)", t=1.0),
        record(4, "wake", "main (task 1)", t=1.0),
        record(4, "exit", "f (task 2)", t=1.0, cancelled=False, result="None"),
        record(5, "run", "main (task 1)", t=1.0),
    ]
    result = build(records, virtual=True)
    assert result.rows == ["main (task 1)", "f (task 2)"]
    assert result.turns == 5
    first, second, third, fourth = result.slices
    assert (first.row, first.symbol, first.ended_on) == ("main (task 1)", "W", "wait_on LOCK")
    assert first.call == "wait_on(<wait queue of Lock-1>, 'LOCK')"
    assert first.also == ["clock()", "spawn(<coroutine f>, False, None)"]
    assert first.printed == ["hello"]
    assert first.outcome == "waits on Lock-1"
    assert (second.symbol, second.outcome) == ("S", "sleeping until t=1")
    assert (third.symbol, third.outcome, third.start) == ("X", "returned None", 1.0)
    assert (fourth.symbol, fourth.ended_on) == ("?", "running")  # the trace ends meanwhile
    turns = [column.tick for column in result.columns]
    assert turns == [1, 2, 3, 4, 5]  # turn 3 has a column of its own, with no slice
    states = [column.states for column in result.columns]
    assert states[0] == {"main (task 1)": BLOCKED, "f (task 2)": READY}
    assert states[2] == {"main (task 1)": BLOCKED, "f (task 2)": BLOCKED}
    assert states[3] == {"main (task 1)": READY}  # f is over; f's end woke main


def test_asyncio_steps_are_slices_of_their_task_and_other_callbacks_have_a_row() -> None:
    records = [
        record(0, "call_soon", "Task-1", kind="step", callback="Task-1.__step"),
        record(1, "turn"),
        record(1, "callback", "Task-1", kind="step", callback="Task-1.__step"),
        record(1, "callback_done", "Task-1", kind="step", outcome={"yielded": "Future-1"}),
        record(2, "turn", t=1.0),
        record(2, "callback", "Task-1", t=1.0, kind="timer", callback="TimerHandle(f())"),
        record(2, "call_soon", "Task-1", t=1.0, kind="wakeup", callback="Task-1.__wakeup"),
        record(2, "callback_done", None, t=1.0, kind="timer", callback="TimerHandle(f())"),
        record(3, "callback", "Task-1", t=1.0, kind="wakeup", callback="Task-1.__wakeup"),
        record(3, "callback_done", "Task-1", t=1.0, kind="wakeup", outcome={"again": True}),
        record(4, "callback", "Task-1", t=1.0, kind="step", callback="Task-1.__step"),
        record(4, "callback_done", "Task-1", t=1.0, kind="step", outcome={"exception": "E()"}),
    ]
    result = build(records)
    assert result.rows == ["Task-1", "callbacks"]
    assert result.kinds == {"Task-1": "asyncio task", "callbacks": "callbacks"}
    endings = [(s.row, s.symbol, s.call, s.outcome) for s in result.slices]
    assert endings == [
        ("Task-1", "F", "await Future-1", "waits for Future-1"),
        ("callbacks", "T", "TimerHandle(f())", "on behalf of Task-1"),
        ("Task-1", "Y", "yield", "back to the ready queue"),
        ("Task-1", "E", "exit", "raised E()"),
    ]
    assert [column.states for column in result.columns] == [
        {"Task-1": BLOCKED},
        {"Task-1": READY},  # the timer's callback queued Task-1's __wakeup
        {"Task-1": READY},
        {},
    ]


def test_every_symbol_has_a_meaning_and_the_legend_lists_those_in_use() -> None:
    traced = trace(ROOT / "examples/03_spawn_join.py", deterministic=True)
    result = build(traced.records, virtual=True)
    assert set(result.endings()) == {"J", "S", "X", "E"} <= set(SYMBOLS)
    legend = render_text(result).split("Each slice is shown by how it ended:")[1]
    assert [line.split()[0] for line in legend.splitlines()[1:-1]] == ["S", "J", "X", "E"]


# -- the command line ------------------------------------------------------------------------------


def test_without_the_virtual_clock_the_axis_is_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "naps.py"
    script.write_text(
        "import kernel\n\n\n"
        "async def main() -> None:\n"
        "    task = await kernel.spawn(kernel.sleep, 0.02, name='napper')\n"
        "    await task.join()\n",
        encoding="utf-8",
    )
    status, out, err = timeline(capsys, monkeypatch, str(script))
    assert (status, err) == (0, "")
    assert "s in real time." in out
    lines = out.splitlines()
    ruler = next(line for line in lines if line.startswith("t "))
    assert "0.01" in ruler or "0.02" in ruler  # a time ruler, in seconds
    napper = next(line for line in lines if line.startswith("napper (task 2)"))
    assert napper.split()[-1].endswith("X") and "." in napper  # blocked, then over


def test_a_program_shorter_than_a_millisecond_has_its_times_shown() -> None:
    """In real time, a short program's ruler and length are in microseconds, not all "0"."""
    records = [
        record(0, "spawn", "main (task 1)"),
        record(1, "turn", t=0.0),
        record(1, "run", "main (task 1)", t=0.0),
        record(1, "trap", "main (task 1)", t=0.0, trap="sleep", args=["0"]),
        record(1, "park", "main (task 1)", t=0.0, why="SLEEPING", to="sleeping", until=0.0),
        record(2, "turn", t=0.00012),
        record(2, "run", "main (task 1)", t=0.00012),
        record(2, "exit", "main (task 1)", t=0.00019, cancelled=False, result="None"),
    ]
    chart = render_text(build(records, virtual=False), axis="time", width=100)
    ruler = next(line for line in chart.splitlines() if line.startswith("t "))
    assert ruler.split() == ["t", "0", "0.00005", "0.0001", "0.00015"]
    assert "0.00019 s in real time" in chart


def test_a_program_that_fails_still_gets_its_timeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "fails.py"
    script.write_text("async def main() -> None:\n    raise ValueError('boom')\n", encoding="utf-8")
    status, out, err = timeline(capsys, monkeypatch, str(script), "--deterministic")
    assert status == 1
    assert "main (task 1)  E" in out
    assert "the program raised ValueError('boom')" in err


def test_width_below_forty_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit):
        timeline(capsys, monkeypatch, "examples/01_hello.py", "--width", "20")
    assert "at least 40 columns" in capsys.readouterr().err


# -- Chrome trace ----------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", ["ticks", "time"])
def test_the_chrome_trace_is_json_in_the_trace_event_format(
    axis: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out_json = tmp_path / "out.json"
    status, _, err = timeline(
        capsys,
        monkeypatch,
        "examples/05_taskgroup.py",
        "--deterministic",
        "--axis",
        axis,
        "--chrome-trace",
        str(out_json),
    )
    assert status == 0 and f"wrote {out_json}" in err
    exported = json.loads(out_json.read_text(encoding="utf-8"))
    events = exported["traceEvents"]
    for event in events:
        assert event["ph"] in ("M", "X", "i")
        assert isinstance(event["name"], str) and event["name"]
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    slices = [event for event in events if event["ph"] == "X"]
    traced = trace(ROOT / "examples/05_taskgroup.py", deterministic=True)
    expected = build(traced.records, virtual=True)
    assert [(names[e["tid"]], e["name"]) for e in slices] == [
        (s.row, s.ended_on) for s in expected.slices
    ]
    assert set(names.values()) == {"turns of the loop", *expected.rows}
    for event in slices:
        assert isinstance(event["ts"], float) and isinstance(event["dur"], float)
        assert event["ts"] >= 0 and event["dur"] >= 0
        assert event["args"]["call"] and "turn" in event["args"]
    if axis == "ticks":  # one slice after another, never two at once
        ends = [(e["ts"], e["ts"] + e["dur"]) for e in slices]
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(ends))
    turns = [event for event in events if event["ph"] == "i"]
    assert [event["name"] for event in turns] == [f"turn {n}" for n in range(1, 15)]


# -- the HTML page (without a browser) -------------------------------------------------------------


class _Elements(HTMLParser):
    """Every start tag of a page with its attributes; and whether the page asks for a URL."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def page_of(result: Timeline, axis: str = "ticks") -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    page = render_html(result, axis=axis, title="A <title> & more")
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return page, parser.tags


@pytest.mark.parametrize("axis", ["ticks", "time"])
def test_the_page_is_self_contained_and_has_a_row_and_a_rect_for_everything(axis: str) -> None:
    traced = trace(ROOT / "examples/17_asyncio_done_callback.py", aio=True, deterministic=True)
    result = build(traced.records, virtual=True)
    page, tags = page_of(result, axis)
    assert page.startswith("<!DOCTYPE html>")
    for outside in ("http:", "https:", "//", "@import", "url("):
        assert outside not in page.replace("<!DOCTYPE", ""), outside
    assert not [attrs for _, attrs in tags if "src" in attrs or "href" in attrs]
    labels = [attrs["data-row"] for tag, attrs in tags if "row-label" in str(attrs.get("class"))]
    assert labels == result.rows == ["Task-1", "callbacks"]
    slices = [attrs for tag, attrs in tags if "slice" in str(attrs.get("class", "")).split()]
    assert [(a["data-task"], a["data-trap"]) for a in slices] == [
        (s.row, s.ended_on) for s in result.slices
    ]
    assert [tag for tag, attrs in tags if attrs.get("id") == "tooltip"] == ["div"]
    assert "<title>A &lt;title&gt; &amp; more</title>" in page


def test_the_page_escapes_what_the_program_names(tmp_path: Path) -> None:
    script = tmp_path / "names.py"
    script.write_text(
        "import kernel\n\n\n"
        "async def main() -> None:\n"
        "    task = await kernel.spawn(kernel.sleep, 0, name='<script>alert(1)</script>')\n"
        "    await task.join()\n"
        "    print('\"quoted\" & <b>bold</b>')\n",
        encoding="utf-8",
    )
    result = build(trace(script, deterministic=True).records, virtual=True)
    page, tags = page_of(result)
    assert page.count("<script>") == 1  # the page's own
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (task 2)" in page
    printed = [attrs["data-printed"] for _, attrs in tags if attrs.get("data-printed")]
    assert printed == ['"quoted" & <b>bold</b>']  # as the program printed it, once parsed


def test_a_sleep_for_ever_and_a_bad_yield_are_slices_that_say_so(tmp_path: Path) -> None:
    script = tmp_path / "odd.py"
    script.write_text(
        "import math\nimport types\nimport kernel\n\n\n"
        "@types.coroutine\ndef bad():\n    yield 'not a trap'\n\n\n"
        "async def forever():\n    await kernel.sleep(math.inf)\n\n\n"
        "async def main():\n"
        "    task = await kernel.spawn(forever)\n"
        "    try:\n        await bad()\n    except TypeError:\n        pass\n"
        "    await task.cancel()\n",
        encoding="utf-8",
    )
    built = build(trace(script, deterministic=True).records, virtual=True)
    endings = {(s.row, s.call, s.outcome) for s in built.slices}
    assert ("forever (task 2)", "sleep(inf)", "sleeping for ever") in endings
    assert ("main (task 1)", "yield 'not a trap'", "back to the ready queue") in endings
