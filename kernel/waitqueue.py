"""Wait queues: FIFO lines of parked tasks, the building block of every sync primitive.

A lock, an event, a queue or a task's list of joiners is, underneath, "some tasks waiting in
line for something". The kernel knows only this one shape: the ``WAIT_ON`` trap parks the
current task at the back of a ``WaitQueue`` and the ``WAKE`` trap moves tasks from its front
to the ready queue. Which primitive the line belongs to is not the kernel's business.

Like the sleeping queue, a waiter that leaves early (cancelled, timed out) is not searched for
and removed: its entry -- a one-element list ``[task]`` -- is blanked in O(1) and skipped when
it reaches the front. Invariant: ``len(queue)`` counts live waiters only.

A wait queue belongs to the kernel whose tasks park on it (``kernel``, set by the first
``WAIT_ON``); parking a task from a second kernel while the first is still open is an error,
and so is waking its waiters from a second kernel (``in_use_elsewhere``): that is how a lock
or queue shared between two kernels (two threads) is caught. ``owner`` is the primitive the
line belongs to, for messages and deadlock reports.

Read next: ``kernel/iotable.py``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["WaitQueue", "in_use_elsewhere"]


class WaitQueue:
    """A FIFO of parked tasks with O(1) append, popleft and discard."""

    __slots__ = ("_entries", "_live", "kernel", "owner")

    def __init__(self, owner: Any = None) -> None:
        self._entries: deque[list[Any]] = deque()
        self._live = 0
        self.kernel: Any = None  # the Kernel whose tasks wait here
        self.owner = owner  # the primitive this line belongs to

    def __len__(self) -> int:
        return self._live

    def __repr__(self) -> str:
        owner = "" if self.owner is None else f" of {self.owner!r}"
        return f"<WaitQueue{owner} waiting={self._live}>"

    def append(self, task: Any) -> list[Any]:
        """Put ``task`` at the back of the line; the entry is the handle for ``discard``."""
        entry = [task]
        self._entries.append(entry)
        self._live += 1
        return entry

    def discard(self, entry: list[Any]) -> None:
        """Take a waiter out of the line (a no-op if it already left)."""
        if entry[0] is not None:
            entry[0] = None
            self._live -= 1
            # Keep memory bounded when waiters keep leaving from the middle of a long line.
            if len(self._entries) > 64 and self._live < len(self._entries) // 2:
                self._entries = deque(e for e in self._entries if e[0] is not None)

    def popleft(self) -> Any:
        """Remove and return the first live waiter, or None if the line is empty."""
        entries = self._entries
        while entries:
            entry = entries.popleft()
            task = entry[0]
            if task is not None:
                entry[0] = None
                self._live -= 1
                return task
        return None

    def peek(self) -> Any:
        """The first live waiter, left in place (None if the line is empty)."""
        entries = self._entries
        while entries and entries[0][0] is None:
            entries.popleft()  # a tombstone at the front: drop it now
        return entries[0][0] if entries else None

    def tasks(self) -> list[Any]:
        """The live waiters, front first (for tracing, deadlock reports and tests)."""
        return [e[0] for e in self._entries if e[0] is not None]


def in_use_elsewhere(queue: WaitQueue, kernel: Any) -> RuntimeError | None:
    """The error for ``kernel`` parking on or waking ``queue`` if another open kernel's tasks
    wait there; None if ``kernel`` may (a queue whose kernel has closed is free again)."""
    if queue.kernel is kernel or queue.kernel is None or queue.kernel._closed:
        return None
    return RuntimeError(
        f"{queue.owner or queue!r} is in use by another kernel (another thread?); a primitive "
        f"belongs to one kernel -- create one per kernel, or use the Universal* primitives to "
        f"talk between threads"
    )
