"""Synchronisation primitives, built from two traps: park on a wait queue, wake from it.

The scheduler knows nothing about locks or events. Each primitive here is a little state
(``set``, ``owner``, ``value``) plus a ``WaitQueue`` of parked tasks, and it only ever asks
the kernel for two things: ``WAIT_ON`` (park me at the back of this line) and ``WAKE``
(move the first n of this line to the ready queue).

Two rules make every primitive fair and safe to cancel:

* **Hand-off, never barging.** When a lock or a permit is released while tasks wait, it is
  given to the first waiter *before* that waiter is woken, so a task arriving later cannot
  slip in ahead of it: waiters are served in the order they arrived.
* **A woken task always resumes normally.** A cancellation is thrown in only at a blocking
  trap, and a waiter that has been woken is no longer blocked: if a cancel arrives between
  its wake-up and its next run, it stays pending until the task's *next* blocking call. So
  a waiter that was handed the lock owns it, and one cancelled while still parked was taken
  out of the line first and owns nothing. There is no window in which both are true.

Read next: ``kernel/queues.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from .scheduler import current_kernel, running_task
from .task import disable_cancellation
from .traps import _wait_on, _wake
from .waitqueue import WaitQueue, in_use_elsewhere

if TYPE_CHECKING:
    from .task import Task

__all__ = ["BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "Semaphore"]

T = TypeVar("T")


def _check_here(waiters: WaitQueue) -> None:
    """Before a primitive hands anything (a lock, an item) to ``waiters``: they must be tasks
    of the kernel running here. Checked before anything changes, so that the error leaves
    the primitive as it was -- no lock held by a task that is never woken, no item lost."""
    error = in_use_elsewhere(waiters, current_kernel())
    if error is not None:
        raise error


class _AsyncContext:
    """``async with primitive:`` acquires on entry and releases on exit."""

    async def acquire(self) -> bool:
        raise NotImplementedError

    async def release(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.release()


class Event:
    """A flag tasks can wait for. ``set()`` wakes every waiter; ``clear()`` resets it."""

    def __init__(self) -> None:
        self._set = False
        self._waiters = WaitQueue(self)

    def __repr__(self) -> str:
        return f"<Event {'set' if self._set else 'unset'} waiting={len(self._waiters)}>"

    def is_set(self) -> bool:
        return self._set

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        """Wait until the event is set (at once if it already is)."""
        if not self._set:
            await _wait_on(self._waiters, "EVENT_WAIT")

    async def set(self) -> None:
        """Set the event and wake every task waiting for it."""
        if self._waiters:
            _check_here(self._waiters)  # another kernel's waiters: refused, and still unset
        self._set = True
        if self._waiters:
            await _wake(self._waiters, len(self._waiters))


class Lock(_AsyncContext):
    """A mutual-exclusion lock owned by one task at a time; waiters are served first come,
    first served. Only the owner may release it."""

    def __init__(self) -> None:
        self._owner: Task | None = None
        self._waiters = WaitQueue(self)

    def __repr__(self) -> str:
        state = f"held by {self._owner!r}" if self._owner else "unlocked"
        return f"<{type(self).__name__} {state} waiting={len(self._waiters)}>"

    def locked(self) -> bool:
        return self._owner is not None

    async def acquire(self) -> bool:
        task = running_task()
        if self._owner is None:  # free -- and then nobody waits: a release hands it over
            self._owner = task
        elif self._owner is task:
            raise RuntimeError(
                f"{task!r} already holds {self!r}: acquiring it again would wait forever "
                f"(use an RLock to acquire it more than once)"
            )
        else:
            await _wait_on(self._waiters, "LOCK")  # resumes as the owner (see release)
        return True

    async def release(self) -> None:
        self._check_owner(running_task())
        await self._hand_over()

    def _check_owner(self, task: Task) -> None:
        if self._owner is None:
            raise RuntimeError(f"release() of {self!r}, which is not locked")
        if self._owner is not task:
            raise RuntimeError(f"{task!r} cannot release {self!r}: only the owner can")

    async def _hand_over(self) -> None:
        """Give the lock to the first waiter (and wake it), or leave it free."""
        if self._waiters:
            _check_here(self._waiters)  # another kernel's waiter: refused, still ours
        self._owner = self._waiters.peek()
        if self._owner is not None:
            await _wake(self._waiters, 1)


class RLock(Lock):
    """A lock its owner may acquire again; it is free once released as often as acquired."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0

    async def acquire(self) -> bool:
        task = running_task()
        if self._owner is task:
            self._depth += 1
            return True
        if self._owner is None:
            self._owner = task
        else:
            await _wait_on(self._waiters, "RLOCK")
        self._depth = 1
        return True

    async def release(self) -> None:
        self._check_owner(running_task())
        if self._depth == 1:
            await self._hand_over()  # if it raises, nothing has changed: still held once
        self._depth -= 1  # (before a waiter it was handed to resumes and sets 1)


class Semaphore(_AsyncContext):
    """A counter of permits: ``acquire`` takes one (waiting if there are none), ``release``
    gives one back -- straight to the first waiter, if any."""

    def __init__(self, value: int = 1) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"a semaphore's value must be a whole number >= 0, got {value!r}")
        self._value = value
        self._waiters = WaitQueue(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self._value} waiting={len(self._waiters)}>"

    @property
    def value(self) -> int:
        """Permits available now."""
        return self._value

    def locked(self) -> bool:
        """True when an ``acquire`` would wait."""
        return self._value == 0

    async def acquire(self) -> bool:
        # Invariant: a permit is never left available while tasks wait for one.
        if self._value > 0:
            self._value -= 1
        else:
            await _wait_on(self._waiters, "SEMAPHORE")  # resumes holding a handed-over permit
        return True

    async def release(self) -> None:
        if self._waiters:
            await _wake(self._waiters, 1)  # the permit goes to the first waiter directly
        else:
            self._value += 1


class BoundedSemaphore(Semaphore):
    """A semaphore that refuses to be released more often than it was acquired."""

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._bound = value

    async def release(self) -> None:
        # Discussion: the permits out (held by tasks) number ``bound - value``: a release
        # with tasks waiting passes its permit straight on, leaving both unchanged. So a
        # release is one too many exactly when ``value`` is already at the bound, whether
        # tasks wait or not. (While tasks wait ``value`` is 0, so that refuses only a bound
        # of 0, whose waiters wait for a permit that never existed.)
        if self._value >= self._bound:
            raise ValueError(
                f"{self!r} released more times than acquired (its bound is {self._bound}): "
                f"release() only a permit that acquire() took"
            )
        await super().release()


class Condition(_AsyncContext):
    """A lock plus a line of tasks waiting for something to become true.

    ``wait()`` releases the lock, parks until notified, then takes the lock back -- even when
    it is cancelled, so the lock is held again before the exception leaves ``wait()``. Only
    a ``Deadlock`` can stop it taking the lock back; then ``async with`` leaves the lock alone.
    """

    def __init__(self, lock: Lock | None = None) -> None:
        if lock is None:
            lock = Lock()
        if type(lock) is not Lock:
            raise TypeError(f"a Condition needs a kernel Lock (not an RLock), got {lock!r}")
        self._lock = lock
        self._waiters = WaitQueue(self)

    def __repr__(self) -> str:
        return f"<Condition {self._lock!r} waiting={len(self._waiters)}>"

    def locked(self) -> bool:
        return self._lock.locked()

    async def acquire(self) -> bool:
        return await self._lock.acquire()

    async def release(self) -> None:
        await self._lock.release()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Discussion: ``wait()`` takes the lock back with cancellation disabled, but the
        # deadlock detector still throws a ``Deadlock`` in while it waits for the lock (the
        # holder can never release it), so ``wait()`` can end without the lock. Releasing
        # it here anyway would replace the Deadlock with "only the owner can" -- true, but
        # not the problem. So, while an exception is on its way out and this task does not
        # hold the lock, the lock is left to its holder and the exception goes on, with a
        # note saying so (the same note keeps a real misuse -- a manual release() inside the
        # block -- on record). With no exception a release still checks the owner: that is
        # a mistake to report. Keying this on the exception, not on a mark set by
        # ``wait()``, leaves no per-task state to go stale.
        if exc is not None and self._lock._owner is not running_task():
            exc.add_note(
                f"(leaving `async with {self!r}` without releasing the lock: this task "
                f"does not hold it, e.g. because wait() was stopped before it took it back)"
            )
            return
        await self.release()

    def _check_held(self, method: str) -> None:
        """``wait`` and ``notify`` need the lock, held by the calling task."""
        task, owner = running_task(), self._lock._owner
        if owner is not task:
            holder = "nobody holds it" if owner is None else f"{owner!r} holds it"
            raise RuntimeError(
                f"Condition.{method}() needs the condition's lock, held by this task "
                f"({task!r}; {holder}): call it inside `async with cond:`"
            )

    async def wait(self) -> None:
        """Release the lock, wait for a ``notify``, then re-acquire the lock."""
        self._check_held("wait")
        await self._lock.release()
        try:
            await _wait_on(self._waiters, "CONDITION")
        finally:
            # Even when cancelled: the caller's `async with` will release the lock, so it
            # must hold it. A second cancellation must not interrupt this: it waits. (A
            # Deadlock still can; __aexit__ copes with that.)
            async with disable_cancellation():
                await self._lock.acquire()

    async def wait_for(self, predicate: Callable[[], T]) -> T:
        """``wait()`` until ``predicate()`` is true; returns its (true) value."""
        while not (result := predicate()):
            await self.wait()
        return result

    async def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters (they run once they get the lock back); ``n=0`` wakes none."""
        # Checked here, in the caller's task: the WAKE handler trusts n, and a bad one
        # failing there would shut the whole kernel down as a KernelError.
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(
                f"notify(n) takes an int, how many waiters to wake, got {n!r} "
                f"(use notify_all() to wake them all)"
            )
        if n < 0:
            raise ValueError(f"notify(n) needs n >= 0 (how many waiters to wake), got {n!r}")
        self._check_held("notify")
        if self._waiters:
            await _wake(self._waiters, n)

    async def notify_all(self) -> None:
        """Wake every waiter (they run once they get the lock back)."""
        self._check_held("notify_all")
        if self._waiters:
            await _wake(self._waiters, len(self._waiters))
