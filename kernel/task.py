"""Tasks: a coroutine plus everything the kernel needs to know to schedule it.

A ``Task`` is created by the ``SPAWN`` trap and lives until its coroutine returns or raises.
It is a passive record: the scheduler moves it between the ready queue, the sleeping queue,
wait queues and the I/O wait table and writes down *where* in two fields:

``_waiting_on``, ``_wait_entry``   the structure the task is parked on and its handle there
                                   (both None while the task is ready or running); to cancel
                                   a blocked task the kernel calls
                                   ``_waiting_on.discard(_wait_entry)``, whatever it is.
``_next_value`` / ``_next_exc``    what the task is resumed with: ``coro.send(value)`` or, if
                                   an exception is set, ``coro.throw(exc)`` -- never both.

Cancellation follows curio: ``cancel()`` sets ``_cancel_pending`` and the exception is thrown
in at the task's next *blocking* trap (at once if it is already blocked), exactly once.
``disable_cancellation()`` defers it; ``check_cancellation()`` looks at it.

Read next: ``kernel/time.py`` (sleep and timeouts).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from .errors import (
    CancelledError,
    TaskCancelled,
    TaskError,
    TaskTimeout,
    TimeoutCancellationError,
)
from .traps import (
    _cancel,
    _enable_cancellation_for,
    _get_current,
    _set_cancellation,
    _spawn,
    _wait_task,
)

if TYPE_CHECKING:
    from .scheduler import Kernel
    from .traps import TrapCall
    from .waitqueue import WaitQueue


def ended_by_cancellation(exc: BaseException | None) -> bool:
    """Whether a task that ended with ``exc`` was cancelled, rather than failed.

    Discussion: ``TaskTimeout`` is a ``CancelledError`` while it travels to the block whose
    deadline passed (so that ``except Exception`` does not catch it on the way). Once it
    leaves that block it says "this timed out" -- asyncio's ``TimeoutError``, trio's
    ``TooSlowError``. A task it ends was not cancelled by anyone: it failed, and it is
    reported as a failure (a ``TaskGroup`` cancels the siblings; unobserved, it is logged).
    """
    return isinstance(exc, CancelledError) and not isinstance(
        exc, TaskTimeout | TimeoutCancellationError
    )


__all__ = [
    "Task",
    "check_cancellation",
    "current_task",
    "disable_cancellation",
    "ended_by_cancellation",
    "spawn",
]

log = logging.getLogger("kernel")
T = TypeVar("T")
# What a task runs: an ``async def`` coroutine or a generator-based one that yields traps.
CoroutineLike: TypeAlias = Coroutine[Any, Any, Any] | Generator[Any, Any, Any]
# What spawn() accepts to call: an ``async def`` function, or a generator function (plain or
# ``@kernel.coroutine``) -- the course's older style, which the kernel runs just the same.
TaskFunction: TypeAlias = Callable[..., Awaitable[Any]] | Callable[..., Generator[Any, Any, Any]]
ExitCallback: TypeAlias = Callable[["Task"], None]


class Task:
    """A running coroutine, as the kernel sees it. Created only by ``spawn`` / ``run``."""

    __slots__ = (
        "__weakref__",
        "_cancel_pending",
        "_cancelled_with",
        "_context",
        "_coro",
        "_deadlines",
        "_exception",
        "_exit_callbacks",
        "_group",
        "_joined",
        "_joiners",
        "_kernel",
        "_next_exc",
        "_next_value",
        "_no_cancel",
        "_observed",
        "_result",
        "_send",
        "_timeout",
        "_timeout_entry",
        "_wait_entry",
        "_waiting_on",
        "cancelled",
        "daemon",
        "done",
        "id",
        "name",
        "state",
    )

    def __init__(
        self,
        kernel: Kernel,
        task_id: int,
        coro: CoroutineLike,
        daemon: bool,
        name: str | None,
        context: contextvars.Context,
    ) -> None:
        self.id = task_id
        self.name = name if name is not None else _coroutine_name(coro)
        self.daemon = daemon
        self.state = "READY"  # READY, SLEEPING, IO_WAIT, a wait-queue state, or TERMINATED
        self.done = False
        self.cancelled = False
        self._kernel = kernel
        self._coro = coro
        # What the loop resumes it with: _send(coro, value) (see wrap_coro).
        self._send: Callable[[Any, Any], Any] = type(coro).send
        # Its own context variables: each step runs inside this (see Kernel._new_task).
        self._context = context
        self._next_value: Any = None
        self._next_exc: BaseException | None = None
        self._cancel_pending: BaseException | None = None
        # The last cancellation asked of it (not a timeout): kernel/time.py tells it from
        # another task's that came this way (a TaskGroup.start() re-raises its task's).
        self._cancelled_with: BaseException | None = None
        self._no_cancel = 0  # depth of disable_cancellation() blocks
        self._waiting_on: Any = None
        self._wait_entry: Any = None
        self._timeout: float | None = None
        self._timeout_entry: Any = None
        self._deadlines: list[float | None] | None = None  # timeout blocks, outermost first
        self._joiners: WaitQueue | None = None
        self._exit_callbacks: list[ExitCallback] | None = None
        self._group: Any = None  # the TaskGroup this task belongs to, if any
        self._result: Any = None
        self._exception: BaseException | None = None
        self._joined = False
        self._observed = False  # has anyone been shown this task's exception?

    def __repr__(self) -> str:
        return f"<Task id={self.id} name={self.name!r} state={self.state}>"

    def wrap_coro(self, wrapper: Any) -> None:
        """Step the task through ``wrapper`` (the tracer's or the slow-step watch's), which
        wraps its coroutine. Keeps ``_send``, the ``send`` the loop calls, in step.

        Discussion: the loop calls ``_send(coro, value)`` once per step. ``_send`` is the
        coroutine type's own ``send`` function, looked up once per task: ``coro.send``
        would make a bound method object on every step, and ``type(coro).send`` is a
        lookup on a class, which 3.11 does not speed up. (Not bound once per task either:
        that would be one more object per task, kept for as long as the task lives.)
        """
        self._coro = wrapper
        self._send = type(wrapper).send

    @property
    def coro(self) -> CoroutineLike:
        """The coroutine this task runs."""
        return getattr(self._coro, "__wrapped__", self._coro)

    # -- results ---------------------------------------------------------------------------

    @property
    def result(self) -> Any:
        """The return value; raises ``TaskError`` if the task failed, RuntimeError if running."""
        if not self.done:
            raise RuntimeError(f"{self!r} has not finished yet; `await task.join()` waits for it")
        if self._exception is not None:
            self._observed = True
            raise TaskError(f"{self!r} failed") from self._exception
        return self._result

    @property
    def exception(self) -> BaseException | None:
        """The exception that ended the task, or None (also None while it still runs)."""
        if self._exception is not None:
            self._observed = True
        return self._exception

    async def join(self) -> Any:
        """Wait for the task to end; return its result or raise ``TaskError`` from its error.

        A task's outcome is collected once: a second ``join()`` is an error (use ``wait()``
        and ``result`` to look at a finished task as often as you like).
        """
        if self._joined:
            raise RuntimeError(
                f"{self!r} was already joined; its result is collected once. "
                f"Keep the value from the first join(), or use `await task.wait()` and "
                f"`task.result`"
            )
        self._joined = True
        if not self.done:
            try:
                await _wait_task(self)
            except BaseException:
                self._joined = False  # cancelled, or timed out: it collected nothing
                raise
        return self.result

    async def wait(self) -> None:
        """Wait for the task to end, without collecting its result."""
        if not self.done:
            await _wait_task(self)

    async def cancel(
        self, exc: type[BaseException] | BaseException = TaskCancelled, blocking: bool = True
    ) -> bool:
        """Cancel the task: ``exc`` is raised in it at its next blocking call.

        With ``blocking`` (the default) wait until it has ended. Returns False if the task
        had already ended, True otherwise.
        """
        exc = as_exception(exc, "cancel")
        if blocking and await _get_current() is self:
            raise RuntimeError(
                f"{self!r} cannot cancel itself with blocking=True: it would wait for its own "
                f"end. Use `await task.cancel(blocking=False)`, or just raise"
            )
        was_running = await _cancel(self, exc)
        if blocking and was_running:
            await _wait_task(self)
        return was_running

    def __del__(self) -> None:
        self._report_if_unobserved()

    def _report_if_unobserved(self) -> None:
        """A crash nobody looked at is logged with its traceback: errors never pass silently."""
        exc = self._exception
        if exc is None or self._observed or self.cancelled:
            return
        self._observed = True
        with contextlib.suppress(Exception):  # never raise from __del__ (e.g. at shutdown)
            log.error(
                "%r crashed and nobody looked at its exception (join it, or spawn it in a "
                "TaskGroup, to handle its errors)",
                self,
                exc_info=exc,
            )

    # -- exit callbacks ----------------------------------------------------------------------

    def add_exit_callback(self, callback: ExitCallback) -> None:
        """Call ``callback(task)`` when the task ends; at once if it has ended already.

        For code with no task to ``join()`` from -- a callback, the asyncio adapter. It runs
        inside the kernel right after the task's joiners are woken, so it must not block; an
        exception it raises is logged with its traceback, and the other callbacks still run.
        """
        if not callable(callback):
            raise TypeError(f"add_exit_callback() needs a callable, not {callback!r}")
        if self.done:
            run_exit_callback(self, callback)
        elif self._exit_callbacks is None:
            self._exit_callbacks = [callback]
        else:
            self._exit_callbacks.append(callback)

    def remove_exit_callback(self, callback: ExitCallback) -> bool:
        """Forget ``callback`` (every time it was added); True if it was there."""
        callbacks = self._exit_callbacks
        if not callbacks or callback not in callbacks:
            return False
        self._exit_callbacks = [kept for kept in callbacks if kept != callback]
        return True


def as_exception(exc: type[BaseException] | BaseException, method: str) -> BaseException:
    """The exception a cancel raises: ``exc`` itself, or a new instance of a class."""
    if isinstance(exc, type) and issubclass(exc, BaseException):
        return exc()
    if not isinstance(exc, BaseException):
        raise TypeError(f"{method}(exc=...) needs an exception class or instance, not {exc!r}")
    return exc


def run_exit_callback(task: Task, callback: ExitCallback) -> None:
    """Call one exit callback; an error in it is the callback's, reported and contained."""
    try:
        callback(task)
    except Exception:
        log.exception("exit callback %r of %r raised", callback, task)


# An ``async def`` coroutine, a generator, or anything else with a coroutine's methods
# (``send``, ``throw``, ``close``, ``__await__``): what ``@kernel.coroutine`` makes of a bound
# method or a ``functools.partial`` (``types.coroutine``'s wrapper), a compiled (Cython)
# coroutine. The two common types come first: isinstance tries them before the ABC.
_COROUTINE_TYPES = (types.CoroutineType, types.GeneratorType, Coroutine)


def _coroutine_name(coro: Any) -> str:
    return getattr(coro, "__qualname__", None) or type(coro).__name__


def as_coroutine(
    corofunc: Any, args: tuple[Any, ...], caller: str, before: str = ""
) -> CoroutineLike:
    """Turn what the user handed to ``spawn``/``run`` into a coroutine, or explain the mistake.

    ``before`` is what ``caller`` takes ahead of the function, for the advice ("seconds, ").
    """
    # (A function is not a coroutine, and no coroutine is callable: asking only what is not
    # callable spares ``spawn(func)`` the ABC's check, which costs more than the rest.)
    if not callable(corofunc) and isinstance(corofunc, _COROUTINE_TYPES):
        if args:
            with contextlib.suppress(AttributeError):  # refused: it will never run, so no
                corofunc.close()  # "never awaited" warning for it
            raise TypeError(
                f"{caller}() got a coroutine object *and* arguments {args!r}; pass either "
                f"{caller}({before}func, *args) or {caller}({before}func(*args))"
            )
        return corofunc
    if not callable(corofunc):
        if inspect.isawaitable(corofunc):
            raise TypeError(
                f"{caller}() got {corofunc!r}, an awaitable that is not a coroutine (an asyncio "
                f"Future or Task?); the kernel runs coroutines -- wrap it: `async def f(): "
                f"return await thing`, or use kernel.aio for asyncio objects"
            )
        raise TypeError(
            f"{caller}() needs an async function or a coroutine, got {corofunc!r} "
            f"({type(corofunc).__name__})"
        )
    # A plain function is accepted if it returns a coroutine (``kernel.sleep`` does), so the
    # only way to know is to call it.
    coro = corofunc(*args)
    if isinstance(coro, _COROUTINE_TYPES):
        return coro
    if inspect.isfunction(corofunc) or inspect.ismethod(corofunc) or inspect.isbuiltin(corofunc):
        raise TypeError(
            f"{caller}() needs an async function, but {corofunc!r} is a regular function (it "
            f"returned {coro!r}); declare it with `async def` (or decorate a generator with "
            f"@kernel.coroutine)"
        )
    raise TypeError(
        f"{caller}() called {corofunc!r} expecting a coroutine, but it returned {coro!r}; "
        f"declare it with `async def`"
    )


def spawn(
    corofunc: TaskFunction | CoroutineLike,
    *args: Any,
    daemon: bool = False,
    name: str | None = None,
) -> TrapCall[Task]:
    """``await spawn(corofunc, *args)``: start it as a new task, running concurrently.

    The new task goes to the back of the ready queue; the caller keeps running. A daemon task
    is one the program does not wait for: it is cancelled quietly when the kernel shuts down
    (any other task still running then is cancelled too, with a warning in the log).
    Like ``sleep``, this returns the trap itself (no extra coroutine), and a mistake in the
    arguments is reported at the call.
    """
    return _spawn(as_coroutine(corofunc, args, "spawn"), daemon, name)


async def current_task() -> Task:
    """The task that is running this code."""
    return await _get_current()


class disable_cancellation:
    """``async with disable_cancellation():`` -- cancellation requests wait until the block ends.

    A cancel or timeout that arrives inside is kept pending and delivered at the first blocking
    call *after* the block. Blocks nest.
    """

    _task: Task | None = None  # the task that entered the block

    async def __aenter__(self) -> disable_cancellation:
        await _set_cancellation(False)
        from .lifecycle import running_task  # (here: lifecycle imports this module)

        self._task = running_task()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if exc_info[0] is GeneratorExit:
            # Closed rather than left: see TimeoutBlock._closed. An async generator's block
            # is left for the task that entered it, which may be blocked elsewhere by now.
            task = self._task
            if task is not None and task._kernel._in_task_step():
                await _enable_cancellation_for(task)
            return
        await _set_cancellation(True)


async def check_cancellation() -> BaseException | None:
    """Look at a pending cancellation.

    Outside ``disable_cancellation`` a pending cancellation is raised here, at once. Inside,
    it is returned (or None) so the code can decide when to stop.
    """
    return await _set_cancellation(None)
