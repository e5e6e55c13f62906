"""Tracing: an optional observer of every scheduling decision, free when absent.

A tracer is any callable ``tracer(event, task, **details)``. Pass one to ``Kernel`` (or
``kernel.run(..., tracer=...)``) and it hears about each ``spawn``, ``run`` (a slice of a
task begins), ``trap`` (the slice ended on this trap), ``park`` (where the task now waits),
``wake``, ``select`` (timeout and which tasks I/O made ready), ``timer`` (a deadline came
due), ``cancel`` and ``exit``. A tracer whose ``turns`` attribute is true also hears ``turn``
when each turn of the loop begins (the teaching views number the turns with it).

Discussion: the run loop has no "if tracing" test in it. Instead, a traced kernel has its
handler table and its ``_reschedule`` method swapped for wrappers that report and then do
the real work, and each task's coroutine is wrapped so that resuming it reports ``run``.
An untraced kernel never runs a line of this module.

Read next: ``kernel/task.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .traps import Trap

if TYPE_CHECKING:
    from .callbacks import Callback
    from .scheduler import Kernel
    from .task import CoroutineLike, Task

__all__ = ["TracedCallback", "TracedCoroutine", "Tracer", "install_tracer"]


class Tracer(Protocol):
    """Receives every scheduler decision: ``tracer(event, task, **details)``.

    Events: ``spawn``, ``run``, ``trap``, ``park``, ``wake``, ``select``, ``timer``,
    ``cancel``, ``exit``; and for callbacks (the asyncio adapter's): ``call_soon``,
    ``call_at``, ``watch`` when one is queued, ``callback`` when one runs and
    ``callback_done`` when it returns (each with the callback object as ``handle``). The
    adapter's loop adds ``run_until_complete``, ``add_done_callback`` (its stop callback),
    ``run_forever``, ``stop``, ``run_forever_return`` and ``run_until_complete_return``.
    With no tracer installed none of this code is on the hot path: the traced versions are
    swapped in at construction time.
    """

    def __call__(self, event: str, task: Task | None, **details: Any) -> None: ...


def install_tracer(kernel: Kernel, tracer: Tracer) -> None:
    """Swap reporting wrappers into ``kernel``'s handler table and ``_reschedule``."""

    def traced(name: str, handler: Callable[[Task, Trap], bool]) -> Callable[..., bool]:
        def handle(task: Task, trap: Trap) -> bool:
            tracer("trap", task, trap=name, args=trap[1:])
            carry_on = handler(task, trap)
            if not carry_on:
                tracer("park", task, state=task.state)
            return carry_on

        return handle

    for name, handler in list(kernel._handlers.items()):
        kernel._handlers[name] = traced(name, handler)

    plain_reschedule = kernel._reschedule

    def reschedule(task: Task, value: Any = None) -> None:
        tracer("wake", task, state=task.state)
        plain_reschedule(task, value)

    kernel._reschedule = reschedule  # type: ignore[method-assign]

    if getattr(tracer, "turns", False):
        # The loop asks ``finished()`` before every turn; a "no" means a turn begins.
        plain_loop = kernel._loop

        def loop(finished: Callable[[], bool]) -> None:
            def finished_or_next_turn() -> bool:
                if finished():
                    return True
                tracer("turn", None)
                return False

            plain_loop(finished_or_next_turn)

        kernel._loop = loop  # type: ignore[method-assign]

    # Callbacks (the asyncio adapter's Handles and Tasks) are queued wrapped, so that the
    # tracer hears when each is queued and when it runs.
    plain_call_soon = kernel.call_soon
    plain_call_at = kernel.call_at
    plain_add_watcher = kernel.add_watcher

    def call_soon(callback: Callback) -> None:
        tracer("call_soon", None, callback=repr(callback), handle=callback)
        plain_call_soon(TracedCallback(callback, tracer))

    def call_at(deadline: float, callback: Callback) -> object:
        tracer("call_at", None, callback=repr(callback), deadline=deadline, handle=callback)
        return plain_call_at(deadline, TracedCallback(callback, tracer))

    def add_watcher(fileobj: Any, event: int, callback: Callback) -> Callback | None:
        tracer(
            "watch",
            None,
            callback=repr(callback),
            fileobj=repr(fileobj),
            mask=event,
            handle=callback,
        )
        return plain_add_watcher(fileobj, event, TracedCallback(callback, tracer))

    kernel.call_soon = call_soon  # type: ignore[method-assign]
    kernel.call_at = call_at  # type: ignore[method-assign]
    kernel.add_watcher = add_watcher  # type: ignore[method-assign]


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

    def _run(self) -> object:
        callback = self.__wrapped__
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
