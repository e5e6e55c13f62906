"""The kernel's entry points for code that is not a task: callbacks, threads, the adapter.

A task talks to the kernel by yielding traps. Code that is not a task -- a callback the
kernel runs, another thread, the asyncio adapter building asyncio's event loop on the
kernel -- has nothing to yield from, so the kernel offers it plain methods instead. Each
puts something on one of the three structures, or takes it off:

    call_soon(callback)              ready queue: phase 3 calls ``callback._run()`` in turn
    call_at(deadline, callback)      sleeping queue, until ``deadline`` (``time()``'s clock)
    add_watcher(fileobj, event, cb)  I/O wait table: ``cb`` is queued each time it is ready
    start_task(corofunc, *args)      a new task at the back of the ready queue
    cancel_task(task, exc)           a cancellation, delivered at the task's next blocking call
    call_soon_threadsafe(callback)   from another thread: the ready queue, and wake select()

``Kernel`` inherits them from ``KernelCallbacks``; they share its state, declared below for
the type checker.

Read next: ``kernel/tracing.py``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .errors import TaskCancelled
from .task import Task, as_coroutine, as_exception

if TYPE_CHECKING:
    import socket
    from collections import deque

    from .clock import Clock
    from .iotable import IOWaitTable
    from .task import CoroutineLike
    from .timequeue import SleepingQueue
    from .tracing import Tracer

__all__ = ["Callback", "KernelCallbacks"]


class Callback(Protocol):
    """A callback the kernel can queue: anything with a ``_run()`` method.

    The method is named after ``asyncio.Handle._run``, because the asyncio adapter's
    ``Handle`` and ``TimerHandle`` are what the kernel queues. ``_run`` must not raise: it
    reports its callback's errors itself (the adapter sends them to the loop's exception
    handler); an exception escaping it is treated as a kernel bug.
    """

    def _run(self) -> object: ...


class KernelCallbacks:
    """The methods of ``Kernel`` that code with no task calls (see the module docstring)."""

    # Owned by Kernel; declared here for the type checker.
    _ready: deque[Task | Callback]
    _sleeping: SleepingQueue
    _io: IOWaitTable
    _clock: Clock
    _tasks: dict[int, Task]
    _closed: bool
    _closing: bool
    _at_close: list[Callable[[], object]]
    _shutdown_steps: list[Callable[[], object]]
    _threadsafe: deque[tuple[Callable[..., object], tuple[Any, ...]]]
    _wakeup_pending: bool
    _wake_send: socket.socket
    _tracer: Tracer | None

    if TYPE_CHECKING:

        def _new_task(self, coro: CoroutineLike, daemon: bool, name: str | None) -> Task: ...
        def _cancel_task(self, task: Task, exc: BaseException) -> bool: ...

    def call_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        """From any thread: run ``callback(*args)`` in the kernel's loop, soon.

        The callback runs between task steps, in the kernel's context: it must not block.
        """
        if self._closing:
            raise RuntimeError("the kernel is closed")
        self._threadsafe.append((callback, args))
        self._wake_up()

    def call_soon_threadsafe(self, callback: Callback) -> None:
        """From any thread: append ``callback`` to the ready queue and wake the loop.

        Appending to a deque is atomic, so the callback keeps its place in the FIFO order
        relative to ``call_soon`` calls made after this one returns.
        """
        if self._closing:
            raise RuntimeError("the kernel is closed")
        self._ready.append(callback)
        self._wake_up()

    def _wake_up(self) -> None:
        """Make a blocking select() return: one byte to the wake-up socket per burst."""
        if not self._wakeup_pending:
            self._wakeup_pending = True
            # A full buffer means a wake-up is already pending; a closed one, that we stop.
            with contextlib.suppress(OSError):
                self._wake_send.send(b"\0")

    # -- on the three structures: what the asyncio adapter (kernel/aio) is built on -----

    def time(self) -> float:
        """The kernel's clock: what deadlines given to ``call_at`` are measured against.

        (Each kernel replaces this method, per instance, with its clock's ``now``.)
        """
        return self._clock.now()

    def call_soon(self, callback: Callback) -> None:
        """Put ``callback`` at the back of the ready queue; phase 3 calls ``callback._run()``.

        (An untraced kernel replaces this method, per instance, with the queue's ``append``.)
        """
        self._ready.append(callback)

    def call_at(self, deadline: float, callback: Callback) -> object:
        """Put ``callback`` on the sleeping queue until ``deadline`` (``time()``'s clock).

        Returns a handle for ``cancel_call``.
        """
        try:
            if not deadline >= -math.inf:  # (one comparison, per timer: NaN fails it)
                raise ValueError(f"call_at() got a NaN deadline, for {callback!r}")
        except TypeError:
            raise TypeError(
                f"call_at() takes a deadline in seconds on the kernel's clock (a number), "
                f"not {deadline!r}"
            ) from None
        return self._sleeping.push(deadline, callback, "call")

    def start_task(
        self, corofunc: Any, *args: Any, daemon: bool = False, name: str | None = None
    ) -> Task:
        """Create a task from outside any task -- a callback, or before ``run_until``.

        Inside a task, ``await kernel.spawn(...)`` is the way (it is a trap); this is for
        code with no task to yield from, such as the asyncio adapter starting a kernel task
        on behalf of asyncio code.
        """
        if self._closed:
            raise RuntimeError("this Kernel is closed; create a new one")
        return self._new_task(as_coroutine(corofunc, args, "start_task"), daemon, name)

    def cancel_task(
        self, task: Task, exc: type[BaseException] | BaseException = TaskCancelled
    ) -> bool:
        """From outside any task: have ``exc`` raised in ``task`` at its next blocking call.

        ``Task.cancel(blocking=False)`` for code with no task to await it from (a callback,
        the asyncio adapter); it does not wait. False if the task had already ended.
        """
        exc = as_exception(exc, "cancel_task")
        if not task.done and self._tasks.get(task.id) is not task:
            raise ValueError(f"{task!r} is not a task of this kernel; cancel it on its own")
        return self._cancel_task(task, exc)

    def add_close_callback(self, callback: Callable[[], object]) -> None:
        """Have ``close()`` call ``callback()`` after every task has ended.

        For resources that live as long as the kernel (its thread pool, the asyncio
        adapter's loop). They are called last added, first called.
        """
        if self._closed:
            raise RuntimeError("this Kernel is closed; its close callbacks have run already")
        self._at_close.append(callback)

    def add_shutdown_step(self, step: Callable[[], object]) -> None:
        """Have ``close()`` call ``step()`` once the remaining tasks have ended, while the
        kernel can still turn: before queued callbacks are dropped and resources released.

        ``step`` may run the loop (``run_until``) to clean up something that lives on the
        kernel and needs tasks or callbacks to do it. The asyncio adapter's loop made for
        ``run_asyncio`` uses it to cancel the asyncio tasks left over and let them clean
        up, as ``asyncio.run`` does at its end. Called last added, first called; tasks a
        step starts are cancelled like the others.
        """
        if self._closed:
            raise RuntimeError("this Kernel is closed; its shutdown steps have run already")
        self._shutdown_steps.append(step)

    def cancel_call(self, handle: Any) -> None:
        """Take a ``call_at`` callback off the sleeping queue (a no-op once it was due)."""
        self._sleeping.discard(handle)

    def add_watcher(self, fileobj: Any, event: int, callback: Callback) -> Callback | None:
        """Queue ``callback`` each time ``fileobj`` is ready for ``event``, until removed.

        A watcher already there for the same descriptor and event is replaced (and
        returned); a task waiting there makes this raise ``ResourceBusy``.
        """
        return self._io.watch(fileobj, event, callback)  # type: ignore[no-any-return]

    def remove_watcher(self, fileobj: Any, event: int) -> Callback | None:
        """Remove the watcher for ``event`` on ``fileobj``; return it, or None if none."""
        return self._io.unwatch(fileobj, event)  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        """True once ``close()`` has run."""
        return self._closed

    @property
    def tracer(self) -> Tracer | None:
        """The tracer given to ``Kernel(tracer=...)``, or None: layers above the kernel (the
        asyncio adapter) report their own events to it."""
        return self._tracer
