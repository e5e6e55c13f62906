"""Trap handlers: what the kernel does with each trap a task yields.

There is one method per trap in ``kernel/traps.py``, named ``_trap_<name>``; the kernel
collects them into its handler table by name, so searching for ``_trap_sleep`` finds the
code that runs for ``("sleep", seconds)``. Each handler receives the task and the trap tuple
and returns:

* ``True``  -- the task carries on at once, resumed with ``task._next_value`` (or thrown
  ``task._next_exc``): the trap was *non-blocking*;
* ``False`` -- the task has been parked on one of the structures (or put back in the ready
  queue) and something else will run.

Blocking traps are the cancellation points: before parking, each one delivers a pending
cancellation instead, unless cancellation is disabled.

``TrapHandlers`` is a mixin of ``Kernel`` (``kernel/scheduler.py``): the state it touches
is declared at the top and owned by the kernel.

Read next: ``kernel/callbacks.py``.
"""

from __future__ import annotations

import contextvars
import errno
from typing import TYPE_CHECKING, Any

from .errors import ResourceBusy, TaskTimeout
from .task import Task
from .time import _check_seconds
from .traps import FUTURE_WAIT, TRAPS, Trap
from .waitqueue import WaitQueue, in_use_elsewhere

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable

    from .callbacks import Callback
    from .clock import Clock
    from .iotable import IOWaitTable
    from .task import CoroutineLike
    from .timequeue import SleepingQueue

__all__ = ["TrapHandlers"]


class TrapHandlers:
    """The ``_trap_<name>`` methods of the kernel, and the helpers only they use."""

    # Owned by Kernel; declared here for the type checker.
    _ready: deque[Task | Callback]
    _sleeping: SleepingQueue
    _io: IOWaitTable
    _clock: Clock
    _handlers: dict[str, Callable[[Task, Trap], bool]]

    if TYPE_CHECKING:

        def _new_task(
            self,
            coro: CoroutineLike,
            daemon: bool,
            name: str | None,
            context: contextvars.Context | None = None,
        ) -> Task: ...
        def _cancel_task(self, task: Task, exc: BaseException) -> bool: ...
        def _wake(self, queue: WaitQueue, n: int = 1, value: Any = None) -> int: ...
        def _reschedule(self, task: Task, value: Any = None) -> None: ...
        def _interrupt(self, task: Task) -> None: ...

    def _park(self, task: Task, structure: Any, entry: Any, state: str) -> bool:
        """Record where a blocked task waits, so that a cancel can find it. Returns False."""
        task._waiting_on = structure
        task._wait_entry = entry
        task.state = state
        return False

    def _deliver_cancel(self, task: Task) -> bool:
        """At a blocking trap: throw the pending cancellation in, unless it is disabled."""
        if task._no_cancel:
            return False
        task._next_exc = task._cancel_pending
        task._cancel_pending = None
        return True

    def _bad_yield(self, task: Task, value: Any) -> bool:
        """Handling what ``task`` yielded failed. If it is not a well-formed trap, or one
        with arguments of the wrong kind (``("sleep", "0.1")``, yielded by hand), that is
        the task's mistake: a TypeError is thrown into it and this returns True. Otherwise
        the handler itself failed -- a kernel bug -- and this returns False.
        """
        if _is_well_formed(value):
            mistake = _bad_arguments(value)
            if mistake is None:
                return False
            task._next_exc = TypeError(f"{task!r} yielded the trap {value!r}, but {mistake}")
            self._ready.append(task)
            return True
        if _is_asyncio_future(value):
            # ``await future`` in a kernel task: the future yields itself, as asyncio's
            # tasks expect. That is the FUTURE_WAIT trap under another spelling.
            if self._handlers[FUTURE_WAIT](task, (FUTURE_WAIT, value)):
                self._ready.append(task)  # it carries on: at the back, like a bad yield
            return True
        task._next_exc = TypeError(
            f"{task!r} yielded {value!r} to the kernel, which is {_explain_bad_yield(value)}"
        )
        self._ready.append(task)  # to the back of the line: a task looping on this stays fair
        return True

    def _trap_schedule(self, task: Task, trap: Trap) -> bool:
        """SCHEDULE: to the back of the ready queue (``sleep(0)``). A cancellation point."""
        if task._cancel_pending is not None and self._deliver_cancel(task):
            return True
        self._ready.append(task)
        return False

    def _trap_sleep(self, task: Task, trap: Trap) -> bool:
        """SLEEP seconds: onto the sleeping queue until now + seconds."""
        if task._cancel_pending is not None and self._deliver_cancel(task):
            return True
        entry = self._sleeping.push(self._clock.now() + trap[1], task)
        return self._park(task, self._sleeping, entry, "SLEEPING")

    def _trap_io_wait(self, task: Task, trap: Trap) -> bool:
        """IO_WAIT fileobj event: into the I/O wait table until the selector reports it ready."""
        if task._cancel_pending is not None and self._deliver_cancel(task):
            return True
        _, fileobj, event = trap
        try:
            self._io.register(fileobj, event, task)
        except (ResourceBusy, ValueError, OSError) as error:  # busy, closed or bad descriptor
            task._next_exc = error
            return True
        # _park, written out: a server parks here once per message, and the call costs
        # more than its three stores. (The trap is the handle a cancel discards it by.)
        task._waiting_on = self._io
        task._wait_entry = trap
        task.state = "IO_WAIT"
        return False

    def _trap_io_release(self, task: Task, trap: Trap) -> bool:
        """IO_RELEASE fileobj: forget a descriptor about to be closed; its waiters get EBADF.

        A task parked on a socket that another task closes would otherwise wait forever:
        the selector never reports a closed descriptor.
        """
        fileobj = trap[1]
        for waiter in self._io.release(fileobj):
            self._reschedule(waiter)
            waiter._next_exc = OSError(
                errno.EBADF, f"{fileobj!r} was closed by {task!r} while this task waited on it"
            )
        return True

    def _trap_spawn(self, task: Task, trap: Trap) -> bool:
        """SPAWN coro daemon name: a new task at the back of the ready queue."""
        _, coro, daemon, name = trap
        task._next_value = self._new_task(coro, daemon, name, task._context.copy())
        return True

    def _trap_cancel(self, task: Task, trap: Trap) -> bool:
        """CANCEL target exc: make exc pending on target (delivered now if it is blocked)."""
        _, target, exc = trap
        if target._kernel is not self:
            task._next_exc = RuntimeError(
                f"{target!r} belongs to another kernel: cancel it from one of that kernel's "
                f"tasks (kernel.call_threadsafe hands work to a kernel from another thread)"
            )
            return True
        task._next_value = self._cancel_task(target, exc)
        return True

    def _trap_wait_task(self, task: Task, trap: Trap) -> bool:
        """WAIT_TASK target: park on target's joiners until it ends."""
        target: Task = trap[1]
        if target is task:
            task._next_exc = RuntimeError(f"{task!r} cannot wait for itself: it would never end")
            return True
        if target._kernel is not self:
            task._next_exc = RuntimeError(f"{target!r} belongs to another kernel")
            return True
        if target.done:
            return True
        if task._cancel_pending is not None and self._deliver_cancel(task):
            return True
        if target._joiners is None:
            target._joiners = WaitQueue(target)
            target._joiners.kernel = self
        return self._park(task, target._joiners, target._joiners.append(task), "JOIN")

    def _trap_wait_on(self, task: Task, trap: Trap) -> bool:
        """WAIT_ON queue state: park at the back of a wait queue."""
        if task._cancel_pending is not None and self._deliver_cancel(task):
            return True
        _, queue, state = trap
        if queue.kernel is not self:
            error = in_use_elsewhere(queue, self)
            if error is not None:
                task._next_exc = error
                return True
            queue.kernel = self
        return self._park(task, queue, queue.append(task), state)

    def _trap_wake(self, task: Task, trap: Trap) -> bool:
        """WAKE queue n value: move up to n waiters to the ready queue; returns how many."""
        _, queue, n, value = trap
        if queue.kernel is not self and (error := in_use_elsewhere(queue, self)) is not None:
            task._next_exc = error  # its waiters are another kernel's tasks
            return True
        task._next_value = self._wake(queue, n, value)
        return True

    def _trap_get_current(self, task: Task, trap: Trap) -> bool:
        """GET_CURRENT: the running task."""
        task._next_value = task
        return True

    def _trap_get_kernel(self, task: Task, trap: Trap) -> bool:
        """GET_KERNEL: the running kernel."""
        task._next_value = self
        return True

    def _trap_clock(self, task: Task, trap: Trap) -> bool:
        """CLOCK: the current time."""
        task._next_value = self._clock.now()
        return True

    def _trap_set_timeout(self, task: Task, trap: Trap) -> bool:
        """SET_TIMEOUT deadline: arm a timeout if it is sooner; returns the previous one."""
        deadline = trap[1]
        previous = task._timeout
        if deadline is not None and (previous is None or deadline < previous):
            if task._timeout_entry is not None:
                self._sleeping.discard(task._timeout_entry)
            task._timeout = deadline
            task._timeout_entry = self._sleeping.push(deadline, task, "timeout")
        task._next_value = previous
        return True

    def _trap_unset_timeout(self, task: Task, trap: Trap) -> bool:
        """UNSET_TIMEOUT previous: a timeout block ends; restore the enclosing deadline.

        Discussion: a timeout that fired while the task was not blocked is still pending;
        it belonged to the block that is ending, so it is dropped. But if the enclosing
        deadline has passed too, the task is owed a timeout for *that* one: it becomes
        pending again and is raised at the next blocking call, not here -- raising inside
        the block's own exit would tangle the two timeouts together.
        """
        now = self._clock.now()
        if self._restore_timeout(task, trap[1], now) and task._cancel_pending is None:
            task._cancel_pending = TaskTimeout(now)
        task._next_value = now
        return True

    def _trap_unset_timeout_for(self, task: Task, trap: Trap) -> bool:
        """UNSET_TIMEOUT_FOR target previous: UNSET_TIMEOUT on behalf of ``target``.

        Discussion: an async generator that yields inside a timeout block may be closed by
        another task -- the one the kernel closes it in once it is collected, or any task
        that calls ``aclose()`` -- while the task that entered the block has moved on. The
        block's deadline is that task's, so it is that task's timeout to restore; one it is
        owed is delivered as a cancel is, at once if it is blocked.
        """
        _, target, previous = trap
        now = self._clock.now()
        if not target.done and self._restore_timeout(target, previous, now):
            self._cancel_task(target, TaskTimeout(now))
        task._next_value = now
        return True

    def _restore_timeout(self, task: Task, previous: float | None, now: float) -> bool:
        """Disarm ``task``'s timeout and arm ``previous`` instead; True if it has passed."""
        if isinstance(task._cancel_pending, TaskTimeout):
            task._cancel_pending = None
        if task._timeout != previous:
            if task._timeout_entry is not None:
                self._sleeping.discard(task._timeout_entry)
                task._timeout_entry = None
            task._timeout = previous
            if previous is not None and previous > now:
                task._timeout_entry = self._sleeping.push(previous, task, "timeout")
        return previous is not None and previous <= now

    def _trap_future_wait(self, task: Task, trap: Trap) -> bool:
        """FUTURE_WAIT future: park until an asyncio-style future is done.

        The future's done callback -- which its event loop (the asyncio adapter, running
        on this kernel) queues like any other callback -- puts the task back in the ready
        queue. Cancelling the task cancels the future, as cancelling an asyncio task does.
        """
        future: Any = trap[1]
        future._asyncio_future_blocking = False
        loop = future.get_loop()
        if getattr(loop, "_kernel", None) is not self:
            task._next_exc = RuntimeError(
                f"{task!r} awaited {future!r}, which belongs to {loop!r}: only futures of "
                f"the asyncio adapter loop running on this kernel can be awaited here "
                f"(create them with kernel.aio's loop, e.g. asyncio.get_running_loop() in "
                f"code started by kernel.aio)"
            )
            return True
        if future.done():
            return True
        if task._cancel_pending is not None and self._deliver_cancel(task):
            return True
        waiter = _FutureWaiter(self, task, future)
        future.add_done_callback(waiter.wake)
        self._park(task, waiter, None, "FUTURE_WAIT")
        return False

    def _trap_set_cancellation(self, task: Task, trap: Trap) -> bool:
        """SET_CANCELLATION allow: False/True enter/leave a no-cancel block; None checks."""
        allow = trap[1]
        if allow is False:
            task._no_cancel += 1
        elif allow is True:
            if not task._no_cancel:
                task._next_exc = RuntimeError("cancellation enabled more times than disabled")
                return True
            task._no_cancel -= 1
        elif task._cancel_pending is not None and self._deliver_cancel(task):
            return True  # check_cancellation() outside a no-cancel block raises it now
        task._next_value = task._cancel_pending
        return True

    def _trap_enable_cancellation_for(self, task: Task, trap: Trap) -> bool:
        """ENABLE_CANCELLATION_FOR target: leave a ``disable_cancellation()`` block of
        ``target``'s that another task closed (see ``_trap_unset_timeout_for``). A
        cancellation ``target`` was kept from while it is blocked is delivered now."""
        target = trap[1]
        if not target.done and target._no_cancel:
            target._no_cancel -= 1
            if target._cancel_pending is not None:
                self._interrupt(target)
        task._next_value = None
        return True


class _FutureWaiter:
    """Where a task waiting on an asyncio future is parked: the future's done callback."""

    __slots__ = ("future", "kernel", "task")

    def __init__(self, kernel: Any, task: Task, future: Any) -> None:
        self.kernel = kernel
        self.task = task
        self.future = future

    def wake(self, future: Any) -> None:
        """The future is done: the task runs next, and reads the result from the future."""
        if self.task._waiting_on is self:
            self.kernel._reschedule(self.task)

    def discard(self, entry: Any) -> None:
        """The task is cancelled while waiting: stop listening, and cancel the future."""
        self.future.remove_done_callback(self.wake)
        self.future.cancel()


def _is_asyncio_future(value: Any) -> bool:
    """Does ``value`` follow asyncio's future protocol (what ``asyncio.isfuture`` checks)?"""
    return getattr(type(value), "_asyncio_future_blocking", None) is not None and bool(
        getattr(value, "_asyncio_future_blocking", False)
    )


def _is_well_formed(value: Any) -> bool:
    """A tuple naming a known trap, with the right number of arguments."""
    if not (type(value) is tuple and value and isinstance(value[0], str)):
        return False
    arguments = TRAPS.get(value[0])
    return arguments is not None and len(value) == 1 + len(arguments)


def _bad_arguments(trap: Trap) -> str | None:
    """What is wrong with a well-formed trap's arguments, as far as their kind can tell.

    Asked only once its handler has failed: the handlers check nothing on the way in (the
    kernel's own calls, ``kernel.sleep`` and the rest, check what users pass them)."""
    for name, value in zip(TRAPS[trap[0]], trap[1:], strict=True):
        if name == "seconds":
            try:  # (kernel.sleep's own check, and its message)
                _check_seconds(value, f"the {trap[0]} trap")
            except (TypeError, ValueError) as error:
                return str(error)
        check = _ARGUMENT_CHECKS.get(name)
        if check is not None and not check[0](value):
            return f"its {name} must be {check[1]}, not {value!r}"
    return None


_ARGUMENT_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "task": (lambda value: isinstance(value, Task), "a kernel Task"),
    "queue": (lambda value: isinstance(value, WaitQueue), "a kernel WaitQueue"),
    "n": (lambda value: isinstance(value, int) and not isinstance(value, bool), "an int"),
}


def _explain_bad_yield(value: Any) -> str:
    """Name the likely cause of a yield that is not a trap."""
    package = type(value).__module__.partition(".")[0]
    if hasattr(value, "_asyncio_future_blocking") or package == "asyncio":
        return (
            "an asyncio object: asyncio futures and tasks need asyncio's event loop. Run "
            "asyncio code through kernel.aio, or use the kernel's own calls (kernel.sleep, "
            "kernel.spawn, ...)"
        )
    if package in ("trio", "curio", "anyio"):
        return f"a {package} object: {package} code only runs under {package}'s own loop"
    if value is None:
        return (
            "a bare `yield`: a generator-based coroutine must yield traps; use "
            "`yield from kernel.sleep(0)` to let other tasks run"
        )
    if isinstance(value, tuple) and value and isinstance(value[0], str) and value[0] in TRAPS:
        expected = (value[0], *TRAPS[value[0]])
        return f"a malformed trap: it should be a tuple of {len(expected)}, {expected}"
    if isinstance(value, tuple) and value:
        return f"not a trap: {value[0]!r} is not one of the kernel's traps {tuple(TRAPS)}"
    return "not a trap: tasks talk to the kernel only through the traps in kernel.traps"
