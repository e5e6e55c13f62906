"""Diagnostics that teach: a task that keeps the kernel to itself, and a program stuck for good.

Two mistakes everyone makes when learning cooperative scheduling, each turned into a report
that names the task and explains the idea behind the mistake.

**A slow step.** A task runs until it yields a trap that parks it; until then no other task
runs, and neither does the kernel. A blocking call (``time.sleep``, a synchronous HTTP
client, a long computation) freezes everything. ``Kernel(slow_task_threshold=0.1)`` times
each *step* -- from the moment the kernel resumes a task until the task parks or ends -- on
``time.perf_counter()`` (real time, whatever the kernel's clock: a blocking call takes real
time even under a ``VirtualClock``) and logs a warning on the ``kernel`` logger for a step
that took longer. Like the tracer, the watch is installed by swapping wrappers in when the
kernel is created (``install_slow_task_watch``): a kernel without it runs none of this code.
It is off by default, as asyncio's ``slow_callback_duration`` is outside its debug mode.

**A deadlock.** When every task is blocked and nothing can ever wake one, the main task gets
a ``Deadlock`` that says who waits for whom, instead of the program hanging: that is
``kernel/deadlock.py``, which uses ``where`` and ``task_label`` from here.

Read next: ``kernel/deadlock.py``.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .traps import Trap

if TYPE_CHECKING:
    from .scheduler import Kernel
    from .task import CoroutineLike, Task

__all__ = ["WatchedCoroutine", "install_slow_task_watch", "task_label", "where"]

log = logging.getLogger("kernel")

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep  # frames in here are ours


# ----------------------------------------------------------------------------------------
# Where a task is: the line of user code it is suspended at
# ----------------------------------------------------------------------------------------


def where(coro: Any) -> str | None:
    """``file.py:line in function`` for the innermost frame of the task's own code.

    A suspended coroutine awaits another (``cr_await``), down to the trap in
    ``kernel/traps.py``; the frames inside the kernel package (``Lock.acquire``, the trap)
    are skipped, so the answer is the line the student wrote -- ``async with second:``.
    """
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    if not frames:
        return None
    theirs = [f for f in frames if not f.f_code.co_filename.startswith(_PACKAGE)]
    frame = theirs[-1] if theirs else frames[0]  # all ours: the task's own coroutine
    code = frame.f_code
    return f"{os.path.basename(code.co_filename)}:{frame.f_lineno} in {code.co_qualname}"


def task_label(task: Task) -> str:
    """``task 3 'worker'``: how the reports name a task."""
    return f"task {task.id} {task.name!r}"


# ----------------------------------------------------------------------------------------
# The slow-step watch
# ----------------------------------------------------------------------------------------


class _Stopwatch:
    """Times the step of the one task running now (one task runs at a time)."""

    __slots__ = ("started", "task", "threshold")

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.task: Task | None = None  # the task whose step is being timed
        self.started = 0.0

    def begin(self, task: Task) -> None:
        """The kernel resumes ``task``: a step starts, unless this continues one."""
        if self.task is not task:
            self.task = task
            self.started = time.perf_counter()

    def end(self, task: Task, ending: str | None = None) -> None:
        """``task`` parked (``ending`` None) or ended (``ending`` says how): its step is over."""
        if self.task is not task:
            return
        elapsed = time.perf_counter() - self.started
        self.task = None
        if elapsed >= self.threshold:
            until = ending or where(task.coro) or "it yielded"
            log.warning(
                "%s ran for %.2f s without letting any other task run (until %s). While a "
                "task runs, no other task can: the others get their turn only when it awaits "
                "something that makes it wait (a sleep, a lock, a queue, I/O). This is what "
                "cooperative scheduling means. Move blocking calls to a thread with `await "
                "kernel.run_in_thread(func, *args)`, and give a long computation an `await "
                "kernel.sleep(0)` now and then.",
                task_label(task),
                elapsed,
                until,
            )


class WatchedCoroutine:
    """Wraps a task's coroutine under the slow-step watch: resuming it starts a step.

    A step may span several ``send`` calls: a non-blocking trap (``clock()``, ``spawn``)
    is answered at once and the same task resumed, so the step goes on until a handler
    parks the task (see ``install_slow_task_watch``) or the coroutine ends.
    """

    __slots__ = ("__wrapped__", "_inner", "_task", "_watch")

    def __init__(self, inner: CoroutineLike, task: Task, watch: _Stopwatch) -> None:
        self._inner = inner
        # ``Task.coro`` looks one ``__wrapped__`` deep: point it at the task's own coroutine
        # even when the tracer has wrapped it first.
        self.__wrapped__ = getattr(inner, "__wrapped__", inner)
        self._task = task
        self._watch = watch

    def send(self, value: Any) -> Any:
        return self._resume(self._inner.send, value)

    def throw(self, exc: BaseException) -> Any:
        return self._resume(self._inner.throw, exc)

    def _resume(self, resume: Callable[[Any], Any], arg: Any) -> Any:
        self._watch.begin(self._task)
        try:
            return resume(arg)
        except StopIteration:
            self._watch.end(self._task, "it returned")
            raise
        except BaseException as error:
            self._watch.end(self._task, f"it raised {type(error).__name__}")
            raise

    def close(self) -> None:
        self._inner.close()


def install_slow_task_watch(kernel: Kernel, threshold: float) -> None:
    """Time every step of every task of ``kernel``; warn about those over ``threshold`` s.

    Three wrappers, swapped in as the tracer's are (the run loop is not touched): new
    tasks get a ``WatchedCoroutine``; each trap handler that parks its task ends the step;
    so does a bad yield, which sends the task to the back of the ready queue.
    """
    watch = _Stopwatch(threshold)

    plain_new_task = kernel._new_task

    def new_task(
        coro: CoroutineLike,
        daemon: bool,
        name: str | None,
        context: contextvars.Context | None = None,
    ) -> Task:
        task = plain_new_task(coro, daemon, name, context)
        task.wrap_coro(WatchedCoroutine(task._coro, task, watch))
        return task

    kernel._new_task = new_task  # type: ignore[method-assign]

    def watched(handler: Callable[[Task, Trap], bool]) -> Callable[[Task, Trap], bool]:
        def handle(task: Task, trap: Trap) -> bool:
            carry_on = handler(task, trap)
            if not carry_on:
                watch.end(task)
            return carry_on

        return handle

    for name, handler in list(kernel._handlers.items()):
        kernel._handlers[name] = watched(handler)

    plain_bad_yield = kernel._bad_yield

    def bad_yield(task: Task, value: Any) -> bool:
        handled = plain_bad_yield(task, value)
        if handled:  # the task went to the back of the ready queue: its step is over
            watch.end(task)
        return handled

    kernel._bad_yield = bad_yield  # type: ignore[method-assign]
