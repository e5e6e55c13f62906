"""Universal primitives: one queue, one event, usable from plain threads and from tasks.

A kernel task must never block its thread, and a plain thread cannot ``await``. A
``UniversalQueue`` and a ``UniversalEvent`` serve both: tasks ``await q.get()``, threads call
``q.get_sync()``, and either side can be the producer. Each object keeps its state under one
``threading.Lock`` and has two kinds of waiters:

* threads wait on a ``threading.Condition`` of that lock and are woken by ``notify``;
* tasks park on a ``WaitQueue`` (the ``WAIT_ON`` trap). Only the kernel thread may touch a
  wait queue, so a thread that makes progress possible for a task does not wake it itself:
  it asks the kernel, through ``Kernel.call_threadsafe``, to run ``_serve`` -- which hands
  items to parked getters, lets parked putters in, wakes event waiters. It asks only when a
  task is actually waiting (a counter, kept under the lock), and only once until the kernel
  has run the request, so a thread putting 10,000 items writes to the kernel's wake-up
  socket a handful of times, not 10,000.

Invariant: an item is never lost or duplicated. Items move only under the lock; a parked
getter is *handed* its item by ``_serve`` in the kernel thread (the wake-up carries it), and
a parked putter's item goes in only when ``_serve`` admits it. A task is cancelled only
while it is parked -- a woken task always resumes normally (see ``kernel/sync.py``) -- so a
cancelled ``get`` was handed nothing and a cancelled ``put`` added nothing.

An object belongs to one kernel: the first one whose task uses it (again after that kernel
has closed). A task of another kernel gets a ``RuntimeError``; its threads may use the
``*_sync`` methods like any thread.

Read next: ``examples/08_thread_feeds_tasks.py``, a thread feeding tasks through a queue.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

from .scheduler import current_kernel, running_task
from .time import _check_seconds
from .traps import _wait_on
from .waitqueue import WaitQueue

if TYPE_CHECKING:
    from .scheduler import Kernel
    from .task import Task

__all__ = ["UniversalEvent", "UniversalQueue"]

T = TypeVar("T")


class _Universal:
    """What both primitives share: the lock, the kernel their tasks belong to, and the way a
    thread asks that kernel to run ``_serve``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kernel: Kernel | None = None
        self._serve_requested = False  # a _serve call is on its way to the kernel

    def _bind(self, method: str) -> Kernel:
        """From a task: the running kernel, which must be the one this object belongs to."""
        kernel = current_kernel()
        if kernel is self._kernel and kernel is not None:
            return kernel
        if kernel is None:
            raise RuntimeError(
                f"{type(self).__name__}.{method}() must be awaited in a task of a running "
                f"kernel; from a plain thread, call {method}_sync()"
            )
        with self._lock:
            if self._kernel is not None and not self._kernel._closed:
                raise RuntimeError(
                    f"{self!r} belongs to another kernel (another thread?). Tasks of one "
                    f"kernel await it; any other thread uses the blocking *_sync() methods"
                )
            self._kernel = kernel
            self._serve_requested = False  # a request to a closed kernel will never run
        return kernel

    def _check_sync_call(self, method: str, timeout: float | None) -> float | None:
        """Refuse a ``*_sync`` call that cannot work: a bad ``timeout``, or the wrong thread.
        Return the timeout to wait with.

        ``timeout`` is None (wait as long as it takes) or a number of seconds >= 0, as for
        ``queue.Queue.get``; anything else would fail deep inside ``threading``, or not at all.
        ``math.inf`` -- or anything longer than ``threading`` can wait -- means None, as it
        does for the kernel's own timeouts (``threading`` would raise ``OverflowError``).
        """
        if timeout is not None:
            what = f"{type(self).__name__}.{method}_sync(timeout=...)"
            if _check_seconds(timeout, what) < 0:  # (a number, not NaN: checked there)
                raise ValueError(
                    f"{what} got {timeout!r}: a thread cannot wait a negative time; pass 0 "
                    f"to only look, or None to wait as long as it takes"
                )
            if timeout >= threading.TIMEOUT_MAX:
                timeout = None
        # A blocking call would freeze every task of the kernel running in this thread.
        if current_kernel() is not None:
            raise RuntimeError(
                f"{type(self).__name__}.{method}_sync() was called in a kernel's thread, where "
                f"blocking stops every task; use `await {method}()` in a task"
            )
        return timeout

    def _request_serve(self) -> None:
        """From a thread, lock held: have the kernel run ``_serve`` soon (once is enough)."""
        kernel = self._kernel
        if self._serve_requested or kernel is None:
            return
        self._serve_requested = True
        try:
            kernel.call_threadsafe(self._serve_requested_call, kernel)
        except RuntimeError:  # closed: its tasks are gone, nobody is left to serve
            self._serve_requested = False

    def _serve_requested_call(self, kernel: Kernel) -> None:
        """In the kernel thread, between task steps: the call a thread asked for."""
        with self._lock:
            self._serve_requested = False
            if kernel is self._kernel:
                self._serve(kernel)

    def _serve(self, kernel: Kernel) -> None:
        """Kernel thread, lock held: wake the parked tasks that can now go on."""
        raise NotImplementedError


class UniversalQueue(_Universal, Generic[T]):
    """A FIFO queue between threads and tasks. ``maxsize=0`` means unbounded.

    Tasks: ``await put(item)``, ``await get()``. Threads: ``put_sync(item, timeout=None)``,
    ``get_sync(timeout=None)``, which raise ``queue.Full`` / ``queue.Empty`` on timeout.
    Tasks are served in the order they arrived. Threads are not in that line: a thread may
    take an item (or a free slot) before the kernel has got round to serving a parked task.
    """

    def __init__(self, maxsize: int = 0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be a whole number >= 0 (0: unbounded), got {maxsize!r}")
        super().__init__()
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._not_empty = threading.Condition(self._lock)  # threads waiting in get_sync
        self._not_full = threading.Condition(self._lock)  # threads waiting in put_sync
        self._thread_getters = 0
        self._thread_putters = 0
        self._getters = WaitQueue(self)  # parked tasks; only the kernel thread touches these
        self._putters = WaitQueue(self)
        self._waiting_items: dict[Task, T] = {}  # the item of each parked putter
        # Tasks inside get()/put() past the point of deciding to park. Kept under the lock,
        # so a thread sees a task the moment it decided to wait, before it has even parked.
        self._task_getters = 0
        self._task_putters = 0

    def __repr__(self) -> str:
        return f"<UniversalQueue size={len(self._items)} maxsize={self.maxsize}>"

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    # -- tasks -----------------------------------------------------------------------------

    async def put(self, item: T) -> None:
        """Add ``item``, waiting (parked, not blocking the kernel) while the queue is full."""
        kernel = self._bind("put")
        with self._lock:
            if self._putters:  # earlier putters first: a thread may have made room for them
                self._serve(kernel)
            if not self.full():
                self._items.append(item)
                self._item_added(kernel)
                return
            task = running_task()  # (which raises outside a kernel task: before it is counted)
            self._task_putters += 1
        self._waiting_items[task] = item
        try:
            await _wait_on(self._putters, "UNIVERSAL_PUT")  # _serve moves the item in
        finally:
            with self._lock:
                self._task_putters -= 1
                self._waiting_items.pop(task, None)  # still here: cancelled, never went in

    async def get(self) -> T:
        """Remove and return the next item, waiting (parked) while the queue is empty."""
        kernel = self._bind("get")
        with self._lock:
            if self._getters:  # earlier getters first: they may be owed items a thread put
                self._serve(kernel)
            if self._items:
                item = self._items.popleft()
                self._room_made(kernel)
                return item
            self._task_getters += 1
        # Discussion: the lost wake-up. A thread may put an item right here, after we saw
        # the queue empty and before we park. It sees _task_getters > 0 and asks the kernel
        # to run _serve -- but the kernel runs such requests only between task steps, and
        # this step ends with the park below. So _serve always finds us parked, and hands
        # us the item -- or, if the park turned into a cancellation, finds nobody and leaves
        # the item in the queue.
        try:
            item = await _wait_on(self._getters, "UNIVERSAL_GET")  # resumes with the item
        finally:
            with self._lock:
                self._task_getters -= 1
        return item

    def _item_added(self, kernel: Kernel) -> None:
        """Kernel thread, lock held: an item went in; serve a parked getter, tell threads."""
        if self._getters:
            self._serve(kernel)
        if self._thread_getters:
            self._not_empty.notify()

    def _room_made(self, kernel: Kernel) -> None:
        """Kernel thread, lock held: an item came out; admit a parked putter, tell threads."""
        if self._putters:
            self._serve(kernel)
        if self._thread_putters:
            self._not_full.notify()

    def _serve(self, kernel: Kernel) -> None:
        """Kernel thread, lock held: hand items to parked getters, admit parked putters.

        Getters and putters are normally never parked together (one waits only while the
        queue is empty, the other while it is full), but threads can change the queue in
        between, so this loops until neither can make progress.
        """
        items = self._items
        while True:
            if items and self._getters:
                kernel._wake(self._getters, 1, items.popleft())
                if self._thread_putters:
                    self._not_full.notify()
            elif self._putters and not self.full():
                items.append(self._waiting_items.pop(self._putters.peek()))
                kernel._wake(self._putters, 1)
                if self._thread_getters:
                    self._not_empty.notify()
            else:
                return

    # -- threads ---------------------------------------------------------------------------

    def put_sync(self, item: T, timeout: float | None = None) -> None:
        """From a thread: add ``item``, blocking while the queue is full.

        Raises ``queue.Full`` if there is still no room after ``timeout`` seconds.
        """
        timeout = self._check_sync_call("put", timeout)
        with self._lock:
            if self.full():
                self._thread_putters += 1
                try:
                    if not self._not_full.wait_for(lambda: not self.full(), timeout):
                        raise queue.Full(f"{self!r} stayed full for {timeout} seconds")
                finally:
                    self._thread_putters -= 1
            self._items.append(item)
            if self._thread_getters:
                self._not_empty.notify()
            if self._task_getters:
                self._request_serve()

    def get_sync(self, timeout: float | None = None) -> T:
        """From a thread: remove and return the next item, blocking while the queue is empty.

        Raises ``queue.Empty`` if there is still nothing after ``timeout`` seconds.
        """
        timeout = self._check_sync_call("get", timeout)
        with self._lock:
            if not self._items:
                self._thread_getters += 1
                try:
                    if not self._not_empty.wait_for(lambda: bool(self._items), timeout):
                        raise queue.Empty(f"{self!r} stayed empty for {timeout} seconds")
                finally:
                    self._thread_getters -= 1
            item = self._items.popleft()
            if self._thread_putters:
                self._not_full.notify()
            if self._task_putters:
                self._request_serve()
            return item


class UniversalEvent(_Universal):
    """An event flag that threads and tasks can set and wait for.

    ``set()`` and ``clear()`` are plain methods, callable anywhere. Tasks ``await wait()``;
    threads call ``wait_sync(timeout=None)``, which returns False on timeout. A waiter that
    was waiting when the event was set wakes up even if it is cleared again at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._flag = False
        self._generation = 0  # counts set() calls that raised the flag
        self._changed = threading.Condition(self._lock)  # threads waiting in wait_sync
        self._waiters = WaitQueue(self)  # parked tasks
        self._task_waiters = 0  # tasks inside wait(), under the lock (see UniversalQueue)

    def __repr__(self) -> str:
        return f"<UniversalEvent {'set' if self._flag else 'unset'}>"

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiting thread and task."""
        with self._lock:
            if self._flag:
                return
            self._flag = True
            self._generation += 1
            self._changed.notify_all()
            if self._task_waiters:
                kernel = self._kernel
                if kernel is not None and current_kernel() is kernel:
                    self._serve(kernel)  # we are in its thread: wake them now
                else:
                    self._request_serve()

    def clear(self) -> None:
        """Lower the flag; later waiters wait for the next ``set()``."""
        with self._lock:
            self._flag = False

    async def wait(self) -> None:
        """Wait until the event is set (at once if it is)."""
        self._bind("wait")
        with self._lock:
            if self._flag:
                return
            generation = self._generation
            self._task_waiters += 1
        try:
            # _serve wakes every parked waiter; one that parked after a set() and clear() it
            # did not see (possible when they come from a thread) waits on for the next set.
            # The lost wake-up cannot happen, for the reason given in UniversalQueue.get.
            while True:
                await _wait_on(self._waiters, "UNIVERSAL_EVENT")
                if self._generation != generation:
                    return
        finally:
            with self._lock:
                self._task_waiters -= 1

    def _serve(self, kernel: Kernel) -> None:
        kernel._wake(self._waiters, len(self._waiters))

    def wait_sync(self, timeout: float | None = None) -> bool:
        """From a thread: block until the event is set; False if ``timeout`` ran out first."""
        timeout = self._check_sync_call("wait", timeout)
        with self._lock:
            if self._flag:
                return True
            generation = self._generation
            return self._changed.wait_for(lambda: self._generation != generation, timeout)
