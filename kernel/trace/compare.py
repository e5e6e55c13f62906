"""``python -m kernel compare``: one asyncio program, on asyncio's own loop and on kernel.aio.

The program runs twice, each time recorded: on a ``RecordingEventLoop`` -- asyncio's own
selector loop, listened to (``asyncio_recorder.py``) -- and on the adapter, through the
kernel's tracer (``script.trace(path, aio=True)``). Both give records in one vocabulary
(``records.py``), and this module reads from each the level both loops share: the *schedule*,
the callbacks that ran, in order, turn by turn -- a step of Task-1 (``Task-1.__step``), a
wake-up (``Task-1.__wakeup(Future-1)``), a ``TimerHandle`` (with its deadline), a done
callback, ``_run_until_complete_cb`` -- and what each did that shapes the schedule: the timers
it set (their delays) and whether it called ``loop.stop()``.

Aligning the two schedules:

* names are renumbered in order of appearance on each side (``Task-57`` of a long-lived
  process and ``Task-1`` of a fresh one are the same task if they appear at the same place),
  and times are counted from the start of each run;
* the order is strict: the first callback that differs -- by what it calls, the delays of the
  timers it sets, a ``loop.stop()``, and on the virtual clock the time it ran -- is *the
  divergence*, reported with its turn and position on each side, a few callbacks of context
  from both, and an explanation when it is a known difference of the two loops;
* turn boundaries are tolerant: where the order is the same but the turns are cut
  differently, the report says "same order, different turn boundaries" and why that can be.

What differs between the loops without changing the schedule is left out, and said: the
adapter queues a Task itself where asyncio queues a fresh Handle per step; the kernel skips
``select()`` when callbacks are ready and nothing is watched; asyncio's self-pipe reader runs
as a callback, the kernel's wake-up socket does not.

``--deterministic`` runs both on a ``VirtualClock`` (time jumps to the next deadline instead
of passing), which makes both runs exact and repeatable -- and brings out one difference a
real clock hides: timers with *equal* deadlines (see ``_HEAP_TIES``).

Read next: ``kernel/trace/asyncio_recorder.py``, the recording loop.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import aio
from . import asyncio_recorder
from .explain import _names, _t, _wrap  # the narration's way of writing times and text
from .records import Record
from .script import Traced
from .script import trace as trace_adapter

__all__ = [
    "Comparison",
    "Ran",
    "Run",
    "Turn",
    "add_arguments",
    "align",
    "as_json",
    "command",
    "compare",
    "render",
    "schedule",
]

ASYNCIO, ADAPTER = "asyncio", "kernel.aio"
CONTEXT = 3  # callbacks of context shown on each side of a divergence

# Entries that are each loop's plumbing, not the program's: asyncio's self-pipe reader, and
# the adapter's empty entry that makes a loop stopped before run_forever() turn once.
_PLUMBING_KINDS = frozenset({"self_pipe"})
_PLUMBING_CALLBACKS = frozenset({"_Nothing"})

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
        delays = tuple(round(delay, 3) for delay in self.delays)
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


def compare(path: str | Path, *, deterministic: bool = False) -> Comparison:
    """Run the asyncio program at ``path`` on both loops, recorded; align the schedules."""
    on_asyncio = asyncio_recorder.trace(path, deterministic=deterministic)
    # asyncio.run() and asyncio.new_event_loop() in the program get kernel.aio's recording
    # loop (looked up when called: script.trace puts it in kernel.aio.new_event_loop).
    with asyncio_recorder.new_event_loops(_adapter_loop, kernel_aio=False):
        on_adapter = trace_adapter(path, aio=True, deterministic=deterministic)
    runs = (_run(ASYNCIO, on_asyncio), _run(ADAPTER, on_adapter))
    return Comparison(str(path), deterministic, runs).judge()


def _adapter_loop() -> aio.EventLoop:
    return aio.new_event_loop()


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
    deadlines: dict[str, list[float]] = {}  # TimerHandle label -> deadlines of its call_at
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
                current.did.append(f"sets {record['callback']} for {_t(record['until'])}")
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


def _deadline(deadlines: list[float], t: float | None) -> float | None:
    """The deadline of a TimerHandle that runs at ``t``: the latest of its label's that has
    passed (a cancelled timer with the same label leaves an earlier one behind)."""
    passed = [d for d in deadlines if t is None or d <= t + 1e-6]
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


# -- the report ------------------------------------------------------------------------------


def render(comparison: Comparison) -> str:
    """The comparison as text: the verdict, the schedule or the divergence, the notes."""
    asyncio_run = comparison.runs[0]
    virtual = comparison.deterministic
    how = "run as __main__" if asyncio_run.traced.as_main else "main() run to completion"
    clock = "a virtual clock" if virtual else "the real clock"
    lines = _wrap(
        f"compare: {comparison.program} ({how}) on asyncio's own event loop (a recording "
        f"SelectorEventLoop) and on kernel.aio, both on {clock}.",
        indent="",
    )
    lines.append("")
    count = len(asyncio_run.schedule)
    if comparison.verdict == "match":
        turns = len({r.turn for r in asyncio_run.schedule})
        lines += _wrap(
            f"The schedules match: {count} callbacks in {turns} turns, in the same order and "
            "the same turns.",
            indent="",
        )
        lines += ["", "The schedule, on both loops:"]
        lines += _listing(asyncio_run.schedule, asyncio_run.turns, virtual)
    elif comparison.verdict == "turns":
        lines += _turns_report(comparison)
    else:
        lines += _divergence_report(comparison)
    lines += _notes(comparison)
    lines += _outcomes(comparison)
    return "\n".join(lines) + "\n"


def _listing(
    ran: list[Ran], turns: list[Turn], virtual: bool, mark: int | None = None
) -> list[str]:
    """Callbacks under their turn headers; ``mark`` (a number) is flagged with ``>``."""
    lines: list[str] = []
    began = {turn.number: turn for turn in turns}
    last = None
    for entry in ran:
        if entry.turn != last:
            lines.append(
                f"  turn {entry.turn}{_turn_header(entry, began.get(entry.turn), virtual)}"
            )
            last = entry.turn
        first = "  > " if entry.number == mark else "    "
        lines += _wrap(
            f"{entry.number:>3}. {_describe(entry, virtual)}", first=first, indent=" " * 9
        )
    return lines


def _turn_header(entry: Ran, turn: Turn | None, virtual: bool) -> str:
    """``, t=1.000, after select() waited 1.000 s``: when the turn ran its callbacks."""
    text = f", {_t(entry.t)}" if virtual else ""
    if turn is not None and turn.selected and turn.timeout != 0:
        waited = "for I/O" if turn.timeout is None else f"{turn.timeout:.3f} s"
        text += f", after select() waited {waited}"
    return text


def _describe(entry: Ran, virtual: bool) -> str:
    text = entry.what
    if entry.due is not None and virtual:
        text += f", due at {_t(entry.due)}"
    if entry.did:
        text += ": " + "; ".join(entry.did)
    return text


def _divergence_report(comparison: Comparison) -> list[str]:
    asyncio_run, adapter_run = comparison.runs
    virtual = comparison.deterministic
    at = comparison.at
    assert at is not None
    a, b = _nth(asyncio_run, at), _nth(adapter_run, at)
    where = "; ".join(
        f"{run.loop}: turn {entry.turn}, position {entry.position}"
        for run, entry in ((asyncio_run, a), (adapter_run, b))
        if entry is not None
    )
    lines = _wrap(f"The schedules diverge at callback {at + 1} ({where}).", indent="")
    for run, entry in ((asyncio_run, a), (adapter_run, b)):
        ran = "nothing more" if entry is None else entry.what
        lines += _wrap(f"{run.loop + ' ran':<15}{ran}", first="  ", indent=" " * 17)
    before = asyncio_run.schedule[max(0, at - CONTEXT) : at]
    if before:
        lines += ["", "Before it, both loops ran:"]
        lines += _listing(before, asyncio_run.turns, virtual)
    for run in comparison.runs:
        after = run.schedule[at : at + CONTEXT]
        lines += ["", f"Then, on {run.loop}:"]
        lines += _listing(after, run.turns, virtual, mark=at + 1) if after else ["    nothing more"]
    lines += ["", *_wrap(f"Why: {comparison.why}", indent="")]
    return lines


def _turns_report(comparison: Comparison) -> list[str]:
    asyncio_run = comparison.runs[0]
    virtual = comparison.deterministic
    at = comparison.at
    assert at is not None
    counts = [len({r.turn for r in run.schedule}) for run in comparison.runs]
    entry = asyncio_run.schedule[at]
    lines = _wrap(
        f"Same order, different turn boundaries: the {len(asyncio_run.schedule)} callbacks ran "
        f"in the same order, in {counts[0]} turns on asyncio and {counts[1]} on kernel.aio. "
        f"The first difference is callback {at + 1}, {entry.what}:",
        indent="",
    )
    for run in comparison.runs:
        mine, previous = run.schedule[at], run.schedule[at - 1]
        shares = "in the same turn as" if mine.turn == previous.turn else "in the turn after"
        lines += _wrap(
            f"on {run.loop} it ran in turn {mine.turn}, {shares} callback {at}.",
            first="  ",
            indent="    ",
        )
    for run in comparison.runs:
        lines += ["", f"Around it, on {run.loop}:"]
        window = run.schedule[max(0, at - CONTEXT) : at + CONTEXT]
        lines += _listing(window, run.turns, virtual, mark=at + 1)
    lines += ["", *_wrap(f"Why: {comparison.why}", indent="")]
    return lines


def _notes(comparison: Comparison) -> list[str]:
    """What differs between the loops without changing the schedule."""
    asyncio_run, adapter_run = comparison.runs
    notes = []
    if any(r.kind == "step" for r in asyncio_run.schedule):
        notes.append(
            "kernel.aio puts a Task itself on the ready queue for each step, where asyncio "
            "queues a new Handle for it (loop.call_soon of a TaskStepMethWrapper): the entry "
            "takes the same place in the queue, so the order is the same."
        )
    skipped = [
        turn.number
        for turn, theirs in zip(adapter_run.turns, asyncio_run.turns, strict=False)
        if not turn.selected and theirs.selected
    ]
    if skipped:
        turns = _names([str(number) for number in skipped])
        notes.append(
            f"asyncio called selector.select(0) in {_count(len(skipped), 'turn')} ({turns}) "
            "where the kernel called no select(): callbacks were ready and nothing was "
            "watched, so select() could have found nothing."
        )
    if asyncio_run.plumbing:
        notes.append(
            f"asyncio ran its self-pipe reader (_read_from_self) "
            f"{_count(asyncio_run.plumbing, 'time')}: another thread woke the loop with "
            "call_soon_threadsafe. The kernel reads its wake-up socket inside select(); "
            "left out of the comparison."
        )
    if adapter_run.plumbing:
        notes.append(
            "kernel.aio ran an empty entry to turn a loop stopped before run_forever() once, "
            "as asyncio does without one; left out of the comparison."
        )
    lines = ["", "Differences that do not change the schedule:"] if notes else []
    for note in notes:
        lines += _wrap(note, first="  - ", indent="    ")
    return lines


def _outcomes(comparison: Comparison) -> list[str]:
    """What the program printed and how it ended, on each loop."""
    asyncio_run, adapter_run = comparison.runs
    lines = [""]
    if asyncio_run.printed == adapter_run.printed:
        lines += _wrap(
            f"Both runs printed the same output ({_count(len(asyncio_run.printed), 'line')}).",
            indent="",
        )
    else:
        pairs = zip([*asyncio_run.printed, ""], [*adapter_run.printed, ""], strict=False)
        number, (mine, theirs) = next(
            (i, pair) for i, pair in enumerate(pairs, 1) if pair[0] != pair[1]
        )
        lines += _wrap(
            f"The runs printed different lines: line {number} is {mine!r} on asyncio and "
            f"{theirs!r} on kernel.aio.",
            indent="",
        )
    ends = [_end(run) for run in comparison.runs]
    if ends[0] == ends[1]:
        lines += _wrap(f"On both loops, {ends[0]}.", indent="")
    else:
        lines += _wrap(f"On asyncio, {ends[0]}; on kernel.aio, {ends[1]}.", indent="")
    return lines


def _end(run: Run) -> str:
    traced = run.traced
    what = "the program" if traced.as_main else "main()"
    if traced.error is not None:
        return f"{what} raised {traced.error!r}"
    if traced.as_main:
        return "the program ran to its end"
    return f"{what} returned {traced.result!r}"


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def as_json(comparison: Comparison) -> dict[str, Any]:
    """The comparison as plain data: the verdict, the difference and both schedules."""
    return {
        "program": comparison.program,
        "deterministic": comparison.deterministic,
        "verdict": comparison.verdict,
        "at": comparison.at,
        "why": comparison.why,
        "runs": {
            run.loop: {
                "schedule": [asdict(entry) for entry in run.schedule],
                "turns": [asdict(turn) for turn in run.turns],
                "printed": run.printed,
                "error": None if run.traced.error is None else repr(run.traced.error),
                "result": None if run.traced.as_main else repr(run.traced.result),
            }
            for run in comparison.runs
        },
    }


# -- the command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m kernel compare``'s options."""
    parser.add_argument("script", help="an asyncio program: its main() is run, or the script")
    parser.add_argument(
        "--deterministic",
        "--virtual-clock",
        dest="deterministic",
        action="store_true",
        help="a VirtualClock on both loops (time jumps to the next deadline) and stable "
        "names: the same output on every run",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the comparison and both schedules as JSON"
    )


def command(args: argparse.Namespace) -> int:
    """``python -m kernel compare``: 0 if the schedules have the same order, 1 if not (or if
    the program failed on either loop)."""
    comparison = compare(args.script, deterministic=args.deterministic)
    if args.json:
        print(json.dumps(as_json(comparison), indent=1))
    else:
        print(render(comparison), end="")
    failed = [run for run in comparison.runs if run.traced.error is not None]
    for run in failed:
        print(f"compare: on {run.loop} the program raised {run.traced.error!r}", file=sys.stderr)
    return 1 if comparison.verdict == "diverge" or failed else 0
