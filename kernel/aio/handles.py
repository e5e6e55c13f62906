"""Handles: the callbacks asyncio queues, made runnable by the kernel.

asyncio wraps every callback it schedules in a ``Handle`` (``call_soon``) or a
``TimerHandle`` (``call_later``, ``call_at``) and keeps them in ``loop._ready`` and
``loop._scheduled``. The adapter keeps asyncio's classes -- code that checks
``isinstance(h, asyncio.TimerHandle)`` or calls ``h.cancel()`` works unchanged -- and adds
the one method the kernel calls on whatever it finds in its ready queue: ``_run()``. So a
``Handle`` goes straight on the kernel's ready queue and a ``TimerHandle`` on its sleeping
queue (``events.py`` shows the whole mapping).

Read next: ``kernel/aio/futures.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from asyncio import format_helpers
from asyncio.format_helpers import extract_stack as _extract_stack  # debug mode only
from typing import TYPE_CHECKING, Any

__all__ = ["Handle", "Nothing", "TimerHandle"]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it


class Handle(asyncio.Handle):
    """A callback queued with ``call_soon``: asyncio's Handle, runnable by the kernel."""

    __slots__ = ()

    def __init__(self, callback: Any, args: Any, loop: Any, context: Any = None) -> None:
        # asyncio.Handle.__init__ written out: it asks loop.get_debug(), a Python call.
        self._context = contextvars.copy_context() if context is None else context
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        if loop._debug:
            self._source_traceback = _extract_stack(sys._getframe(1))
        else:
            self._source_traceback = None

    if TYPE_CHECKING:  # asyncio.Handle's own attributes, which typeshed leaves out
        _callback: Any
        _args: Any
        _source_traceback: Any
        _context: contextvars.Context
        _loop: Any

    def get_context(self) -> contextvars.Context:
        """The context the callback runs in (asyncio has this from 3.12 on)."""
        return self._context

    def _run(self) -> None:
        """Call the callback in its context; an error goes to the loop's exception handler."""
        if self._cancelled:
            return  # cancelled after it was queued: asyncio skips it too
        loop = self._loop
        started = loop.time() if loop._debug else None
        try:
            self._context.run(self._callback, *self._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"Exception in callback {_format_callback(self)}",
                    "exception": exc,
                    "handle": self,
                }
            )
        if started is not None:
            warn_if_slow(loop, self, started)
        # Discussion: a coroutine that failed inside the callback keeps its frame alive in
        # the exception's traceback, and that frame keeps this one (its caller) -- with
        # ``self`` in it, which leads back to the task and so to the exception: a cycle
        # that delays "exception was never retrieved" until the garbage collector runs.
        del self


class TimerHandle(asyncio.TimerHandle):
    """A callback queued with ``call_later`` / ``call_at``, on the kernel's sleeping queue."""

    __slots__ = ("_entry",)

    def __init__(
        self, when: float, callback: Any, args: Any, loop: Any, context: Any = None
    ) -> None:
        # Both classes carry asyncio.Handle's slots, so Handle's __init__ fills these too.
        Handle.__init__(self, callback, args, loop, context)  # type: ignore[arg-type]
        self._when = when
        self._scheduled = False

    if TYPE_CHECKING:
        _entry: object  # its entry in the kernel's sleeping queue, for cancel()
        _args: Any
        _source_traceback: Any
        _scheduled: bool
        _loop: Any
        _repr: str | None

    get_context = Handle.get_context

    def cancel(self) -> None:
        """Cancel the callback; if it is still on the kernel's sleeping queue, take it off.

        asyncio's ``TimerHandle.cancel`` and ``Handle.cancel`` in one frame instead of four
        (they call ``super()``, ``loop.get_debug()`` and ``loop._timer_handle_cancelled``):
        ``asyncio.sleep`` cancels its timer on the way out, so this runs once per sleep,
        nearly always after the timer has fired.
        """
        if self._cancelled:
            return
        if self._scheduled:
            self._loop._timer_handle_cancelled(self)
        self._cancelled = True
        if self._loop._debug:
            self._repr = repr(self)  # keep what it was, for "Executing ... took" warnings
        self._callback = None
        self._args = None

    def _run(self) -> None:
        self._scheduled = False  # off the sleeping queue: cancel() need not tell the kernel
        Handle._run(self)  # type: ignore[arg-type]


class Nothing:
    """A ready-queue entry that does nothing: it keeps one turn from blocking in select()."""

    def _run(self) -> None:
        pass


def warn_if_slow(loop: Any, ran: object, started: float) -> None:
    """Debug mode: log, as asyncio does, a callback or task step that held the loop for
    ``loop.slow_callback_duration`` seconds or more (by the loop's clock: on a
    ``VirtualClock``, only what advances it counts)."""
    took = loop.time() - started
    if took >= loop.slow_callback_duration:
        log.warning("Executing %r took %.3f seconds", ran, took)


def _format_callback(handle: Handle) -> str:
    """The callback as asyncio's own message names it: arguments shortened (a 100 KB
    argument is not logged whole), ``functools.partial`` unwrapped, where it is defined."""
    return format_helpers._format_callback_source(handle._callback, handle._args)
