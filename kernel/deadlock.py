"""Finding a deadlock: a program in which nothing can ever run again, and why.

When no task is ready and no deadline is set, phase 1 of the loop would block in
``select()`` until I/O, a thread or a signal wakes it. If none of those can happen,
nothing will ever run again and the program hangs forever. ``find_deadlock`` is asked at
that point (never on the per-step path) and answers with a ``Deadlock`` whose message says
who waits for whom -- task -> the primitive it waits on -> the task holding it -> ... -- or
with None. It is conservative: a false report would kill a correct program, so it answers
None whenever *anything* outside the tasks could still wake one (``possible_waker``):

* a task or callback waiting for I/O (the caller checks the I/O wait table first);
* a timer, a queued callback, or work handed in by a thread not yet run;
* a job of the kernel's thread pool not yet delivered;
* any other thread alive in the process (it might call ``call_threadsafe``, put into a
  ``UniversalQueue``, ...), idle workers of this kernel's own pool excepted;
* any Python-level signal handler (it runs in this thread and may wake a task), except
  Python's default SIGINT handler and the kernel's own, which stop the program anyway.

Discussion: the last rule includes pytest-timeout's SIGALRM handler, and its thread method
is a thread: under pytest-timeout the detector stays silent and a deadlocked test fails by
timing out, as before. The tests that need the detector take that handler down for their
duration (the ``no_timeout_signal`` fixture in ``tests/conftest.py``).

The description of each wait is read from the task's ``state`` (the word its primitive
gave ``WAIT_ON``: ``LOCK``, ``EVENT_WAIT``, ``QUEUE_GET``, ...) and from the primitive
itself, looked at by attribute rather than by type, because the primitives are built on
top of the scheduler and this module sits beside it.

Read next: ``docs/diagnostics.md``, and ``examples/20_blocking_call.py`` and
``examples/21_deadlock.py``, which show both reports (this one and the slow-step warning
of ``kernel/diagnostics.py``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .diagnostics import task_label, where
from .errors import Deadlock
from .waitqueue import WaitQueue

if TYPE_CHECKING:
    from .scheduler import Kernel
    from .task import Task

__all__ = ["find_deadlock", "possible_waker"]


def possible_waker(kernel: Kernel) -> str | None:
    """What, outside the tasks, could still wake one of ``kernel``'s tasks; None if nothing.

    Only the kernel's own thread calls this. The answer is a phrase for messages and tests.
    """
    pool = kernel._thread_pool
    if pool is not None and pool._pending:
        return f"{len(pool._pending)} run_in_thread job(s) not yet delivered"
    idle_workers = set(pool._threads) if pool is not None else set()
    me = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not me and thread not in idle_workers:
            return f"thread {thread.name!r} is alive"
    if me is threading.main_thread():
        for signo in signal.valid_signals():
            handler = signal.getsignal(signo)
            if not callable(handler) or handler is signal.default_int_handler:
                continue
            if handler == kernel._on_sigint:  # Ctrl-C: stops the program, wakes nobody
                continue
            return f"a Python handler for {signal.Signals(signo).name} is installed"
    return None


def find_deadlock(kernel: Kernel) -> Deadlock | None:
    """Called where the loop would block with no deadline and no I/O waiter: is it forever?

    Returns the ``Deadlock`` to raise, or None if something could still wake a task.
    """
    if possible_waker(kernel) is not None:
        return None
    tasks = sorted(kernel._tasks.values(), key=lambda task: task.id)
    if not tasks or any(task._waiting_on is None for task in tasks):
        return None  # no task at all (an asyncio loop idling), or one not parked: not ours
    deadlock = Deadlock(_report(tasks))
    # Discussion: the checks are ordered. A thread seen dead above has finished every
    # append it made, and the report above allocated, which can run a finaliser; anything
    # either of them handed in is in one of these now.
    if kernel._ready or kernel._threadsafe or kernel._wakeup_pending:
        return None
    if len(kernel._io) or kernel._sleeping.next_deadline() is not None:
        return None  # (a sleep until math.inf is no deadline: it never wakes anyone)
    return deadlock


@dataclass
class _Wait:
    """What one blocked task waits for, as the report tells it."""

    text: str  # "waits for Lock #1, held by task 3 'bob'"
    label: str | None = None  # the primitive in the chain: "Lock #1" (None for a join)
    holders: list[Task] = field(default_factory=list)  # tasks that could end the wait
    dead_end: str = "nobody is left to wake it"  # the chain's end when no task could


class _Labels:
    """Names primitives by type and order of appearance: Lock #1, Lock #2, Event #1."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._counts: dict[str, int] = {}
        self._keep: list[object] = []  # keeps id() unique while the report is written

    def __call__(self, primitive: object) -> str:
        name = self._names.get(id(primitive))
        if name is None:
            kind = type(primitive).__name__.lstrip("_")
            self._counts[kind] = self._counts.get(kind, 0) + 1
            name = self._names[id(primitive)] = f"{kind} #{self._counts[kind]}"
            self._keep.append(primitive)
        return name


def _by_id(tasks: Iterable[Task]) -> list[Task]:
    return sorted(tasks, key=lambda task: task.id)


def _describe(task: Task, label: _Labels) -> _Wait:
    """What ``task`` waits for, read from its state and the structure it is parked on."""
    place: Any = task._waiting_on
    state = task.state
    owner: Any = place.owner if isinstance(place, WaitQueue) else None
    if state == "JOIN":
        return _Wait(f"waits for {task_label(owner)} to end", holders=[owner])
    if state in ("LOCK", "RLOCK"):
        name = label(owner)
        holder = owner._owner
        if holder is None:
            return _Wait(f"waits for {name}", name)
        if holder.done:
            return _Wait(
                f"waits for {name}, held by {task_label(holder)}, which ended without releasing it",
                name,
                dead_end=f"{task_label(holder)} ended without releasing it",
            )
        return _Wait(f"waits for {name}, held by {task_label(holder)}", name, [holder])
    if state in ("TASKGROUP", "TASKGROUP_START"):
        name = label(owner)
        members = _by_id(owner._running)
        what = "to end" if state == "TASKGROUP" else "to call task_status.started()"
        listed = ", ".join(task_label(member) for member in members)
        return _Wait(f"waits for a task of {name} {what} ({listed})", name, members)
    if state == "EVENT_WAIT":
        name = label(owner)
        return _Wait(f"waits for {name} to be set", name, dead_end="nobody is left to set it")
    if state == "SEMAPHORE":
        name = label(owner)
        return _Wait(
            f"waits for a permit of {name}", name, dead_end="nobody is left to release one"
        )
    if state == "CONDITION":
        name = label(owner)
        return _Wait(
            f"waits for a notify() on {name}", name, dead_end="nobody is left to notify it"
        )
    if state == "QUEUE_GET":
        name = label(owner)
        return _Wait(
            f"waits to get from {name}, which is empty",
            name,
            dead_end="nobody is left to put into it",
        )
    if state == "QUEUE_PUT":
        name = label(owner)
        return _Wait(
            f"waits to put into {name}, which is full (maxsize {owner.maxsize})",
            name,
            dead_end="nobody is left to get from it",
        )
    if state == "QUEUE_JOIN":
        name = label(owner)
        return _Wait(
            f"waits for join() of {name}: {owner._unfinished} item(s) not marked task_done()",
            name,
            dead_end="nobody is left to call task_done()",
        )
    if state == "SLEEPING":  # (only a sleep with no end is left when this runs)
        return _Wait(
            "sleeps for ever (a deadline of math.inf)",
            "for ever",
            dead_end="no time will wake it",
        )
    if owner is not None:
        name = label(owner)
        return _Wait(f"waits on {name} ({state}): {owner!r}", name)
    future = getattr(place, "future", None)
    if future is not None:
        return _Wait(f"waits for the asyncio future {future!r}", "an asyncio future")
    return _Wait(f"waits ({state}) on {place!r}", "?")


def _report(tasks: list[Task]) -> str:
    """The deadlock's message: each task's wait, then the chains of who waits for whom."""
    label = _Labels()
    waits = {task: _describe(task, label) for task in tasks}
    lines = [
        "every task is blocked, and nothing is left that could wake one of them: no task is "
        "ready to run, no timer is set, nothing waits for I/O, and no thread or signal "
        "handler could step in. Without this error the program would hang here forever.",
        "Who waits for what:",
    ]
    for task, wait in waits.items():
        at = where(task.coro)
        lines.append(f"  {task_label(task)}{f' (at {at})' if at else ''} {wait.text}")
    lines.append("The wait-for chain (task -> what it waits for -> who could end the wait):")
    waited_for = {wait.holders[0] for wait in waits.values() if wait.holders}
    roots = [task for task in waits if task not in waited_for]
    shown: set[Task] = set()
    for start in roots + list(waits):
        if start not in shown:
            lines.append("  " + _chain(start, waits, shown))
    return "\n".join(lines)


def _chain(start: Task, waits: dict[Task, _Wait], shown: set[Task]) -> str:
    """Follow ``start``'s wait to a holder, its wait to the next holder, and so on."""
    steps = [task_label(start)]
    path = {start}
    task = start
    while True:
        wait = waits[task]
        if wait.label is not None:
            steps.append(wait.label)
        if not wait.holders:
            steps[-1] += f" ({wait.dead_end})"
            break
        holder = wait.holders[0]
        steps.append(task_label(holder))
        if holder in path:
            steps[-1] += ": a cycle"
            break
        if holder in shown or holder not in waits:
            steps[-1] += " (see above)" if holder in shown else ""
            break
        path.add(holder)
        task = holder
    shown |= path
    return " -> ".join(steps)
