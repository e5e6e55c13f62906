"""The asyncio adapter's events as records, and what a queued asyncio callback is.

``Recorder`` (``records.py``) turns the kernel's events into records; the events of
``kernel.aio`` -- ``call_soon``, ``call_at``, ``callback``, ``callback_done``,
``run_until_complete``... (the table in ``records.py``'s docstring) -- are turned into records
here, by the ``_on_<event>`` methods of ``_AdapterEvents``, which ``Recorder`` inherits. They
share the recorder's state, set up in ``Recorder.__init__``: who is running (``_actor``), the
asyncio task whose step runs (``_stepping``), the timers not yet due.

The functions below say what a callback in a queue is, in asyncio's terms: its *kind* ("step",
"wakeup", "timer", "stop"...), the task it steps, the task it belongs to (``_callback_owner``),
how a done future ended (``_outcome``), and the future a done callback, a wake-up or a timer is
about (``_done_callback``, ``_handed_future``); and ``_finite``, how a time that never
comes is written. ``RecordingEventLoop`` (``asyncio_recorder.py``), which records real
asyncio, uses all but the first two as well, so both loops' records say the same things the
same way.

Read next: ``kernel/trace/asyncio_recorder.py``, the same records from asyncio's own loop.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..aio.events import _run_until_complete_cb
from ..aio.handles import TimerHandle
from ..aio.tasks import Task as AioTask
from ..handlers import _FutureWaiter
from ..tracing import TracedCallback
from .labels import Labels, _args_of, _direction, _function_name, _method_name, _qualname

if TYPE_CHECKING:
    from .records import Record

__all__: list[str] = []  # package-private: Recorder (records.py) is the public face


def _finite(seconds: float) -> float | None:
    """A time for a record: None for one that never comes (``sleep(math.inf)``'s deadline),
    since JSON has no infinity (``json.dumps`` would write ``Infinity``, which no JSON parser
    reads)."""
    return seconds if math.isfinite(seconds) else None


def _kind(obj: Any) -> str:
    """The asyncio role of a queued callback (see ``records.py``'s docstring)."""
    if isinstance(obj, TracedCallback):
        obj = obj.__wrapped__
    if isinstance(obj, AioTask):
        return "step"
    if isinstance(obj, TimerHandle | asyncio.TimerHandle):
        return "timer"
    fn = getattr(obj, "_callback", None)
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, AioTask) and _method_name(fn) == "__wakeup":
        return "wakeup"
    if fn is _run_until_complete_cb:
        return "stop"
    if isinstance(owner, _FutureWaiter):
        return "kernel_wakeup"
    return "callback"


def _stepped_task(obj: Any) -> AioTask[Any] | None:
    """The asyncio task a callback steps (its ``__step`` or ``__wakeup``), if any."""
    if isinstance(obj, AioTask):
        return obj
    owner = getattr(getattr(obj, "_callback", None), "__self__", None)
    return owner if isinstance(owner, AioTask) and _kind(obj) == "wakeup" else None


def _started(task: Any) -> bool:
    """Has an asyncio task's coroutine begun running?"""
    coro = task.get_coro()
    if inspect.isgenerator(coro):
        return inspect.getgeneratorstate(coro) != inspect.GEN_CREATED
    if inspect.iscoroutine(coro):
        return inspect.getcoroutinestate(coro) != inspect.CORO_CREATED
    return True


def _outcome(labels: Labels, future: Any) -> Record:
    """How a done future ended, read without marking its exception as retrieved."""
    state = getattr(future, "_state", None)
    if state == "CANCELLED":
        return {"cancelled": True}
    exc = getattr(future, "_exception", None)
    if exc is not None:
        return {"exception": labels.value(exc)}
    if state == "FINISHED":
        return {"result": labels.value(getattr(future, "_result", None))}
    return {"pending": True}


def _done_callback(labels: Labels, handle: Any, stepping: Any) -> Record:
    """More fields of a ``call_soon`` record, if ``handle`` is a done callback, handed to
    call_soon as its future completes: the future, its outcome, and whether it is the task
    whose step is running (``stepping``: then its coroutine just ended)."""
    args = _args_of(handle)
    future: Any = args[0] if len(args) == 1 else None
    if not (asyncio.isfuture(future) and future.done()):
        return {}
    fields: Record = {
        "future": labels.future(future),
        "outcome": _outcome(labels, future),
        "finished_step": future is stepping,
    }
    if future is stepping:
        fields["coro"] = _qualname(future.get_coro())
    return fields


def _handed_future(labels: Labels, kind: str, handle: Any) -> Record:
    """More fields of a ``callback`` record: for a wake-up, the future it was handed (done:
    its outcome says whether the step sends or throws); for a timer, the future it sets, if
    it sets one (``asyncio.sleep``'s does)."""
    fields: Record = {}
    if kind == "wakeup":
        future = _args_of(handle)[0]
        fields["future"] = labels.future(future)
        fields["outcome"] = _outcome(labels, future)
        fields["how"] = "send" if "result" in fields["outcome"] else "throw"
    elif kind == "timer":
        args = _args_of(handle)
        if args and asyncio.isfuture(args[0]):
            fields["future"] = labels.future(args[0])
    return fields


def _callback_owner(
    labels: Labels, handle: Any, task: Any, is_task: Callable[[Any], bool]
) -> str | None:
    """The task a callback belongs to: ``task``, the one it steps (each loop finds it its own
    way), else the future it is handed, else -- for ``asyncio.sleep``'s timer -- the task
    that awaits that future. ``is_task`` says what is a task on this loop."""
    if task is not None:
        return labels.future(task)
    args = _args_of(handle)
    if len(args) == 1 and asyncio.isfuture(args[0]):
        return labels.future(args[0])
    if isinstance(handle, asyncio.TimerHandle) and args and asyncio.isfuture(args[0]):
        # asyncio.sleep's timer: it belongs to the task that awaits its future
        for fn, _ in getattr(args[0], "_callbacks", None) or ():
            waiter = getattr(fn, "__self__", None)
            if is_task(waiter):
                return labels.future(waiter)
    return None


def _is_aio_task(obj: Any) -> bool:
    return isinstance(obj, AioTask)


class _AdapterEvents:
    """The adapter's events, one ``_on_<event>`` method each (``Recorder`` inherits them)."""

    # The recorder's state these methods share, set up by ``Recorder.__init__``.
    labels: Labels
    _phase: int
    _actor: str | None
    _current: str | None
    _stepping: AioTask[Any] | None
    _trap: tuple[str, str] | None
    _cancel: tuple[str, str | None] | None
    _timers: list[tuple[float, int, Any]]
    _timer_order: int

    if TYPE_CHECKING:  # Recorder's own, for its times

        def _now(self) -> float | None: ...

        def _since(self, time: float) -> float: ...

        def _deadline(self, time: float) -> float | None: ...

    def _owner(self, handle: Any) -> str | None:
        """The task a callback belongs to (``_callback_owner``), as a label."""
        return _callback_owner(self.labels, handle, _stepped_task(handle), _is_aio_task)

    def _running_coro(self) -> str | None:
        return None if self._stepping is None else _qualname(self._stepping.get_coro())

    def _on_call_soon(self, task: None, callback: str, handle: Any, **_: Any) -> Record:
        kind = _kind(handle)
        fields: Record = {
            "task": self._owner(handle),
            "callback": self.labels.entry(handle),
            "kind": kind,
            "by": self._actor,
        }
        if kind == "step":
            fields["first_step"] = handle._coro is not None and not _started(handle)
            fields["again"] = handle is self._stepping
            fields["coro"] = _qualname(handle.get_coro())
        fields.update(_done_callback(self.labels, handle, self._stepping))
        return fields

    def _on_call_soon_threadsafe(
        self, task: None, callback: str, handle: Any, other_thread: bool, **_: Any
    ) -> Record:
        fields = self._on_call_soon(task, callback, handle)
        fields["other_thread"] = other_thread
        if other_thread:
            fields["by"] = None  # whatever runs on the kernel's thread now did not queue it
        return fields

    def _on_call_at(
        self, task: None, callback: str, deadline: float, handle: Any, **_: Any
    ) -> Record:
        self._timer_order += 1
        self._timers.append((deadline, self._timer_order, handle))
        now, until = self._now(), self._deadline(deadline)
        fields: Record = {
            "task": None if self._stepping is None else self.labels.future(self._stepping),
            "callback": self.labels.entry(handle),
            "kind": _kind(handle),
            "until": until,
            "delay": None if now is None or until is None else until - now,
            "by": self._actor,
            "coro": self._running_coro(),
        }
        args = _args_of(handle)
        if args and asyncio.isfuture(args[0]):
            fields["future"] = self.labels.future(args[0])
        return fields

    def _on_watch(
        self, task: None, fileobj: str, mask: int, handle: Any, callback: str, **_: Any
    ) -> Record:
        fd = re.match(r"^-?\d+$", fileobj)
        return {
            "callback": self.labels.entry(handle),
            "fd": self.labels.fd(int(fileobj)) if fd else self.labels.clean(fileobj),
            "for": _direction(mask),
            "by": self._actor,
        }

    def _on_callback(self, task: None, callback: str, handle: Any, **_: Any) -> Record:
        self._phase = 3
        label = self.labels.entry(handle)
        self._actor = label
        self._trap = self._cancel = None
        kind = _kind(handle)
        stepped = _stepped_task(handle)
        self._stepping = stepped
        fields: Record = {"task": self._owner(handle), "callback": label, "kind": kind}
        self._current = fields["task"]
        if stepped is not None:
            fields["coro"] = _qualname(stepped.get_coro())
            fields["first"] = not _started(stepped)
        if kind == "step":
            exc = handle._step_exc
            fields["how"] = "send" if exc is None else "throw"
            if exc is not None:
                fields["exc"] = self.labels.value(exc)
        else:
            fields.update(_handed_future(self.labels, kind, handle))
        return fields

    def _on_callback_done(self, task: None, handle: Any, **_: Any) -> Record:
        label = self.labels.entry(handle)
        stepped = self._stepping
        self._actor = self._current = None
        self._stepping = None
        fields: Record = {"task": self._owner(handle), "callback": label, "kind": _kind(handle)}
        if stepped is not None:
            fields["coro"] = _qualname(stepped.get_coro())
            if stepped.done():
                fields["outcome"] = _outcome(self.labels, stepped)
                fields["ended"] = True
            elif stepped._fut_waiter is not None:
                fields["outcome"] = {"yielded": self.labels.future(stepped._fut_waiter)}
                fields["future"] = self.labels.future(stepped._fut_waiter)
            else:
                fields["outcome"] = {"again": True}
        return fields

    def _on_run_until_complete(self, task: None, future: Any, **_: Any) -> Record:
        self._phase = 0
        wraps = not asyncio.isfuture(future)
        argument = f"{_qualname(future)}()" if wraps else self.labels.value(future)
        return {"argument": argument, "wraps": wraps}

    def _on_add_done_callback(self, task: None, future: Any, callback: Any, **_: Any) -> Record:
        return {
            "task": self.labels.future(future),
            "future": self.labels.future(future),
            "callback": _function_name(callback),
        }

    def _on_run_forever(self, task: None, **_: Any) -> Record:
        self._phase = 0
        return {}

    def _on_run_forever_return(self, task: None, **_: Any) -> Record:
        self._phase = 0
        return {}

    def _on_stop(self, task: None, **_: Any) -> Record:
        return {"task": self._current, "by": self._actor}

    def _on_run_until_complete_return(self, task: None, future: Any, **_: Any) -> Record:
        self._phase = 0
        label = self.labels.future(future)
        return {"task": label, "future": label, "outcome": _outcome(self.labels, future)}
