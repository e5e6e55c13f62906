"""Time: sleeping, reading the clock, and timeouts -- curio's rules for nesting them.

``sleep`` parks a task on the sleeping queue. ``timeout_after`` / ``timeout_at`` put a
*deadline* on a block of code: when it passes, the task gets ``TaskTimeout`` at its current
(or next) blocking call. ``ignore_after`` / ``ignore_at`` do the same but swallow the timeout.

Timeout blocks nest. Each task keeps a stack of the deadlines of the blocks it is inside
(``Task._deadlines``, outermost first) and the kernel arms only the nearest one. When a
timeout exception reaches a block's exit, the block compares the time it fired with the
stack and decides whose timeout it was:

* its own (its deadline is the outermost one that has passed) -> ``TaskTimeout`` leaves the
  block (or is swallowed, for ``ignore_*``);
* an enclosing block's -> ``TimeoutCancellationError`` leaves the block, so that code in
  between cannot mistake it for its own timeout; the enclosing block turns it back into a
  ``TaskTimeout``;
* nobody's (no deadline on the stack has passed) -> a timeout escaped the inner block that
  owned it: ``UncaughtTimeoutError``.

Read next: ``kernel/taskgroup.py``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .errors import TaskTimeout, TimeoutCancellationError, UncaughtTimeoutError
from .task import Task, as_coroutine
from .traps import (
    _clock,
    _get_current,
    _schedule,
    _set_timeout,
    _sleep,
    _unset_timeout,
    _unset_timeout_for,
)

if TYPE_CHECKING:
    from .traps import TrapCall

__all__ = [
    "TimeoutBlock",
    "clock",
    "ignore_after",
    "ignore_at",
    "sleep",
    "timeout_after",
    "timeout_at",
]

T = TypeVar("T")


def _check_seconds(seconds: Any, what: str) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{what} takes a number of seconds, not {seconds!r}")
    if math.isnan(seconds):
        raise ValueError(f"{what} got NaN seconds")
    return seconds


def sleep(seconds: float) -> TrapCall[None]:
    """Sleep for ``seconds``. ``sleep(0)`` lets every other ready task run first.

    Returns the trap itself rather than wrapping it in another coroutine, so awaiting it costs
    one suspension and nothing more; ``yield from sleep(1)`` works in generator coroutines.
    """
    if seconds == 0:
        return _schedule()
    if _check_seconds(seconds, "sleep()") < 0:
        return _schedule()
    return _sleep(seconds)


def clock() -> TrapCall[float]:
    """The kernel's current time in seconds (virtual time under a ``VirtualClock``)."""
    return _clock()


class TimeoutBlock:
    """The object behind ``async with timeout_after(...)`` and friends.

    After the block, ``expired`` tells whether its own deadline passed, and ``result`` is
    ``timeout_result`` if it did (for ``ignore_*``).
    """

    def __init__(
        self, seconds: float | None, absolute: bool, ignore: bool, timeout_result: Any = None
    ) -> None:
        if seconds is not None:
            _check_seconds(seconds, "timeout_at()" if absolute else "timeout_after()")
        self._seconds = seconds
        self._absolute = absolute
        self._ignore = ignore
        self._timeout_result = timeout_result
        self._task: Task | None = None
        self._handling: BaseException | None = None
        self._previous: float | None = None
        self.deadline: float | None = None
        self.expired = False
        self.result: Any = None

    async def __aenter__(self) -> TimeoutBlock:
        if self._task is not None:
            raise RuntimeError("a timeout block cannot be entered twice; make a new one")
        # The exception being handled as the block begins (inside an ``except`` or a
        # ``finally``): a cancellation there came before the block (see __aexit__).
        self._handling = sys.exc_info()[1]
        task = self._task = await _get_current()
        if self._seconds is None or self._absolute:
            self.deadline = self._seconds
        else:
            self.deadline = await _clock() + self._seconds
        if task._deadlines is None:
            task._deadlines = []
        task._deadlines.append(self.deadline)
        self._previous = await _set_timeout(self.deadline)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc_type is GeneratorExit:
            await self._closed()
            return False
        now = await _unset_timeout(self._previous)
        assert self._task is not None and self._task._deadlines is not None
        deadlines = self._task._deadlines
        try:
            if not isinstance(exc, TaskTimeout | TimeoutCancellationError):
                return False
            # (When the kernel raised it, it says when it fired; one raised by hand may not.)
            fired_at = exc.args[0] if exc.args and isinstance(exc.args[0], int | float) else now
            expired = [i for i, d in enumerate(deadlines) if d is not None and d <= fired_at]
            if not expired:
                raise UncaughtTimeoutError(
                    "a timeout escaped the timeout block that owned it (did an inner block's "
                    "TaskTimeout get re-raised outside it?)"
                ) from exc
            if expired[0] != len(deadlines) - 1:  # an enclosing block's deadline passed first
                if isinstance(exc, TaskTimeout):
                    raise _retyped(exc, TimeoutCancellationError, fired_at, traceback) from None
                return False
            self.expired = True
            cancellation = _cancellation_under_way(exc, self._handling, self._task._cancelled_with)
            if cancellation is not None:
                raise cancellation  # it came first: the timeout must not end it (see below)
            self.result = self._timeout_result
            if self._ignore:
                return True
            if isinstance(exc, TimeoutCancellationError):
                raise _retyped(exc, TaskTimeout, fired_at, traceback) from None
            return False
        finally:
            deadlines.pop()

    async def _closed(self) -> None:
        """The block is being closed rather than left: ``GeneratorExit`` reached it.

        Discussion: either an async generator that yields inside the block is closed --
        by ``aclose()``, or by the task the kernel closes it in once it is collected --
        or the kernel is abandoning the block's task (a second Ctrl-C, a kernel failure).
        In the first case the task that entered the block may be elsewhere by now,
        inside blocks of its own entered since, so this block's deadline is taken out of
        the middle of its stack, and the nearest one left is armed again -- for that task,
        through a trap (``UNSET_TIMEOUT_FOR``) yielded by whichever task is closing the
        generator. Otherwise it may not yield a trap at all (Python would report it as
        ignoring the exit), and the deadline goes with its task.
        """
        task = self._task
        if task is None or task._deadlines is None:
            return
        deadlines = task._deadlines
        for index in range(len(deadlines) - 1, -1, -1):
            if deadlines[index] == self.deadline:  # (equal deadlines are interchangeable)
                del deadlines[index]
                break
        if task._kernel._in_task_step():
            nearest = min((d for d in deadlines if d is not None), default=None)
            await _unset_timeout_for(task, nearest)


def _cancellation_under_way(
    timeout: BaseException,
    before_the_block: BaseException | None,
    delivered: BaseException | None,
) -> BaseException | None:
    """The cancellation that ``timeout`` interrupted, if it came inside the block and the
    task was still cleaning up after it (a ``finally`` that waits); else None.

    Discussion: the task was cancelled inside this block, and its cleanup was still waiting
    when the block's deadline passed. The timeout is thrown into the cleanup; if the block
    then swallowed it (``ignore_after``), or the caller caught the ``TaskTimeout`` it became,
    the task would carry on as if never cancelled, and whoever cancelled it would wait for
    nothing. The cancellation came first, so it wins: the block raises it again. It is
    found where Python put it -- the timeout's ``__context__``, the exception being handled
    when the timeout was raised; one the task caught and dropped earlier is not there.

    Not one that was being handled already when the block began (``before_the_block``):
    ``except TaskCancelled: async with ignore_after(5): await goodbye()`` bounds a cleanup
    on purpose, and its timeout is the block's to swallow. And only the very exception the
    kernel threw into this task (``delivered``): another task's cancellation may be handled
    here too -- ``TaskGroup.start()`` raises the one that ended the task it was starting.
    """
    seen = 0
    context = timeout.__context__
    while context is not None and seen < 100:  # (a bound: contexts may be long, not cyclic)
        if context is before_the_block:
            return None  # from here on, the chain is older than the block
        if context is delivered:
            return context
        context = context.__context__
        seen += 1
    return None


def _retyped(
    exc: BaseException, kind: type[BaseException], fired_at: float, traceback: TracebackType | None
) -> BaseException:
    """``exc``, a timeout that fired at ``fired_at``, as a ``kind`` (with its traceback and
    its attributes).

    The attributes matter: code the timeout passed through may have recorded on it what it
    had done so far (``sendall`` sets ``bytes_sent``), and notes may have been added.
    """
    retyped = kind(fired_at).with_traceback(traceback)
    retyped.__dict__.update(exc.__dict__)
    return retyped


async def _run_within(block: TimeoutBlock, coro: Any) -> Any:
    async with block:
        return await coro
    return block.result  # reached only when ignore_* swallowed the timeout


@overload
def timeout_after(seconds: float | None) -> TimeoutBlock: ...
@overload
def timeout_after(
    seconds: float | None, coro: Callable[..., Awaitable[T]] | Awaitable[T], *args: Any
) -> Coroutine[Any, Any, T]: ...
def timeout_after(seconds: float | None, coro: Any = None, *args: Any) -> Any:
    """Raise ``TaskTimeout`` if the block (or ``coro``) takes more than ``seconds``."""
    block = TimeoutBlock(seconds, absolute=False, ignore=False)
    return (
        block
        if coro is None
        else _run_within(block, as_coroutine(coro, args, "timeout_after", "seconds, "))
    )


@overload
def timeout_at(deadline: float | None) -> TimeoutBlock: ...
@overload
def timeout_at(
    deadline: float | None, coro: Callable[..., Awaitable[T]] | Awaitable[T], *args: Any
) -> Coroutine[Any, Any, T]: ...
def timeout_at(deadline: float | None, coro: Any = None, *args: Any) -> Any:
    """Like ``timeout_after`` with an absolute deadline on the kernel's clock."""
    block = TimeoutBlock(deadline, absolute=True, ignore=False)
    return (
        block
        if coro is None
        else _run_within(block, as_coroutine(coro, args, "timeout_at", "deadline, "))
    )


@overload
def ignore_after(seconds: float | None, *, timeout_result: Any = None) -> TimeoutBlock: ...
@overload
def ignore_after(
    seconds: float | None,
    coro: Callable[..., Awaitable[T]] | Awaitable[T],
    *args: Any,
    timeout_result: Any = None,
) -> Coroutine[Any, Any, T | Any]: ...
def ignore_after(
    seconds: float | None, coro: Any = None, *args: Any, timeout_result: Any = None
) -> Any:
    """Stop the block (or ``coro``) after ``seconds``, silently: check ``.expired`` after.

    With ``coro``, returns its result, or ``timeout_result`` if time ran out.
    """
    block = TimeoutBlock(seconds, absolute=False, ignore=True, timeout_result=timeout_result)
    return (
        block
        if coro is None
        else _run_within(block, as_coroutine(coro, args, "ignore_after", "seconds, "))
    )


@overload
def ignore_at(deadline: float | None, *, timeout_result: Any = None) -> TimeoutBlock: ...
@overload
def ignore_at(
    deadline: float | None,
    coro: Callable[..., Awaitable[T]] | Awaitable[T],
    *args: Any,
    timeout_result: Any = None,
) -> Coroutine[Any, Any, T | Any]: ...
def ignore_at(
    deadline: float | None, coro: Any = None, *args: Any, timeout_result: Any = None
) -> Any:
    """Like ``ignore_after`` with an absolute deadline on the kernel's clock."""
    block = TimeoutBlock(deadline, absolute=True, ignore=True, timeout_result=timeout_result)
    return (
        block
        if coro is None
        else _run_within(block, as_coroutine(coro, args, "ignore_at", "deadline, "))
    )
