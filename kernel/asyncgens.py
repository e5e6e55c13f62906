"""Async generators a task left suspended: closed by a task of their own, not by the collector.

``break`` out of an ``async for`` (or an exception, or a cancellation) leaves the generator
paused at a ``yield``, its ``finally`` blocks not yet run. Left to itself, CPython runs them
when the garbage collector finalizes the generator: it throws ``GeneratorExit`` in, there
and then, in whatever code happens to be running. A ``finally`` that awaits anything then
fails ("async generator ignored GeneratorExit", printed, not raised) and its cleanup is
lost -- the connection is not closed, the file not flushed.

PEP 525 lets an event loop take that over, through ``sys.set_asyncgen_hooks``; asyncio and
trio both do. While a kernel runs, its hooks are in place, and:

* **first iteration** in a kernel task: the generator is remembered, weakly. One first
  iterated by other code -- asyncio code on the adapter's loop, which installs asyncio's
  hooks while it runs -- is handed to the hooks that were there before, so that it is
  closed by the machinery that ran it: an asyncio task cannot run kernel calls, nor a
  kernel task asyncio's bare ``yield``;
* **finalization**: instead of closing it in place, the kernel starts a daemon task that
  awaits ``agen.aclose()``, so the cleanup runs as a task, and may await. The collector can
  run in any thread, and in the middle of the kernel's own code, so the task is started
  through ``call_threadsafe``, between task steps;
* **close()**: once the program's tasks have ended, every generator still suspended is
  closed the same way, each by a task of its own, and ``close()`` lets those tasks end --
  while the asyncio adapter's callbacks and watchers still work, as ``asyncio.run`` closes
  generators before it closes its loop.

An error raised while closing one is logged (logger ``"kernel"``), as asyncio reports it.
A generator collected after its kernel has closed is closed in place, as CPython would; if
its cleanup awaits, it cannot finish, and a warning says so.

The cleanup runs in another task than the one that iterated the generator: a ``kernel.Lock``
held across a ``yield`` cannot be released by it (only the owner may), and it sees the
closing task's context variables. ``contextlib.aclosing(agen)`` remains the way to have the
cleanup run *at once*, in the task that iterated it, as the asyncio docs and trio's advise.

Read next: ``kernel/handlers.py``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import types
import weakref
from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING, Any, cast

from .traps import _schedule

if TYPE_CHECKING:
    from .scheduler import Kernel

__all__ = ["AsyncGenerators"]

log = logging.getLogger("kernel")

AsyncGen = AsyncGenerator[Any, Any]


class AsyncGenerators:
    """The async generators one kernel's tasks iterate, and the tasks that close them."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        # First iterated while this kernel ran, and not finalized yet, in that order (weakly:
        # a generator that is still in use must be collected as usual; the values are None).
        self._suspended: weakref.WeakKeyDictionary[AsyncGen, None] = weakref.WeakKeyDictionary()
        # Handed over by the collector, with no task to close it yet (held strongly: such a
        # generator has no other reference left), in the order they came.
        self._handed_over: dict[AsyncGen, None] = {}
        # First iterated by code outside any kernel task, under the hooks that were in
        # place before ours: they finalize it. By id(generator) -> (a weak reference to it,
        # those hooks' finalizer); see _remember_foreign for why not a weak dictionary.
        self._foreign: dict[int, tuple[weakref.ref[AsyncGen], Any]] = {}
        self._foreign_gone: list[int] = []  # ids of those collected since (see below)
        self._before: Any = sys.get_asyncgen_hooks()  # (replaced at each run, by hooks())
        self._closed = False  # close() has swept for the last time: no task will run again

    @contextlib.contextmanager
    def hooks(self) -> Iterator[None]:
        """Install this kernel's hooks for the duration of one run, then put back the hooks
        that were there (the asyncio adapter's loop's, while it runs the kernel)."""
        self._before = previous = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._first_iteration, finalizer=self._finalize)
        try:
            yield
        finally:
            sys.set_asyncgen_hooks(*previous)

    def _first_iteration(self, agen: AsyncGen) -> None:
        before = self._before
        if self._kernel._running is None and before.finalizer is not None:
            # Not a kernel task's (asyncio code, on the adapter's loop): its own hooks'.
            self._remember_foreign(agen, before.finalizer)
            if before.firstiter is not None:
                before.firstiter(agen)
            return
        self._suspended[agen] = None

    def _remember_foreign(self, agen: AsyncGen, finalizer: Any) -> None:
        """Note that ``finalizer`` closes ``agen``, for ``_finalize`` to find.

        Discussion: not in a weak dictionary. CPython clears a generator's weak references
        *before* it calls the finalizer hook, so the hook would never find its entry, and
        the generator would go to a kernel task -- where an asyncio cleanup that awaits
        cannot run. So the entry is kept by id, and only *marked* gone when the weak
        reference dies; marked entries are dropped here, at the next first iteration,
        before an id can come back for a new generator (a generator is always first
        iterated before it is finalized). An entry still there when its generator is
        finalized is popped by ``_finalize``.
        """
        gone = self._foreign_gone
        while gone:
            self._foreign.pop(gone.pop(), None)
        key = id(agen)
        reference = weakref.ref(agen, lambda _: gone.append(key))
        self._foreign[key] = (reference, finalizer)

    def _finalize(self, agen: AsyncGen) -> None:
        """CPython is about to collect ``agen`` while it is suspended: close it in a task.

        This runs wherever the last reference went -- in any thread, in any code -- so it
        only hands ``agen`` over. (It stays in ``_suspended`` until it is really gone: a weak
        dictionary is not safe to change from another thread while the kernel's thread reads
        it.)
        """
        foreign = self._foreign.pop(id(agen), None)
        if foreign is not None:
            foreign[1](agen)
            return
        if not self._closed:
            self._handed_over[agen] = None
            try:
                self._kernel.call_threadsafe(self._start_closing, agen)
                return
            except RuntimeError:  # the kernel is closing: its last turn is over
                self._handed_over.pop(agen, None)
        _close_in_place(agen)

    def _start_closing(self, agen: AsyncGen) -> None:
        """(A ``call_threadsafe`` callback.) Start the task that closes ``agen``."""
        if agen not in self._handed_over:
            return  # close()'s sweep got to it first
        del self._handed_over[agen]
        if self._closed:  # handed in as close() ended: no task can run any more
            _close_in_place(agen)
        else:
            self._start(agen)

    def _start(self, agen: AsyncGen) -> None:
        name = f"closing {_generator(agen).__qualname__}"
        self._kernel.start_task(self._close, agen, daemon=True, name=name)

    async def _close(self, agen: AsyncGen) -> None:
        """The closing task's body."""
        try:
            await agen.aclose()
        except Exception as error:
            log.error("closing the async generator %r raised", agen, exc_info=error)
        # One more turn, for what the cleanup queued (closing an asyncio transport queues
        # its connection_lost): at close(), the callbacks still queued are then dropped.
        await _schedule()

    def close_all(self, *, last: bool = False) -> None:
        """For ``close()``, once the program's tasks have ended: close every generator still
        suspended, each in a task of its own, and turn the kernel until those have ended.

        That includes those handed over whose task has not been started yet (the call to
        start it is still queued). A generator's cleanup may leave others suspended; the
        sweep goes round until none is left. They are closed in the order they were first
        iterated: the same program closes them in the same order every time. After the
        ``last`` sweep, a generator handed over is closed in place.
        """
        kernel = self._kernel
        while True:
            waiting = {agen: None for agen in list(self._suspended) if _unfinished(agen)}
            self._suspended.clear()
            for agen in list(self._handed_over):  # (one by one: the collector may hand
                del self._handed_over[agen]  # over another, from another thread, meanwhile)
                waiting[agen] = None
            for agen in waiting:
                self._start(agen)
            if not kernel._tasks:
                break
            kernel._run_until(lambda: not kernel._tasks)
        self._closed = last


def _generator(agen: AsyncGen) -> types.AsyncGeneratorType[Any, Any]:
    """What the hooks are given is an async generator object (typeshed says only the ABC)."""
    return cast("types.AsyncGeneratorType[Any, Any]", agen)


def _unfinished(agen: AsyncGen) -> bool:
    """Whether ``agen`` may still run code (no frame left: it has run to its end)."""
    return _generator(agen).ag_frame is not None


def _close_in_place(agen: AsyncGen) -> None:
    """Close ``agen`` here and now, with no kernel to run its cleanup: as CPython would
    have, but saying so if that cleanup awaits, rather than printing "ignored GeneratorExit"."""
    closing = agen.aclose()
    try:
        closing.send(None)
    except StopIteration:
        return  # its cleanup did not await: done
    except Exception as error:
        log.error("closing the async generator %r raised", agen, exc_info=error)
        return
    with contextlib.suppress(BaseException):
        closing.close()
    log.warning(
        "the async generator %r was collected after its kernel closed, and its cleanup "
        "awaits: it could not finish (close it with `async with contextlib.aclosing(...)`, "
        "or iterate it to its end, while the kernel runs)",
        agen,
    )
