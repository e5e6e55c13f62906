"""Queues between tasks: FIFO, priority and LIFO, bounded or not.

A queue is a container plus three wait queues: getters waiting for an item, putters waiting
for room, and joiners waiting for every item to be processed (``join`` / ``task_done``).

An item is never lost or duplicated, even when a ``get`` or ``put`` is cancelled or times
out. That follows from the rule in ``kernel/sync.py`` -- a woken task always resumes
normally; only a *parked* task can be cancelled, and then it is out of the line -- and from
never letting an item sit between two owners:

* a ``put`` that finds a getter waiting hands the item straight to it (the wake-up carries
  the item), so a waiting getter never has to come back and look;
* a ``put`` that finds the queue full parks *with its item*; the ``get`` that makes room
  moves the first waiting putter's item in, then wakes that putter. No later ``put`` can
  slip into the freed slot, and the woken putter has nothing left to do.

So a cancelled getter consumed nothing, and a cancelled putter added nothing (its item is
taken back out of the waiting room as the cancellation leaves ``put``).

Invariant: getters wait only while the queue is empty, putters only while it is full, so
the two lines are never both occupied.

Read next: ``kernel/threads.py``.
"""

from __future__ import annotations

import functools
import heapq
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import QueueEmpty, QueueFull
from .scheduler import running_task
from .sync import _check_here
from .traps import _wait_on, _wake
from .waitqueue import WaitQueue

if TYPE_CHECKING:
    from .task import Task

__all__ = ["LifoQueue", "PriorityQueue", "Queue"]

T = TypeVar("T")


class Queue(Generic[T]):
    """A FIFO queue. ``maxsize=0`` means unbounded."""

    def __init__(self, maxsize: int = 0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be a whole number >= 0 (0: unbounded), got {maxsize!r}")
        self.maxsize = maxsize
        self._getters = WaitQueue(self)
        self._putters = WaitQueue(self)
        self._joiners = WaitQueue(self)
        self._waiting_items: dict[Task, T] = {}  # item of each parked putter
        self._unfinished = 0  # items put and not yet marked task_done()
        self._init_items()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} size={self.qsize()} maxsize={self.maxsize} "
            f"getters={len(self._getters)} putters={len(self._putters)}>"
        )

    # The container, replaced by the subclasses.
    def _init_items(self) -> None:
        self._items: Any = deque()

    def _put_item(self, item: T) -> None:
        self._items.append(item)

    def _get_item(self) -> T:
        item: T = self._items.popleft()
        return item

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    async def put(self, item: T) -> None:
        """Add ``item``, waiting for room if the queue is full."""
        if self._getters:  # the queue is empty and a getter waits: straight to it
            _check_here(self._getters)
            self._unfinished += 1
            await _wake(self._getters, 1, item)
        elif not self.full():
            self._put_item(item)
            self._unfinished += 1  # (after: an item the container refused is not counted)
        else:
            task = running_task()
            self._waiting_items[task] = item
            try:
                # A get moves the item in, then wakes us -- or, if the container refuses it
                # (a PriorityQueue item that cannot be compared), wakes us with the error.
                refused = await _wait_on(self._putters, "QUEUE_PUT")
            except BaseException:
                self._waiting_items.pop(task, None)  # cancelled while parked: never went in
                raise
            if refused is not None:
                raise refused

    async def get(self) -> T:
        """Remove and return the next item, waiting for one if the queue is empty."""
        if not self._items:
            item: T = await _wait_on(self._getters, "QUEUE_GET")  # resumes with the item
            return item
        if self._putters:
            _check_here(self._putters)
        item = self._get_item()
        while self._putters and not self.full():
            await _wake(self._putters, 1, self._admit_waiting_putter())
        return item

    def _admit_waiting_putter(self) -> BaseException | None:
        """Room was made: move the first parked putter's item into the queue.

        Returns what to wake that putter with: None, or the error that kept its item out
        (its ``put`` raises it; the item taken by the get that made room is not affected).

        Discussion: the callers admit putters in a loop, while putters wait and there is
        room. One get makes room for one item, so the loop usually admits one putter -- but
        a refused item leaves the room free, and the next putter in line must take it now:
        left parked, it would be overtaken by a later ``put`` that finds the queue not full.
        Each turn wakes the putter it admitted, so the loop ends.
        """
        item = self._waiting_items.pop(self._putters.peek())
        try:
            self._put_item(item)
        except Exception as error:
            return error
        self._unfinished += 1
        return None

    def put_nowait(self, item: T) -> None:
        """Add ``item`` now, or raise ``QueueFull``."""
        if self._getters:
            _check_here(self._getters)
            self._unfinished += 1
            self._getters.kernel._wake(self._getters, 1, item)
        elif self.full():
            raise QueueFull(f"{self!r} is full")
        else:
            self._put_item(item)
            self._unfinished += 1

    def get_nowait(self) -> T:
        """Remove and return the next item now, or raise ``QueueEmpty``."""
        if not self._items:
            raise QueueEmpty(f"{self!r} is empty")
        if self._putters:
            _check_here(self._putters)
        item = self._get_item()
        while self._putters and not self.full():
            refused = self._admit_waiting_putter()
            self._putters.kernel._wake(self._putters, 1, refused)
        return item

    def task_done(self) -> None:
        """Mark one item taken from the queue as processed (for ``join``)."""
        if self._unfinished == 0:
            raise ValueError(f"task_done() called more times than items were put in {self!r}")
        if self._unfinished == 1 and self._joiners:
            _check_here(self._joiners)
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners:
            self._joiners.kernel._wake(self._joiners, len(self._joiners))

    async def join(self) -> None:
        """Wait until every item put has been marked ``task_done()``."""
        if self._unfinished:
            await _wait_on(self._joiners, "QUEUE_JOIN")


class PriorityQueue(Queue[T]):
    """Items come out smallest first (``(priority, data)`` tuples work well)."""

    def _init_items(self) -> None:
        self._items = []

    def _put_item(self, item: T) -> None:
        try:
            heapq.heappush(self._items, item)
        except BaseException:
            # heappush appends before it compares: an item that cannot be compared (two
            # equal priorities, then data without an order) must not stay in the list.
            for index in range(len(self._items) - 1, -1, -1):
                if self._items[index] is item:
                    del self._items[index]
                    break
            heapq.heapify(self._items)
            raise

    def _get_item(self) -> T:
        items = self._items
        smallest: T = items[0]
        try:
            heapq.heappop(items)
        except Exception:
            # heappop takes the smallest out, moves the last item to the top, and compares it
            # on its way down: two items that cannot be compared (equal priorities, data
            # without an order; never compared on their way in) fail there. The smallest is
            # still the right answer; the rest are put in order as far as they have one (a
            # sorted list is a heap), the pair that has none in either order.
            items.sort(key=functools.cmp_to_key(_compare_or_tie))
        return smallest


def _compare_or_tie(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a < b``, neither, or ``b < a``; items that cannot be compared tie."""
    try:
        return -1 if a < b else 1 if b < a else 0
    except TypeError:
        return 0


class LifoQueue(Queue[T]):
    """Items come out newest first (a stack)."""

    def _init_items(self) -> None:
        self._items = []

    def _get_item(self) -> T:
        item: T = self._items.pop()
        return item
