"""``Task``: a Future that drives a coroutine, one step per turn of the loop.

This is asyncio's Task, written out in Python. Its whole job is two methods:

``__step``
    Resume the coroutine once (``coro.send(None)``, or ``coro.throw(exc)``) and look at what
    it yields. A *future* means "wake me when this is done": the task adds ``__wakeup`` as
    the future's done callback and returns to the loop. A bare ``None`` (``asyncio.sleep(0)``)
    means "let the others run": the task queues its next step at once. When the coroutine
    returns, its value becomes the task's result -- the task is a Future, so whoever awaits
    the task is woken the same way.
``__wakeup``
    The awaited future is done: step again, sending ``None`` (the coroutine then reads the
    future's result) or throwing its exception.

How this lands on the kernel: asyncio schedules each step with ``loop.call_soon(
self.__step)``, which makes a ``Handle`` for it. Here the task *is* its own handle: the loop
appends the task itself to the kernel's ready queue (``_schedule_step``), and the kernel's
phase 3 calls its ``_run()``, which runs ``__step`` in the task's context. Same order, one
object fewer per step.

Cancellation is asyncio's, not the kernel's: ``cancel()`` cancels the future the task is
waiting on (which wakes the task with ``CancelledError``), or, if there is none, marks the
task so that ``CancelledError`` is thrown in at its next step. ``cancelling()`` counts the
requests and ``uncancel()`` takes one back (``asyncio.timeout`` and TaskGroup rely on it).

Read next: ``kernel/aio/events.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import sys
import traceback
import types
from asyncio import CancelledError
from asyncio import tasks as _asyncio_tasks
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from .futures import _FINISHED, _PENDING, Future
from .handles import warn_if_slow

if TYPE_CHECKING:
    from types import FrameType

    from .events import EventLoop

__all__ = ["Task"]

T = TypeVar("T")

# Whether uncancel() taking back the last request withdraws a cancellation not yet thrown
# in: asyncio's rule from Python 3.13 (on 3.11 and 3.12 it is still delivered).
UNCANCEL_WITHDRAWS = sys.version_info >= (3, 13)

# asyncio's own registry, so that asyncio.current_task() and asyncio.all_tasks() see our
# tasks: these are the hooks asyncio provides for task implementations other than its own.
_register_task: Callable[[Any], None] = _asyncio_tasks._register_task
_enter_task: Callable[[Any, Any], None] = _asyncio_tasks._enter_task
_leave_task: Callable[[Any, Any], None] = _asyncio_tasks._leave_task

_names = itertools.count(1)
_CoroutineType = types.CoroutineType


class Task(Future[T]):
    """Runs a coroutine on the event loop; the task's result is the coroutine's."""

    __slots__ = (
        "_call_soon",
        "_context",
        "_coro",
        "_fut_waiter",
        "_log_destroy_pending",
        "_must_cancel",
        "_name",
        "_num_cancels_requested",
        "_step_exc",
    )

    if TYPE_CHECKING:
        _loop: EventLoop  # a Task runs only on kernel.aio's loop (checked in __init__)

    def __init__(
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, Any, T],
        *,
        loop: EventLoop | None = None,
        name: object = None,
        context: contextvars.Context | None = None,
    ) -> None:
        self._log_destroy_pending = False  # until it is fully made
        if loop is None:
            super().__init__()
        else:  # Future.__init__, written out: one call fewer per task
            self._loop = loop
            self._state = _PENDING
            self._result = None
            self._exception = None
            self._exception_tb = None
            self._callbacks = None
            self._awaited_by = None
            self._cancel_message = None
            self._cancelled_exc = None
            self._log_traceback = False
            self._asyncio_future_blocking = False
        kernel = getattr(self._loop, "_kernel", None)
        if kernel is None:
            self._log_destroy_pending = False
            raise TypeError(
                f"kernel.aio.Task runs on kernel.aio's event loop, not on {self._loop!r}; "
                f"use loop.create_task(coro) on the loop you have"
            )
        self._call_soon = kernel.call_soon  # the kernel's ready queue, where steps go
        if type(coro) is not _CoroutineType and not (
            asyncio.iscoroutine(coro) or inspect.isgenerator(coro)
        ):
            self._log_destroy_pending = False
            raise TypeError(f"a coroutine was expected, got {coro!r}")
        self._coro = coro
        self._name: Any = next(_names) if name is None else str(name)  # int: see get_name
        self._context = contextvars.copy_context() if context is None else context
        self._fut_waiter: Any = None  # the future this task waits on, if any
        self._must_cancel = False  # throw CancelledError in at the next step
        self._num_cancels_requested = 0
        self._step_exc: BaseException | None = None  # what the next step throws in
        self._log_destroy_pending = True
        self._call_soon(self)  # the first step: _schedule_step(), minus a call
        _register_task(self)

    def _repr_info(self) -> list[str]:
        """As asyncio orders them: the state ("cancelling" once a cancel is asked for and
        the task has not finished), the name, the coroutine, what it waits for, then the
        future's result and callbacks."""
        info = super()._repr_info()
        if self._num_cancels_requested and self._state == _PENDING:
            info[0] = "cancelling"
        info[1:1] = [f"name={self.get_name()!r}", f"coro={_coro_repr(self._coro)}"]
        if self._fut_waiter is not None:
            info.insert(3, f"wait_for={self._fut_waiter!r}")
        return info

    def __del__(self) -> None:
        if self._state == _PENDING and self._log_destroy_pending:
            self._loop.call_exception_handler(
                {"message": "Task was destroyed but it is pending!", "task": self}
            )
        if self._log_traceback:
            super().__del__()

    # -- what asyncio's Task offers beyond Future ----------------------------------------------

    def get_coro(self) -> Coroutine[Any, Any, T] | Generator[Any, Any, T]:
        return self._coro

    def get_context(self) -> contextvars.Context:
        return self._context

    def get_name(self) -> str:
        if type(self._name) is int:
            self._name = f"Task-{self._name}"
        return self._name  # type: ignore[no-any-return]

    def set_name(self, value: object) -> None:
        self._name = str(value)

    def set_result(self, result: Any) -> None:
        raise RuntimeError("Task does not support set_result operation")

    def set_exception(self, exception: Any) -> None:
        raise RuntimeError("Task does not support set_exception operation")

    def get_stack(self, *, limit: int | None = None) -> list[FrameType]:
        """The frames the coroutine is suspended in (outermost first), or, once it has
        failed, the frames of its traceback."""
        frames: list[FrameType] = []
        if self._exception is not None:
            tb = self._exception.__traceback__
            while tb is not None and (limit is None or len(frames) < limit):
                frames.append(tb.tb_frame)
                tb = tb.tb_next
            return frames
        awaitable: Any = self._coro
        while awaitable is not None:
            frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
            if frame is None:
                break
            frames.append(frame)
            awaitable = getattr(awaitable, "cr_await", None) or getattr(
                awaitable, "gi_yieldfrom", None
            )
        if limit is not None:
            frames = frames[-limit:] if limit >= 0 else frames[:-limit]
        return frames

    def print_stack(self, *, limit: int | None = None, file: TextIO | None = None) -> None:
        file = sys.stderr if file is None else file
        frames = self.get_stack(limit=limit)
        print(f"Stack for {self!r} (most recent call last):", file=file)
        summary = traceback.StackSummary.extract((f, f.f_lineno) for f in frames)
        for line in summary.format():
            print(line, file=file, end="")
        if self._exception is not None:
            for line in traceback.format_exception_only(self._exception):
                print(line, file=file, end="")

    # -- cancellation ---------------------------------------------------------------------------

    def cancel(self, msg: Any | None = None) -> bool:
        """Ask the task to stop: ``CancelledError`` is raised in its coroutine at the point
        where it waits. Returns False if the task is already done."""
        self._log_traceback = False
        if self.done():
            return False
        self._num_cancels_requested += 1
        if self._fut_waiter is not None and self._fut_waiter.cancel(msg=msg):
            # The future it waits on is cancelled: that wakes the task with CancelledError.
            return True
        self._must_cancel = True  # no future to cancel (yet): throw it in at the next step
        self._cancel_message = msg
        return True

    def cancelling(self) -> int:
        """How many cancellation requests are outstanding."""
        return self._num_cancels_requested

    def uncancel(self) -> int:
        """Take one cancellation request back; returns how many remain.

        As the running Python's asyncio does: from 3.13, taking back the last request also
        withdraws a cancellation not yet thrown in; before, that one still arrives.
        """
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
            if self._num_cancels_requested == 0 and UNCANCEL_WITHDRAWS:
                self._must_cancel = False
        return self._num_cancels_requested

    # -- running ----------------------------------------------------------------------------------

    def _schedule_step(self, exc: BaseException | None = None) -> None:
        """``call_soon(self.__step)``: the task goes to the back of the kernel's ready queue."""
        self._step_exc = exc
        self._call_soon(self)

    def _run(self) -> None:
        """Called by the kernel when this task's turn in the ready queue comes."""
        exc, self._step_exc = self._step_exc, None
        loop = self._loop
        if loop._debug:
            started = loop.time()
            self._context.run(Task.__step, self, exc)
            warn_if_slow(loop, self, started)
        else:
            self._context.run(Task.__step, self, exc)
        del self  # see __step

    def __step(self, exc: BaseException | None = None) -> None:
        """Resume the coroutine once and decide, from what it yields, when to resume it next."""
        if self._state != "PENDING":
            # Only possible through misuse (a step queued twice); asyncio says the same.
            from asyncio import InvalidStateError

            raise InvalidStateError(f"__step(): already done: {self!r}, {exc!r}")
        if self._must_cancel:
            if not isinstance(exc, CancelledError):
                exc = self._make_cancelled_error()
            self._must_cancel = False
        self._fut_waiter = None
        loop = self._loop
        coro = self._coro
        _enter_task(loop, self)
        try:
            result = coro.send(None) if exc is None else coro.throw(exc)
        except StopIteration as stop:
            if self._must_cancel:
                # Cancelled while running its last step: it ends cancelled, not finished.
                self._must_cancel = False
                super().cancel(msg=self._cancel_message)
            else:
                self._result = stop.value
                self._state = _FINISHED
                self._schedule_callbacks()
        except CancelledError as error:
            self._cancelled_exc = error
            super().cancel()
        except (KeyboardInterrupt, SystemExit) as error:
            Future.set_exception(self, error)
            raise
        except BaseException as error:
            Future.set_exception(self, error)
        else:
            self._handle_yield(result)
        finally:
            _leave_task(loop, self)
            exc = None  # see below
        # A coroutine that failed keeps its frame in the exception's traceback, and that
        # frame keeps its caller's -- this one. Without ``self`` in it, there is no cycle
        # (task -> exception -> frames -> task) and a failed task nobody looks at is
        # reported as soon as it is dropped, not at the next garbage collection. Nor may
        # it keep ``exc``: an exception thrown in that came back out (a cancellation, say)
        # has this frame in its traceback, a cycle (frame -> exc -> traceback -> frame)
        # that kept the coroutine's frames, and all they hold, until a full collection.
        del self

    def _handle_yield(self, result: Any) -> None:
        """The coroutine yielded ``result``: park on it, step again soon, or complain."""
        # The common case first, spelled out: one of our own pending futures, of this loop,
        # awaited properly. It is what the general branch below does, minus the checks and
        # the add_done_callback call -- worth it, because it happens on every await.
        if (
            (type(result) is Future or type(result) is Task)
            and result is not self
            and result._asyncio_future_blocking
            and result._loop is self._loop
            and result._state is _PENDING
        ):
            result._asyncio_future_blocking = False
            if result._callbacks is None:
                if result._awaited_by is None and self._loop._direct_wakeups:
                    result._awaited_by = self  # stands in for its __wakeup: see _wake_from
                else:
                    result._callbacks = [(self.__wakeup, self._context)]
            else:
                result._callbacks.append((self.__wakeup, self._context))
            self._fut_waiter = result
            if self._must_cancel and result.cancel(msg=self._cancel_message):
                self._must_cancel = False
            return
        blocking = getattr(result, "_asyncio_future_blocking", None)
        if blocking is not None:
            if _loop_of(result) is not self._loop:
                self._schedule_step(
                    RuntimeError(
                        f"Task {self!r} got Future {result!r} attached to a different loop"
                    )
                )
            elif not blocking:
                self._schedule_step(
                    RuntimeError(
                        f"yield was used instead of yield from in task {self!r} with {result!r}"
                    )
                )
            elif result is self:
                self._schedule_step(RuntimeError(f"Task cannot await on itself: {self!r}"))
            else:
                result._asyncio_future_blocking = False
                result.add_done_callback(self.__wakeup, context=self._context)
                self._fut_waiter = result
                if self._must_cancel and result.cancel(msg=self._cancel_message):
                    self._must_cancel = False
        elif result is None:
            self._schedule_step()  # a bare yield (asyncio.sleep(0)): to the back of the line
        elif inspect.isgenerator(result):
            self._schedule_step(
                RuntimeError(
                    f"yield was used instead of yield from for generator in task {self!r} "
                    f"with {result!r}"
                )
            )
        else:
            hint = ""
            if type(result) is tuple and result and isinstance(result[0], str):
                hint = (
                    " (a kernel trap: kernel calls such as kernel.sleep need a kernel task; "
                    "from asyncio code, run them with kernel.aio.run_kernel(...))"
                )
            self._schedule_step(RuntimeError(f"Task got bad yield: {result!r}{hint}"))

    def _wake_from(self, future: Future[Any]) -> None:
        """``future``, which this task awaits, is done: queue the task's next step.

        What the done callback ``self.__wakeup`` would do from the ready queue, minus the
        Handle and the call, when the future has a result: the task goes on the ready queue
        itself, as for every step (it is its own Handle), in the same place the Handle
        would have had. An exception or a cancellation takes ``__wakeup``'s own way.

        The future finds the task in its ``_awaited_by`` slot, where ``_handle_yield``
        put it when the task was the first to wait: no ``[(callback, context)]`` list and
        pair to allocate, as asyncio's C Future keeps its first callback in a field of its
        own. A second waiter, or one that comes after other callbacks, is added as
        ``__wakeup`` to the list, so the order stays asyncio's.

        Discussion: a traced loop keeps asyncio's structure -- a Handle that calls
        ``__wakeup``, which calls ``__step`` -- because that is what the teaching views
        narrate; untraced, a wake-up costs one Handle, two calls and two objects fewer.
        """
        if future._state is _FINISHED and future._exception is None:
            self._step_exc = None  # _schedule_step(), minus a call
            self._call_soon(self)
        else:
            self._loop.call_soon(self.__wakeup, future, context=self._context)

    def __wakeup(self, future: Any) -> None:
        """Done callback of the awaited future: step again, with its outcome."""
        if type(future) is Future and future._state is _FINISHED and future._exception is None:
            self.__step()
            return
        try:
            future.result()
        except BaseException as error:
            self.__step(error)
        else:
            self.__step()
        # The error's traceback holds this frame: without ``self`` and ``future`` in it,
        # a task or future that keeps the error is no cycle (see Future.result).
        del self, future


def _loop_of(future: Any) -> Any:
    """A future's loop: ``get_loop()``, or the ``_loop`` attribute of futures without it."""
    try:
        get_loop = future.get_loop
    except AttributeError:
        return future._loop
    return get_loop()


def _coro_repr(coro: Any) -> str:
    """``<main() running at file.py:12>``, or ``done, defined at`` once it has finished."""
    name = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None) or repr(coro)
    frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
    if frame is not None:
        return f"<{name}() running at {frame.f_code.co_filename}:{frame.f_lineno}>"
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    if code is not None:
        return f"<{name}() done, defined at {code.co_filename}:{code.co_firstlineno}>"
    return f"<{name}()>"
