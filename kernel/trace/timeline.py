"""``python -m kernel timeline``: who ran when, one row per task.

A *slice* is one run of a task: from the moment the loop takes it off the ready queue and
resumes it, to the trap that parks it (or its end). Traps the kernel answers at once
(``spawn``, ``clock``, ``cancel``...) do not end a slice: the task carries on. On the asyncio
adapter a slice is one call of a Task's ``__step`` (or ``__wakeup``), ended by what the
coroutine did: await a pending future, yield, return or raise; a callback that is no task's
step (a ``TimerHandle``, a done callback, the one that stops the loop) is a slice of the
row "callbacks".

Each slice is labelled with what ended it, as one symbol (``SYMBOLS``: ``S`` sleeps, ``W``
waits on a wait queue, ``X`` returns...), and between its slices a task's row says whether
it was ready (``-``: on the ready queue, waiting for its turn) or blocked (``.``).

Two axes:

* **ticks** (the default on the virtual clock): one column per slice, in the order the slices
  ran, grouped under the turn of the loop they ran in. Only one task runs at a time, so the
  columns read like a staircase; the time is shown where it changes.
* **time**: slices placed at the time they began. On the virtual clock a slice takes no time
  at all, so this axis shows where the program waited.

The same ``Timeline`` is printed as text here (``render_text``), drawn as a self-contained
HTML page in ``timeline_html.py``, and exported as Chrome-trace JSON (``chrome_trace``:
"X" events, one thread per task, loadable in ui.perfetto.dev or chrome://tracing).

On the command line: ``python -m kernel timeline script.py [--asyncio] [--deterministic]
[--axis ticks|time] [-o timeline.html] [--chrome-trace out.json] [--width N]``.

Read next: ``kernel/trace/timeline_html.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .records import Record
from .script import add_script_arguments, trace

__all__ = [
    "AXES",
    "BLOCKED",
    "CALLBACKS",
    "FILL",
    "READY",
    "SYMBOLS",
    "TICKS_AXIS",
    "Column",
    "Slice",
    "Timeline",
    "add_arguments",
    "build",
    "chrome_trace",
    "command",
    "dumps_trace",
    "format_seconds",
    "render_text",
    "summary",
    "time_step",
]

WIDTH = 100
AXES = ("ticks", "time")
CALLBACKS = "callbacks"  # the row of the callbacks that are no task's step
READY = "ready"  # between slices: on the ready queue, waiting for its turn
BLOCKED = "blocked"  # between slices: parked until something wakes it
_RUNNING = "running"  # in a slice (a state the builder keeps, never drawn)

# How a slice ended, by symbol, in the order the legend lists them.
SYMBOLS = {
    "S": "sleeps: on the sleeping queue until its deadline",
    "I": "waits for I/O: in the I/O wait table until its file is ready",
    "W": "waits on a wait queue (of a lock, an event, a queue...) until a task wakes it",
    "J": "waits for another task to end",
    "F": "waits for a future to be done",
    "Y": "yields: straight to the back of the ready queue",
    "X": "returns: the task is over",
    "E": "raises: the task is over",
    "C": "is cancelled: the task is over",
    "T": "a TimerHandle's callback runs: what call_later and call_at scheduled",
    "*": "another callback runs: a done callback, loop.stop, an I/O watcher...",
    "?": "still running when the trace ends",
}
FILL = {READY: "-", BLOCKED: "."}

# Where a parked task went (the ``to`` of a ``park`` record) -> its symbol.
_PARKED = {"sleeping": "S", "io": "I", "wait": "W", "join": "J", "future": "F", "ready": "Y"}
_TASK_STEPS = ("step", "wakeup")  # the callbacks that run an asyncio task's coroutine
_OVER = frozenset("XEC?")  # the symbols after which a task has no state: it is over


@dataclass
class Slice:
    """One run of a task (or one callback), from being resumed to what ended it."""

    row: str  # the task's label, or CALLBACKS
    tick: int  # the turn of the loop it ran in
    start: float  # seconds since the recording began
    end: float
    symbol: str = "?"
    ended_on: str = "running"  # the trap, or what the coroutine did: "sleep", "wait_on LOCK"
    call: str = ""  # with its arguments: "sleep(1)", "await Future-1"
    outcome: str = ""  # where that left the task: "sleeping until t=1", "returned 123"
    also: list[str] = field(default_factory=list)  # traps answered on the way: "clock()"
    printed: list[str] = field(default_factory=list)  # lines the program printed meanwhile


@dataclass
class Column:
    """One column of the ticks axis: a slice, or a turn in which nothing ran."""

    tick: int
    start: float
    end: float
    slice: Slice | None
    states: dict[str, str]  # after this column: each live task -> READY or BLOCKED


@dataclass
class Timeline:
    """The slices of a trace, in the order they ran, and the rows they belong to."""

    rows: list[str] = field(default_factory=list)  # in order of appearance
    kinds: dict[str, str] = field(default_factory=dict)  # row -> "kernel task", "asyncio task"...
    columns: list[Column] = field(default_factory=list)
    turns: int = 0
    virtual: bool = False  # recorded on the virtual clock

    @property
    def slices(self) -> list[Slice]:
        return [column.slice for column in self.columns if column.slice is not None]

    @property
    def duration(self) -> float:
        return max((column.end for column in self.columns), default=0.0)

    def endings(self) -> dict[str, list[str]]:
        """Each symbol in use -> what the slices it marks ended on ("sleep", "exit"...)."""
        seen: dict[str, list[str]] = {}
        for slice_ in self.slices:
            endings = seen.setdefault(slice_.symbol, [])
            if slice_.ended_on not in endings:
                endings.append(slice_.ended_on)
        return seen


def build(records: list[Record], *, virtual: bool = False) -> Timeline:
    """Cut a trace's records into slices and columns."""
    builder = _Builder(virtual)
    for record in records:
        builder.feed(record)
    return builder.finish()


class _Builder:
    """Walks the records once, keeping each task's state and the slice that is running."""

    def __init__(self, virtual: bool) -> None:
        self.timeline = Timeline(virtual=virtual)
        self.states: dict[str, str] = {}  # live task -> READY, BLOCKED or _RUNNING
        self.running: dict[str, Slice] = {}  # row -> its open slice
        self.trap: dict[str, tuple[str, str]] = {}  # task -> (trap, call) being handled
        self.tick = 0
        self.tick_has_column = True
        self.t = 0.0

    def feed(self, record: Record) -> None:
        if record["tick"] != self.tick:
            self._end_turn()
            self.tick, self.tick_has_column = record["tick"], False
            self.timeline.turns = max(self.timeline.turns, self.tick)
        self.t = record["t"] if record["t"] is not None else self.t
        handler = getattr(self, "_on_" + record["event"], None)
        if handler is not None:
            handler(record)

    def finish(self) -> Timeline:
        for row in list(self.running):
            self._close(row, "?", "running", outcome="the trace ends here")
        self._end_turn()
        return self.timeline

    def _end_turn(self) -> None:
        """A turn in which nothing ran still gets a column, so every turn is on the axis."""
        if not self.tick_has_column and self.tick > 0:
            self._column(None, self.t, self.t)

    def _column(self, slice_: Slice | None, start: float, end: float) -> None:
        states = {row: state for row, state in self.states.items() if state != _RUNNING}
        self.timeline.columns.append(Column(self.tick, start, end, slice_, states))
        self.tick_has_column = True

    def _row(self, label: str, kind: str) -> None:
        if label not in self.timeline.kinds:
            self.timeline.rows.append(label)
            self.timeline.kinds[label] = kind

    def _open(self, row: str) -> Slice:
        slice_ = self.running.get(row)
        if slice_ is None:
            slice_ = self.running[row] = Slice(row, self.tick, self.t, self.t)
            if row != CALLBACKS:
                self.states[row] = _RUNNING
        return slice_

    def _close(
        self, row: str, symbol: str, ended_on: str, call: str | None = None, outcome: str = ""
    ) -> None:
        slice_ = self.running.pop(row, None) or Slice(row, self.tick, self.t, self.t)
        slice_.end, slice_.symbol, slice_.ended_on = self.t, symbol, ended_on
        slice_.call = call if call is not None else slice_.call or ended_on
        slice_.outcome = outcome or slice_.outcome
        if row != CALLBACKS:
            if symbol in _OVER:
                self.states.pop(row, None)
            else:
                self.states[row] = READY if symbol == "Y" else BLOCKED
        self._column(slice_, slice_.start, slice_.end)

    # -- kernel tasks ------------------------------------------------------------------------

    def _on_spawn(self, record: Record) -> None:
        self._row(record["task"], "kernel task")
        self.states[record["task"]] = READY

    def _on_run(self, record: Record) -> None:
        task = record["task"]
        self._row(task, "kernel task")
        handled = self.trap.pop(task, None)
        if task in self.running and handled is not None:
            self.running[task].also.append(handled[1])  # the trap was answered at once
        self._open(task)

    def _on_trap(self, record: Record) -> None:
        call = f"{record['trap']}({', '.join(record['args'])})"
        self.trap[record["task"]] = (record["trap"], call)

    def _on_park(self, record: Record) -> None:
        task = record["task"]
        trap, call = self.trap.pop(task, ("?", "?"))
        if trap == "wait_on":
            trap = f"wait_on {record['why']}"
        self._close(task, _PARKED.get(record["to"], "?"), trap, call, _parked(record))

    def _on_wake(self, record: Record) -> None:
        if self.states.get(record["task"]) == BLOCKED:
            self.states[record["task"]] = READY

    def _on_exit(self, record: Record) -> None:
        task = record["task"]
        self.trap.pop(task, None)
        if record["cancelled"]:
            symbol, outcome = "C", f"cancelled: {record.get('exc')}"
        elif "exc" in record:
            symbol, outcome = "E", f"raised {record['exc']}"
        else:
            symbol, outcome = "X", f"returned {record.get('result')}"
        self._close(task, symbol, "exit", outcome=outcome)

    def _on_output(self, record: Record) -> None:
        row = record.get("task")
        if row in self.running:
            self.running[row].printed.append(record["text"])
        elif CALLBACKS in self.running:
            self.running[CALLBACKS].printed.append(record["text"])

    # -- the asyncio adapter's callbacks ------------------------------------------------------

    def _on_call_soon(self, record: Record) -> None:
        task = record.get("task")
        if record["kind"] in _TASK_STEPS and task is not None:
            self._row(task, "asyncio task")
            if self.states.get(task) != _RUNNING:
                self.states[task] = READY

    def _on_callback(self, record: Record) -> None:
        task = record.get("task")
        if record["kind"] in _TASK_STEPS and task is not None:
            self._row(task, "asyncio task")
            self._open(task)
        else:
            self._row(CALLBACKS, "callbacks")
            opened = self._open(CALLBACKS)
            opened.call = record["callback"]
            opened.outcome = f"on behalf of {task}" if task is not None else ""

    def _on_callback_done(self, record: Record) -> None:
        task, kind = record.get("task"), record["kind"]
        if kind not in _TASK_STEPS or task is None:
            self._close(CALLBACKS, "T" if kind == "timer" else "*", kind)
            return
        outcome: dict[str, Any] = record.get("outcome") or {}
        if "yielded" in outcome:
            future = outcome["yielded"]
            self._close(task, "F", "await", f"await {future}", f"waits for {future}")
        elif outcome.get("again"):
            self._close(task, "Y", "yield", "yield", "back to the ready queue")
        elif outcome.get("cancelled"):
            self._close(task, "C", "exit", outcome="cancelled")
        elif "exception" in outcome:
            self._close(task, "E", "exit", outcome=f"raised {outcome['exception']}")
        elif "result" in outcome:
            self._close(task, "X", "exit", outcome=f"returned {outcome['result']}")
        else:
            self._close(task, "?", "step", outcome="its step ended")


def _parked(record: Record) -> str:
    """Where a ``park`` record left its task, in a few words."""
    to = record["to"]
    if to == "sleeping":
        text = f"sleeping until t={format_seconds(record['until'])}"
    elif to == "io":
        text = f"waits until {record['fd']} is ready to {record['for']}"
    elif to == "ready":
        text = "back to the ready queue"
    else:
        text = f"waits on {record.get('on')}"
    if record.get("timeout") is not None:
        text += f" (timeout at t={format_seconds(record['timeout'])})"
    return text


def format_seconds(seconds: float, digits: int = 3) -> str:
    """``1``, ``0.5``, ``0.125``: a number of seconds (or anything) without trailing zeros."""
    text = f"{seconds:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# -- text ------------------------------------------------------------------------------------------

LABEL_MAX = 24  # a longer task name is cut, so that the chart keeps its room
CELL = 2  # characters per column on the ticks axis: the symbol and a space


def render_text(
    timeline: Timeline, *, axis: str = "ticks", width: int = WIDTH, title: str | None = None
) -> str:
    """The timeline as text: a summary, the chart (in bands if it is wide), the legend."""
    lines = [] if title is None else [*_wrap(title, width), ""]
    how = TICKS_AXIS if axis == "ticks" else _TIME_AXIS
    lines += [*_wrap(f"{summary(timeline)} {how}", width), ""]
    lines += _ticks_chart(timeline, width) if axis == "ticks" else _time_chart(timeline, width)
    lines += ["", *_legend(timeline, width)]
    return "\n".join(lines) + "\n"


def summary(timeline: Timeline) -> str:
    """What the chart holds, in one sentence."""
    clock = "on the virtual clock" if timeline.virtual else "in real time"
    return (
        f"{_count(timeline.turns, 'turn')} of the loop, {_count(len(timeline.slices), 'slice')}, "
        f"{format_seconds(timeline.duration)} s {clock}."
    )


TICKS_AXIS = (
    "One column per slice, in the order they ran, under the number of the turn they ran in; "
    "the time (t, in seconds) is shown where it changes."
)

_TIME_AXIS = "Each slice is drawn where it began (the last one, if several begin in one column)."


def _ticks_chart(timeline: Timeline, width: int) -> list[str]:
    """One column per slice; as many bands of columns as the width needs."""
    label_width = _label_width(timeline)
    room = width - label_width
    per_band = max(1, room // CELL)
    columns = timeline.columns
    lines: list[str] = []
    for first in range(0, len(columns), per_band):
        band = columns[first : first + per_band]
        # A turn's number, and the time, are written where they change (and at the left).
        turns, times = [], []
        for i, column in enumerate(band):
            before = columns[first + i - 1] if i else None
            if before is None or column.tick != before.tick:
                turns.append((i * CELL, str(column.tick)))
            if before is None or column.start != before.start:
                times.append((i * CELL, format_seconds(column.start)))
        if first:
            lines.append("")
        lines.append(_ruler("turn", label_width, turns, room))
        lines.append(_ruler("t", label_width, times, room))
        for row in timeline.rows:
            cells = [_cell(column, row) for column in band]
            if any(cell != " " for cell in cells):
                lines.append((_label(row, label_width) + " ".join(cells)).rstrip())
    return lines


def _cell(column: Column, row: str) -> str:
    if column.slice is not None and column.slice.row == row:
        return column.slice.symbol
    return FILL.get(column.states.get(row, ""), " ")


def _time_chart(timeline: Timeline, width: int) -> list[str]:
    """One character per interval of time; a slice is drawn where it began."""
    label_width = _label_width(timeline)
    room = max(10, width - label_width)
    span = timeline.duration or 1.0

    def at(seconds: float) -> int:
        return min(room - 1, int(seconds / span * room))

    step = time_step(span, room)
    marks = [(at(k * step), format_seconds(k * step)) for k in range(int(span / step + 1e-9) + 1)]
    lines = [_ruler("t", label_width, marks, room)]
    for row in timeline.rows:
        symbols: dict[int, str] = {}
        state_from: dict[int, str] = {}  # cell -> the row's state after what began there
        for column in timeline.columns:
            cell = at(column.start)
            if column.slice is not None and column.slice.row == row:
                symbols[cell] = column.slice.symbol
            state_from[cell] = FILL.get(column.states.get(row, ""), " ")
        cells, state = [], " "
        for cell in range(room):
            state = state_from.get(cell, state)
            cells.append(symbols.get(cell, state))
        if any(cell != " " for cell in cells):
            lines.append((_label(row, label_width) + "".join(cells)).rstrip())
    return lines


def time_step(span: float, room: float) -> float:
    """1, 2 or 5 times a power of ten: the step of a time ruler ``room`` cells long that
    puts a label every 10 cells or more."""
    wanted = span * 10 / room
    power = 10.0 ** math.floor(math.log10(wanted))
    return next(power * m for m in (1, 2, 5, 10) if power * m >= wanted - 1e-12)


def _ruler(name: str, label_width: int, marks: list[tuple[int, str]], room: int) -> str:
    """A line of labels at their positions, each dropped if it would touch the one before."""
    chars = [" "] * room
    end = -1
    for position, text in marks:
        if position >= end + 1 and position + len(text) <= room:
            chars[position : position + len(text)] = text
            end = position + len(text)
    return (_label(name, label_width) + "".join(chars)).rstrip()


def _label_width(timeline: Timeline) -> int:
    return min(max((len(row) for row in timeline.rows), default=4), LABEL_MAX) + 2


def _label(text: str, width: int) -> str:
    """A row's name in ``width`` columns; a long one is cut, keeping its "(task n)"."""
    if len(text) > width - 2:
        name, task, number = text.rpartition(" (task ")
        suffix = task + number if name else ""
        text = (name or text)[: width - 4 - len(suffix)] + ".." + suffix
    return text.ljust(width)


def _legend(timeline: Timeline, width: int) -> list[str]:
    """The symbols the chart uses, each with the traps (or outcomes) it stood for."""
    seen = timeline.endings()
    lines = ["Each slice is shown by how it ended:"]
    for symbol, meaning in SYMBOLS.items():
        if symbol in seen:
            text = f"  {symbol}  {meaning} ({', '.join(seen[symbol])})"
            lines += _wrap(text, width, indent=" " * 5)
    lines += _wrap(
        f"Between its slices a task is  {FILL[READY]}  ready (on the ready queue, waiting for "
        f"its turn)  or  {FILL[BLOCKED]}  blocked.",
        width,
    )
    return lines


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


# -- Chrome trace / Perfetto -----------------------------------------------------------------------

TICK_MICROSECONDS = 1000.0  # on the ticks axis, a slice is drawn one millisecond wide


def chrome_trace(
    timeline: Timeline, *, axis: str = "ticks", title: str = "kernel"
) -> dict[str, Any]:
    """The timeline in Chrome's trace event format: one "X" (complete) event per slice.

    Every task is a thread of one process (its name, its place); a slice is named after
    what ended it, and its ``args`` hold the rest (the call, the outcome, the turn, the
    times). Each turn of the loop is a global instant event. On the ticks axis the
    timestamps count slices, not time: slice number n begins at n ms.
    """
    tids = {row: number for number, row in enumerate(timeline.rows, 1)}
    events: list[dict[str, Any]] = [
        _metadata(0, "process_name", {"name": title}),
        _metadata(0, "thread_name", {"name": "turns of the loop"}),
    ]
    for row, tid in tids.items():
        events.append(_metadata(tid, "thread_name", {"name": row}))
        events.append(_metadata(tid, "thread_sort_index", {"sort_index": tid}))
    tick = 0
    for index, column in enumerate(timeline.columns):
        if axis == "ticks":
            start, duration = index * TICK_MICROSECONDS, TICK_MICROSECONDS
        else:
            start = round(column.start * 1e6, 3)
            duration = round((column.end - column.start) * 1e6, 3)
        if column.tick != tick:
            tick = column.tick
            turn = {"name": f"turn {tick}", "ph": "i", "s": "g", "pid": 1, "tid": 0, "ts": start}
            events.append(turn)
        slice_ = column.slice
        if slice_ is not None:
            events.append(
                {
                    "name": slice_.ended_on,
                    "cat": timeline.kinds[slice_.row],
                    "ph": "X",
                    "pid": 1,
                    "tid": tids[slice_.row],
                    "ts": start,
                    "dur": duration,
                    "args": {
                        "task": slice_.row,
                        "call": slice_.call,
                        "outcome": slice_.outcome,
                        "also": slice_.also,
                        "printed": slice_.printed,
                        "turn": slice_.tick,
                        "t_start": slice_.start,
                        "t_end": slice_.end,
                    },
                }
            )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"title": title, "axis": axis, "virtual_clock": timeline.virtual},
    }


def dumps_trace(exported: dict[str, Any]) -> str:
    """A Chrome trace as JSON text, one event per line (so that a diff reads well)."""
    events = ",\n".join(json.dumps(event) for event in exported["traceEvents"])
    rest = {key: value for key, value in exported.items() if key != "traceEvents"}
    return '{"traceEvents": [\n' + events + "\n],\n" + json.dumps(rest)[1:] + "\n"


def _metadata(tid: int, kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """A metadata event: the name of the process or of a thread, or a thread's place."""
    return {"name": kind, "ph": "M", "pid": 1, "tid": tid, "args": args}


# -- the command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m kernel timeline``'s options."""
    add_script_arguments(parser)
    parser.add_argument(
        "--axis",
        choices=AXES,
        help="ticks: one column per slice, grouped by turn of the loop (the default with "
        "--deterministic); time: slices placed at the time they began (the default otherwise)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="timeline.html",
        help="also write the timeline as a self-contained HTML page",
    )
    parser.add_argument(
        "--chrome-trace",
        metavar="out.json",
        help="also write it as Chrome-trace JSON, for ui.perfetto.dev or chrome://tracing",
    )
    parser.add_argument(
        "--width", metavar="N", type=_width, default=WIDTH, help="columns of text (default 100)"
    )


def command(args: argparse.Namespace) -> int:
    """``python -m kernel timeline``: run the script recorded, print (and write) its timeline."""
    traced = trace(args.script, aio=args.aio, deterministic=args.deterministic)
    timeline = build(traced.records, virtual=args.deterministic)
    axis = args.axis or ("ticks" if args.deterministic else "time")
    runner = "kernel.aio's event loop" if args.aio else "the kernel"
    what = f"{args.script} (as __main__)" if traced.as_main else f"main() of {args.script}"
    title = f"Timeline of {what} on {runner}"
    print(render_text(timeline, axis=axis, width=args.width, title=title), end="")
    if args.output:
        from .timeline_html import render_html  # only the page needs it

        Path(args.output).write_text(render_html(timeline, axis=axis, title=title), "utf-8")
        print(f"timeline: wrote {args.output}", file=sys.stderr)
    if args.chrome_trace:
        exported = chrome_trace(timeline, axis=axis, title=title)
        Path(args.chrome_trace).write_text(dumps_trace(exported), "utf-8")
        print(f"timeline: wrote {args.chrome_trace}", file=sys.stderr)
    if traced.error is not None:
        print(f"timeline: the program raised {traced.error!r}", file=sys.stderr)
        return 1
    return 0


def _width(text: str) -> int:
    number = int(text)
    if number < 40:
        raise argparse.ArgumentTypeError(f"expected a width of at least 40 columns, got {text}")
    return number
