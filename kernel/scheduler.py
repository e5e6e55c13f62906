"""The kernel: three structures, one loop, and a handler for each trap.

A task runs until it yields a trap (see ``kernel/traps.py``). The kernel then decides, by
looking at three structures, who runs next:

* the **ready queue** -- tasks that can run now, strictly first in, first out, so that the
  same program always produces the same schedule;
* the **sleeping queue** -- deadlines (``sleep`` and timeouts), nearest first
  (``kernel/timequeue.py``);
* the **I/O wait table** -- tasks waiting for a file descriptor, at most one reader and one
  writer each, backed by the OS selector (``kernel/iotable.py``).

The loop (``Kernel._loop``, right below the constructor) turns three phases, forever:

1. *Poll I/O.* Ask the selector which descriptors are ready. If no task is ready, this is
   where the whole program sleeps -- until the nearest deadline, or until I/O or a thread
   wakes it. (If tasks are ready and nobody waits for I/O, the poll is skipped: there is
   nothing it could find. If nothing at all could wake a task, the program is deadlocked,
   and the main task gets a ``Deadlock`` rather than sleep forever: ``_break_deadlock``.)
2. *Wake sleepers.* Every deadline that has passed moves its task to the ready queue (or,
   for a timeout, cancels it with ``TaskTimeout``).
3. *Run ready tasks.* Each task that was ready at the start of this phase runs once: it is
   resumed with ``coro.send(value)`` or ``coro.throw(exc)`` and runs until it yields its
   next trap. A *blocking* trap parks it on one of the structures; a *non-blocking* trap
   (spawn, get the clock, ...) is answered at once and the same task carries on.

The trap handlers -- one ``_trap_<name>`` method per trap -- live in ``kernel/handlers.py``;
a handler returns True when the task should carry on at once (with ``task._next_value`` or
``task._next_exc`` set) and False when it has been parked.

The same three structures also hold *callbacks* -- plain functions to call, which is all
asyncio's event loop ever runs. The asyncio adapter (``kernel/aio``) puts its ``Handle``
objects in the ready queue (``call_soon``), its ``TimerHandle`` objects in the sleeping
queue (``call_at``) and its readers and writers in the I/O wait table (``add_watcher``);
those methods, for code that is not a task, are in ``kernel/callbacks.py``. Phase 3 runs a
callback where it finds one, in its turn; so kernel tasks and asyncio callbacks share one
FIFO order, one clock and one ``select()``.

Starting, running and closing a kernel (``run``, ``run_until``, ``close``) is in
``kernel/lifecycle.py``; ``Kernel`` is the three mixins -- lifecycle, callbacks, trap
handlers -- around the loop and the state they share, which this module defines.

Read next: ``kernel/lifecycle.py``.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
import socket
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .asyncgens import AsyncGenerators
from .callbacks import Callback, KernelCallbacks
from .clock import Clock, MonotonicClock
from .deadlock import find_deadlock
from .diagnostics import install_slow_task_watch
from .errors import CancelledError, Deadlock, KernelError, TaskCancelled, TaskTimeout
from .handlers import TrapHandlers
from .iotable import IOWaitTable
from .lifecycle import KernelLifecycle, _kernels, current_kernel, running_task
from .task import CoroutineLike, Task, ended_by_cancellation, run_exit_callback
from .timequeue import SleepingQueue
from .tracing import TracedCoroutine, Tracer, install_tracer
from .traps import TRAPS, Trap
from .waitqueue import WaitQueue

if TYPE_CHECKING:
    from .threads import ThreadPool

__all__ = ["Callback", "Kernel", "current_kernel", "run", "running_task"]

log = logging.getLogger("kernel")

# select() cannot take an infinite timeout; a task sleeping "forever" is re-checked daily.
_MAX_SELECT_TIMEOUT = 86400.0


class Kernel(KernelLifecycle, KernelCallbacks, TrapHandlers):
    """A scheduler for tasks. Use ``kernel.run(main)``, or ``with Kernel() as k: k.run(main)``.

    ``clock``: a ``MonotonicClock`` (default) or a ``VirtualClock`` for tests.
    ``tracer``: a ``Tracer`` to record every scheduling decision.
    ``max_threads``: the size of the worker pool behind ``run_in_thread``.
    ``slow_task_threshold``: log a warning naming any task that runs longer than this many
    (real) seconds without yielding; None (the default) times nothing.
    ``detect_deadlocks``: raise ``Deadlock`` when every task is blocked and nothing can wake
    one (see ``kernel/deadlock.py``), rather than hang; on by default.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        tracer: Tracer | None = None,
        max_threads: int = 32,
        slow_task_threshold: float | None = None,
        detect_deadlocks: bool = True,
    ) -> None:
        if isinstance(max_threads, bool) or not isinstance(max_threads, int) or max_threads < 1:
            raise ValueError(f"max_threads must be a positive whole number, got {max_threads!r}")
        if slow_task_threshold is not None and (
            isinstance(slow_task_threshold, bool)
            or not isinstance(slow_task_threshold, int | float)
            or not slow_task_threshold >= 0
        ):
            raise ValueError(
                f"slow_task_threshold must be a number of seconds >= 0, or None to time "
                f"nothing; got {slow_task_threshold!r}"
            )
        self._ready: deque[Task | Callback] = deque()  # ready queue: tasks, callbacks; FIFO
        self._sleeping = SleepingQueue()  # sleeping queue: (deadline, task) for sleeps/timeouts
        self._io = IOWaitTable()  # I/O wait table: fd -> [reader task, writer task]

        self._clock: Clock = clock if clock is not None else MonotonicClock()
        # ``time()`` (kernel/callbacks.py) is the clock's own ``now``: the asyncio adapter
        # asks for the time on every timer, and this saves it a Python frame each time.
        self.time = self._clock.now  # type: ignore[method-assign]
        self._tasks: dict[int, Task] = {}  # every task that has not ended, by id
        self._ids = itertools.count(1)
        self._main: Task | None = None
        self._running: Task | None = None  # the task phase 3 is running (see running_task)
        self._fatal: BaseException | None = None  # Ctrl-C / SystemExit to raise after cleanup
        self._crashed: weakref.WeakSet[Task] = weakref.WeakSet()  # failed; maybe nobody looked
        self._closed = False
        self._closing = False  # close() is releasing the kernel: cross-thread calls refused
        self._active = False  # a thread is in this kernel's loop (see lifecycle.let_go_of)
        self._at_close: list[Callable[[], object]] = []  # run by close(), after the tasks end
        self._shutdown_steps: list[Callable[[], object]] = []  # by close(), while it can turn
        # Entered around every run (the asyncio adapter makes its loop the running one)
        self._run_contexts: list[Callable[[], contextlib.AbstractContextManager[object]]] = []
        self._run_stack: contextlib.ExitStack | None = None  # those of the run in progress
        self._asyncgens = AsyncGenerators(self)  # generators left suspended: kernel/asyncgens.py
        self.max_threads = max_threads
        self._thread_pool: ThreadPool | None = None  # created by kernel/threads.py on first use

        # Cross-thread wake-up: other threads (and signal handlers) append work here and write
        # a byte to the socket pair, which makes a blocking select() return.
        self._threadsafe: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._wakeup_pending = False  # a byte is on its way: later callers need not write
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._wake_send.setblocking(False)
        self._io.add_wakeup(self._wake_recv)

        self._handlers: dict[str, Callable[[Task, Trap], bool]] = {
            name: getattr(self, f"_trap_{name}") for name in TRAPS
        }
        self._tracer = tracer
        if tracer is not None:
            install_tracer(self, tracer)
        else:
            # ``call_soon`` (below), untraced, is the ready queue's own ``append``: no Python
            # frame per callback, and one bound method for the kernel's life instead of a new
            # one per ``kernel.call_soon`` lookup (the adapter keeps it in every Task).
            self.call_soon = self._ready.append  # type: ignore[method-assign, assignment]
        # Diagnostics. The slow-step watch (kernel/diagnostics.py) is swapped in like the
        # tracer, so the loop pays nothing without it; the deadlock check (kernel/deadlock.py)
        # runs only where phase 1 would otherwise block with no deadline.
        if slow_task_threshold is not None:
            install_slow_task_watch(self, slow_task_threshold)
        self._detect_deadlocks = detect_deadlocks
        _kernels.add(self)

    # ------------------------------------------------------------------------------------
    # The run loop
    # ------------------------------------------------------------------------------------

    def _loop(self, finished: Callable[[], bool]) -> None:
        """Turn the three phases until ``finished()``."""
        # Local aliases: phase 3 runs once per task switch, and a local variable is cheaper
        # than looking up ``self.<attribute>`` every time.
        ready = self._ready
        handlers = self._handlers
        task: Task | None = None
        trap: Any = None
        try:
            while not finished():
                # Phase 1: poll I/O -- and sleep here if no task is ready.
                if not ready or len(self._io):
                    self._poll_io()
                if self._threadsafe or self._wakeup_pending:
                    self._run_threadsafe_callbacks()

                # Phase 2: wake every task whose deadline has passed.
                if self._sleeping:
                    self._wake_sleepers()

                # Phase 3: run each task that is ready now, until it parks or ends.
                for _ in range(len(ready)):
                    # (ready.popleft(), not a bound alias: 3.11 speeds up the method call
                    # on a deque, and not the call of a bound built-in method.)
                    entry = ready.popleft()
                    if type(entry) is not Task:
                        # Not a task but a callback (call_soon): call it, and move on.
                        self._running = None
                        entry._run()  # type: ignore[union-attr]
                        continue
                    task = self._running = entry
                    while True:
                        try:
                            if task._next_exc is None:
                                value = task._next_value
                                task._next_value = None
                                # (_send is type(task._coro).send: see Task.wrap_coro)
                                trap = task._context.run(task._send, task._coro, value)
                            else:
                                exc = task._next_exc
                                task._next_exc = None
                                trap = task._context.run(task._coro.throw, exc)
                        except StopIteration as stop:
                            self._exit_task(task, stop.value, None)
                            break
                        except BaseException as error:
                            self._exit_task(task, None, error)
                            break
                        try:
                            if not handlers[trap[0]](task, trap):
                                break
                        except Exception:
                            # Not a trap at all, or a malformed one: the task's mistake.
                            # A well-formed trap whose handler failed: ours (KernelError).
                            if not self._bad_yield(task, trap):
                                raise
                            break
        except Deadlock:
            raise  # the program's bug, found with no main task to raise it in (_break_deadlock)
        except Exception as bug:
            # (A callback runs with _running set to None: see phase 3.)
            doing = (
                f"handling {trap!r} from {task!r}"
                if task is not None and self._running is task
                else "running a callback (call_soon) or between task steps"
            )
            raise KernelError(
                f"internal error in the kernel while {doing}; the kernel has shut down. This "
                f"is a bug in the kernel (or in that callback), not in your tasks' code: the "
                f"original error is chained below"
            ) from bug

    def _poll_io(self) -> None:
        """Phase 1: ask the selector what is ready, blocking only if nothing else can run."""
        deadline = None
        if self._ready or self._threadsafe:
            timeout: float | None = 0.0
        else:
            deadline = self._sleeping.next_deadline()
            if deadline is None:
                timeout = None  # nothing is due: only I/O or a thread can wake us
                if self._detect_deadlocks and not self._io and self._break_deadlock():
                    return  # ... and nothing could: the main task runs next, with a Deadlock
            else:
                timeout = min(max(0.0, deadline - self._clock.now()), _MAX_SELECT_TIMEOUT)
        woken = self._io.select(self._clock.real_timeout(timeout))
        if self._tracer is not None:
            ready = [w.id if type(w) is Task else repr(w) for w in woken]
            self._tracer("select", None, timeout=timeout, ready=ready)
            for waiter in woken:
                if type(waiter) is Task:
                    self._reschedule(waiter)  # which the tracer hears
                else:  # a watcher's callback (add_watcher): it runs in phase 3, in its turn
                    self._ready.append(waiter)
        else:
            # The same, with _reschedule written out: a server wakes a task here per message.
            # (An I/O wait is resumed with None, which _next_value already is.)
            append = self._ready.append
            for waiter in woken:
                if type(waiter) is Task:
                    waiter._waiting_on = None
                    waiter._wait_entry = None
                    waiter.state = "READY"
                append(waiter)
        if not woken and deadline is not None and not self._threads_woke_us():
            # Discussion: with a virtual clock this is where time jumps forward -- every task
            # is blocked and select() found nothing, so the next thing that can happen is the
            # nearest deadline. The real clock ignores this call.
            self._clock.idle(deadline)

    def _threads_woke_us(self) -> bool:
        """Did another thread hand work in while select() waited (``call_threadsafe``,
        ``call_soon_threadsafe``)? Then the virtual clock must not jump: it runs first."""
        return bool(self._threadsafe or self._ready or self._wakeup_pending)

    def _break_deadlock(self) -> bool:
        """Phase 1 is about to block with no deadline and no I/O waiter: is it for good?

        If nothing can ever wake a task (``find_deadlock`` says what that takes), the main
        task is taken off whatever it waits on and resumed with a ``Deadlock`` thrown in, as
        a cancellation would be: its ``finally`` blocks and ``async with`` exits run, and
        the error leaves ``run()``. Returns True then. With no main task parked (``close()``
        running cleanups, ``run_until``), the ``Deadlock`` is raised out of the loop. A tracer
        hears ``deadlock`` (with the report) first.
        """
        deadlock = find_deadlock(self)
        if deadlock is None:
            return False
        main = self._main
        if main is not None and main._waiting_on is None:
            main = None
        if self._tracer is not None:
            self._tracer("deadlock", main, report=str(deadlock))
        if main is None:
            raise deadlock
        main._waiting_on.discard(main._wait_entry)
        self._reschedule(main)
        main._next_exc = deadlock
        return True

    def _wake_sleepers(self) -> None:
        """Phase 2: deadlines that have passed wake their sleepers and fire their timeouts."""
        now = self._clock.now()
        while (due := self._sleeping.pop_due(now)) is not None:
            task, kind = due
            if self._tracer is not None:
                if kind == "call":
                    self._tracer("timer", None, kind=kind, now=now, callback=repr(task))
                else:
                    self._tracer("timer", task, kind=kind, now=now)
            if kind == "sleep":
                self._reschedule(task)
            elif kind == "call":  # a callback's time has come (call_at): it runs in phase 3
                self._ready.append(task)
            else:
                task._timeout_entry = None
                self._cancel_task(task, TaskTimeout(now))

    def _run_threadsafe_callbacks(self) -> None:
        """Run what other threads handed in. A callback that fails is reported, not fatal --
        unless it raises ``KeyboardInterrupt`` or ``SystemExit``, which stop the program as
        they would from a task.

        Discussion: ``_wakeup_pending`` says "a byte is in the wake-up socket, or about to
        be", so that a burst of calls writes one byte. It is cleared here, *before* the deque
        is emptied, so work appended from then on writes a new byte. And it is checked by the
        loop even when the deque is empty: a thread may append, see its callback run, and
        only then write its byte -- a flag left set after that would silence every later
        call, and a task waiting on a thread would never wake.

        Any other ``BaseException`` -- a ``GeneratorExit``, a cancellation (asyncio's or this
        kernel's), a program's own subclass -- is reported like an ``Exception``: a callback
        belongs to no task, so there is nothing for it to end, and only the two that mean
        "stop the program" do that, as they do when a task raises them.
        """
        self._wakeup_pending = False
        threadsafe = self._threadsafe
        while threadsafe:
            callback, args = threadsafe.popleft()
            try:
                callback(*args)
            except (KeyboardInterrupt, SystemExit) as error:  # as from a task, the program
                self._stop_program(error)  # stops, after its tasks' cleanup
            except BaseException as error:
                log.error("%r, called through call_threadsafe, raised", callback, exc_info=error)

    # ------------------------------------------------------------------------------------
    # Moving tasks between the structures
    # ------------------------------------------------------------------------------------

    def _new_task(
        self,
        coro: CoroutineLike,
        daemon: bool,
        name: str | None,
        context: contextvars.Context | None = None,
    ) -> Task:
        """A task for ``coro``, at the back of the ready queue.

        Discussion: each task runs in a context of its own -- a copy of its spawner's, or,
        for the main task and one started from outside any task, of the caller's -- so
        that a context variable one task sets is not seen by the others (asyncio and trio
        do the same). The loop enters it around every step, with ``Context.run``.
        """
        if context is None:
            context = contextvars.copy_context()
        task = Task(self, next(self._ids), coro, daemon, name, context)
        self._tasks[task.id] = task
        self._ready.append(task)
        if self._tracer is not None:
            task.wrap_coro(TracedCoroutine(coro, task, self._tracer))
            self._tracer("spawn", task, name=task.name, daemon=daemon)
        return task

    def _reschedule(self, task: Task, value: Any = None) -> None:
        """Move a parked task to the back of the ready queue; it will be sent ``value``."""
        task._waiting_on = None
        task._wait_entry = None
        task.state = "READY"
        task._next_value = value
        self._ready.append(task)

    def _wake(self, queue: WaitQueue, n: int = 1, value: Any = None) -> int:
        """Move up to ``n`` tasks from the front of ``queue`` to the ready queue."""
        woken = 0
        while woken < n:
            task = queue.popleft()
            if task is None:
                break
            self._reschedule(task, value)
            woken += 1
        return woken

    def _cancel_task(self, task: Task, exc: BaseException) -> bool:
        """Ask ``task`` to raise ``exc`` at its next blocking trap; False if it has ended.

        Discussion: a task holds at most one cancellation at a time -- pending, or already
        on its way in (set as ``_next_exc`` but not yet thrown) -- so requests that pile up
        before it runs are delivered once. The one exception: a cancel replaces a *timeout*,
        never the other way round, because a timeout is dropped when its block ends and the
        cancel must not be dropped with it.
        """
        if task.done:
            return False
        on_its_way = task._next_exc if isinstance(task._next_exc, CancelledError) else None
        current = task._cancel_pending or on_its_way
        stronger = isinstance(current, TaskTimeout) and not isinstance(exc, TaskTimeout)
        if current is None or stronger:
            if on_its_way is not None:
                task._next_exc = exc
            else:
                task._cancel_pending = exc
            if not isinstance(exc, TaskTimeout):  # (what a timeout block must not end:
                task._cancelled_with = exc  # see kernel/time.py)
        if self._tracer is not None:
            self._tracer("cancel", task, exc=repr(exc), blocked=task._waiting_on is not None)
        self._interrupt(task)
        return True

    def _interrupt(self, task: Task) -> None:
        """If ``task`` is blocked and may be cancelled, take it off what it waits on and
        throw its pending cancellation in; otherwise it meets it at its next blocking trap."""
        if task._waiting_on is not None and not task._no_cancel:
            task._waiting_on.discard(task._wait_entry)
            self._reschedule(task)
            self._deliver_cancel(task)

    def _exit_task(self, task: Task, result: Any, exc: BaseException | None) -> None:
        """A task's coroutine returned or raised: record it and wake whoever waits."""
        task.done = True
        task.state = "TERMINATED"
        task._result = result
        task._exception = exc
        task.cancelled = exc is not None and ended_by_cancellation(exc)  # (no call per return)
        if task._timeout_entry is not None:
            self._sleeping.discard(task._timeout_entry)
            task._timeout_entry = None
        del self._tasks[task.id]
        if task._joiners is not None:
            self._wake(task._joiners, len(task._joiners))
        if task._exit_callbacks is not None:
            for callback in task._exit_callbacks:
                run_exit_callback(task, callback)
        if self._tracer is not None:
            self._tracer("exit", task, result=repr(result), exc=repr(exc) if exc else None)
        if exc is None or task.cancelled:
            return
        if task is self._main:
            return
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            # The program is being asked to stop: clean up like Ctrl-C, then raise it.
            task._observed = True
            self._stop_program(exc)
        elif isinstance(exc, BaseExceptionGroup) and (stop := _stop_in(exc)) is not None:
            # The same, passed on by a TaskGroup (the program may be stopping already).
            task._observed = True
            if self._fatal is None:
                self._stop_program(stop)
        else:
            # Discussion: the crash is reported if nobody ever looks at it (join, result,
            # exception, a TaskGroup). The task reports itself when it is garbage collected
            # unobserved (usually at once: the kernel drops its last reference right after
            # this); those still referenced somewhere are reported when the kernel closes.
            self._crashed.add(task)

    def _stop_program(self, exc: BaseException) -> None:
        """Cancel the main task; ``run()`` raises ``exc`` once its cleanup has run.

        A second ``KeyboardInterrupt`` while that cleanup runs stops at once: it leaves the
        loop, and the kernel abandons its tasks. (Ctrl-C raises it in whatever code is
        running: in the loop's own code it leaves the loop by itself; in a task it ends the
        task, and arrives here.)
        """
        if self._fatal is not None and isinstance(exc, KeyboardInterrupt):
            raise exc
        if self._fatal is None:
            self._fatal = exc
            if self._main is not None:
                self._cancel_task(self._main, TaskCancelled(f"stopping: {exc!r}"))


def _stop_in(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The first ``KeyboardInterrupt`` or ``SystemExit`` in ``group``, however deep."""
    for error in group.exceptions:
        if isinstance(error, KeyboardInterrupt | SystemExit):
            return error
        if isinstance(error, BaseExceptionGroup) and (stop := _stop_in(error)) is not None:
            return stop
    return None


def run(
    corofunc: Any,
    *args: Any,
    clock: Clock | None = None,
    tracer: Tracer | None = None,
    max_threads: int = 32,
    slow_task_threshold: float | None = None,
    detect_deadlocks: bool = True,
) -> Any:
    """Run ``corofunc(*args)`` in a new kernel and return its result (or raise its error).

    Tasks still running when it returns are cancelled and their cleanup runs; nothing is left
    behind. Ctrl-C cancels the main task, lets it clean up, then raises ``KeyboardInterrupt``.
    The options are those of ``Kernel``.
    """
    with Kernel(
        clock=clock,
        tracer=tracer,
        max_threads=max_threads,
        slow_task_threshold=slow_task_threshold,
        detect_deadlocks=detect_deadlocks,
    ) as kernel:
        return kernel.run(corofunc, *args)
