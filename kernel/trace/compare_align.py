"""Comparing two runs: the schedule each one ran, how the two line up, and why they differ.

``schedule(records)`` reads from a run's records the level both loops share: the callbacks
that ran, in order, turn by turn (``Ran``, ``Turn``), each with what it did that shapes the
schedule -- the timers it set, a ``loop.stop()``. Names are then renumbered in order of
appearance, so that ``Task-57`` of a long-lived process and ``Task-1`` of a fresh one are the
same task if they appear at the same place.

``align(left, right)`` finds the first callback that differs (``"diverge"``), or, with the
same order, the first that is cut into another turn (``"turns"``); ``_why`` explains that
difference when it is a known one between asyncio and kernel.aio (``_HEAP_TIES``, ``_IO``...).
A ``Comparison`` holds the two runs and that verdict; ``compare_report.py`` writes it out.

Read next: ``kernel/trace/compare_report.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .narrator import _t  # the narration's way of writing times
from .records import Record
from .script import Traced

__all__ = ["Comparison", "Ran", "Run", "Turn", "align", "schedule"]

ASYNCIO, ADAPTER = "asyncio", "kernel.aio"

# Entries that are each loop's plumbing, not the program's: asyncio's self-pipe reader, and
# the adapter's empty entry that makes a loop stopped before run_forever() turn once.
_PLUMBING_KINDS = frozenset({"self_pipe"})
_PLUMBING_CALLBACKS = frozenset({"Nothing"})

_NAME = re.compile(r"(?<![\w-])(Task|Future)-(\d+)(?![\w-])")


@dataclass
class Ran:
    """One callback that ran: an entry of ``_ready`` taken out and called."""

    number: int  # its place in the whole schedule, from 1
    turn: int  # the turn of its loop (``_run_once`` number) it ran in
    position: int  # its place in that turn, from 1
    t: float | None  # when it ran, seconds since the run began
    what: str  # its label: "Task-1.__step", "TimerHandle(...)"...
    kind: str  # "step", "wakeup", "timer", "stop", "callback"
    task: str | None = None  # the task it belongs to
    due: float | None = None  # a TimerHandle's deadline
    delays: list[float] = field(default_factory=list)  # of the timers it set
    stops: bool = False  # it called loop.stop()
    did: list[str] = field(default_factory=list)  # what it did, in order, in words

    def key(self, virtual: bool) -> tuple[Any, ...]:
        """What must be equal on both sides for this to be "the same callback"."""
        delays = tuple(None if delay is None else round(delay, 3) for delay in self.delays)
        when = None if not virtual or self.t is None else round(self.t, 6)
        return (self.what, delays, self.stops, when)


@dataclass
class Turn:
    """A turn of a loop: when it began and what it asked ``select()``."""

    number: int
    t: float | None
    selected: bool = False  # did it call select()?
    timeout: float | None = None  # with which timeout (None: no limit)
    io: bool = False  # did select() find a file descriptor ready?


@dataclass
class Run:
    """One side of the comparison: the program on one loop."""

    loop: str  # ASYNCIO or ADAPTER
    traced: Traced
    schedule: list[Ran]
    turns: list[Turn]
    printed: list[str]  # every line the program printed
    plumbing: int  # entries left out as the loop's plumbing


@dataclass
class Comparison:
    """The two runs and how their schedules line up."""

    program: str
    deterministic: bool
    runs: tuple[Run, Run]  # (asyncio, kernel.aio)
    verdict: str = "match"  # or "turns" (same order, other turn boundaries), "diverge"
    at: int | None = None  # the index (from 0) of the first callback that differs, or
    #                        that is cut into another turn
    why: str | None = None  # the explanation of that difference, when one is known

    def judge(self) -> Comparison:
        """Align the two schedules: set ``verdict``, ``at`` and ``why``."""
        asyncio_run, adapter_run = self.runs
        self.verdict, self.at = align(
            asyncio_run.schedule, adapter_run.schedule, virtual=self.deterministic
        )
        self.why = _why(self)
        return self


def _run(loop: str, traced: Traced) -> Run:
    ran, turns, plumbing = schedule(traced.records)
    printed = [r["text"] for r in traced.records if r["event"] == "output"]
    return Run(loop, traced, _renumbered(ran), turns, printed, plumbing)


def schedule(records: list[Record]) -> tuple[list[Ran], list[Turn], int]:
    """The callbacks that ran, the turns, and how many plumbing entries were left out."""
    ran: list[Ran] = []
    turns: list[Turn] = []
    plumbing = 0
    position = 0  # of the last callback, in its turn
    current: Ran | None = None
    ended = False  # has the end of the current step's task been told?
    deadlines: dict[str, list[float | None]] = {}  # TimerHandle label -> its call_at deadlines
    for record in records:
        event = record["event"]
        if event == "turn":
            turns.append(Turn(record["tick"], record["t"]))
            current = None
        elif event == "select" and turns:
            turns[-1].selected, turns[-1].timeout = True, record["timeout"]
            turns[-1].io = bool(record["ready"])
        elif event == "call_at":
            deadlines.setdefault(record["callback"], []).append(record["until"])
            if current is not None:
                current.delays.append(record["delay"])
                until = record["until"]  # (None: a deadline that never comes)
                current.did.append(
                    f"sets {record['callback']} for {'ever' if until is None else _t(until)}"
                )
        elif event == "callback":
            kind, what = record["kind"], record["callback"]
            if kind in _PLUMBING_KINDS or what in _PLUMBING_CALLBACKS:
                plumbing += 1
                current = None
                continue
            tick = record["tick"]
            position = position + 1 if ran and ran[-1].turn == tick else 1
            current = Ran(len(ran) + 1, tick, position, record["t"], what, kind, record["task"])
            ended = False
            if kind == "timer":
                current.due = _deadline(deadlines.get(what, []), record["t"])
            if kind in ("step", "wakeup") and record.get("coro"):
                current.did.append(
                    f"{record['coro']}() {'starts' if record['first'] else 'resumes'}"
                )
            ran.append(current)
        elif current is None:
            continue
        elif event == "call_soon":
            if record.get("finished_step") and not ended:
                current.did.append(_ending(record.get("coro"), record["outcome"]))
                ended = True
            current.did.append(f"queues {record['callback']}")
        elif event == "output":
            current.did.append(f"prints {record['text']!r}")
        elif event == "stop":
            current.stops = True
            current.did.append("calls loop.stop()")
        elif event == "callback_done":
            if record.get("ended") and not ended:
                current.did.append(_ending(record.get("coro"), record["outcome"]))
            current = None
    return ran, turns, plumbing


def _deadline(deadlines: list[float | None], t: float | None) -> float | None:
    """The deadline of a TimerHandle that runs at ``t``: the latest of its label's that has
    passed (a cancelled timer with the same label leaves an earlier one behind)."""
    passed = [d for d in deadlines if d is not None and (t is None or d <= t + 1e-6)]
    if not passed:
        return None
    deadlines.remove(max(passed))
    return max(passed)


def _ending(coro: str | None, outcome: dict[str, Any]) -> str:
    who = f"{coro}()" if coro else "the task"
    if outcome.get("cancelled"):
        return f"{who} ends cancelled"
    if "exception" in outcome:
        return f"{who} raises {outcome['exception']}"
    return f"{who} returns {outcome.get('result')}"


def _renumbered(ran: list[Ran]) -> list[Ran]:
    """``Task-n`` and ``Future-n`` renumbered in order of appearance in the schedule."""
    numbers: dict[str, str] = {}
    counts: dict[str, int] = {}

    def rename(match: re.Match[str]) -> str:
        name = match.group(0)
        if name not in numbers:
            kind = match.group(1)
            counts[kind] = counts.get(kind, 0) + 1
            numbers[name] = f"{kind}-{counts[kind]}"
        return numbers[name]

    def text(value: str) -> str:
        return _NAME.sub(rename, value)

    for entry in ran:
        entry.what = text(entry.what)
        entry.task = None if entry.task is None else text(entry.task)
        entry.did = [text(phrase) for phrase in entry.did]
    return ran


def align(left: list[Ran], right: list[Ran], *, virtual: bool) -> tuple[str, int | None]:
    """Compare two schedules: ``("match", None)``, ``("diverge", i)`` where the ``i``-th
    callback (from 0) is the first that differs -- or is missing on one side -- or
    ``("turns", i)``: the same order, but the ``i``-th callback is in the same turn as the one
    before it on one side and not on the other."""
    for i, (a, b) in enumerate(zip(left, right, strict=False)):
        if a.key(virtual) != b.key(virtual):
            return "diverge", i
    if len(left) != len(right):
        return "diverge", min(len(left), len(right))
    for i in range(1, len(left)):
        if (left[i].turn == left[i - 1].turn) != (right[i].turn == right[i - 1].turn):
            return "turns", i
    return "match", None


# -- explanations ------------------------------------------------------------------------------

_HEAP_TIES = (
    "Known difference: timers with the same deadline. asyncio keeps _scheduled as a heap "
    "(heapq), and a heap does not keep the order in which equal items were added: with four "
    "or more TimerHandles due at the same time, _run_once pops them in an order such as 1, 3, "
    "2, 4. The kernel's sleeping queue breaks ties by arrival (a sequence number), so its "
    "timers with equal deadlines run first set, first run. On the real clock two deadlines "
    "are almost never equal; the virtual clock makes them so. What follows is the same "
    "callbacks in another order, and every later difference comes from this one."
)
_IO = (
    "Known difference: I/O. kernel.aio implements transports, servers and the sock_* methods "
    "itself, over the kernel's I/O wait table (kernel/aio/transports.py and its neighbours), "
    "not with asyncio's selector_events code, so what runs when a socket is ready is another "
    "set of callbacks (asyncio's _accept_connection, _read_ready...; the adapter's own). The "
    "schedules can be compared up to the first callback that I/O made ready; after it, "
    "compare what the program printed and returned."
)
_REAL_CLOCK = (
    "The runs are on the real clock, so they do not take the same time: a timer can come due "
    "a turn earlier on one side, or two deadlines that are microseconds apart can swap. Run "
    "with --deterministic to compare the schedules without that noise."
)
_ENDED = "{loop} ran no more callbacks{because}."
_UNKNOWN = (
    "This is not a documented difference between kernel.aio and asyncio: either the program "
    "depends on something the two loops do differently, or kernel.aio has a bug here. The "
    "context above shows where."
)
_TURNS = (
    "Turn boundaries decide only which select() a callback waits behind; the order in which "
    "callbacks run is what a program can observe. Both loops run, in one turn, what the ready "
    "queue holds once select() has returned: the callbacks queued before, then those that I/O "
    "made ready, then the TimerHandles that came due (the kernel, like asyncio, runs a timer in "
    "the turn whose select() waited for it). A turn is cut elsewhere when select() returns at "
    "another moment: I/O, a thread's call_soon_threadsafe, or on the real clock a timer a "
    "moment late."
)


def _why(comparison: Comparison) -> str | None:
    """The explanation of the first difference, if there is one."""
    at = comparison.at
    if at is None:
        return None
    if comparison.verdict == "turns":
        return _TURNS
    asyncio_run, adapter_run = comparison.runs
    a, b = _nth(asyncio_run, at), _nth(adapter_run, at)
    if a is None or b is None:
        short = asyncio_run if a is None else adapter_run
        error = short.traced.error
        because = "" if error is None else f": the program raised {error!r} there"
        return _ENDED.format(loop=short.loop, because=because)
    if a.kind == b.kind == "timer" and _same_turn_shuffled(comparison, at):
        return _HEAP_TIES
    if _after_io(asyncio_run, a) or _after_io(adapter_run, b):
        return _IO
    if not comparison.deterministic:
        return _REAL_CLOCK
    return _UNKNOWN


def _nth(run: Run, index: int) -> Ran | None:
    return run.schedule[index] if index < len(run.schedule) else None


def _after_io(run: Run, entry: Ran) -> bool:
    """Did ``entry`` run in a turn whose select() found a file descriptor ready, or is it
    asyncio's own I/O code?"""
    turns = [turn for turn in run.turns if turn.number == entry.turn]
    return any(turn.io for turn in turns) or entry.what.startswith("selector_events.")


def _same_turn_shuffled(comparison: Comparison, at: int) -> bool:
    """Are the callbacks of the turn where the divergence is the same on both sides, in
    another order?"""
    keys = []
    for run in comparison.runs:
        turn = run.schedule[at].turn
        ran = [r for r in run.schedule if r.turn == turn]
        keys.append(sorted(repr(r.key(comparison.deterministic)) for r in ran))
    return keys[0] == keys[1]
