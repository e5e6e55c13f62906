"""Running a kernel and shutting it down: ``run``, ``run_until``, ``close``.

``Kernel.run(main)`` makes ``main`` the main task and turns the loop until it ends. While a
kernel runs it is *the* kernel of its thread (``current_kernel()``), it owns Ctrl-C (the
SIGINT handler cancels the main task, whose cleanup runs before ``KeyboardInterrupt`` is
raised) and the interpreter's signal wake-up descriptor, and it enters the run contexts
layered on it (the asyncio adapter becomes asyncio's running loop). ``close()`` cancels what
is still running, lets its cleanup run, calls the close callbacks and releases the kernel's
descriptors; a run that ends with a kernel bug abandons the tasks instead (``_abandon``).

``Kernel`` inherits this from ``KernelLifecycle``; the state is declared below for the type
checker.

Read next: ``kernel/asyncgens.py``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import signal
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Self, cast

from .errors import KernelError, TaskCancelled
from .task import CoroutineLike, Task, as_coroutine

if TYPE_CHECKING:
    import socket
    from collections import deque

    from .asyncgens import AsyncGenerators
    from .callbacks import Callback
    from .iotable import IOWaitTable
    from .scheduler import Kernel
    from .timequeue import SleepingQueue

__all__ = ["KernelLifecycle", "current_kernel", "let_go_of", "running_task"]

log = logging.getLogger("kernel")


class _CurrentKernel(threading.local):
    """The one piece of global state: which kernel (if any) runs in this thread."""

    kernel: Kernel | None = None


_current = _CurrentKernel()


def _forget_kernel_after_fork() -> None:
    # A child process forked while a kernel runs has a copy of it that nobody turns.
    _current.kernel = None


os.register_at_fork(after_in_child=_forget_kernel_after_fork)


def current_kernel() -> Kernel | None:
    """The kernel running in this thread, or None."""
    return _current.kernel


# Every kernel not yet closed. A socket or stream collected without close() asks each of
# them to let go of it (see let_go_of): it may have registered in any, from any thread.
_kernels: weakref.WeakSet[Kernel] = weakref.WeakSet()


def let_go_of(fileobj: Any) -> None:
    """``fileobj``'s owner is being collected without closing it: no kernel's I/O wait table
    may keep it -- and its descriptor -- alive (``IOWaitTable.forget_idle``).

    Discussion: a finalizer runs wherever the last reference goes: in a task, between two
    runs of a kernel, in a worker thread, or in the middle of the table's own code (the
    garbage collector can run at any allocation). So the table is changed here only when
    its kernel is not running; a running kernel is handed the change through its thread-safe
    path, and makes it at its next turn, between task steps.
    """
    try:
        kernels = list(_kernels)
    except RuntimeError:  # another thread made a kernel during the copy: rare; skip this one
        return
    for kernel in kernels:
        if not kernel._io.holds(fileobj):
            continue
        if not kernel._active:
            kernel._io.forget_idle(fileobj)
        else:
            with contextlib.suppress(RuntimeError):  # closing: its table goes with it
                kernel.call_threadsafe(kernel._io.forget_idle, fileobj)


def running_task() -> Task:
    """The task running now, read without a trap.

    Discussion: ``await current_task()`` is the trap-based way, and the one to teach. But a
    lock records its owner on every acquire and checks it on every release; two trips
    through the kernel for that made an uncontended ``async with lock`` four times slower
    than asyncio's. So the loop writes down which task it is running (one store per task
    step) and primitives read it here.
    """
    kernel = _current.kernel
    if kernel is None:
        raise RuntimeError("this needs to run inside a kernel task: no kernel is running here")
    if kernel._running is None:
        raise RuntimeError(
            "this needs to run inside a kernel task, not in a callback or in asyncio code on "
            "the kernel's loop (asyncio code can hand it to a kernel task with "
            "kernel.aio.run_kernel(...))"
        )
    return kernel._running


class KernelLifecycle:
    """The methods of ``Kernel`` that start, run and end it (see the module docstring)."""

    # Owned by Kernel; declared here for the type checker.
    _ready: deque[Task | Callback]
    _sleeping: SleepingQueue
    _io: IOWaitTable
    _tasks: dict[int, Task]
    _main: Task | None
    _running: Task | None
    _fatal: BaseException | None
    _crashed: weakref.WeakSet[Task]
    _closed: bool
    _closing: bool
    _active: bool  # a thread is in this kernel's loop
    _at_close: list[Callable[[], object]]
    _shutdown_steps: list[Callable[[], object]]
    _run_contexts: list[Callable[[], contextlib.AbstractContextManager[object]]]
    _run_stack: contextlib.ExitStack | None
    _asyncgens: AsyncGenerators
    _threadsafe: deque[tuple[Callable[..., object], tuple[Any, ...]]]
    _wake_recv: socket.socket
    _wake_send: socket.socket

    if TYPE_CHECKING:

        def _loop(self, finished: Callable[[], bool]) -> None: ...
        def _new_task(self, coro: CoroutineLike, daemon: bool, name: str | None) -> Task: ...
        def _cancel_task(self, task: Task, exc: BaseException) -> bool: ...
        def _stop_program(self, exc: BaseException) -> None: ...
        def _run_threadsafe_callbacks(self) -> None: ...
        def call_threadsafe(self, callback: Callable[..., object], *args: Any) -> None: ...

    def run(self, corofunc: Any, *args: Any) -> Any:
        """Run ``corofunc(*args)`` (or a coroutine) as the main task until it ends.

        Returns its result or raises its exception. Other tasks still alive when it ends stay
        suspended until the next ``run()`` or until ``close()`` cancels them.
        """
        if self._closed:
            raise RuntimeError("this Kernel is closed; create a new one")
        if _current.kernel is not None:
            if inspect.iscoroutine(corofunc):
                corofunc.close()  # refused: not "never awaited"
            raise RuntimeError(
                "kernel.run() was called inside a running kernel; from async code, `await` "
                "the coroutine or `await kernel.spawn(...)` it instead"
            )
        self._check_not_running_elsewhere()
        main = self._new_task(as_coroutine(corofunc, args, "run"), False, None)
        self._main = main
        try:
            self._run_until(lambda: main.done)
        finally:
            self._main = None
        main._observed = True  # (its error, if any, travels with the fatal one below)
        if self._fatal is not None:
            fatal, self._fatal = self._fatal, None
            raise fatal from main._exception
        if main._exception is not None:
            raise main._exception
        return main._result

    def close(self) -> None:
        """Cancel every remaining task, let its cleanup run, close the async generators left
        suspended (``kernel/asyncgens.py``), and release the kernel's fds.

        Daemon tasks are cancelled quietly; any other task still running is logged as a
        warning first, since the program ended without waiting for it. Queued callbacks are
        dropped, as asyncio drops them when its loop closes -- after the shutdown steps
        (``add_shutdown_step``), if there are any: those run once the tasks have ended, with
        callbacks still running, and the tasks' cleanup may need them too.

        A Ctrl-C during that cleanup (or a task raising ``SystemExit`` in it) is raised
        from here once the cleanup is over: the program still stops. What was handed in
        through ``call_threadsafe`` during the last turn still runs; what comes later is
        reported as never run.
        """
        if self._closed:
            return
        if self._active:
            raise RuntimeError(
                "Kernel.close() was called while the kernel is running (from one of its "
                "tasks, or from another thread); let the main task return instead: run() "
                "then returns, and the `with` block or kernel.run() closes the kernel"
            )
        try:
            if self._shutdown_steps:
                self._cancel_remaining_tasks()
                while self._shutdown_steps:
                    self._shutdown_steps.pop()()
                # The async generators left suspended, while callbacks and watchers still
                # work: their cleanup may need the adapter's transports.
                self._asyncgens.close_all()
            self._drop_callbacks()
            self._cancel_remaining_tasks()
            self._asyncgens.close_all(last=True)
            if self._threadsafe:
                # Handed in during the last turn (a finalizer as the last task ended, say):
                # the loop stopped before it came round to them, but they can still run.
                self._run_threadsafe_callbacks()
        finally:
            self._release()
        if self._fatal is not None:
            # Ctrl-C (or a task's SystemExit) came while the cleanup ran, with no main task
            # left to cancel: the cleanup has finished, and the program stops with it.
            fatal, self._fatal = self._fatal, None
            raise fatal

    def _cancel_remaining_tasks(self) -> None:
        """Cancel every task left, and turn the loop until their cleanup is done.

        Discussion: a task's cleanup may spawn another (a helper, in a ``finally``). That
        one is cancelled in its turn: otherwise nothing would stop it, and close() would
        wait for it for ever. Task ids only grow, and ``_tasks`` keeps them in order, so
        the newest task is its last key: the loop stops when one newer than the last
        cancelled appears."""
        cancelled_up_to = 0  # the newest id cancelled so far
        while self._tasks:
            for task in [task for id, task in self._tasks.items() if id > cancelled_up_to]:
                if not task.daemon:
                    log.warning(
                        "%s was still running when the kernel closed; cancelling it (spawn "
                        "it with daemon=True if it is meant to run until the end)",
                        repr(task),  # now: the log record may be formatted later
                    )
                self._cancel_task(task, TaskCancelled("the kernel is shutting down"))
                cancelled_up_to = task.id
            self._run_until(functools.partial(self._all_ended_or_newer, cancelled_up_to))

    def _all_ended_or_newer(self, task_id: int) -> bool:
        """Every task has ended, or one newer than ``task_id`` has been spawned."""
        return not self._tasks or next(reversed(self._tasks)) > task_id

    def _drop_callbacks(self) -> None:
        """Forget every queued callback, timed callback and watcher (asyncio drops them when
        its loop closes): only tasks get to run their cleanup."""
        tasks = [entry for entry in self._ready if type(entry) is Task]
        self._ready.clear()
        self._ready.extend(tasks)
        self._sleeping.discard_kind("call")
        self._io.drop_watchers()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run_until(self, finished: Callable[[], bool]) -> None:
        """Turn the loop until ``finished()`` is true, checked before each turn.

        ``run()`` is this with a main task. The asyncio adapter's ``run_forever`` calls it
        with no task at all: what runs is whatever the ready queue holds. Ctrl-C makes it
        raise ``KeyboardInterrupt`` after the current turn.
        """
        if self._closed:
            raise RuntimeError("this Kernel is closed; create a new one")
        if _current.kernel is not None:
            raise RuntimeError("a kernel is already running in this thread")
        self._check_not_running_elsewhere()
        try:
            with self._activated():
                self._loop(lambda: finished() or self._fatal is not None)
        except KernelError:
            self._abandon()
            raise
        if self._fatal is not None:
            fatal, self._fatal = self._fatal, None
            raise fatal

    def _check_not_running_elsewhere(self) -> None:
        """Refuse to run a kernel that another thread is running: two loops would turn its
        queues at once, and its tasks would be stepped in both threads."""
        if self._active:
            raise RuntimeError(
                "this Kernel is already running in another thread; a kernel runs in one "
                "thread at a time. Give each thread its own Kernel (kernel.run() makes one), "
                "or hand the running one work with call_threadsafe()"
            )

    def add_run_context(
        self, factory: Callable[[], contextlib.AbstractContextManager[object]]
    ) -> None:
        """Enter ``factory()`` around every run of this kernel, starting with the current one.

        The asyncio adapter uses it to be asyncio's running loop while the kernel runs.
        """
        self._run_contexts.append(factory)
        if self._run_stack is not None:
            self._run_stack.enter_context(factory())

    def _run_until(self, finished: Callable[[], bool]) -> None:
        try:
            with self._activated():
                self._loop(finished)
        except BaseException:
            self._abandon()
            raise

    @contextlib.contextmanager
    def _activated(self) -> Iterator[None]:
        """Mark this kernel as the thread's running one; own Ctrl-C while it runs."""
        if _current.kernel is not None and _current.kernel is not self:
            # (run() says so first; this catches close() with tasks left, from a task.)
            raise RuntimeError(
                f"{self!r} cannot turn its loop inside a task of {_current.kernel!r}, which "
                f"is running in this thread: close it, or run it, outside that kernel (or "
                f"in a thread of its own)"
            )
        main_thread = threading.current_thread() is threading.main_thread()
        own_sigint = main_thread and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        if own_sigint:
            try:
                signal.signal(signal.SIGINT, self._on_sigint)
            except ValueError:  # signals are not available here (an embedded interpreter)
                own_sigint = main_thread = False
        # Discussion: a signal that lands just before select() starts to block would have its
        # Python handler run only when select() returns -- after the whole timeout. With
        # the wake-up socket as the interpreter's signal wake-up fd, the C-level handler
        # writes a byte to it at once, so select() returns and the handler runs.
        previous_wakeup_fd = (
            signal.set_wakeup_fd(self._wake_send.fileno(), warn_on_full_buffer=False)
            if main_thread
            else None
        )
        _current.kernel = cast("Kernel", self)  # the mixin is only ever part of a Kernel
        self._active = True
        try:
            with contextlib.ExitStack() as stack:
                self._run_stack = stack
                stack.enter_context(self._asyncgens.hooks())
                for context in self._run_contexts:
                    stack.enter_context(context())
                yield
        finally:
            if previous_wakeup_fd is not None:
                signal.set_wakeup_fd(previous_wakeup_fd)
            self._run_stack = None
            if own_sigint:
                self._give_back_sigint()
            self._active = False
            _current.kernel = None

    def _give_back_sigint(self) -> None:
        """The run is over: Ctrl-C goes back to Python's default handler.

        Only over our own handler: one the program installed meanwhile is not ours to
        remove. But a signal catcher (``SignalEvent(SIGINT)``) that is still open remembers
        our handler as the one to put back when it closes; that is now the default instead,
        or a Ctrl-C after it closed would reach a kernel that has stopped.
        """
        from .signals import _Dispatcher  # (kernel.signals imports the scheduler: not at the top)

        current = signal.getsignal(signal.SIGINT)
        if current == self._on_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        elif isinstance(current, _Dispatcher) and current.previous == self._on_sigint:
            current.previous = signal.default_int_handler

    def _on_sigint(self, signum: int, frame: object) -> None:
        """Ctrl-C: cancel the main task and let it clean up. A second Ctrl-C stops at once."""
        if self._fatal is not None:
            raise KeyboardInterrupt
        self.call_threadsafe(self._stop_program, KeyboardInterrupt())

    def _in_task_step(self) -> bool:
        """Whether one of this kernel's tasks is taking a step in this thread right now.

        Code being closed (``GeneratorExit``) asks this before it yields a trap: an async
        generator closed by ``aclose()`` in a task may, but a coroutine the kernel closes
        as it abandons its tasks (outside the loop) may not.
        """
        return _current.kernel is self and self._running is not None

    def _abandon(self) -> None:
        """After a kernel failure: close every coroutine (running its finally blocks)."""
        for task in list(self._tasks.values()):
            if task._waiting_on is not None:  # out of its line first: a lock or queue may
                task._waiting_on.discard(task._wait_entry)  # outlive us, and hand it items
                task._waiting_on = task._wait_entry = None
            try:
                task._context.run(task._coro.close)
            except BaseException as error:  # report it, keep closing the rest
                log.error("while abandoning %r", task, exc_info=error)
        self._tasks.clear()
        self._release()

    def _release(self) -> None:
        # Discussion: from here on no task is left to run a callback another thread hands in,
        # yet releasing can take a while (the thread pool joins its busy workers). Such a
        # call is refused from now on, as after close(), so its caller learns it will not
        # run; one that slipped in just before is reported below, not dropped in silence.
        self._closing = True
        _kernels.discard(cast("Kernel", self))
        try:
            for task in list(self._crashed):
                task._report_if_unobserved()
            while self._at_close:  # resources the kernel owns (its thread pool): last in, first
                self._at_close.pop()()
        finally:  # even if Ctrl-C interrupts a slow resource: never leak the kernel's own fds
            self._closed = True
            self._ready.clear()
            for callback, _args in self._threadsafe:
                log.warning(
                    "%r, called through call_threadsafe as the kernel closed, never ran", callback
                )
            self._threadsafe.clear()
            self._io.close()
            self._wake_recv.close()
            self._wake_send.close()
