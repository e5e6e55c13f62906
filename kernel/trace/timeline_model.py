"""The timeline's model: a trace's records cut into slices, one row per task.

``build(records)`` walks the records once (``_Builder``), keeping each task's state -- ready,
blocked, or running -- and the slice that is running. A ``Slice`` opens when the loop resumes
a task (a ``run`` record; on the adapter, a ``callback`` that is a task's step) and closes at
what parks or ends it, labelled with one symbol of ``SYMBOLS``. Each closed slice is a
``Column`` that also keeps every live task's state after it, so a view can fill the gaps
between a task's slices with ``FILL`` (``-`` ready, ``.`` blocked). A turn of the loop in which
nothing ran still gets a column: every turn is on the axis.

The views draw a ``Timeline`` and never read records: ``timeline_text.py`` (text),
``timeline_chrome.py`` (Chrome-trace JSON), ``timeline_html.py`` (an HTML/SVG page).

Read next: ``kernel/trace/timeline_text.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .records import Record

__all__ = [
    "BLOCKED",
    "CALLBACKS",
    "FILL",
    "READY",
    "SYMBOLS",
    "Column",
    "Slice",
    "Timeline",
    "build",
    "format_seconds",
]

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

    def _on_bad_yield(self, record: Record) -> None:
        # Not a trap: the park that follows sends the task to the back of the ready queue.
        self.trap[record["task"]] = ("bad yield", f"yield {record['value']}")

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
    if to == "sleeping" and record["until"] is None:  # (a deadline that never comes)
        text = "sleeping for ever"
    elif to == "sleeping":
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
