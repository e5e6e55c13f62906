"""Tracing: an optional observer of every scheduling decision, free when absent.

A tracer is any callable ``tracer(event, task, **details)``. Pass one to ``Kernel`` (or
``kernel.run(..., tracer=...)``) and it hears about each ``spawn``, ``run`` (a slice of a
task begins), ``trap`` (the slice ended on this trap), ``park`` (where the task now waits),
``wake``, ``select`` (timeout and which tasks I/O made ready), ``timer`` (a deadline came
due), ``cancel``, ``exit``, ``bad_yield`` (the task yielded something that is not a trap)
and ``deadlock`` (nothing could ever wake a task: the main task gets a ``Deadlock``). A
tracer whose ``turns`` attribute is true also hears ``turn`` when each turn of the loop
begins (the teaching views number the turns with it).

Discussion: the run loop has no "if tracing" test in it. Instead, a traced kernel has its
handler table and its ``_reschedule`` method swapped for wrappers that report and then do
the real work, and each task's coroutine is wrapped so that resuming it reports ``run``.
An untraced kernel never runs a line of this module.

A tracer is called from the kernel's thread only, so it need not be thread-safe. The one
entry point other threads use, ``call_soon_threadsafe``, therefore does not call it: the
kernel's thread reports such a callback's arrival the next time one of the wrappers below
reports an event -- at the latest in phase 1 of the next turn, where it runs what threads
hand in, or just before the callback runs, whichever comes first.

Read next: ``kernel/task.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .handlers import _is_asyncio_future
from .traps import Trap

if TYPE_CHECKING:
    from .callbacks import Callback
    from .scheduler import Kernel
    from .task import CoroutineLike, Task

__all__ = ["TracedCallback", "TracedCoroutine", "Tracer", "install_tracer"]


class Tracer(Protocol):
    """Receives every scheduler decision: ``tracer(event, task, **details)``.

    Events: ``spawn``, ``run``, ``trap``, ``park``, ``wake``, ``select``, ``timer``,
    ``cancel``, ``exit``, ``bad_yield``, ``deadlock``; and for callbacks (the asyncio
    adapter's): ``call_soon``, ``call_at``, ``watch`` when one is queued,
    ``call_soon_threadsafe`` when the kernel's thread learns that one was queued that way
    (``other_thread``: by a thread other than the one reporting), ``callback`` when one runs
    and ``callback_done`` when it returns (each with the callback object as ``handle``; a
    cancelled ``asyncio.Handle`` is skipped, as asyncio skips it, and not reported). The
    adapter's loop adds ``run_until_complete``, ``add_done_callback`` (its stop callback),
    ``run_forever``, ``stop``, ``run_forever_return`` and ``run_until_complete_return``.
    With no tracer installed none of this code is on the hot path: the traced versions are
    swapped in at construction time.
    """

    def __call__(self, event: str, task: Task | None, **details: Any) -> None: ...


def install_tracer(kernel: Kernel, tracer: Tracer) -> None:
    """Swap reporting wrappers into ``kernel``'s handler table, ``_reschedule``, its
    ``_bad_yield`` and the methods that queue callbacks."""
    # Callbacks queued by call_soon_threadsafe that the tracer has not heard of yet, each
    # with the thread that queued it (see ``call_soon_threadsafe`` below). Appending to a
    # deque and popping from it are atomic, so other threads may append while the kernel's
    # thread pops.
    arrivals: deque[tuple[Callback, int]] = deque()

    def report_arrivals() -> None:
        here = threading.get_ident()
        while True:
            try:
                callback, thread = arrivals.popleft()
            except IndexError:  # (not ``while arrivals:`` -- a failed call takes its own back)
                return
            tracer(
                "call_soon_threadsafe",
                None,
                callback=repr(callback),
                handle=callback,
                other_thread=thread != here,
            )

    def report(event: str, task: Task | None, **details: Any) -> None:
        """The tracer, told first of the callbacks other threads queued meanwhile."""
        if arrivals:
            report_arrivals()
        tracer(event, task, **details)

    def traced(name: str, handler: Callable[[Task, Trap], bool]) -> Callable[..., bool]:
        def handle(task: Task, trap: Trap) -> bool:
            report("trap", task, trap=name, args=trap[1:])
            carry_on = handler(task, trap)
            if not carry_on:
                report("park", task, state=task.state)
            return carry_on

        return handle

    for name, handler in list(kernel._handlers.items()):
        kernel._handlers[name] = traced(name, handler)

    plain_reschedule = kernel._reschedule

    def reschedule(task: Task, value: Any = None) -> None:
        report("wake", task, state=task.state)
        plain_reschedule(task, value)

    kernel._reschedule = reschedule  # type: ignore[method-assign]

    # A yield that is not a trap sends the task to the back of the ready queue, with a
    # TypeError to throw in (kernel/handlers.py): its slice ends there, as at a trap that
    # parks it. (An asyncio future is awaited through the FUTURE_WAIT handler, which
    # reports itself: only its carrying on, at the back of the ready queue, is told here.)
    plain_bad_yield = kernel._bad_yield

    def bad_yield(task: Task, value: Any) -> bool:
        handled = plain_bad_yield(task, value)
        if handled and task._waiting_on is None:  # in the ready queue, not parked
            if not _is_asyncio_future(value):
                report("bad_yield", task, value=value, exc=task._next_exc)
            report("park", task, state=task.state)
        return handled

    kernel._bad_yield = bad_yield  # type: ignore[method-assign]

    # Phase 1 runs what other threads handed in: the moment the kernel's thread attends to
    # them, so the callbacks they queued are reported here if nothing was reported since.
    plain_run_threadsafe_callbacks = kernel._run_threadsafe_callbacks

    def run_threadsafe_callbacks() -> None:
        if arrivals:
            report_arrivals()
        plain_run_threadsafe_callbacks()

    kernel._run_threadsafe_callbacks = run_threadsafe_callbacks  # type: ignore[method-assign]

    if getattr(tracer, "turns", False):
        # The loop asks ``finished()`` before every turn; a "no" means a turn begins.
        plain_loop = kernel._loop

        def loop(finished: Callable[[], bool]) -> None:
            def finished_or_next_turn() -> bool:
                if finished():
                    return True
                report("turn", None)
                return False

            plain_loop(finished_or_next_turn)

        kernel._loop = loop  # type: ignore[method-assign]

    # Callbacks (the asyncio adapter's Handles and Tasks) are queued wrapped, so that the
    # tracer hears when each is queued and when it runs.
    plain_call_soon = kernel.call_soon
    plain_call_at = kernel.call_at
    plain_add_watcher = kernel.add_watcher
    plain_call_soon_threadsafe = kernel.call_soon_threadsafe

    def call_soon(callback: Callback) -> None:
        report("call_soon", None, callback=repr(callback), handle=callback)
        plain_call_soon(TracedCallback(callback, report))

    def call_at(deadline: float, callback: Callback) -> object:
        report("call_at", None, callback=repr(callback), deadline=deadline, handle=callback)
        return plain_call_at(deadline, TracedCallback(callback, report))

    def add_watcher(fileobj: Any, event: int, callback: Callback) -> Callback | None:
        report(
            "watch",
            None,
            callback=repr(callback),
            fileobj=repr(fileobj),
            mask=event,
            handle=callback,
        )
        return plain_add_watcher(fileobj, event, TracedCallback(callback, report))

    def call_soon_threadsafe(callback: Callback) -> None:
        # Maybe on another thread (a worker of run_in_executor, to_thread), or in a signal
        # handler: no place to call a tracer, which is not thread-safe. The arrival is noted
        # for the kernel's thread to report (``report``), and noted *before* the callback is
        # queued, so that it is reported before the callback runs.
        arrival = (callback, threading.get_ident())
        arrivals.append(arrival)
        try:
            plain_call_soon_threadsafe(TracedCallback(callback, report))
        except BaseException:  # not queued (the kernel is closing): nothing to report
            with contextlib.suppress(ValueError):  # (unless it has been reported already)
                arrivals.remove(arrival)
            raise

    kernel.call_soon = call_soon  # type: ignore[method-assign]
    kernel.call_at = call_at  # type: ignore[method-assign]
    kernel.add_watcher = add_watcher  # type: ignore[method-assign]
    kernel.call_soon_threadsafe = call_soon_threadsafe  # type: ignore[method-assign]


class TracedCallback:
    """Wraps a queued callback when tracing, to report each time it runs."""

    __slots__ = ("__wrapped__", "_tracer")

    def __init__(self, callback: Callback, tracer: Tracer) -> None:
        self.__wrapped__ = callback
        self._tracer = tracer

    def __repr__(self) -> str:
        return repr(self.__wrapped__)

    def cancel(self) -> None:
        self.__wrapped__.cancel()  # type: ignore[attr-defined]

    def skipped(self) -> bool:
        """Is it a Handle cancelled after it was queued? Its ``_run`` does nothing then: the
        loop skips it (asyncio's ``_run_once`` does too), so it does not count as run."""
        callback = self.__wrapped__
        return isinstance(callback, asyncio.Handle) and callback.cancelled()

    def _run(self) -> object:
        callback = self.__wrapped__
        if self.skipped():
            return callback._run()
        self._tracer("callback", None, callback=repr(callback), handle=callback)
        result = callback._run()
        self._tracer("callback_done", None, handle=callback)
        return result


class TracedCoroutine:
    """Wraps a task's coroutine when tracing, to report the start of each slice it runs."""

    __slots__ = ("__wrapped__", "_task", "_tracer")

    def __init__(self, coro: CoroutineLike, task: Task, tracer: Tracer) -> None:
        self.__wrapped__ = coro
        self._task = task
        self._tracer = tracer

    def send(self, value: Any) -> Any:
        self._tracer("run", self._task, value=value)
        return self.__wrapped__.send(value)

    def throw(self, exc: BaseException) -> Any:
        self._tracer("run", self._task, throw=repr(exc))
        return self.__wrapped__.throw(exc)

    def close(self) -> None:
        self.__wrapped__.close()
