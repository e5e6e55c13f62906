"""Trace records: every scheduler decision as plain data, with the three structures after it.

The kernel reports each decision to a *tracer* (``kernel/tracing.py``) as it makes it:
``tracer(event, task, **details)``, with live objects -- tasks, futures, handles, sockets.
A ``Recorder`` is such a tracer. It turns each event into a *record*: a dict holding only
strings, numbers, booleans, None, lists and dicts, so ``json.dumps(recorder.records)``
works and every teaching view (``explain``, ``timeline``, ``compare``) reads the same data,
live or from a file.

Every record has these keys:

``step``    its number in the trace, from 1
``tick``    the turn of the loop it belongs to (0 before the first turn)
``phase``   1 poll I/O, 2 wake sleepers, 3 run what is ready (0 outside the loop)
``t``       when it happened: seconds since the recording began (every time in a record
            is counted from there; on a ``VirtualClock``, which starts at 0, that is its time).
            A deadline that never comes -- ``sleep(math.inf)``, ``asyncio.sleep(math.inf)``
            -- is null wherever a time is expected (``until``, ``deadline``, ``timeout``,
            ``delay``): JSON has no infinity
``event``   what happened (below)
``task``    the task it is about: ``"main (task 1)"`` for a kernel task, ``"Task-1"`` for
            an asyncio task (for a callback: the task it belongs to), or None
``state``   the three structures once the decision is carried out::

                {"ready": ["main (task 1)", "Task-1.__step"],
                 "sleeping": [{"until": 1.0, "who": "main (task 1)", "kind": "sleep"}],
                 "io": [{"fd": "fd 7", "for": "read", "who": "main (task 1)"}]}

and, by event (a field that does not apply is left out):

================  ============================================================================
kernel tasks
``spawn``         ``name``, ``id``, ``daemon``, ``by`` (the task that spawned it, or the code
                  that called ``Kernel.start_task``: an asyncio task's step, say; or None)
``turn``          a turn of the loop begins (``tick`` is its number)
``run``           ``how`` ("send" or "throw"), ``value`` (what is sent) or ``exc``; ``first``
``trap``          ``trap`` (its name), ``args`` (each rendered short), ``call`` (the tuple);
                  ``deadline`` for ``set_timeout`` and ``unset_timeout``
``park``          ``why`` (the task's wait state, "SLEEPING", "LOCK"...) and ``to``: "ready"
                  (``sleep(0)``), "sleeping" (``until``), "io" (``fd``, ``for``), "wait"
                  (``on``: the primitive), "join" (``on``: the task), "future" (``on``);
                  ``timeout`` if a deadline is armed
``wake``          ``by`` (who woke it), ``reason`` ("timer", "io", "wake", "join", "cancel",
                  "future", "io_release", "thread", "deadlock", "other"), ``was`` (its wait
                  state), ``on``
``bad_yield``     the task yielded ``value``, which is not a trap: the kernel puts it at the
                  back of the ready queue (the ``park`` that follows) to throw ``exc`` into it
``deadlock``      every task is blocked and nothing could ever wake one: ``task``, the main
                  task, is woken next, to have a ``Deadlock`` thrown in (None: no main task
                  waits, and the loop raises it); ``report``, the Deadlock's message
``select``        ``timeout`` (None: no limit), ``ready`` (who I/O made ready), ``nearest``
                  (the first deadline: ``{"who", "until", "kind"}``), ``io_waiting`` (how many)
``timer``         ``kind`` ("sleep", "timeout", "call"), ``who``
``cancel``        ``exc``, ``by`` (a task, "timeout", or None: the kernel), ``blocked``
``exit``          ``result`` or ``exc``, ``cancelled``
asyncio adapter
``call_soon``     ``callback`` (a label), ``kind`` (below), ``by``; for a step ``coro``,
                  ``first_step`` (from ``Task.__init__``), ``again`` (a bare ``yield``); for
                  a done callback ``future``, its ``outcome``, and ``finished_step`` (the
                  future is the task whose step is running: its coroutine just ended)
``call_soon_threadsafe``  the fields of ``call_soon``, and ``other_thread``: queued by
                  another thread (then ``by`` is None). Recorded when the kernel's thread
                  learns of it -- at its next event, in phase 1, or before it runs -- since
                  the tracer is never called from another thread
``call_at``       ``callback``, ``kind``, ``until``, ``delay``, ``by``, ``coro``, ``future``
``watch``         ``callback``, ``fd``, ``for``, ``by``
``callback``      ``callback``, ``kind``; for a step or wake-up ``coro``, ``first``, ``how``
                  (``exc``), and for a wake-up or a timer the ``future`` (with ``outcome``).
                  A Handle cancelled after it was queued does not run: no record (asyncio's
                  loop skips it too), and it is left out of ``ready``
``callback_done`` ``callback``, ``kind``; for a step or wake-up ``coro`` and ``outcome``:
                  ``{"yielded": future}``, ``{"again": True}`` or how the task ended
                  (then ``ended``)
``run_until_complete``  ``argument``, ``wraps`` (a coroutine, wrapped in a Task)
``add_done_callback``   ``future``, ``callback`` (run_until_complete's stop callback)
``run_forever``, ``run_forever_return``, ``stop`` (``by``)
``run_until_complete_return``  ``future``, ``outcome``
notes from the script runner (``kernel/trace/script.py``)
``output``        ``text`` (a line the program printed), ``by``, ``coro``
``close``         the program is over; the kernel closes
================  ============================================================================

An event this module does not know (a newer kernel's) is kept with its details rendered short.

A callback's ``kind`` names its asyncio role: "step" (a Task's ``__step``, queued as the task
itself), "wakeup" (``Task.__wakeup``, a done callback), "stop" (``_run_until_complete_cb``),
"timer" (a ``TimerHandle``), "kernel_wakeup" (a kernel task waiting on a future), "callback".

Outcomes (of a future, or of a task's step) are dicts: ``{"result": "123"}``,
``{"exception": "ValueError('x')"}``, ``{"cancelled": True}``.

Deterministic mode (``Recorder(deterministic=True)``, with a ``VirtualClock``) makes a trace
the same on every run: asyncio's default task names ("Task-57", from a process-wide counter)
are renumbered in order of appearance, file descriptors become ``fd #1``, ``fd #2``, ... and
memory addresses and source locations are dropped from any text.

Naming is ``labels.py``'s job (``Labels``); the adapter's events are turned into records in
``records_aio.py``, whose methods ``Recorder`` inherits. The kernel's are here.

Read next: ``kernel/trace/script.py``, which records a script; then ``explain.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..aio.tasks import Task as AioTask
from ..handlers import _FutureWaiter
from ..iotable import EVENT_READ, IOWaitTable
from ..task import Task
from ..timequeue import SleepingQueue
from ..tracing import TracedCallback
from ..waitqueue import WaitQueue
from .labels import Labels, _clip, _direction
from .records_aio import _AdapterEvents, _finite

if TYPE_CHECKING:
    from ..scheduler import Kernel

__all__ = ["Labels", "Record", "Recorder"]

Record = dict[str, Any]

# The tracer hears these *before* the kernel acts on them, so their ``state`` is read when
# the next event arrives (by then the decision has been carried out).
# (A ``call_soon_threadsafe`` is heard after the act, but may be heard just as its callback is
# taken off the ready queue to run: waiting for the next event puts it back in the state.)
_BEFORE_THE_ACT = frozenset(
    {"trap", "wake", "timer", "cancel", "call_soon", "call_at", "watch", "call_soon_threadsafe"}
)


class Recorder(_AdapterEvents):
    """A kernel tracer that keeps every decision as a record (see the module docstring).

    Use it as the kernel's tracer, then ``attach`` the kernel (the recorder reads the three
    structures from it)::

        recorder = Recorder(deterministic=True)
        with Kernel(clock=VirtualClock(), tracer=recorder) as k:
            recorder.attach(k)
            k.run(main)
        recorder.finish()
        json.dumps(recorder.records)

    ``on_record`` is called with each record once it is complete (its ``state`` known).
    """

    turns = True  # ask the kernel for a ``turn`` event at the start of each turn

    def __init__(
        self,
        *,
        deterministic: bool = False,
        on_record: Callable[[Record], object] | None = None,
    ) -> None:
        self.records: list[Record] = []
        self.labels = Labels(deterministic)
        self.on_record = on_record
        self._kernel: Kernel | None = None
        self._origin = 0.0  # the kernel's clock when the recording began
        self._tick = 0
        self._phase = 0
        self._pending: Record | None = None  # a record waiting for its state
        self._last_state: dict[str, Any] = {"ready": [], "sleeping": [], "io": []}
        # What is going on, to say who woke whom:
        self._actor: str | None = None  # the task or callback running now
        self._current: str | None = None  # the task it belongs to
        self._stepping: AioTask[Any] | None = None  # the asyncio task whose step runs now
        self._trap: tuple[str, str] | None = None  # (task, trap) being handled
        self._cancel: tuple[str, str | None] | None = None  # (target, by) of a cancel
        self._deadlock: str | None = None  # the main task the deadlock detector wakes
        self._ran: set[int] = set()  # kernel tasks that have run at least once
        self._timers: list[tuple[float, int, Any]] = []  # call_at handles not yet due
        self._timer_order = 0

    def attach(self, kernel: Kernel) -> None:
        """Read the structures of ``kernel`` (the kernel this recorder traces); times in the
        records are counted from now."""
        self._kernel = kernel
        self._origin = kernel._clock.now()

    # -- the tracer ----------------------------------------------------------------------------

    def __call__(self, event: str, task: Task | None, **details: Any) -> None:
        if self._pending is not None:
            self._complete_pending(self._popped(event, task, details))
        handler = getattr(self, f"_on_{event}", None)
        if handler is not None:
            fields: Record = handler(task, **details)
        else:  # an event this recorder does not know yet: kept, its details rendered short
            fields = {key: self.labels.value(value) for key, value in details.items()}
            fields["task"] = None if task is None else self.labels.value(task)
        self._add(event, fields)

    def note(self, event: str, **fields: Any) -> None:
        """Add a record that comes from outside the kernel (the script runner's notes)."""
        self._complete_pending()
        if event == "close":
            self._actor = None
            self._phase = 0
        if event == "output":
            fields.setdefault("by", self._actor)
            fields.setdefault("task", self._current)
            fields.setdefault("coro", self._running_coro())
        fields.setdefault("task", None)
        self._add(event, fields)

    def finish(self) -> list[Record]:
        """Complete the last record; return them all."""
        self._complete_pending()
        return self.records

    def _add(self, event: str, fields: Record) -> None:
        record: Record = {
            "step": len(self.records) + 1,
            "tick": self._tick,
            "phase": self._phase,
            "t": self._now(),
            "event": event,
            "task": fields.pop("task", None),
        }
        record.update(fields)
        self.records.append(record)
        if event in _BEFORE_THE_ACT:
            self._pending = record
        else:
            record["state"] = self._snapshot()
            if self.on_record is not None:
                self.on_record(record)

    def _complete_pending(self, popped: str | None = None) -> None:
        """Give the waiting record its state: the structures as they are now -- plus, if the
        loop has just taken ``popped`` off the front of the ready queue to run it, that."""
        if self._pending is not None:
            record, self._pending = self._pending, None
            state = self._snapshot()
            if popped is not None:
                state = {**state, "ready": [popped, *state["ready"]]}
            record["state"] = state
            if self.on_record is not None:
                self.on_record(record)

    def _popped(self, event: str, task: Task | None, details: dict[str, Any]) -> str | None:
        """What phase 3 popped from the ready queue just before this event, if anything."""
        if event == "callback":
            return self.labels.entry(details["handle"])
        if event == "run" and task is not None:
            label = self.labels.task(task)
            carrying_on = self._trap is not None and self._trap[0] == label
            return None if carrying_on else label
        return None

    def _now(self) -> float | None:
        # (_finite: a VirtualClock jumps to the only deadline left, even an infinite one.)
        return None if self._kernel is None else _finite(self._since(self._kernel._clock.now()))

    def _since(self, time: float) -> float:
        """A time of the kernel's clock, counted from the start of the recording."""
        return time - self._origin

    def _deadline(self, time: float) -> float | None:
        """A deadline of the kernel's clock, counted like ``_since``; None if it never comes."""
        return _finite(time - self._origin)

    def _snapshot(self) -> dict[str, Any]:
        """The three structures, as labels."""
        kernel = self._kernel
        if kernel is None or kernel.closed:
            return self._last_state
        labels = self.labels
        io = []
        for fd, direction, who in kernel._io.waiters():
            watcher = not isinstance(who, Task)
            entry = labels.entry(who.callback if watcher else who)
            io.append({"fd": labels.fd(fd), "for": direction, "who": entry, "watcher": watcher})
        self._last_state = {
            "ready": [labels.entry(entry) for entry in kernel._ready if not _skipped(entry)],
            "sleeping": [
                {"until": self._deadline(deadline), "who": labels.entry(item), "kind": kind}
                for deadline, item, kind in kernel._sleeping.items()
            ],
            "io": io,
        }
        return self._last_state

    # -- kernel events ---------------------------------------------------------------------------

    def _on_turn(self, task: None, **_: Any) -> Record:
        self._tick += 1
        self._phase = 1
        self._actor = self._current = None
        self._trap = self._cancel = None
        self._stepping = None
        return {}

    def _on_spawn(self, task: Task, name: str, daemon: bool, **_: Any) -> Record:
        # A spawn trap, or ``Kernel.start_task`` called by what runs now (an asyncio task's
        # step starting a kernel task with ``kernel.aio.run_kernel``); None: no code of the
        # program runs (``kernel.run(main)`` before the loop starts, a thread's hand-over).
        by = self._trap[0] if self._trap is not None and self._trap[1] == "spawn" else self._actor
        return {
            "task": self.labels.task(task),
            "name": name,
            "id": task.id,
            "daemon": daemon,
            "by": by,
        }

    def _on_run(self, task: Task, value: Any = None, throw: str | None = None, **_: Any) -> Record:
        self._phase = 3
        label = self.labels.task(task)
        self._actor = self._current = label
        self._trap = self._cancel = None
        first = task.id not in self._ran
        self._ran.add(task.id)
        if throw is not None:
            exc = _clip(self.labels.clean(throw), 60)
            return {"task": label, "how": "throw", "exc": exc, "first": first}
        return {"task": label, "how": "send", "value": self.labels.value(value), "first": first}

    def _on_trap(self, task: Task, trap: str, args: tuple[Any, ...], **_: Any) -> Record:
        label = self.labels.task(task)
        self._trap = (label, trap)
        rendered = [self._trap_arg(trap, i, arg) for i, arg in enumerate(args)]
        call = "(" + ", ".join([repr(trap), *rendered]) + ("," if not rendered else "") + ")"
        fields: Record = {"task": label, "trap": trap, "args": rendered, "call": call}
        if trap in ("set_timeout", "unset_timeout") and args[0] is not None:
            fields["deadline"] = self._deadline(args[0])  # a time of the clock, like ``t``
        return fields

    def _trap_arg(self, trap: str, index: int, arg: Any) -> str:
        if trap == "io_wait" and index == 1:
            return "EVENT_READ" if arg == EVENT_READ else "EVENT_WRITE"
        return self.labels.value(arg)

    def _on_park(self, task: Task, state: str, **_: Any) -> Record:
        self._trap = None
        where: Any = task._waiting_on
        fields: Record = {"task": self.labels.task(task), "why": state}
        if where is None:
            fields["to"] = "ready"
        elif isinstance(where, SleepingQueue):
            fields.update(to="sleeping", until=self._deadline(task._wait_entry[0]))
        elif isinstance(where, IOWaitTable):
            *_, fileobj, event = task._wait_entry  # the IO_WAIT trap, the table's handle
            fields.update(to="io", fd=self._fd_of(fileobj), **{"for": _direction(event)})
        elif isinstance(where, _FutureWaiter):
            fields.update(to="future", on=self.labels.value(where.future))
        elif isinstance(where, WaitQueue) and isinstance(where.owner, Task):
            fields.update(to="join", on=self.labels.task(where.owner))
        else:
            fields.update(to="wait", on=self.labels.value(getattr(where, "owner", None)))
        if task._timeout is not None:
            fields["timeout"] = self._deadline(task._timeout)
        return fields

    def _fd_of(self, fileobj: Any) -> str:
        try:
            fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        except (AttributeError, OSError, ValueError):
            return "fd ?"
        return self.labels.fd(int(fd))

    def _on_wake(self, task: Task, state: str, **_: Any) -> Record:
        label = self.labels.task(task)
        where: Any = task._waiting_on
        by = self._actor
        on: str | None = None
        if self._deadlock == label:
            reason, by, self._deadlock = "deadlock", None, None
        elif self._cancel is not None and self._cancel[0] == label:
            reason, by = "cancel", self._cancel[1]
        elif self._phase == 2 and state == "SLEEPING":
            reason, by = "timer", None
        elif self._phase == 1 and state == "IO_WAIT":
            reason, by = "io", None
        elif self._phase == 1:  # in phase 1, only what threads hand in runs code
            reason, by = "thread", None
        elif self._trap is not None and self._trap[1] in ("wake", "io_release"):
            reason = self._trap[1]
        elif isinstance(where, WaitQueue) and isinstance(where.owner, Task):
            reason = "join"
        elif isinstance(where, _FutureWaiter):
            reason = "future"
        else:
            reason = "other"
        if isinstance(where, WaitQueue):
            on = self.labels.value(where.owner) if where.owner is not None else None
        elif isinstance(where, _FutureWaiter):
            on = self.labels.value(where.future)
        elif isinstance(where, IOWaitTable) and task._wait_entry is not None:
            on = self._fd_of(task._wait_entry[-2])
        return {"task": label, "by": by, "reason": reason, "was": state, "on": on}

    def _on_select(self, task: None, timeout: float | None, ready: list[Any], **_: Any) -> Record:
        self._phase = 1
        self._actor = None
        kernel = self._kernel
        woken = []
        for entry in ready:
            found = kernel._tasks.get(entry) if kernel is not None and type(entry) is int else None
            woken.append(
                self.labels.task(found) if found is not None else self.labels.clean(str(entry))
            )
        nearest = None
        if kernel is not None:
            items = kernel._sleeping.items()
            if items:
                deadline, item, kind = items[0]
                nearest = {
                    "who": self.labels.entry(item),
                    "until": self._deadline(deadline),
                    "kind": kind,
                }
        io_waiting = len(kernel._io) if kernel is not None else 0
        return {"timeout": timeout, "ready": woken, "nearest": nearest, "io_waiting": io_waiting}

    def _on_timer(
        self, task: Task | None, kind: str, now: float, callback: str | None = None, **_: Any
    ) -> Record:
        self._phase = 2
        self._actor = self._trap = None
        if task is not None:
            return {"task": self.labels.task(task), "kind": kind, "who": self.labels.task(task)}
        handle = self._due_timer(now)
        if handle is None:
            return {"kind": kind, "who": self.labels.clean(str(callback))}
        return {"task": self._owner(handle), "kind": kind, "who": self.labels.entry(handle)}

    def _due_timer(self, now: float) -> Any:
        """The TimerHandle the kernel just took off the sleeping queue.

        Discussion: the kernel's ``timer`` event names a callback only by its repr, which
        changes as the future in it changes. The recorder saw each ``call_at`` with its
        handle, so the one that came due is the earliest of those that are due, not
        cancelled, and no longer on the sleeping queue.
        """
        kernel = self._kernel
        live = set()
        if kernel is not None:
            live = {
                id(getattr(item, "__wrapped__", item))
                for _, item, kind in kernel._sleeping.items()
                if kind == "call"
            }
        self._timers = [entry for entry in self._timers if not entry[2].cancelled()]
        due = [entry for entry in self._timers if entry[0] <= now and id(entry[2]) not in live]
        if not due:
            return None
        first = min(due, key=lambda entry: entry[:2])
        self._timers.remove(first)
        return first[2]

    def _on_cancel(self, task: Task, exc: str, blocked: bool, **_: Any) -> Record:
        label = self.labels.task(task)
        if self._phase == 2 and self._actor is None:
            by: str | None = "timeout"
        else:
            by = self._actor
        self._cancel = (label, by)
        return {
            "task": label,
            "exc": _clip(self.labels.clean(exc), 60),
            "by": by,
            "blocked": blocked,
        }

    def _on_bad_yield(self, task: Task, value: Any, exc: BaseException, **_: Any) -> Record:
        label = self.labels.task(task)
        return {
            "task": label,
            "value": self.labels.value(value),
            "exc": _clip(self.labels.clean(repr(exc)), 60),
        }

    def _on_deadlock(self, task: Task | None, report: str, **_: Any) -> Record:
        label = None if task is None else self.labels.task(task)
        self._deadlock = label  # its wake-up, next, is the deadlock detector's
        return {"task": label, "report": self.labels.clean(report)}

    def _on_exit(self, task: Task, result: str, exc: str | None, **_: Any) -> Record:
        fields: Record = {"task": self.labels.task(task), "cancelled": task.cancelled}
        if task._exception is not None:
            fields["exc"] = self.labels.value(task._exception)
        else:
            fields["result"] = self.labels.value(task._result)
        return fields


def _skipped(entry: Any) -> bool:
    """A Handle in the ready queue that was cancelled after it was queued: the loop will
    skip it, so it is not shown (asyncio's recorder leaves it out of ``_ready`` too)."""
    return isinstance(entry, TracedCallback) and entry.skipped()
