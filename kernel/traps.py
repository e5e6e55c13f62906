"""The trap vocabulary: the only place in the package that yields to the kernel.

A coroutine never calls the scheduler. It suspends by *yielding a trap*: a small tuple whose
first element names the request and whose other elements are its arguments, for example
``("sleep", 1.5)``. The kernel receives the tuple from ``coro.send()``, looks the name up in
its handler table (``Kernel._handlers`` in ``kernel/scheduler.py``, one ``_trap_<name>``
method per trap) and decides when the task runs again and with what value.

Every function below is a tiny generator decorated with ``types.coroutine`` so that it can be
awaited from ``async def`` code *and* used with ``yield from`` in generator-based coroutines.
The table in ``docs/traps.md`` lists what each trap does to the three structures: the ready
queue, the sleeping queue and the I/O wait table. Library code (time, tasks, task groups,
sync) is built from these and nothing else.

Read next: ``kernel/scheduler.py``, which handles them.
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

if TYPE_CHECKING:
    # How mypy spells the result of a ``types.coroutine`` generator: a generator that is also
    # awaitable. It exists only for type checkers, hence the guarded import.
    from typing import AwaitableGenerator

    from .scheduler import Kernel
    from .task import Task
    from .waitqueue import WaitQueue

__all__ = [
    "CANCEL",
    "CLOCK",
    "ENABLE_CANCELLATION_FOR",
    "FUTURE_WAIT",
    "GET_CURRENT",
    "GET_KERNEL",
    "IO_RELEASE",
    "IO_WAIT",
    "SCHEDULE",
    "SET_CANCELLATION",
    "SET_TIMEOUT",
    "SLEEP",
    "SPAWN",
    "TRAPS",
    "UNSET_TIMEOUT",
    "UNSET_TIMEOUT_FOR",
    "WAIT_ON",
    "WAIT_TASK",
    "WAKE",
    "PreparedTrap",
    "Trap",
    "TrapCall",
    "prepared_trap",
]

Trap: TypeAlias = tuple[Any, ...]
T = TypeVar("T")
# What calling a trap function returns: ``await`` it from ``async def`` code, or
# ``yield from`` it in a generator-based coroutine.
TrapCall: TypeAlias = "AwaitableGenerator[Trap, Any, T, Generator[Trap, Any, T]]"

# The names of the traps. Strings, not numbers, so that a trace or a debugger shows
# ("sleep", 1.0) rather than (3, 1.0); the handler lookup is one dict access either way.
SCHEDULE = "schedule"
SLEEP = "sleep"
IO_WAIT = "io_wait"
IO_RELEASE = "io_release"
SPAWN = "spawn"
CANCEL = "cancel"
WAIT_TASK = "wait_task"
WAIT_ON = "wait_on"
WAKE = "wake"
GET_CURRENT = "get_current"
GET_KERNEL = "get_kernel"
CLOCK = "clock"
SET_TIMEOUT = "set_timeout"
UNSET_TIMEOUT = "unset_timeout"
SET_CANCELLATION = "set_cancellation"
UNSET_TIMEOUT_FOR = "unset_timeout_for"
ENABLE_CANCELLATION_FOR = "enable_cancellation_for"
FUTURE_WAIT = "future_wait"

# Every trap, with the names of the arguments that follow it in the tuple.
TRAPS: dict[str, tuple[str, ...]] = {
    SCHEDULE: (),
    SLEEP: ("seconds",),
    IO_WAIT: ("fileobj", "event"),
    IO_RELEASE: ("fileobj",),
    SPAWN: ("coro", "daemon", "name"),
    CANCEL: ("task", "exc"),
    WAIT_TASK: ("task",),
    WAIT_ON: ("queue", "state"),
    WAKE: ("queue", "n", "value"),
    GET_CURRENT: (),
    GET_KERNEL: (),
    CLOCK: (),
    SET_TIMEOUT: ("deadline",),
    UNSET_TIMEOUT: ("previous",),
    SET_CANCELLATION: ("allow",),
    UNSET_TIMEOUT_FOR: ("task", "previous"),
    ENABLE_CANCELLATION_FOR: ("task",),
    FUTURE_WAIT: ("future",),
}


@types.coroutine
def _schedule() -> Generator[Trap, Any, None]:
    """Go to the back of the ready queue, letting every other ready task run first."""
    yield (SCHEDULE,)


@types.coroutine
def _sleep(seconds: float) -> Generator[Trap, Any, None]:
    """Sleep on the sleeping queue until ``seconds`` from now."""
    yield (SLEEP, seconds)


@types.coroutine
def _io_wait(fileobj: Any, event: int) -> Generator[Trap, Any, None]:
    """Park in the I/O wait table until ``fileobj`` is ready for ``event`` (selectors.EVENT_*)."""
    yield (IO_WAIT, fileobj, event)


class PreparedTrap(tuple):  # type: ignore[type-arg]
    """A trap built once and awaited many times: ``await prepared`` yields it to the kernel.

    Discussion: each call of a trap function above makes a generator -- a Python frame --
    and a tuple, and the kernel resumes that frame once more just to let it finish. A hot
    path that parks with the same trap over and over (a socket's ``recv``, once per message
    of a server) can build it once instead: this is a one-element tuple holding the trap,
    whose ``__await__`` is the tuple's own iterator. Awaiting it yields the trap; resumed,
    the iterator is done, and the ``await`` gives None. All of it runs in C. An exception
    thrown in (a cancellation) is raised at the ``await``, as from a trap function.

    The kernel must resume it with None (a tuple's iterator has no ``send``): it suits the
    traps whose value is None, such as ``IO_WAIT``.
    """

    __slots__ = ()
    if TYPE_CHECKING:

        def __await__(self) -> Generator[Trap, None, None]: ...

    else:
        __await__ = tuple.__iter__


def prepared_trap(*trap: Any) -> PreparedTrap:
    """``trap`` (the tuple ``_io_wait`` would yield, say), prepared to be awaited again and
    again: ``await prepared_trap(IO_WAIT, sock, EVENT_READ)`` is ``await _io_wait(sock,
    EVENT_READ)``."""
    return PreparedTrap((trap,))


@types.coroutine
def _io_release(fileobj: Any) -> Generator[Trap, Any, None]:
    """``fileobj`` is about to be closed: drop it from the I/O table, failing its waiters."""
    yield (IO_RELEASE, fileobj)


@types.coroutine
def _spawn(coro: Any, daemon: bool, name: str | None) -> Generator[Trap, Any, Task]:
    """Create a task for ``coro`` at the back of the ready queue; returns the ``Task``."""
    return (yield (SPAWN, coro, daemon, name))  # type: ignore[no-any-return]


@types.coroutine
def _cancel(task: Task, exc: BaseException) -> Generator[Trap, Any, bool]:
    """Ask ``task`` to raise ``exc`` at its next blocking trap; False if it already ended."""
    return (yield (CANCEL, task, exc))  # type: ignore[no-any-return]


@types.coroutine
def _wait_task(task: Task) -> Generator[Trap, Any, None]:
    """Block until ``task`` has terminated."""
    yield (WAIT_TASK, task)


@types.coroutine
def _wait_on(queue: WaitQueue, state: str) -> Generator[Trap, Any, Any]:
    """Park on a wait queue (``state`` names what for, e.g. "LOCK"); returns the waker's value."""
    return (yield (WAIT_ON, queue, state))


@types.coroutine
def _wake(queue: WaitQueue, n: int = 1, value: Any = None) -> Generator[Trap, Any, int]:
    """Move up to ``n`` tasks from a wait queue to the ready queue; returns how many moved."""
    return (yield (WAKE, queue, n, value))  # type: ignore[no-any-return]


@types.coroutine
def _future_wait(future: Any) -> Generator[Trap, Any, None]:
    """Park until an asyncio-style future is done (then ask the future for its result).

    A kernel task that simply ``await``s an asyncio future yields the future itself, as
    asyncio's own tasks expect; the kernel treats that exactly like this trap.
    """
    yield (FUTURE_WAIT, future)


@types.coroutine
def _get_current() -> Generator[Trap, Any, Task]:
    """Return the running ``Task`` (no suspension: the task runs on at once)."""
    return (yield (GET_CURRENT,))  # type: ignore[no-any-return]


@types.coroutine
def _get_kernel() -> Generator[Trap, Any, Kernel]:
    """Return the running ``Kernel``."""
    return (yield (GET_KERNEL,))  # type: ignore[no-any-return]


@types.coroutine
def _clock() -> Generator[Trap, Any, float]:
    """Return the kernel's clock (monotonic seconds, or virtual time under a test clock)."""
    return (yield (CLOCK,))  # type: ignore[no-any-return]


@types.coroutine
def _set_timeout(deadline: float | None) -> Generator[Trap, Any, float | None]:
    """Arm a timeout at absolute ``deadline``; returns the deadline that was in force before."""
    return (yield (SET_TIMEOUT, deadline))  # type: ignore[no-any-return]


@types.coroutine
def _unset_timeout(previous: float | None) -> Generator[Trap, Any, float]:
    """Disarm the current timeout and restore ``previous``; returns the clock."""
    return (yield (UNSET_TIMEOUT, previous))  # type: ignore[no-any-return]


@types.coroutine
def _unset_timeout_for(task: Task, previous: float | None) -> Generator[Trap, Any, float]:
    """``_unset_timeout`` for ``task``'s block, closed from elsewhere; returns the clock."""
    return (yield (UNSET_TIMEOUT_FOR, task, previous))  # type: ignore[no-any-return]


@types.coroutine
def _enable_cancellation_for(task: Task) -> Generator[Trap, Any, None]:
    """Leave ``task``'s ``disable_cancellation()`` block, closed from elsewhere."""
    yield (ENABLE_CANCELLATION_FOR, task)


@types.coroutine
def _set_cancellation(allow: bool | None) -> Generator[Trap, Any, BaseException | None]:
    """Enter (False) / leave (True) a no-cancel block, or (None) check; returns what's pending."""
    return (yield (SET_CANCELLATION, allow))  # type: ignore[no-any-return]
