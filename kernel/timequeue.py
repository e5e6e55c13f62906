"""The sleeping queue: every deadline the kernel is waiting for, nearest first.

Sleeps and timeouts both live here. The queue is a binary heap (``heapq``) of small lists
``[deadline, seq, item, kind]``:

* ``seq`` is a per-queue counter, so two equal deadlines come out in the order they went in
  and the schedule is repeatable; it also means the heap never compares two items.
* ``kind`` says what the deadline is for (the kernel uses "sleep" and "timeout").
* Removing an entry from the middle of a heap is O(n), and cancelled timeouts are common
  (most ``timeout_after`` blocks finish in time). So ``discard`` only blanks the entry's
  item -- a *tombstone* -- and ``pop_due`` skips tombstones when they reach the top. When
  tombstones outnumber live entries the heap is rebuilt without them, so memory stays
  proportional to the live entries. A popped entry is blanked too, so discarding it later
  is a harmless no-op.

Invariant: ``len(queue)`` is the number of live (non-tombstone) entries.

Read next: ``kernel/waitqueue.py`` (the same idea for FIFO waiters).
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any

__all__ = ["SleepingQueue"]

# An entry is a list so a tombstone can be written in place: [deadline, seq, item, kind].
Entry = list[Any]


class SleepingQueue:
    """Deadlines with O(log n) push and pop, and O(1) discard."""

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._live = 0
        self._seq = itertools.count()

    def __len__(self) -> int:
        return self._live

    def push(self, deadline: float, item: Any, kind: str = "sleep") -> Entry:
        """Add ``item`` due at ``deadline``; the returned entry is the handle for ``discard``."""
        entry = [deadline, next(self._seq), item, kind]
        heapq.heappush(self._heap, entry)
        self._live += 1
        return entry

    def discard(self, entry: Entry) -> None:
        """Forget an entry (a no-op if it was already popped or discarded)."""
        if entry[2] is None:
            return
        entry[2] = None
        self._live -= 1
        if len(self._heap) > 64 and self._live < len(self._heap) // 2:
            self._heap = [e for e in self._heap if e[2] is not None]
            heapq.heapify(self._heap)

    def next_deadline(self) -> float | None:
        """The nearest live deadline, or None when nothing is waiting -- or only for ever.

        A deadline of ``math.inf`` (``sleep(math.inf)``, ``timeout_after(math.inf)``) never
        comes: a clock that jumps to the next deadline must not jump to it, and a program
        whose tasks wait only for it waits for nothing.
        """
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        return heap[0][0] if heap and heap[0][0] != math.inf else None

    def pop_due(self, now: float) -> tuple[Any, str] | None:
        """Remove and return the earliest live ``(item, kind)`` due by ``now``, or None.

        One at a time, on purpose: handling one deadline may discard another that is also
        due (a timeout that fires cancels the same task's sleep), and a discard only works
        on an entry that is still in the queue.
        """
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            item = entry[2]
            if item is not None:
                entry[2] = None
                self._live -= 1
                return (item, entry[3])
        return None

    def discard_kind(self, kind: str) -> None:
        """Forget every live entry of ``kind`` (the kernel drops its "call" entries on close)."""
        for entry in self._heap:
            if entry[3] == kind and entry[2] is not None:
                entry[2] = None
                self._live -= 1

    def items(self) -> list[tuple[float, Any, str]]:
        """(deadline, item, kind) for every live entry in due order; for tracing and tests."""
        return [(e[0], e[2], e[3]) for e in sorted(self._heap) if e[2] is not None]
