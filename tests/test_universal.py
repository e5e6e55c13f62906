"""UniversalQueue and UniversalEvent: threads and tasks in both directions, races, misuse.

The races are made deterministic by running a thread's call to completion *while the kernel
thread is inside a task step* (``in_a_thread`` starts a thread and joins it): whatever the
thread asked of the kernel is then queued and runs only after the step ends, so a test can
cancel a task in between, exactly in the window a real race would hit. Every wait on a
thread is bounded (``WAIT``); nothing sleeps to synchronise.
"""

from __future__ import annotations

import math
import queue
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import pytest

import kernel
from kernel import Kernel, TaskTimeout, VirtualClock
from kernel.threads import run_in_thread
from kernel.universal import UniversalEvent, UniversalQueue

WAIT = 5.0  # seconds: the bound on every wait for a thread; never reached when passing


def in_a_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Run ``func(*args)`` in a new thread and wait for it (blocks the kernel thread briefly)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(func(*args)))
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), f"{func!r} did not finish in time"
    return result[0]


def put_all(q: UniversalQueue[Any], items: Iterable[Any]) -> None:
    for item in items:
        q.put_sync(item)


def set_and_clear(event: UniversalEvent) -> None:
    event.set()
    event.clear()


async def waiting_requests() -> int:
    """How many calls from threads wait for the kernel to run them."""
    return len((await kernel.traps._get_kernel())._threadsafe)


# -- UniversalQueue ----------------------------------------------------------------------------


async def test_thread_to_task() -> None:
    q: UniversalQueue[int] = UniversalQueue()

    def produce() -> None:
        for i in range(100):
            q.put_sync(i)

    producer = threading.Thread(target=produce)
    producer.start()
    assert [await q.get() for _ in range(100)] == list(range(100))
    producer.join(WAIT)


async def test_task_to_thread() -> None:
    q: UniversalQueue[int | None] = UniversalQueue(maxsize=3)
    received: list[int] = []

    def consume() -> None:
        while (item := q.get_sync(timeout=WAIT)) is not None:
            received.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(50):
        await q.put(i)  # parks whenever the thread falls 3 behind
    await q.put(None)
    await run_in_thread(consumer.join, WAIT)
    assert received == list(range(50))


async def test_a_full_queue_blocks_a_thread_until_a_task_makes_room() -> None:
    q: UniversalQueue[str] = UniversalQueue(maxsize=1)
    await q.put("first")
    thread = threading.Thread(target=q.put_sync, args=("second", WAIT))
    thread.start()
    assert await q.get() == "first"
    await run_in_thread(thread.join, WAIT)
    assert await q.get() == "second"


async def test_thread_timeouts_raise_the_stdlib_exceptions() -> None:
    q: UniversalQueue[int] = UniversalQueue(maxsize=1)
    with pytest.raises(queue.Empty):
        await run_in_thread(q.get_sync, 0)
    await q.put(1)
    assert q.full() and q.qsize() == 1 and not q.empty()
    with pytest.raises(queue.Full):
        await run_in_thread(q.put_sync, 2, 0)
    assert await run_in_thread(q.get_sync, 0) == 1


@pytest.mark.parametrize(
    ("timeout", "error", "says"),
    [
        (-1, ValueError, "cannot wait a negative time"),
        (float("nan"), ValueError, "got NaN seconds"),
        ("1", TypeError, "takes a number of seconds, not '1'"),
        (True, TypeError, "takes a number of seconds, not True"),
    ],
)
async def test_a_bad_thread_timeout_is_refused_naming_what_it_takes(
    timeout: Any, error: type[Exception], says: str
) -> None:
    q: UniversalQueue[int] = UniversalQueue(maxsize=1)
    event = UniversalEvent()
    for call in (q.get_sync, lambda timeout: q.put_sync(1, timeout), event.wait_sync):
        with pytest.raises(error, match=re.escape(says)):
            await run_in_thread(call, timeout)
    assert q.empty()  # (the put was refused, not done)


async def test_tasks_are_served_in_the_order_they_arrived() -> None:
    q: UniversalQueue[str] = UniversalQueue()
    getters = [await kernel.spawn(q.get) for _ in range(3)]
    await kernel.sleep(0)
    in_a_thread(put_all, q, "abc")
    assert [await g.join() for g in getters] == ["a", "b", "c"]


async def test_a_newcomer_does_not_overtake_a_parked_getter() -> None:
    q: UniversalQueue[str] = UniversalQueue()
    first = await kernel.spawn(q.get)
    await kernel.sleep(0)
    in_a_thread(q.put_sync, "item")  # owed to `first`; the kernel has not served it yet
    assert await kernel.ignore_after(1, q.get(), timeout_result="nothing") == "nothing"
    assert await first.join() == "item"


async def test_a_newcomer_does_not_overtake_a_parked_putter() -> None:
    q: UniversalQueue[str] = UniversalQueue(maxsize=1)
    await q.put("old")
    first = await kernel.spawn(q.put, "first")
    await kernel.sleep(0)
    assert in_a_thread(q.get_sync, 0) == "old"  # room, owed to `first`; not served yet
    async with kernel.ignore_after(1) as late:
        await q.put("late")
    assert late.expired
    await first.join()
    assert in_a_thread(q.get_sync, 0) == "first"
    assert q.empty()


async def test_a_thread_asks_the_kernel_once_however_many_items_it_puts() -> None:
    q: UniversalQueue[int] = UniversalQueue()
    getter = await kernel.spawn(q.get)
    await kernel.sleep(0)
    before = await waiting_requests()
    in_a_thread(put_all, q, range(1000))
    assert await waiting_requests() == before + 1
    assert await getter.join() == 0
    assert q.qsize() == 999


async def test_a_getter_cancelled_as_an_item_arrives_takes_nothing() -> None:
    q: UniversalQueue[str] = UniversalQueue()
    getter = await kernel.spawn(q.get)
    await kernel.sleep(0)
    in_a_thread(q.put_sync, "item")  # the kernel will serve the getter after this step...
    await getter.cancel(blocking=False)  # ...but it is cancelled first, still parked
    await getter.wait()
    assert getter.cancelled
    assert q.qsize() == 1
    assert await q.get() == "item"


async def test_a_getter_handed_an_item_keeps_it_even_if_cancelled_then() -> None:
    q: UniversalQueue[str] = UniversalQueue()
    getter = await kernel.spawn(q.get)
    await kernel.sleep(0)
    in_a_thread(q.put_sync, "item")
    await kernel.sleep(0)  # the kernel serves the getter: it is handed the item, made ready
    await getter.cancel(blocking=False)  # pending until its next blocking call
    assert await getter.join() == "item"
    assert q.empty()


async def test_a_timed_out_get_takes_nothing(virtual_clock: VirtualClock) -> None:
    q: UniversalQueue[str] = UniversalQueue()
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(1, q.get())
    assert virtual_clock.now() == 1.0
    in_a_thread(q.put_sync, "later")
    assert await kernel.timeout_after(1, q.get()) == "later"


async def test_a_putter_cancelled_as_room_is_made_adds_nothing() -> None:
    q: UniversalQueue[str] = UniversalQueue(maxsize=1)
    await q.put("old")
    putter = await kernel.spawn(q.put, "new")
    await kernel.sleep(0)
    assert in_a_thread(q.get_sync, 0) == "old"  # room: the kernel will admit the putter...
    await putter.cancel(blocking=False)  # ...but it is cancelled first, still parked
    await putter.wait()
    assert putter.cancelled
    assert q.empty()


async def test_a_putter_admitted_stays_in_even_if_cancelled_then() -> None:
    q: UniversalQueue[str] = UniversalQueue(maxsize=1)
    await q.put("old")
    putter = await kernel.spawn(q.put, "new")
    await kernel.sleep(0)
    assert in_a_thread(q.get_sync, 0) == "old"
    await kernel.sleep(0)  # the kernel admits the putter's item and wakes it
    await putter.cancel(blocking=False)
    await putter.join()
    assert in_a_thread(q.get_sync, 0) == "new"


async def test_a_timed_out_put_adds_nothing() -> None:
    q: UniversalQueue[str] = UniversalQueue(maxsize=1)
    await q.put("old")
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(1, q.put("new"))
    assert in_a_thread(q.get_sync, 0) == "old"
    assert q.empty()


@pytest.mark.timeout(30)
async def test_thread_bridge_under_load() -> None:
    # 8 threads x 10k items -> tasks -> 8 threads, through two bounded queues.
    threads, per_thread, tasks = 8, 10_000, 4
    inbound: UniversalQueue[tuple[int, int] | None] = UniversalQueue(maxsize=256)
    outbound: UniversalQueue[tuple[int, int] | None] = UniversalQueue(maxsize=256)
    collected: list[list[tuple[int, int]]] = [[] for _ in range(threads)]

    def produce(t: int) -> None:
        for i in range(per_thread):
            inbound.put_sync((t, i), timeout=WAIT)

    def collect(t: int) -> None:
        while (item := outbound.get_sync(timeout=WAIT)) is not None:
            collected[t].append(item)

    async def relay() -> None:
        while (item := await inbound.get()) is not None:
            await outbound.put(item)

    producers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    collectors = [threading.Thread(target=collect, args=(t,)) for t in range(threads)]
    for thread in producers + collectors:
        thread.start()
    async with kernel.TaskGroup() as relays:
        for _ in range(tasks):
            await relays.spawn(relay)
        for thread in producers:
            await run_in_thread(thread.join, WAIT)
        for _ in range(tasks):
            await inbound.put(None)
    for _ in range(threads):
        await outbound.put(None)
    for thread in collectors:
        await run_in_thread(thread.join, WAIT)
    assert not any(t.is_alive() for t in producers + collectors)

    everything = Counter(item for items in collected for item in items)
    assert len(everything) == threads * per_thread
    assert set(everything.values()) == {1}  # nothing lost, nothing twice
    assert inbound.empty() and outbound.empty()


def test_a_queue_belongs_to_one_kernel_at_a_time() -> None:
    q: UniversalQueue[int] = UniversalQueue()

    async def park_a_getter() -> None:
        await kernel.spawn(q.get, daemon=True)
        await kernel.sleep(0)

    async def get() -> int:
        return await q.get()

    with Kernel(clock=VirtualClock()) as first:
        first.run(park_a_getter)
        with (
            Kernel(clock=VirtualClock()) as second,
            pytest.raises(RuntimeError, match="belongs to another kernel"),
        ):
            second.run(get)
        in_a_thread(q.put_sync, 1)  # any thread may still use the blocking calls
    with Kernel(clock=VirtualClock()) as third:  # the first one has closed: free to rebind
        in_a_thread(q.put_sync, 2)
        assert third.run(get) == 1


async def test_blocking_calls_inside_a_task_are_refused() -> None:
    q: UniversalQueue[int] = UniversalQueue()
    with pytest.raises(RuntimeError, match=r"get_sync\(\) was called in a kernel's thread"):
        q.get_sync()
    with pytest.raises(RuntimeError, match=r"use `await put\(\)`"):
        q.put_sync(1)
    with pytest.raises(RuntimeError, match=r"wait_sync\(\) was called in a kernel's thread"):
        UniversalEvent().wait_sync()


def test_awaiting_outside_a_kernel_names_the_blocking_call() -> None:
    coro = UniversalQueue[int]().get()
    with pytest.raises(RuntimeError, match=r"from a plain thread, call get_sync\(\)"):
        coro.send(None)


def test_maxsize_must_be_a_whole_number() -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="maxsize must be a whole number"):
            UniversalQueue(maxsize=bad)  # type: ignore[arg-type]


# -- UniversalEvent ----------------------------------------------------------------------------


async def test_event_thread_to_task() -> None:
    event = UniversalEvent()
    waiters = [await kernel.spawn(event.wait) for _ in range(3)]
    await kernel.sleep(0)
    assert not event.is_set()
    threading.Thread(target=event.set).start()
    for waiter in waiters:
        await waiter.join()
    assert event.is_set()
    await event.wait()  # already set: returns at once


async def test_event_task_to_thread() -> None:
    event = UniversalEvent()
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(event.wait_sync(WAIT)))
    thread.start()
    event.set()
    await run_in_thread(thread.join, WAIT)
    assert woke == [True]
    assert await run_in_thread(event.wait_sync, 0) is True
    event.clear()
    assert await run_in_thread(event.wait_sync, 0) is False


async def test_event_set_by_a_task_wakes_tasks_at_once() -> None:
    event = UniversalEvent()
    waiter = await kernel.spawn(event.wait)
    await kernel.sleep(0)
    event.set()
    assert await waiting_requests() == 0  # same thread: no trip through the wake-up socket
    await waiter.join()


async def test_event_set_then_cleared_by_a_thread_still_wakes_who_was_waiting() -> None:
    event = UniversalEvent()
    early = await kernel.spawn(event.wait)
    await kernel.sleep(0)
    in_a_thread(set_and_clear, event)
    late = await kernel.spawn(event.wait)  # starts after the clear: waits for the next set
    await early.join()
    await kernel.sleep(0)
    assert not late.done
    event.set()
    await late.join()


async def test_event_wait_cancelled_leaves_no_stale_waiter() -> None:
    event = UniversalEvent()
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(1, event.wait())
    in_a_thread(event.set)
    assert await waiting_requests() == 0  # no task waits, so the thread did not ask
    await event.wait()


def test_event_belongs_to_one_kernel_at_a_time() -> None:
    event = UniversalEvent()

    async def park_a_waiter() -> None:
        await kernel.spawn(event.wait, daemon=True)
        await kernel.sleep(0)

    with Kernel(clock=VirtualClock()) as first, Kernel(clock=VirtualClock()) as second:
        first.run(park_a_waiter)
        with pytest.raises(RuntimeError, match="belongs to another kernel"):
            second.run(event.wait)


def test_put_from_asyncio_code_on_the_kernels_loop_says_what_to_do() -> None:
    """Not a kernel task: a clear error, and nothing counted that would stay counted."""
    import kernel.aio

    full = UniversalQueue[int](maxsize=1)
    full.put_sync(0)

    async def asyncio_code() -> None:
        await full.put(1)

    with pytest.raises(RuntimeError, match=r"kernel\.aio\.run_kernel"):
        kernel.aio.run(asyncio_code())
    assert full._task_putters == 0
    assert full.get_sync() == 0 and full.empty()


async def test_an_infinite_thread_timeout_waits_as_long_as_none() -> None:
    q: UniversalQueue[int] = UniversalQueue(maxsize=1)
    event = UniversalEvent()
    getting = kernel.run_in_thread(q.get_sync, math.inf)
    waiting = kernel.run_in_thread(event.wait_sync, math.inf)
    async with kernel.TaskGroup() as group:
        got = await group.spawn(getting)
        set_ = await group.spawn(waiting)
        await q.put(7)
        event.set()
    assert (got.result, set_.result) == (7, True)
