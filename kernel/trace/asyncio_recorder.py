"""A recording event loop: asyncio's own loop, telling what it schedules in the adapter's words.

``python -m kernel compare`` runs one program twice: on ``kernel.aio`` (recorded by the
kernel's tracer, ``records.py``) and on real asyncio. For the second run it needs asyncio's
loop to say what it decides, in the same records. ``RecordingEventLoop`` is a subclass of
``asyncio.SelectorEventLoop`` -- the loop ``asyncio.new_event_loop()`` makes on Unix -- that
changes nothing of how it schedules and listens at the only places a decision is visible
from outside ``_run_once``:

=========================  ==================================================================
what asyncio does          where it is heard
=========================  ==================================================================
``call_soon``              ``call_soon`` (overridden): a ``call_soon`` record
``call_at``/``call_later`` ``call_at`` (``call_later`` calls it): a ``call_at`` record
a turn: ``_run_once``      ``_run_once`` (overridden): a ``turn`` record, then asyncio's own
``selector.select(t)``     the selector is a subclass whose ``select`` reports: ``select``
a timer comes due          ``_ready.append`` of a ``TimerHandle``: ``_ready`` is a deque
                           subclass, so moving a timer there is a ``timer`` record
a Handle runs              ``_ready.popleft()``: ``callback`` (the one before it is done:
                           ``callback_done``)
``stop``, ``run_forever``,  overridden: ``stop``, ``run_forever``, ``run_until_complete`` and
``run_until_complete``     their ``..._return`` records
=========================  ==================================================================

The records have the fields of the adapter's (``records.py``'s docstring), with the same
labels: ``Task-1.__step``, ``Task-1.__wakeup(Future-1)``, ``TimerHandle(futures.
_set_result_unless_cancelled(Future-1, None))``, ``_run_until_complete_cb(Task-1)``.

Finding the task behind a callback. asyncio's C ``Task`` (the one ``asyncio.Task`` is) hands
``call_soon`` a ``TaskStepMethWrapper`` for each step and the bound builtin ``task_wakeup`` as
the done callback of the future it awaits; the pure-Python Task (``asyncio.tasks._PyTask``)
hands its bound methods ``__step`` and ``__wakeup``. All of them expose the task as
``__self__``, which is how a callback is named after its task here, on Python 3.11 to 3.13.

A virtual clock for real asyncio. With ``clock=VirtualClock()`` the loop's ``time()`` is that
clock, and when ``select()`` finds nothing and a timer is pending, time jumps to the timer's
deadline instead of sleeping -- what the kernel does with the same clock (``kernel/clock.py``
is used as it is: ``real_timeout`` says how long ``select()`` may really block, ``idle`` makes
the jump). So a one-hour ``asyncio.sleep`` takes no time, and both runs are deterministic.

Not recorded: ``call_soon_threadsafe`` (it may come from another thread; the callback is
recorded when it runs -- the adapter's records tell the call too, and ``compare``, which
reads the callbacks that run, leaves it out), readers and writers being added (a Handle
they queue is recorded when it runs). The loop's self-pipe reader, ``_read_from_self``, is
recorded with kind ``"self_pipe"``: it is loop plumbing, which the kernel does inside its own
``select()``.

Read next: ``kernel/trace/asyncio_script.py``, which runs a script on this loop; then
``compare.py``, which aligns these records with the adapter's.
"""

from __future__ import annotations

import asyncio
import collections
import selectors
from collections.abc import Callable
from contextvars import Context
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, Unpack

from ..clock import Clock, MonotonicClock
from .labels import Labels, _args_of, _qualname
from .records import Record
from .records_aio import (
    _callback_owner,
    _done_callback,
    _finite,
    _handed_future,
    _outcome,
    _started,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Generator

__all__ = ["RecordingEventLoop"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# asyncio's stop callback for run_until_complete (private in asyncio, so looked up by name).
_RUN_UNTIL_COMPLETE_CB: object = getattr(asyncio.base_events, "_run_until_complete_cb", None)

_Events = list[tuple[selectors.SelectorKey, int]]


class _Selector(selectors.DefaultSelector):
    """The platform's default selector, whose ``select`` goes through the loop first."""

    around: Callable[[Callable[[float | None], _Events], float | None], _Events]

    def select(self, timeout: float | None = None) -> _Events:
        return self.around(super().select, timeout)


class _ReadyQueue(collections.deque[Any]):
    """asyncio's ``_ready``: a deque that reports what is moved in and taken out."""

    def __init__(self, loop: RecordingEventLoop) -> None:
        super().__init__()
        self._loop = loop

    def append(self, handle: Any) -> None:
        super().append(handle)
        if isinstance(handle, asyncio.TimerHandle):  # only _run_once moves a TimerHandle here
            self._loop._timer_due(handle)

    def popleft(self) -> Any:
        self._loop._done_running()  # the Handle before it has returned
        handle = super().popleft()
        self._loop._handle_runs(handle)
        return handle


class RecordingEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector event loop, recording each scheduling decision (module docstring).

    ``clock`` (default: the real monotonic clock) is the loop's time; ``deterministic``
    renames what varies between runs, as ``Recorder(deterministic=True)`` does.
    """

    if TYPE_CHECKING:  # asyncio's own attributes, which typeshed leaves out
        _scheduled: list[asyncio.TimerHandle]
        _selector: selectors.BaseSelector
        _ssock: Any

    def __init__(self, *, clock: Clock | None = None, deterministic: bool = False) -> None:
        self.records: list[Record] = []
        self.labels = Labels(deterministic)
        self._clock: Clock = MonotonicClock() if clock is None else clock
        self._origin = self._clock.now()
        self._tick = 0
        self._phase = 0
        self._running: Any = None  # the Handle running now (until the next one, or the turn end)
        self._stepping: Any = None  # the task whose step or wake-up is running now
        self._completing = False  # inside run_until_complete
        self._future: Any = None  # run_until_complete's future, once known
        self._last_state: dict[str, Any] = {"ready": [], "sleeping": [], "io": []}
        selector = _Selector()
        selector.around = self._select
        super().__init__(selector)
        self._ready: collections.deque[Any] = _ReadyQueue(self)

    # -- the clock ---------------------------------------------------------------------------

    def time(self) -> float:
        return self._clock.now()

    # -- scheduling ------------------------------------------------------------------------------

    def call_soon(
        self,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: Context | None = None,
    ) -> asyncio.Handle:
        handle = super().call_soon(callback, *args, context=context)
        self._add("call_soon", self._queued(handle))
        return handle

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        until = _finite(self._since(when))  # None: never (asyncio.sleep(math.inf))
        fields: Record = {
            "task": self._task_label(self._stepping),
            "callback": self._entry(handle),
            "kind": _kind(handle, self),
            "until": until,
            "delay": None if until is None else until - self._since(self.time()),
            "by": self._actor(),
            "coro": self._coro(self._stepping),
        }
        args_of = _args_of(handle)
        if args_of and asyncio.isfuture(args_of[0]):
            fields["future"] = self.labels.future(args_of[0])
        self._add("call_at", fields)
        return handle

    def stop(self) -> None:
        self._add("stop", {"task": self._owner(self._running), "by": self._actor()})
        super().stop()

    # -- running -----------------------------------------------------------------------------

    def run_until_complete(self, future: Awaitable[T] | Generator[Any, Any, T]) -> T:
        wraps = not asyncio.isfuture(future)
        argument = f"{_qualname(future)}()" if wraps else self.labels.value(future)
        self._add("run_until_complete", {"argument": argument, "wraps": wraps})
        self._completing, self._future = True, None if wraps else future
        try:
            return super().run_until_complete(future)
        finally:
            done, self._future, self._completing = self._future, None, False
            if done is not None:
                label = self.labels.future(done)
                fields = {"task": label, "future": label, "outcome": _outcome(self.labels, done)}
                self._add("run_until_complete_return", fields)

    def run_forever(self) -> None:
        if self._completing and self._future is not None:
            # asyncio's run_until_complete has just added its stop callback: say so
            label = self.labels.future(self._future)
            fields = {"task": label, "future": label, "callback": "_run_until_complete_cb"}
            self._add("add_done_callback", fields)
        self._phase = 0
        self._add("run_forever", {})
        try:
            super().run_forever()
        finally:
            self._phase = 0
            self._add("run_forever_return", {})

    def _run_once(self) -> None:
        self._tick += 1
        self._phase = 1
        self._running = self._stepping = None
        self._add("turn", {})
        try:
            super()._run_once()  # type: ignore[misc]
        finally:
            self._done_running()

    def note(self, event: str, **fields: Any) -> None:
        """Add a record from outside the loop (the program's ``output``, its ``close``)."""
        if event == "output":
            fields.setdefault("by", self._actor())
            fields.setdefault("task", self._owner(self._running))
            fields.setdefault("coro", self._coro(self._stepping))
        if event == "close":
            self._phase = 0
        fields.setdefault("task", None)
        self._add(event, fields)

    def finish(self) -> list[Record]:
        """The records, complete."""
        return self.records

    # -- what the hooks hear -------------------------------------------------------------------

    def _select(self, select: Callable[[float | None], _Events], timeout: float | None) -> _Events:
        """selector.select(timeout), on the loop's clock: a virtual one jumps, never sleeps."""
        self._phase = 1
        t = _finite(self._since(self.time()))
        events = select(self._clock.real_timeout(timeout))
        timers = [handle for handle in self._scheduled if not handle.cancelled()]
        if not events and timeout and timers:
            self._clock.idle(min(handle.when() for handle in timers))
        ready: list[str] = []
        for key, mask in events:
            if key.fd == self._ssock.fileno():
                continue  # the self-pipe: call_soon_threadsafe woke the loop
            reader, writer = key.data
            for handle, bit in ((reader, selectors.EVENT_READ), (writer, selectors.EVENT_WRITE)):
                if handle is not None and mask & bit:
                    ready.append(self._entry(handle))
        nearest = None
        if timers:
            first = min(timers, key=lambda handle: handle.when())
            nearest = {
                "who": self._entry(first),
                "until": _finite(self._since(first.when())),
                "kind": "call",
            }
        io_waiting = len(self._watched())
        fields = {"timeout": timeout, "ready": ready, "nearest": nearest, "io_waiting": io_waiting}
        self._add("select", fields, t=t)
        return events

    def _timer_due(self, handle: asyncio.TimerHandle) -> None:
        self._phase = 2
        self._add(
            "timer", {"task": self._owner(handle), "kind": "call", "who": self._entry(handle)}
        )

    def _handle_runs(self, handle: Any) -> None:
        if handle.cancelled():
            return  # _run_once skips it: it does not run
        self._phase = 3
        self._running = handle
        kind = _kind(handle, self)
        task = _task_of(handle)
        self._stepping = task
        fields: Record = {
            "task": self._owner(handle),
            "callback": self._entry(handle),
            "kind": kind,
        }
        if task is not None:
            fields["coro"] = self._coro(task)
            fields["first"] = not _started(task)
        if kind == "step":
            fields["how"] = "throw" if getattr(task, "_must_cancel", False) else "send"
        else:
            fields.update(_handed_future(self.labels, kind, handle))
        self._add("callback", fields)

    def _done_running(self) -> None:
        """The Handle that ran last has returned: a ``callback_done`` record."""
        handle, task = self._running, self._stepping
        if handle is None:
            return
        self._running = self._stepping = None
        fields: Record = {"task": self._owner(handle), "callback": self._entry(handle)}
        fields["kind"] = _kind(handle, self)
        if task is not None:
            fields["coro"] = self._coro(task)
            waiter = getattr(task, "_fut_waiter", None)
            if task.done():
                fields.update(outcome=_outcome(self.labels, task), ended=True)
            elif waiter is not None:
                label = self.labels.future(waiter)
                fields.update(outcome={"yielded": label}, future=label)
            else:
                fields["outcome"] = {"again": True}
        self._add("callback_done", fields)

    def _queued(self, handle: asyncio.Handle) -> Record:
        """The fields of a ``call_soon`` record for ``handle``."""
        kind = _kind(handle, self)
        fields: Record = {
            "task": self._owner(handle),
            "callback": self._entry(handle),
            "kind": kind,
            "by": self._actor(),
        }
        task = _task_of(handle)
        if kind == "step" and task is not None:
            fields["first_step"] = not _started(task)
            fields["again"] = task is self._stepping
            fields["coro"] = self._coro(task)
            wrapping = self._completing and self._future is None and not self.is_running()
            if fields["first_step"] and wrapping:
                self._future = task  # run_until_complete wrapped its coroutine in it
        fields.update(_done_callback(self.labels, handle, self._stepping))
        return fields

    # -- labels ---------------------------------------------------------------------------------

    def _entry(self, handle: Any) -> str:
        """The adapter's label for what ``handle`` calls (``records.Labels.entry``)."""
        task = _task_of(handle)
        kind = _kind(handle, self)
        if task is not None and kind == "step":
            return f"{self.labels.future(task)}.__step"
        if task is not None and kind == "wakeup":
            args = ", ".join(self.labels.value(arg) for arg in _args_of(handle))
            return f"{self.labels.future(task)}.__wakeup({args})"
        if kind == "stop":
            args = ", ".join(self.labels.value(arg) for arg in _args_of(handle))
            return f"_run_until_complete_cb({args})"
        return self.labels.entry(handle)

    def _owner(self, handle: Any) -> str | None:
        """The task a callback belongs to, as ``Recorder`` finds it."""
        if handle is None:
            return None
        return _callback_owner(self.labels, handle, _task_of(handle), _is_task)

    def _task_label(self, task: Any) -> str | None:
        return None if task is None else self.labels.future(task)

    def _coro(self, task: Any) -> str | None:
        return None if task is None else _qualname(task.get_coro())

    def _actor(self) -> str | None:
        return None if self._running is None else self._entry(self._running)

    # -- records --------------------------------------------------------------------------------

    def _since(self, time: float) -> float:
        return time - self._origin

    def _add(self, event: str, fields: Record, t: float | None = None) -> None:
        record: Record = {
            "step": len(self.records) + 1,
            "tick": self._tick,
            "phase": self._phase,
            "t": _finite(self._since(self.time())) if t is None else t,
            "event": event,
            "task": fields.pop("task", None),
        }
        record.update(fields)
        record["state"] = self._snapshot()
        self.records.append(record)

    def _watched(self) -> list[tuple[int, str, Any]]:
        """(fd, "read"/"write", handle) for each reader and writer, not the self-pipe."""
        if self.is_closed():
            return []
        watched = []
        for key in self._selector.get_map().values():
            if key.fd == self._ssock.fileno():
                continue
            reader, writer = key.data
            if reader is not None and key.events & selectors.EVENT_READ:
                watched.append((key.fd, "read", reader))
            if writer is not None and key.events & selectors.EVENT_WRITE:
                watched.append((key.fd, "write", writer))
        return watched

    def _snapshot(self) -> dict[str, Any]:
        """_ready, _scheduled and the selector, as labels (the adapter's three structures)."""
        if self.is_closed():
            return self._last_state
        timers = sorted((h for h in self._scheduled if not h.cancelled()), key=_when)
        self._last_state = {
            "ready": [self._entry(handle) for handle in self._ready if not handle.cancelled()],
            "sleeping": [
                {"until": _finite(self._since(h.when())), "who": self._entry(h), "kind": "call"}
                for h in timers
            ],
            "io": [
                {"fd": self.labels.fd(fd), "for": how, "who": self._entry(h), "watcher": True}
                for fd, how, h in self._watched()
            ],
        }
        return self._last_state


def _when(handle: asyncio.TimerHandle) -> float:
    return handle.when()


def _is_task(obj: Any) -> bool:
    return asyncio.isfuture(obj) and hasattr(obj, "get_coro")


def _task_of(handle: Any) -> Any:
    """The task whose ``__step`` or ``__wakeup`` ``handle`` calls, or None."""
    owner = getattr(getattr(handle, "_callback", None), "__self__", None)
    return owner if _is_task(owner) else None


def _kind(handle: Any, loop: RecordingEventLoop) -> str:
    """The asyncio role of a Handle, in the adapter's words (``records.py``)."""
    fn = getattr(handle, "_callback", None)
    if _task_of(handle) is not None:
        # C: TaskStepMethWrapper (no __name__) and task_wakeup; Python: __step, __wakeup
        return "wakeup" if "wakeup" in str(getattr(fn, "__name__", "")) else "step"
    if isinstance(handle, asyncio.TimerHandle):
        return "timer"
    if fn is _RUN_UNTIL_COMPLETE_CB:
        return "stop"
    if getattr(fn, "__self__", None) is loop and getattr(fn, "__name__", "") == "_read_from_self":
        return "self_pipe"
    return "callback"
