"""The event loop: asyncio's ``AbstractEventLoop``, mapped onto the kernel's three structures.

asyncio's loop (``asyncio.base_events.BaseEventLoop``) keeps its own queues. This one keeps
none: every asyncio concept is stored in the kernel's structures, and the kernel's own run
loop (``Kernel._loop``) does the turning. The mapping:

================================  ===========================================================
asyncio                           here
================================  ===========================================================
``Handle``                        ``Handle`` (``handles.py``), a subclass of ``asyncio.Handle``
                                  that the kernel can run (it has ``_run()``)
``loop._ready`` (a deque)         the kernel's ready queue: ``call_soon`` appends the Handle
                                  (``Kernel.call_soon``), among the kernel's own tasks
``TimerHandle``, ``_scheduled``   ``TimerHandle`` on the kernel's sleeping queue
                                  (``Kernel.call_at``); when due, phase 2 of the kernel loop
                                  moves it to the ready queue, as ``_run_once`` moves due
                                  timers to ``_ready``
``selector.select(timeout)``      phase 1 of the kernel loop: one ``select()`` for kernel
                                  tasks and asyncio readers/writers together, blocking until
                                  the nearest deadline when nothing is ready
``add_reader`` / ``add_writer``   a *watcher* in the I/O wait table (``Kernel.add_watcher``):
                                  its Handle is queued every time the descriptor is ready
``_run_once``                     one turn of ``Kernel._loop``: poll, due timers, run ready
``run_forever`` / ``stop``        ``Kernel.run_until(finished)``, where ``finished`` turns
                                  true after the turn in which ``stop()`` was called
``run_until_complete(f)``         ``run_forever`` with a done callback on ``f`` that calls
                                  ``stop()`` -- exactly asyncio's construction
``Task.__step``                   ``kernel/aio/tasks.py``: the Task is queued *itself* on the
                                  ready queue (it is its own Handle) and its ``_run`` steps
                                  the coroutine
``Task.__wakeup``                 a done callback on the awaited future, queued on the ready
                                  queue when the future completes; untraced, a future of
                                  ours with a result queues the Task itself instead
                                  (``Task._wake_from``), in the same place
``Future`` done callbacks         ``call_soon`` of each callback when the future completes
``call_soon_threadsafe``          ``Kernel.call_soon_threadsafe``: append, then write to the
                                  kernel's wake-up socket
================================  ===========================================================

Because it is one scheduler, a kernel task and an asyncio task in the same program share one
FIFO ready queue, one clock (a ``VirtualClock`` works for both) and one tracer.

Deliberate differences from asyncio's own loop:

* A ``Task`` is queued on the ready queue itself rather than through a fresh ``Handle`` for
  each step. Nothing observable changes except that ``loop.call_soon`` is not called per step.
  Likewise, on an untraced loop, a task waiting on one of our futures that gets a result:
  the Task is queued in the place its ``__wakeup`` Handle would have had, and the first
  task to wait is kept in a field of the future, not in its callback list. (A traced loop
  keeps the Handle and the ``__wakeup`` call, which the teaching views narrate.)
* ``call_later`` / ``call_at`` deadlines are compared with the kernel clock as they are
  (asyncio adds its clock resolution); with the real clock this makes no visible difference.
* A kernel has one loop at a time: ``EventLoop(kernel)`` refuses a kernel whose loop is
  still open, and ``run_asyncio`` runs on that loop. While its kernel runs, a loop on an
  existing kernel is asyncio's running loop, whoever runs the kernel.
* ``close()`` first cancels the kernel tasks that asyncio code started with ``run_kernel``
  and are still running, and turns the kernel until their cleanup is done, with the loop
  still open -- as ``asyncio.run`` does for the asyncio tasks left over. Then a callback
  still queued is dropped, as asyncio does; the other kernel tasks of a kernel the loop
  made are cancelled and their cleanup runs, as ``Kernel.close()`` does.
* Subprocesses are watched with a pidfd in the I/O wait table (no child watcher, no SIGCHLD
  handler); see ``kernel/aio/subprocess.py`` for the details that follow from that.

Read next: ``kernel/aio/runners.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import sys
import threading
import warnings
import weakref
from asyncio import events as _asyncio_events
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator, Iterator
from typing import Any, TypeVar, TypeVarTuple, Unpack, cast

from ..clock import Clock
from ..errors import TaskCancelled
from ..iotable import EVENT_READ, EVENT_WRITE
from ..lifecycle import current_kernel
from ..scheduler import Kernel
from ..task import Task as KernelTask
from .futures import Future
from .handles import Handle, Nothing, TimerHandle
from .network import NetworkMixin
from .services import ServicesMixin
from .subprocess import ProcessMixin
from .tasks import Task

__all__ = ["EventLoop", "Handle", "TimerHandle"]


T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def _fileobj_to_fd(fileobj: Any) -> int:
    """The descriptor number of an int or of an object with ``fileno()``."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


def _get_loop_for_future() -> asyncio.AbstractEventLoop:
    """The loop a ``Future()`` created without ``loop=`` belongs to: the running one."""
    loop = _asyncio_events._get_running_loop()
    if loop is None:
        raise RuntimeError(
            "Future() was created with no running event loop; pass loop=, or create it "
            "with loop.create_future()"
        )
    return loop


# Discussion: the loop of each kernel, so that ``run_asyncio`` in a kernel task finds the
# loop already living on its kernel instead of making a second one (whose futures the
# first loop's tasks could not await). Weak on both sides: the entry keeps neither the
# kernel nor the loop alive, so an unclosed loop is still collected (and warns).
_loops: weakref.WeakKeyDictionary[Kernel, weakref.ref[EventLoop]] = weakref.WeakKeyDictionary()


def _open_loop_of(kernel: Kernel) -> EventLoop | None:
    """The open adapter loop living on ``kernel``, or None."""
    ref = _loops.get(kernel)
    loop = ref() if ref is not None else None
    return None if loop is None or loop.is_closed() else loop


def _run_until_complete_cb(future: Any) -> None:
    """Done callback that ``run_until_complete`` puts on its future: stop the loop."""
    if not future.cancelled():
        exc = future.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            return  # it is on its way out of run_forever already
    future.get_loop().stop()


class EventLoop(ProcessMixin, NetworkMixin, ServicesMixin, asyncio.AbstractEventLoop):
    """An asyncio event loop whose queues are a kernel's. ``EventLoop()`` makes its own
    kernel (``clock=VirtualClock()`` makes its time virtual, for tests); ``EventLoop(kernel)``
    runs on an existing one, which it does not close, and is asyncio's running loop whenever
    that kernel runs. A kernel has one open loop at a time."""

    _closed = True  # until __init__ has finished: a loop it refused has nothing to close

    def __init__(self, kernel: Kernel | None = None, *, clock: Clock | None = None) -> None:
        if kernel is not None and clock is not None:
            raise TypeError("pass a kernel or a clock, not both: the kernel has its own clock")
        if kernel is not None and (existing := _open_loop_of(kernel)) is not None:
            raise RuntimeError(
                f"{kernel!r} already has an event loop, {existing!r}: a kernel has one "
                f"asyncio loop at a time (kernel.aio.run_asyncio runs on it); use that one, "
                f"or close it first"
            )
        self._owns_kernel = kernel is None
        self._kernel = Kernel(clock=clock) if kernel is None else kernel
        # Untraced, a task waiting on a future is woken without a Handle (Task._wake_from).
        self._direct_wakeups = self._kernel.tracer is None
        self._kernel_call_at = self._kernel.call_at  # one bound method, not one per timer
        self._closed = False
        self._stopping = False
        self._running = False
        self._thread_id: int | None = None
        # asyncio's own rule (PYTHONASYNCIODEBUG, -X dev), asked in asyncio's own words.
        self._debug: bool = asyncio.coroutines._is_debug_mode()  # type: ignore[attr-defined]
        self._saved_origin_depth: int | None = None  # set while debug mode tracks origins
        self._exception_handler: Callable[[Any, dict[str, Any]], object] | None = None
        self._task_factory: Any = None
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._signal_handlers: dict[int, Handle] = {}
        self.slow_callback_duration = 0.1
        # Kernel tasks started by asyncio code (run_kernel) that have not ended: close()
        # cancels them, as asyncio.run cancels the asyncio tasks left over.
        self._kernel_tasks: set[KernelTask] = set()
        _loops[self._kernel] = weakref.ref(self)
        if not self._owns_kernel:
            # Someone else runs this kernel too (kernel.run): asyncio code in it must find
            # this loop running. A kernel the loop made runs only through run_forever.
            self._kernel.add_run_context(self._running_with_kernel)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} running={self.is_running()} closed={self.is_closed()} "
            f"debug={self.get_debug()}>"
        )

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self._shut_down()  # no kernel turns inside a finalizer

    # -- running and stopping ------------------------------------------------------------------

    def run_forever(self) -> None:
        """Turn the kernel's loop until ``stop()``: the turn in which it is called completes,
        then this returns."""
        self._check_closed()
        self._check_running()
        if self._stopping:
            # stop() before run_forever(): asyncio still runs one turn, without blocking.
            self._kernel.call_soon(Nothing())
        turned = False

        def finished() -> bool:
            # Checked before each turn: never before the first one (asyncio's loop is a
            # do-while), then after any turn in which stop() was called.
            nonlocal turned
            if not turned:
                turned = True
                return False
            return self._stopping

        tracer = self._kernel.tracer  # the teaching views narrate these steps too
        if tracer is not None:
            tracer("run_forever", None)
        try:
            self._run(finished)
        finally:
            self._stopping = False
            if tracer is not None:
                tracer("run_forever_return", None)

    def _run(self, finished: Callable[[], bool]) -> None:
        """Turn the kernel's loop until ``finished()``, as asyncio's running loop (for
        ``run_forever``, and for ``close()`` to let kernel tasks clean up). The caller has
        checked that the loop may run."""
        old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        self._running = True
        _asyncio_events._set_running_loop(self)
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
        )
        self._track_coroutine_origins(self._debug)
        try:
            self._kernel.run_until(finished)
        finally:
            self._track_coroutine_origins(False)
            self._running = False
            self._thread_id = None
            _asyncio_events._set_running_loop(None)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def _track_coroutine_origins(self, enabled: bool) -> None:
        """Debug mode, while the loop runs: coroutines remember where they were made, so
        that "coroutine ... was never awaited" can say (asyncio does the same)."""
        if enabled == (self._saved_origin_depth is not None):
            return
        if enabled:
            self._saved_origin_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(asyncio.constants.DEBUG_STACK_DEPTH)
        else:
            assert self._saved_origin_depth is not None
            sys.set_coroutine_origin_tracking_depth(self._saved_origin_depth)
            self._saved_origin_depth = None

    @contextlib.contextmanager
    def _running_with_kernel(self) -> Iterator[None]:
        """A run context of a kernel this loop did not make: asyncio's running loop for the
        duration of one run of the kernel (unless closed, or already running it)."""
        if self._closed or self._running:
            yield
            return
        previous = _asyncio_events._get_running_loop()
        _asyncio_events._set_running_loop(self)
        self._running = True
        try:
            yield
        finally:
            self._running = False
            _asyncio_events._set_running_loop(previous)

    def run_until_complete(self, future: Awaitable[T] | Generator[Any, Any, T]) -> T:
        """Run until ``future`` (a coroutine is wrapped in a Task) is done; return its result."""
        self._check_closed()
        self._check_running()
        tracer = self._kernel.tracer  # the teaching views narrate these steps too
        if tracer is not None:
            tracer("run_until_complete", None, future=future)
        new_task = not asyncio.isfuture(future)
        if inspect.isgenerator(future):  # an old-style generator-based coroutine
            task: Any = self.create_task(future)
        else:
            task = asyncio.ensure_future(cast("Awaitable[T]", future), loop=self)
        if new_task:
            # A task made here that is left pending (Ctrl-C, say) need not be reported.
            task._log_destroy_pending = False
        task.add_done_callback(_run_until_complete_cb)
        if tracer is not None:
            tracer("add_done_callback", None, future=task, callback=_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and task.done() and not task.cancelled():
                task.exception()  # looked at: the exception propagating says it all
            raise
        finally:
            task.remove_done_callback(_run_until_complete_cb)
        if not task.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        if tracer is not None:
            tracer("run_until_complete_return", None, future=task)
        return task.result()  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stop after the current turn (the callbacks already queued for it still run)."""
        self._stopping = True
        if self._kernel.tracer is not None:
            self._kernel.tracer("stop", None)

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the loop. Kernel tasks that asyncio code started here (``run_kernel``) and
        that still run are cancelled first, and their cleanup runs while the loop is still
        open, as ``asyncio.run`` does for asyncio tasks. Then queued callbacks are dropped,
        the default executor is shut down (without waiting), and the kernel, if this loop
        made it, is closed (which cancels its other tasks)."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        try:
            self._cancel_kernel_tasks()
        finally:
            self._shut_down()

    def _cancel_kernel_tasks(self) -> None:
        """Cancel the kernel tasks started by ``run_kernel`` that still run; turn the kernel
        until they have ended."""
        tasks = self._kernel_tasks
        if not tasks or not self._can_turn_here():
            # Closed from inside another loop or kernel: this kernel cannot turn here. They
            # are left to Kernel.close() (at once below, for a kernel this loop made).
            return
        for task in list(tasks):
            self._kernel.cancel_task(task, TaskCancelled("the event loop is closing"))
        self._run(lambda: not tasks)

    def _can_turn_here(self) -> bool:
        """Whether this loop's kernel can be turned from here, now: it is open and idle, and
        no other loop or kernel is running in this thread."""
        return (
            not self._kernel.closed
            and not self._running
            and _asyncio_events._get_running_loop() is None
            and current_kernel() is None
        )

    def _shut_down(self) -> None:
        """``close()`` without turning the kernel: for a finalizer, and for a loop closed
        with its kernel (whose tasks have ended already)."""
        if self._closed:
            return
        self._closed = True
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)
        executor, self._default_executor = self._default_executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        if self._owns_kernel:
            self._kernel.close()

    def _start_kernel_task(
        self, corofunc: Any, args: tuple[Any, ...], name: str | None
    ) -> KernelTask:
        """A kernel task for ``run_kernel``, on this loop's kernel; cancelled by ``close()``
        if it still runs then."""
        task = self._kernel.start_task(corofunc, *args, name=name)
        self._kernel_tasks.add(task)
        task.add_exit_callback(self._kernel_tasks.discard)
        return task

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if _asyncio_events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _check_thread(self) -> None:
        """Debug mode: loop methods that are not thread-safe, called from another thread."""
        if self._thread_id is not None and threading.get_ident() != self._thread_id:
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one"
            )

    # -- time and callbacks --------------------------------------------------------------------

    def time(self) -> float:
        """The kernel's clock (a ``VirtualClock`` makes the loop's time virtual too)."""
        return self._kernel.time()

    def call_soon(
        self,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> Handle:
        """Queue ``callback(*args)`` at the back of the kernel's ready queue."""
        if self._closed:
            self._check_closed()  # raises; tested inline first, since this runs per callback
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
        handle = Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]  # debug mode: end the traceback at our caller
        self._kernel.call_soon(handle)
        return handle

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        """Call ``callback(*args)`` after ``delay`` seconds (via the sleeping queue)."""
        if delay is None:
            raise TypeError("delay must not be None")
        return self._timer(self._kernel.time() + delay, callback, args, context, "call_later")

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        """Call ``callback(*args)`` at loop time ``when`` (via the sleeping queue)."""
        if when is None:
            raise TypeError("when cannot be None")
        return self._timer(when, callback, args, context, "call_at")

    def _timer(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
        method: str,
    ) -> TimerHandle:
        """A TimerHandle for ``callback(*args)``, on the kernel's sleeping queue until ``when``."""
        if self._closed:
            self._check_closed()  # raises; tested inline first, since this runs per timer
        if self._debug:
            self._check_thread()
            self._check_callback(callback, method)
        timer = TimerHandle(when, callback, args, self, context)
        if timer._source_traceback:
            # debug mode: end the traceback at our caller (drop __init__, _timer, call_at)
            del timer._source_traceback[-3:]
        if when != when:  # NaN: asyncio's loop runs such a timer at once, and so do we
            timer._entry = self._kernel_call_at(self._kernel.time(), timer)
        else:
            timer._entry = self._kernel_call_at(when, timer)
        timer._scheduled = True
        return timer

    def _timer_handle_cancelled(self, handle: TimerHandle) -> None:
        """Called by ``TimerHandle.cancel()``: tombstone its sleeping-queue entry."""
        if handle._scheduled:
            handle._scheduled = False
            self._kernel.cancel_call(handle._entry)

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> Handle:
        """From any thread: queue ``callback(*args)``, waking the loop if it is blocked."""
        self._check_closed()
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        handle = Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        self._kernel.call_soon_threadsafe(handle)
        return handle

    def _check_callback(self, callback: Any, method: str) -> None:
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

    # -- futures and tasks ---------------------------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        # Typed as asyncio's Future, whose protocol ours follows (it is not a subclass:
        # asyncio's is implemented in C).
        return Future(loop=self)  # type: ignore[return-value]

    def create_task(
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, Any, T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[T]:
        """Wrap ``coro`` in a Task (or what the task factory makes) and queue its first step."""
        if self._closed:
            self._check_closed()  # raises; tested inline first, since this runs per task
        if self._task_factory is None:
            task: Any = Task(coro, loop=self, name=name, context=context)
        else:
            if context is None:
                task = self._task_factory(self, coro)
            else:
                task = self._task_factory(self, coro, context=context)
            if name is not None:
                task.set_name(name)
        return task  # type: ignore[no-any-return]

    def set_task_factory(self, factory: Any) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        return self._task_factory

    # -- I/O callbacks: watchers in the kernel's I/O wait table --------------------------------

    def add_reader(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Queue ``callback(*args)`` each time ``fd`` is readable, until ``remove_reader``."""
        self._add_watcher(fd, EVENT_READ, Handle(callback, args, self, None))

    def remove_reader(self, fd: Any) -> bool:
        return self._remove_watcher(fd, EVENT_READ)

    def add_writer(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Queue ``callback(*args)`` each time ``fd`` is writable, until ``remove_writer``."""
        self._add_watcher(fd, EVENT_WRITE, Handle(callback, args, self, None))

    def remove_writer(self, fd: Any) -> bool:
        return self._remove_watcher(fd, EVENT_WRITE)

    def _add_watcher(self, fd: Any, event: int, handle: Handle) -> None:
        self._check_closed()
        replaced = self._kernel.add_watcher(_fileobj_to_fd(fd), event, handle)
        if replaced is not None:
            replaced.cancel()  # type: ignore[attr-defined]

    def _remove_watcher(self, fd: Any, event: int) -> bool:
        if self.is_closed():
            return False
        removed = self._kernel.remove_watcher(_fileobj_to_fd(fd), event)
        if removed is None:
            return False
        removed.cancel()  # type: ignore[attr-defined]  # it may be queued for this turn
        return True
