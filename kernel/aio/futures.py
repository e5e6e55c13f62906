"""``Future``: a box for a result that is not there yet, and the callbacks waiting for it.

This is asyncio's Future, written out in Python so that it can be read. A future is
*pending* until someone calls ``set_result``, ``set_exception`` or ``cancel``; then it is
*done* for good, and every callback added with ``add_done_callback`` is handed to the loop's
``call_soon`` -- never called on the spot. On this loop ``call_soon`` means "append a Handle
to the kernel's ready queue", so a done callback runs in its FIFO turn like everything else.

A coroutine waits for a future with ``await future``. ``__await__`` *yields the future
itself* to whoever drives the coroutine:

* an asyncio ``Task`` (``kernel/aio/tasks.py``) receives it in ``Task.__step``, adds its
  ``__wakeup`` method as a done callback, and lets the loop go on (on an untraced loop the
  first such task is kept in ``_awaited_by`` instead, and queued itself: see
  ``Task._wake_from``);
* a kernel task hands it to the kernel, which treats it as the ``FUTURE_WAIT`` trap.

Either way, when the future is done the waiter is resumed, and ``__await__`` carries on
past its ``yield`` to return ``self.result()``.

Read next: ``kernel/aio/tasks.py``.
"""

from __future__ import annotations

import contextvars
import types
from asyncio import CancelledError, InvalidStateError
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

    from .tasks import Task

__all__ = ["Future"]

T = TypeVar("T")

_PENDING = "PENDING"
_CANCELLED = "CANCELLED"
_FINISHED = "FINISHED"


class Future(Generic[T]):
    """A result that will be set later, with asyncio's semantics (``asyncio.isfuture`` is
    true of it, and asyncio's own tasks and functions accept it)."""

    # Discussion: ``_asyncio_future_blocking`` is how asyncio recognises a future without
    # an isinstance check: ``asyncio.isfuture`` looks for the attribute on the class, and a
    # task that receives a yielded object checks the flag to tell ``await fut`` (True) from
    # a bare ``yield fut`` (False). Here it is a slot, which the class also carries.
    __slots__ = (
        "__weakref__",
        "_asyncio_future_blocking",
        "_awaited_by",
        "_callbacks",
        "_cancel_message",
        "_cancelled_exc",
        "_exception",
        "_exception_tb",
        "_log_traceback",
        "_loop",
        "_result",
        "_state",
    )

    def __init__(self, *, loop: AbstractEventLoop | None = None) -> None:
        self._state = _PENDING
        self._log_traceback = False  # an exception nobody has looked at yet
        if loop is None:
            from .events import _get_loop_for_future

            loop = _get_loop_for_future()
        self._loop = loop
        self._result: Any = None
        self._exception: BaseException | None = None
        self._exception_tb: types.TracebackType | None = None
        # (callback, context) pairs, made on the first add_done_callback
        self._callbacks: list[tuple[Callable[[Any], object], contextvars.Context]] | None = None
        # A Task of this loop that awaits us and was the first to ask: it stands in for its
        # own __wakeup callback (untraced loops; see Task._wake_from), with no list or pair.
        self._awaited_by: Task[Any] | None = None
        self._cancel_message: Any = None
        self._cancelled_exc: CancelledError | None = None
        self._asyncio_future_blocking = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {' '.join(self._repr_info())}>"

    def _repr_info(self) -> list[str]:
        """The words of the repr after the class name, in asyncio's order (a Task inserts its
        own after the state)."""
        info = [self._state.lower()]
        if self._state == _FINISHED:
            if self._exception is not None:
                info.append(f"exception={self._exception!r}")
            else:
                info.append(f"result={_short_repr(self._result)}")
        names = [] if self._awaited_by is None else ["Task.__wakeup()"]
        names += [_callback_name(callback) for callback, _ in self._callbacks or ()]
        if names:
            if len(names) > 2:
                names = [names[0], f"<{len(names) - 2} more>", names[-1]]
            info.append(f"cb=[{', '.join(names)}]")
        return info

    def __del__(self) -> None:
        if not self._log_traceback:
            return
        # Nobody ever asked for this future's exception: report it, as asyncio does.
        self._loop.call_exception_handler(
            {
                "message": f"{type(self).__name__} exception was never retrieved",
                "exception": self._exception,
                "future": self,
            }
        )

    __class_getitem__ = classmethod(types.GenericAlias)  # type: ignore[var-annotated]

    def get_loop(self) -> AbstractEventLoop:
        """The event loop this future belongs to."""
        return self._loop

    # -- reading ----------------------------------------------------------------------------

    def done(self) -> bool:
        """True once the future has a result or an exception, or was cancelled."""
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> T:
        """The result; raises the exception instead, or ``CancelledError``, or
        ``InvalidStateError`` while pending.

        Discussion: no frame the exception passes on its way out may keep the future, which
        keeps the exception: that would be a cycle (future -> exception -> traceback ->
        frame -> future) holding every frame of the traceback, and all they hold, until the
        next full collection, where asyncio's C Future frees them by reference counting. So
        this frame lets go of the future, and of the exception, before the raise leaves it;
        ``__await__`` and ``Task.__wakeup`` do the same.
        """
        if self._state == _FINISHED:
            self._log_traceback = False
            if self._exception is not None:
                # The traceback as it was when set: raising again would grow it each time.
                exc, tb = self._exception, self._exception_tb
                del self  # the traceback will hold this frame: see the Discussion
                try:
                    raise exc.with_traceback(tb)
                finally:
                    del exc, tb
            return self._result  # type: ignore[no-any-return]
        if self._state == _CANCELLED:
            raise self._make_cancelled_error()
        raise InvalidStateError("Result is not ready.")

    def exception(self) -> BaseException | None:
        """The exception (None if it succeeded); ``CancelledError`` / ``InvalidStateError``
        as for ``result()``."""
        if self._state == _FINISHED:
            self._log_traceback = False
            return self._exception
        if self._state == _CANCELLED:
            raise self._make_cancelled_error()
        raise InvalidStateError("Exception is not set.")

    # -- callbacks --------------------------------------------------------------------------

    def add_done_callback(
        self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None
    ) -> None:
        """Call ``fn(self)`` through the loop's ``call_soon`` once the future is done (at
        once, i.e. on the next turn, if it is done already)."""
        if context is None:
            context = contextvars.copy_context()
        if self._state != _PENDING:
            self._loop.call_soon(fn, self, context=context)
        elif self._callbacks is None:
            self._callbacks = [(fn, context)]
        else:
            self._callbacks.append((fn, context))

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        """Forget every registration of ``fn``; returns how many there were."""
        if not self._callbacks:
            return 0
        kept = [(f, ctx) for f, ctx in self._callbacks if f != fn]
        removed = len(self._callbacks) - len(kept)
        if removed:
            self._callbacks[:] = kept
        return removed

    def _schedule_callbacks(self) -> None:
        """The future just became done: hand every callback to ``call_soon``, in order."""
        task = self._awaited_by
        if task is not None:  # it asked before any callback in the list: it goes first
            self._awaited_by = None
            task._wake_from(self)
        callbacks = self._callbacks
        if callbacks is None:
            return
        self._callbacks = None
        call_soon = self._loop.call_soon
        for fn, context in callbacks:
            call_soon(fn, self, context=context)

    # -- completing ---------------------------------------------------------------------------

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel the future unless it is done; returns whether it was cancelled."""
        self._log_traceback = False
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        self._cancel_message = msg
        self._schedule_callbacks()
        return True

    def set_result(self, result: T) -> None:
        if self._state != _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        self._result = result
        self._state = _FINISHED
        self._schedule_callbacks()

    def set_exception(self, exception: BaseException | type[BaseException]) -> None:
        if self._state != _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        if isinstance(exception, type):
            exception = exception()
        if isinstance(exception, StopIteration):
            # Raised out of ``__await__`` it would end the awaiting coroutine as a return.
            new_exc = RuntimeError(
                "StopIteration interacts badly with generators and cannot be raised into a Future"
            )
            new_exc.__cause__ = exception
            new_exc.__context__ = exception
            exception = new_exc
        self._exception = exception
        self._exception_tb = exception.__traceback__
        self._state = _FINISHED
        self._schedule_callbacks()
        self._log_traceback = True

    def _make_cancelled_error(self) -> CancelledError:
        """The CancelledError to raise for a cancelled future (a fresh one each time)."""
        if self._cancelled_exc is not None:
            exc, self._cancelled_exc = self._cancelled_exc, None
            return exc
        if self._cancel_message is None:
            return CancelledError()
        return CancelledError(self._cancel_message)

    # -- awaiting -----------------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, T]:
        if self._state is _PENDING:
            self._asyncio_future_blocking = True
            try:
                yield self  # to the task driving this coroutine: "wake me when I am done"
            except BaseException:
                # Thrown in by the task: this future's exception, or a cancellation. Its
                # traceback holds this frame, which must not hold the future (see result).
                del self
                raise
        if self._state is _PENDING:
            raise RuntimeError("await wasn't used with future")
        if self._state is _FINISHED and self._exception is None:
            return self._result  # type: ignore[no-any-return]
        return self.result()

    __iter__ = __await__  # ``yield from future`` in generator-based coroutines


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _callback_name(callback: Any) -> str:
    name = getattr(callback, "__qualname__", None) or getattr(callback, "__name__", None)
    return f"{name}()" if name else repr(callback)
