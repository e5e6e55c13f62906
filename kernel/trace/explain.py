"""``python -m kernel explain``: the scheduler's decisions, told as a numbered walk-through.

The narration is built from the records of a live run (``kernel/trace/records.py``), not from
canned text: each step says what the kernel decided and why, in the words of the structure
it touched. A few records make one step when they are one decision for a reader -- a trap
and where it parked the task; a timer that came due and the task it woke; a task's end and
the joiners it woke.

Two vocabularies:

* **kernel** (the default): tasks, traps, the ready queue, the sleeping queue, the I/O wait
  table, and the loop's three phases (poll I/O, wake sleepers, run what is ready);
* **asyncio** (``--asyncio``): the same decisions on the adapter, named as asyncio names
  them -- ``_run_once``, ``_ready``, ``_scheduled``, ``TimerHandle``, ``selector.select``,
  ``Task.__step`` and ``__wakeup``, ``call_soon``, ``Future.set_result``, done callbacks,
  and ``_run_until_complete_cb``, the callback that stops the loop.

After each step that changed them, the three structures are shown.

On the command line: ``python -m kernel explain script.py [--asyncio] [--task NAME]
[--limit N] [--deterministic] [--json]`` (``--json``: the records of the steps shown).

Read next: ``kernel/__main__.py`` (the command line).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .records import Record
from .script import add_script_arguments, trace

__all__ = ["Step", "add_arguments", "command", "narrate", "render", "select", "steps"]

WIDTH = 100

# Why a parked task was woken by another task's WAKE trap, by the state it waited in.
_WAKE_MEANS = {
    "EVENT_WAIT": "{on} is set",
    "UNIVERSAL_EVENT": "{on} is set",
    "LOCK": "{on} is released and handed over to the first waiter",
    "RLOCK": "{on} is released and handed over to the first waiter",
    "SEMAPHORE": "a permit of {on} is released and handed over to the first waiter",
    "CONDITION": "{on} is notified",
    "QUEUE_GET": "an item is put into {on} and handed over to the first getter",
    "QUEUE_PUT": "an item is taken from {on}, making room for the first putter",
    "QUEUE_JOIN": "the last item of {on} is done",
}


@dataclass
class Step:
    """One numbered step of the narration: one decision, made of one or more records."""

    number: int
    text: str
    records: list[Record] = field(default_factory=list)
    header: str | None = None  # a turn begins here

    @property
    def state(self) -> dict[str, Any] | None:
        for record in reversed(self.records):
            if record.get("state") is not None:
                return record["state"]  # type: ignore[no-any-return]
        return None


def narrate(
    records: list[Record],
    *,
    asyncio: bool = False,
    virtual: bool = False,
    task: str | None = None,
    limit: int | None = None,
    title: str | None = None,
) -> str:
    """The whole narration: an introduction, then the steps (filtered, limited)."""
    chosen = select(steps(records, asyncio=asyncio, virtual=virtual), task=task, limit=limit)
    lines = [] if title is None else [*_wrap(title, indent=""), ""]
    lines += [*_introduction(asyncio, virtual), ""]
    lines += render(chosen, asyncio=asyncio)
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m kernel explain``'s options."""
    add_script_arguments(parser)
    parser.add_argument("--task", metavar="NAME", help="only the steps that involve this task")
    parser.add_argument("--limit", metavar="N", type=_positive, help="stop after N steps")
    parser.add_argument(
        "--json", action="store_true", help="print the records of those steps as JSON instead"
    )


def command(args: argparse.Namespace) -> int:
    """``python -m kernel explain``: run the script recorded, print the narration."""
    traced = trace(args.script, aio=args.aio, deterministic=args.deterministic)
    if args.json:
        chosen = select(steps(traced.records, asyncio=args.aio), task=args.task, limit=args.limit)
        print(json.dumps([record for step in chosen for record in step.records], indent=1))
    else:
        runner = "kernel.aio's event loop" if args.aio else "the kernel"
        what = f"{args.script} (as __main__)" if traced.as_main else f"main() of {args.script}"
        title = f"How {runner} runs {what}, decision by decision."
        print(
            narrate(
                traced.records,
                asyncio=args.aio,
                virtual=args.deterministic,
                task=args.task,
                limit=args.limit,
                title=title,
            ),
            end="",
        )
    if traced.error is not None:
        print(f"explain: the program raised {traced.error!r}", file=sys.stderr)
        return 1
    return 0


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of steps, got {text}")
    return number


def select(all_steps: list[Step], *, task: str | None, limit: int | None) -> list[Step]:
    """The steps that involve ``task`` (by name, label or id), at most ``limit`` of them."""
    chosen = [s for s in all_steps if task is None or any(_involves(r, task) for r in s.records)]
    return chosen if limit is None else chosen[:limit]


def steps(records: list[Record], *, asyncio: bool = False, virtual: bool = False) -> list[Step]:
    """Turn records into numbered steps."""
    return _Narrator(records, asyncio, virtual).run()


def render(chosen: Iterable[Step], *, asyncio: bool = False) -> list[str]:
    """Format steps as text: turn headers, numbered steps, and the structures when changed."""
    lines: list[str] = []
    shown_state = None
    last_header = None
    for step in chosen:
        if step.header is not None and step.header != last_header:
            lines += ["", step.header]
            last_header = step.header
        lines += _wrap(f"step {step.number} — {step.text}")
        state = step.state
        if state is not None and state != shown_state:
            lines += _wrap(_structures(state, asyncio), indent="    ", first="    ")
            shown_state = state
    return lines


def _wrap(text: str, indent: str = "    ", first: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _introduction(asyncio: bool, virtual: bool) -> list[str]:
    if asyncio:
        text = [
            "kernel.aio keeps asyncio's structures in the kernel's: _ready is the kernel's "
            "ready queue, _scheduled (the TimerHandles) its sleeping queue, and the selector "
            "its I/O wait table. One turn of the kernel's loop is one _run_once: "
            "selector.select(timeout), then the TimerHandles that are due move to _ready, "
            "then every callback that was in _ready runs once.",
        ]
    else:
        text = [
            "Each turn of the loop has three phases: 1. poll I/O with select(), blocking if "
            "no task is ready; 2. move the tasks whose deadline has passed from the sleeping "
            "queue to the ready queue; 3. run each task that is ready, until it yields its "
            "next trap.",
        ]
    text.append(
        "After each step that changes them, the three structures are shown: "
        + ("_ready, _scheduled and the selector." if asyncio else "ready, sleeping and I/O.")
    )
    if virtual:
        text.append(
            "The clock is virtual: it starts at 0 and, when every task is blocked, jumps to the "
            "next deadline, so the times are exact and nothing really waits."
        )
    lines: list[str] = []
    for paragraph in text:
        lines += [*_wrap(paragraph, indent=""), ""]
    return lines[:-1]


def _structures(state: dict[str, Any], asyncio: bool) -> str:
    ready = ", ".join(state["ready"])
    sleeping = ", ".join(f"{_deadline(e)} at {_t(e['until'])}" for e in state["sleeping"])
    io = ", ".join(f"{e['fd']} ({e['for']}): {e['who']}" for e in state["io"])
    if asyncio:
        return f"_ready: [{ready}] · _scheduled: [{sleeping}] · selector: [{io}]"
    return f"ready: [{ready}] · sleeping: [{sleeping}] · I/O: [{io}]"


def _deadline(entry: dict[str, Any]) -> str:
    """What a sleeping-queue entry is: a sleeper, a timeout, or a callback (TimerHandle)."""
    return f"the timeout of {entry['who']}" if entry["kind"] == "timeout" else str(entry["who"])


def _t(seconds: float | None) -> str:
    return "t=?" if seconds is None else f"t={seconds:.3f}"


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def _names(labels: list[str]) -> str:
    if not labels:
        return "nobody"
    if len(labels) == 1:
        return labels[0]
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def _involves(record: Record, name: str) -> bool:
    """Does ``record`` concern the task called ``name`` (a name, a label, or a task id)?"""
    values = [record.get(key) for key in ("task", "by", "on", "future", "who", "callback")]
    values += record.get("ready") or []
    if record.get("nearest"):
        values.append(record["nearest"]["who"])
    return any(isinstance(v, str) and _mentions(v, name) for v in values)


def _mentions(label: str, name: str) -> bool:
    return (
        label == name
        or label.startswith((f"{name} (task ", f"{name}.", f"{name}("))
        or label.endswith(f"(task {name})")
        or f"({name})" in label
        or f"({name}," in label
    )


def _outcome(outcome: dict[str, Any]) -> str:
    if outcome.get("cancelled"):
        return "cancelled"
    if "exception" in outcome:
        return f"exception {outcome['exception']}"
    if "result" in outcome:
        return f"result {outcome['result']}"
    return "pending"


class _Narrator:
    """Walks the records once, turning each decision into a step."""

    def __init__(self, records: list[Record], asyncio: bool, virtual: bool) -> None:
        self.records = records
        self.asyncio = asyncio
        self.virtual = virtual
        self.steps: list[Step] = []
        self.used: set[int] = set()  # indexes of records already told
        self.header: str | None = None
        self.main: str | None = None  # the main task (kernel.run's)
        self.joiners: list[Record] = []  # join wake-ups, told with the task's end
        self.finished: set[str] = set()  # asyncio tasks whose end has been told
        self._folded: list[Record] = []  # records told as part of the step being made
        self.waited = -1  # the last turn whose select() could block
        self.skipped = False  # has a turn without select() been told yet?
        self.completing = False  # inside run_until_complete

    def run(self) -> list[Step]:
        for index, record in enumerate(self.records):
            if index in self.used:
                continue
            self.used.add(index)
            tell: Callable[[int, Record], str | None] | None = getattr(
                self, "_" + record["event"], None
            )
            text = tell(index, record) if tell is not None else None
            if text is not None:
                self._step(text, [record, *self._folded])
            self._folded = []
        return self.steps

    def _step(self, text: str, records: list[Record]) -> None:
        self.steps.append(Step(len(self.steps) + 1, text, records, self.header))

    def _fold(self, index: int) -> Record:
        """Tell record ``index`` as part of the current step."""
        self.used.add(index)
        self._folded = [*self._folded, self.records[index]]
        return self.records[index]

    def _next(self, index: int, *events: str, task: str | None = None) -> int | None:
        """The index of the next untold record, if it is one of ``events`` (about ``task``)."""
        for later in range(index + 1, len(self.records)):
            if later in self.used:
                continue
            record = self.records[later]
            if record["event"] in events and (task is None or record["task"] == task):
                return later
            return None
        return None

    # -- the loop ----------------------------------------------------------------------------------

    def _turn(self, index: int, record: Record) -> str:
        tick, t = record["tick"], _t(record["t"])
        if self.asyncio:
            self.header = f"── _run_once #{tick} (turn {tick} of the kernel's loop), {t} ──"
        else:
            self.header = f"── turn {tick}, {t} ──"
        after = self._next(index, "select")
        if after is not None:
            return self._select(after, self._fold(after))
        ready = record["state"]["ready"]
        again, self.skipped = self.skipped, True
        if self.asyncio:
            holds = f"_ready holds [{', '.join(ready)}]"
            if again:
                return f"{holds}; again no select() call (callbacks are ready, nothing watched)."
            return (
                f"{holds}. asyncio's own loop would call selector.select(timeout=0) now; the "
                "kernel skips the call when callbacks are ready and no file descriptor is "
                "watched, since it could find nothing."
            )
        holds = f"The ready queue holds {_names(ready)}"
        if again:
            return f"{holds}; again no select() (tasks are ready, nobody waits for I/O)."
        return (
            f"{holds}. Tasks are ready and no task waits for I/O, so phase 1 skips select(): "
            "it could find nothing."
        )

    def _select(self, index: int, record: Record) -> str:
        timeout, nearest = record["timeout"], record["nearest"]
        ready = "_ready" if self.asyncio else "the ready queue"
        call = "selector.select" if self.asyncio else "select"
        call += f"(timeout={'None' if timeout is None else f'{timeout:.3f}'})"
        if timeout is None:
            text = (
                f"{ready.capitalize()} is empty and no deadline is pending, so {call} waits "
                "for a file descriptor to be ready, with no time limit."
            )
        elif timeout > 0 and self.asyncio:
            text = (
                f"_ready is empty, and the nearest TimerHandle in _scheduled is not due yet: "
                f"{nearest['who']} is due at {_t(nearest['until'])}, so {call} blocks for "
                f"{_s(timeout)}, the time until then."
            )
        elif timeout > 0:
            text = (
                f"The ready queue is empty; the nearest deadline is {_deadline(nearest)} at "
                f"{_t(nearest['until'])}, so {call} blocks for {_s(timeout)}."
            )
        else:
            waiting = record["io_waiting"]
            text = (
                f"{'Callbacks' if self.asyncio else 'Tasks'} are ready, but {waiting} "
                f"wait{'s' if waiting == 1 else ''} for I/O, so {call} polls without blocking."
            )
        if timeout != 0:
            self.waited = record["tick"]
        woken = record["ready"]
        if woken:
            for wake in self._following(index, "wake"):
                self._fold(wake)
            text += f" It reports ready: {_names(woken)}, back to {ready}."
        elif timeout == 0:
            text += " Nothing is ready yet."
        else:
            text += " No file descriptor becomes ready."
            if self.virtual and timeout is not None and nearest is not None:
                text += (
                    f" (On the virtual clock it returns at once, and time jumps to "
                    f"{_t(nearest['until'])}.)"
                )
        return text

    def _following(self, index: int, event: str) -> list[int]:
        """The untold records of ``event`` right after ``index``."""
        found = []
        while (later := self._next(index, event)) is not None:
            found.append(later)
            index = later
        return found

    def _timer(self, index: int, record: Record) -> str:
        who, t = record["who"], _t(record["t"])
        if record["kind"] == "call":
            text = f"{t}: {who} is due: it moves from _scheduled to _ready."
            if self.waited == record["tick"]:
                text += (
                    " (This is the same _run_once that waited for it: after select() returns, "
                    "_run_once moves every TimerHandle whose time has come to _ready, then runs "
                    "what _ready holds.)"
                )
            return text
        if record["kind"] == "sleep":
            wake = self._next(index, "wake", task=record["task"])
            if wake is not None:
                self._fold(wake)
            return (
                f"{t}: the deadline of {who} has come: phase 2 takes it off the sleeping queue "
                f"and puts it back in the ready queue."
            )
        text = f"{t}: the timeout of {who} expires."
        cancel = self._next(index, "cancel", task=record["task"])
        if cancel is not None:
            self._fold(cancel)
            wake = self._next(cancel, "wake", task=record["task"])
            woken = None if wake is None else self._fold(wake)
            text += " " + self._cancelled(self.records[cancel], woken, "The kernel")
        return text

    # -- kernel tasks ------------------------------------------------------------------------------

    def _spawn(self, index: int, record: Record) -> str:
        if self.main is None and record["by"] is None and not self.asyncio:
            self.main = record["task"]
            return (
                f"kernel.run(main) makes main() the main task, {record['task']}, and appends "
                "it to the ready queue. Nothing runs yet: the loop has not started."
            )
        by = record["by"] or "Code outside any task (Kernel.start_task)"
        return f"{by} spawns {record['task']}: the new task goes to the back of the ready queue."

    def _run(self, index: int, record: Record) -> str:
        task = record["task"]
        if record["how"] == "throw":
            return (
                f"{task} runs: the kernel resumes it with coro.throw({record['exc']}), so the "
                f"exception is raised where the task was waiting."
            )
        if record["first"]:
            return f"{task} runs for the first time: coro.send(None) starts its coroutine."
        return f"{task} runs: the kernel resumes it with coro.send({record['value']})."

    def _trap(self, index: int, record: Record) -> str:
        task, call = record["task"], record["call"]
        text = f"{task} yields {call}"
        effects = [self._fold(i) for i in self._following(index, "spawn")]
        wakes = [self._fold(i) for i in self._following(index, "wake")]
        cancels = [self._fold(i) for i in self._following(index, "cancel")]
        wakes += [self._fold(i) for i in self._following(index, "wake")]
        after = self._next(index, "park", "run", task=task)
        end = self._fold(after) if after is not None else None
        if end is None:
            return f"{text}."
        if end["event"] == "park":
            return f"{text}: {self._parked(task, end)}"
        if end["how"] == "throw":
            why = ""
            if "Cancel" in end["exc"] or "Timeout" in end["exc"]:
                why = " (a blocking trap is where a pending cancellation is delivered)"
            return f"{text}; the kernel answers by throwing {end['exc']} into it at once{why}."
        answer = end["value"]
        trap = record["trap"]
        if trap == "spawn" and effects:
            return (
                f"{text}: the kernel creates {effects[0]['task']} at the back of the ready "
                f"queue; {task} carries on at once, holding the new task."
            )
        if trap == "wake":
            if not wakes:
                return f"{text}: nobody is waiting there; {task} carries on."
            woken = _names([w["task"] for w in wakes])
            means = _WAKE_MEANS.get(wakes[0]["was"], "")
            means = means.format(on=wakes[0]["on"]) + ", so " if means else ""
            return (
                f"{text}: {means}the kernel moves {woken} from the wait queue of "
                f"{wakes[0]['on']} to the ready queue. {task} woke {woken}, and carries on."
            )
        if trap == "cancel" and cancels:
            wake = next((w for w in wakes if w["task"] == cancels[0]["task"]), None)
            return f"{text}: {self._cancelled(cancels[0], wake, task)} {task} carries on."
        if trap == "clock":
            return f"{text} to read the clock: the kernel answers {answer} at once; it carries on."
        if trap == "get_current":
            return f"{text}: the kernel answers with the running task itself; it carries on."
        if trap == "set_cancellation":
            doing = {
                "False": "enters a disable_cancellation() block: a cancellation now waits",
                "True": "leaves its disable_cancellation() block",
            }.get(record["args"][0], "looks for a pending cancellation")
            return f"{text}: it {doing}; the kernel answers at once and it carries on."
        if trap == "set_timeout" and record.get("deadline") is not None:
            return (
                f"{text}: the kernel arms a timeout, an entry in the sleeping queue for "
                f"{_t(record['deadline'])}; {task} carries on."
            )
        if trap == "unset_timeout":
            return f"{text}: its timeout block ends, and the deadline is withdrawn; it carries on."
        if trap == "io_release":
            return f"{text}: the socket is about to be closed, so the kernel forgets it."
        return f"{text}: a non-blocking trap, answered at once with {answer}; {task} carries on."

    def _parked(self, task: str, park: Record) -> str:
        to = park["to"]
        if to == "ready":
            text = "it goes to the back of the ready queue, so every other ready task runs first."
        elif to == "sleeping":
            text = f"it is parked on the sleeping queue until {_t(park['until'])}."
        elif to == "io":
            verb = "read from" if park["for"] == "read" else "write to"
            text = f"it is parked in the I/O wait table, waiting to {verb} {park['fd']}."
        elif to == "join":
            text = f"{park['on']} has not ended, so {task} is parked in its join queue (JOIN)."
        elif to == "future":
            text = f"it waits until {park['on']} is done (its done callback will wake it)."
        else:
            text = (
                f"it is parked in the wait queue of {park['on']} ({park['why']}) until another "
                "task wakes it."
            )
        if park.get("timeout") is not None:
            text += f" Its timeout, {_t(park['timeout'])}, is also in the sleeping queue."
        return text

    def _cancelled(self, cancel: Record, wake: Record | None, by: str) -> str:
        """A cancel, and the wake-up that moved its blocked target to the ready queue."""
        target, exc = cancel["task"], cancel["exc"]
        if wake is not None:
            return (
                f"{by} cancels {target} with {exc}. It was blocked ({wake['was']}), so it is "
                "taken out of where it waited and put in the ready queue, to have the "
                "exception thrown in."
            )
        return (
            f"{by} cancels {target} with {exc}; it is not blocked, so the exception waits "
            "for its next blocking trap."
        )

    def _cancel(self, index: int, record: Record) -> str:
        wake = self._next(index, "wake", task=record["task"])
        woken = None if wake is None else self._fold(wake)
        return self._cancelled(record, woken, record["by"] or "The kernel, closing,")

    def _wake(self, index: int, record: Record) -> str | None:
        task, by, on = record["task"], record["by"], record["on"]
        reason = record["reason"]
        if by is not None and reason in ("join", "other") and self._ends_next(index, by):
            self.joiners.append(record)  # told with the end of ``by``
            return None
        if reason == "future":
            return f"{task} is woken: {on} is done, so its done callback puts the task back."
        if reason == "thread":
            return (
                f"A thread handed work over (call_threadsafe): {task} is woken ({record['was']})."
            )
        if reason == "cancel":
            return self._cancelled({**record, "exc": "a cancellation"}, record, by or "Someone")
        means = _WAKE_MEANS.get(record["was"], "").format(on=on)
        return (
            f"{by or 'The kernel'} wakes {task}{': ' + means if means else ''}, so {task} "
            f"leaves the wait queue of {on} ({record['was']}) for the ready queue."
        )

    def _ends_next(self, index: int, task: str) -> bool:
        """Is this wake-up part of ``task``'s end? (A task's end wakes its joiners and runs
        its exit callbacks -- a task group's, say -- before the kernel records the exit.)"""
        for later in range(index + 1, len(self.records)):
            record = self.records[later]
            if record["event"] not in ("wake", "cancel", "call_soon", "call_at"):
                return bool(record["event"] == "exit" and record["task"] == task)
        return False

    def _exit(self, index: int, record: Record) -> str:
        task = record["task"]
        joiners = [w for w in self.joiners if w["by"] == task]
        self.joiners = [w for w in self.joiners if w["by"] != task]
        self._folded = [*self._folded, *joiners]
        if record["cancelled"]:
            text = f"{task} ends, cancelled: {record['exc']} propagated out of its coroutine."
        elif "exc" in record:
            text = f"{task} raises {record['exc']}, which ends it: the task holds the exception."
        else:
            result = record["result"]
            text = (
                f"{task} returns {result}: its coroutine raised StopIteration({result}), and "
                "the task is over."
            )
        if joiners:
            waiting = [
                f"{w['task']}, waiting in join()"
                if w["reason"] == "join"
                else f"{w['task']}, waiting in the wait queue of {w['on']} ({w['was']})"
                for w in joiners
            ]
            text += f" Its end wakes {_names(waiting)}: back to the ready queue."
        if task == self.main:
            text += " It is the main task, so kernel.run() stops turning the loop"
            text += " and raises its exception." if "exc" in record else f" and returns {result}."
        return text

    # -- the script's notes ------------------------------------------------------------------------

    def _output(self, index: int, record: Record) -> str:
        who = f"{record['coro']}()" if record.get("coro") else record["by"] or "The program"
        return f"{who} prints {record['text']!r}."

    def _close(self, index: int, record: Record) -> str | None:
        if index == len(self.records) - 1:
            return None
        return (
            "The program is over; closing the kernel cancels every task still alive, so that "
            "its cleanup code runs."
        )

    # -- the asyncio adapter -----------------------------------------------------------------------

    def _run_until_complete(self, index: int, record: Record) -> str:
        self.completing = True
        argument = record["argument"]
        if not record["wraps"]:
            return (
                f"loop.run_until_complete({argument}) is called. Its argument is already a "
                "Future (a Task is one), so there is nothing to wrap."
            )
        text = (
            f"loop.run_until_complete({argument}) is called. Its argument is a coroutine, not "
            "a Future, so run_until_complete wraps it in a Task"
        )
        first = self._next(index, "call_soon")
        if first is None or not self.records[first].get("first_step"):
            return text + "."
        step = self._fold(first)
        return (
            f"{text}, {step['task']} (asyncio.ensure_future calls loop.create_task). "
            f"{self._new_task(step)}"
        )

    def _new_task(self, record: Record) -> str:
        task = record["task"]
        return (
            f"Task.__init__ schedules the first step of {task} with "
            f"loop.call_soon({task}.__step), which appends it to _ready; {record['coro']}() "
            "has not started yet."
        )

    def _add_done_callback(self, index: int, record: Record) -> str:
        task = record["future"]
        return (
            f"run_until_complete adds a done callback to {task}: {record['callback']}, which "
            f"will stop the loop once {task} is done."
        )

    def _run_forever(self, index: int, record: Record) -> str:
        caller = "run_until_complete calls loop.run_forever()"
        if not self.completing:
            caller = "loop.run_forever() is called"
        return f"{caller}: the loop now turns, _run_once after _run_once, until it is stopped."

    def _call_soon(self, index: int, record: Record) -> str:
        task, callback = record["task"], record["callback"]
        if record.get("first_step"):
            return (
                f"A Task, {task}, is created for the coroutine {record['coro']}() "
                f"(loop.create_task). {self._new_task(record)}"
            )
        if record.get("again"):
            return (
                f"{record['coro']}() yields None (asyncio.sleep(0), a bare yield): 'let the "
                f"others run'. __step schedules itself again with "
                f"loop.call_soon({task}.__step), to the back of _ready."
            )
        if "future" not in record:
            return (
                f"{record['by']} calls loop.call_soon({callback}): it goes to the back of _ready."
            )
        callbacks = [record]
        while (later := self._next(index, "call_soon")) is not None:
            if self.records[later].get("future") != record["future"]:
                break
            callbacks.append(self._fold(later))
            index = later
        names = _names([c["callback"] for c in callbacks])
        future, outcome = record["future"], record["outcome"]
        schedules = f"loop.call_soon, in the order they were added: {names}, to the back of _ready."
        if record.get("finished_step"):
            self.finished.add(future)
            return f"{self._task_ended(record)} That schedules its done callbacks with {schedules}"
        setter = (
            "cancel()"
            if outcome.get("cancelled")
            else f"set_exception({outcome['exception']})"
            if "exception" in outcome
            else f"set_result({outcome['result']})"
        )
        return (
            f"{future}.{setter} makes {future} done, and schedules its done callbacks with "
            f"{schedules}"
        )

    def _task_ended(self, record: Record) -> str:
        """How the coroutine's end became the Task's outcome (a Task is a Future)."""
        task, coro, outcome = record["task"], record["coro"], record["outcome"]
        if outcome.get("cancelled"):
            return f"{coro}() ends cancelled, so __step cancels {task}."
        if "exception" in outcome:
            exc = outcome["exception"]
            return f"{coro}() raises {exc}, so __step calls set_exception({exc}) on {task}."
        result = outcome["result"]
        return (
            f"{coro}() returns {result}: coro.send() raises StopIteration({result}), so __step "
            f"calls set_result({result}) on {task} (a Task is a Future)."
        )

    def _call_at(self, index: int, record: Record) -> str:
        until, delay = record["until"], record["delay"]
        if "_set_result_unless_cancelled" in record["callback"] and record.get("coro"):
            future = record["future"]
            return (
                f"{record['coro']}() calls asyncio.sleep({delay:.3g}): sleep creates {future} and "
                f"calls loop.call_later({delay:.3g}, futures._set_result_unless_cancelled, "
                f"{future}, None), which puts a TimerHandle due at {_t(until)} into _scheduled "
                f"(the kernel's sleeping queue). Then sleep awaits {future}."
            )
        return (
            f"{record['by'] or 'The program'} calls loop.call_at({until:.3f}): "
            f"{record['callback']} goes into _scheduled, due at {_t(until)}."
        )

    def _watch(self, index: int, record: Record) -> str:
        return (
            f"{record['by'] or 'The program'} watches {record['fd']} ({record['for']}): "
            f"{record['callback']} will be queued each time it is ready."
        )

    def _callback(self, index: int, record: Record) -> str:
        kind, callback = record["kind"], record["callback"]
        task, coro = record.get("task"), record.get("coro")
        if kind == "step":
            if record["how"] == "throw":
                return f"{callback} runs: it calls coro.throw({record['exc']}) into {coro}()."
            if record["first"]:
                return f"{callback} runs: it calls coro.send(None), and {coro}() starts running."
            return f"{callback} runs: it calls coro.send(None), and {coro}() resumes."
        if kind == "wakeup":
            future = record["future"]
            if record["how"] == "send":
                return (
                    f"{callback} runs: {future} has a result, so __wakeup calls __step(), "
                    f"which calls coro.send(None): {coro}() resumes after its await."
                )
            return (
                f"{callback} runs: {future} ended with {_outcome(record['outcome'])}, so "
                f"__wakeup calls __step(exc), which throws it into {coro}() with coro.throw()."
            )
        if kind == "timer" and "_set_result_unless_cancelled" in callback:
            future = record["future"]
            return (
                f"The TimerHandle runs: futures._set_result_unless_cancelled({future}, None) "
                f"calls {future}.set_result(None), unless {future} was cancelled meanwhile."
            )
        if kind == "stop":
            text = f"{callback} runs: the done callback that run_until_complete added."
            stop = self._next(index, "stop")
            if stop is not None:
                self._fold(stop)
                text += " It calls loop.stop(). " + self._stopping()
            return text
        owner = f" (a done callback of {task})" if task is not None else ""
        return f"{callback} runs{owner}."

    def _callback_done(self, index: int, record: Record) -> str | None:
        outcome = record.get("outcome")
        if not outcome:
            return None
        task, coro = record["task"], record["coro"]
        if "yielded" in outcome:
            future = outcome["yielded"]
            return (
                f"{coro}() awaits {future}, which is pending, so `await` yields {future} back "
                f"to {task}.__step. __step calls {future}.add_done_callback({task}.__wakeup) and "
                f"returns: {task} waits, and nothing of it is in _ready."
            )
        if record.get("ended") and task not in self.finished:
            self.finished.add(task)
            return f"{self._task_ended(record)} {task} has no done callbacks."
        return None

    def _stop(self, index: int, record: Record) -> str:
        return f"{record['by'] or 'The program'} calls loop.stop(). {self._stopping()}"

    def _stopping(self) -> str:
        return (
            "stop() only sets a flag, _stopping: the loop finishes this turn (whatever is left "
            "of it still runs), then stops instead of starting another _run_once."
        )

    def _run_forever_return(self, index: int, record: Record) -> str:
        return "The turn is over and the loop is stopping, so run_forever returns."

    def _run_until_complete_return(self, index: int, record: Record) -> str:
        self.completing = False
        future, outcome = record["future"], record["outcome"]
        if "result" in outcome:
            return (
                f"run_until_complete returns future.result(): {outcome['result']}, the result "
                f"of {future}."
            )
        return (
            f"run_until_complete calls future.result(), which raises what {future} holds: "
            f"{_outcome(outcome)}."
        )
