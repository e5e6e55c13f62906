"""Queues: order, bounds, join/task_done, no item lost or duplicated under cancellation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import kernel
from kernel import (
    CancelledError,
    Kernel,
    LifoQueue,
    PriorityQueue,
    Queue,
    QueueEmpty,
    QueueFull,
    Semaphore,
    Task,
    TaskTimeout,
    VirtualClock,
)


async def settle() -> None:
    for _ in range(5):
        await kernel.sleep(0)


async def test_fifo_priority_and_lifo_order() -> None:
    cases: list[tuple[Queue[int], list[int]]] = [
        (Queue(), [3, 1, 2]),
        (PriorityQueue(), [1, 2, 3]),
        (LifoQueue(), [2, 1, 3]),
    ]
    for queue, expected in cases:
        for item in (3, 1, 2):
            await queue.put(item)
        assert queue.qsize() == 3 and not queue.empty()
        assert [await queue.get() for _ in range(3)] == expected
        assert queue.empty()


async def test_bounded_put_waits_for_room(virtual_clock: VirtualClock) -> None:
    queue: Queue[int] = Queue(maxsize=2)
    log: list[tuple[str, int, float]] = []

    async def producer() -> None:
        for i in range(4):
            await queue.put(i)
            log.append(("put", i, virtual_clock.now()))

    await kernel.spawn(producer)
    await settle()
    assert queue.full() and [entry[1] for entry in log] == [0, 1]
    for _ in range(4):
        await kernel.sleep(1)
        log.append(("got", await queue.get(), virtual_clock.now()))
        await settle()
    assert log == [
        ("put", 0, 0.0),
        ("put", 1, 0.0),
        ("got", 0, 1.0),
        ("put", 2, 1.0),
        ("got", 1, 2.0),
        ("put", 3, 2.0),
        ("got", 2, 3.0),
        ("got", 3, 4.0),
    ]


async def test_getters_and_putters_are_served_in_arrival_order() -> None:
    queue: Queue[str] = Queue(maxsize=1)
    got: list[tuple[str, str]] = []

    async def getter(name: str) -> None:
        got.append((name, await queue.get()))

    for name in ("g1", "g2", "g3"):
        await kernel.spawn(getter, name)
    await settle()
    for item in "abc":
        await queue.put(item)
    await settle()
    assert got == [("g1", "a"), ("g2", "b"), ("g3", "c")]

    await queue.put("first")  # now full: the next putters wait in line
    for item in ("second", "third"):
        await kernel.spawn(queue.put, item)
    await settle()
    assert [await queue.get() for _ in range(3)] == ["first", "second", "third"]


async def test_nowait_variants() -> None:
    queue: Queue[int] = Queue(maxsize=1)
    with pytest.raises(QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(1)
    with pytest.raises(QueueFull):
        queue.put_nowait(2)
    waiting_putter = await kernel.spawn(queue.put, 2)
    await settle()
    assert queue.get_nowait() == 1  # makes room: the parked putter's item moves in
    await waiting_putter.join()
    assert queue.get_nowait() == 2
    getter = await kernel.spawn(queue.get)
    await settle()
    queue.put_nowait(3)  # handed straight to the parked getter
    assert await getter.join() == 3
    assert queue.empty()


async def test_an_item_a_priority_queue_cannot_order_is_refused_whole() -> None:
    """Equal priorities, then data without an order: the put raises and adds nothing."""
    queue: PriorityQueue[tuple[int, dict[str, str]]] = PriorityQueue()
    await queue.put((1, {"id": "a"}))
    with pytest.raises(TypeError):
        await queue.put((1, {"id": "b"}))
    with pytest.raises(TypeError):
        queue.put_nowait((1, {"id": "c"}))
    assert queue.qsize() == 1
    assert await queue.get() == (1, {"id": "a"})
    queue.task_done()
    await queue.join()  # nothing refused was counted as unfinished


async def test_a_parked_putter_whose_item_is_refused_gets_the_error() -> None:
    """The get that made room keeps its item; the putter's put raises, and nothing waits."""
    queue: PriorityQueue[tuple[int, dict[str, str]]] = PriorityQueue(2)
    await queue.put((1, {"id": "a"}))
    await queue.put((2, {"id": "b"}))

    async def putter() -> None:
        await queue.put((2, {"id": "c"}))  # parks: the queue is full

    task = await kernel.spawn(putter)
    await settle()
    assert await queue.get() == (1, {"id": "a"})
    with pytest.raises(kernel.TaskError) as info:
        await task.join()
    assert isinstance(info.value.__cause__, TypeError)
    assert (queue.qsize(), queue.get_nowait()) == (1, (2, {"id": "b"}))


@pytest.mark.parametrize("nowait", [False, True], ids=["get", "get_nowait"])
async def test_the_room_a_refused_item_left_goes_to_the_next_parked_putter(nowait: bool) -> None:
    """The first parked putter's item is refused: the next one in line is admitted at once,
    not left parked while a later put could take the free slot ahead of it."""
    queue: PriorityQueue[tuple[int, Any]] = PriorityQueue(2)
    await queue.put((1, "a"))
    await queue.put((5, "b"))
    refused = await kernel.spawn(queue.put, (5, {"no": "order"}))  # cannot follow (5, "b")
    admitted = await kernel.spawn(queue.put, (3, "c"))
    await settle()
    assert len(queue._putters) == 2
    assert (queue.get_nowait() if nowait else await queue.get()) == (1, "a")
    assert queue.full() and len(queue._putters) == 0
    with pytest.raises(kernel.TaskError) as info:
        await refused.join()
    assert isinstance(info.value.__cause__, TypeError)
    await admitted.join()
    assert [queue.get_nowait(), queue.get_nowait()] == [(3, "c"), (5, "b")]
    assert queue._unfinished == 3  # a, b and c: the refused item was never counted


def test_another_kernels_waiters_are_refused_before_anything_changes() -> None:
    """A queue (or event) whose waiters are tasks of another, still open, kernel: handing
    them an item from here is an error, and the item stays with the caller."""
    queue: Queue[str] = Queue()
    event = kernel.Event()

    async def waits() -> None:
        await kernel.spawn(queue.get, daemon=True)
        await kernel.spawn(event.wait, daemon=True)
        await settle()

    async def hands_over() -> None:
        with pytest.raises(RuntimeError, match="in use by another kernel"):
            await queue.put("precious")
        with pytest.raises(RuntimeError, match="in use by another kernel"):
            queue.put_nowait("precious")
        with pytest.raises(RuntimeError, match="in use by another kernel"):
            await event.set()

    with Kernel(clock=VirtualClock()) as first:
        first.run(waits)  # its two tasks stay parked: the kernel is still open
        kernel.run(hands_over, clock=VirtualClock())
        assert queue.qsize() == 0 and queue._unfinished == 0


@pytest.mark.usefixtures("no_timeout_signal")  # so that the kernel can see the deadlock
def test_a_kernel_that_failed_leaves_no_waiter_behind_in_a_queue() -> None:
    """An abandoned kernel's parked tasks leave the queue's line, so a later kernel's put
    is not handed to a task that will never run."""
    queue: Queue[str] = Queue()

    async def shielded_getter() -> None:
        async with kernel.disable_cancellation():
            await queue.get()

    async def first() -> None:
        await kernel.spawn(shielded_getter, daemon=True)
        await settle()

    with pytest.raises(kernel.Deadlock):  # closing cannot cancel it: the kernel gives up
        kernel.run(first, clock=VirtualClock())

    async def second() -> str:
        await queue.put("precious")
        return queue.get_nowait()

    assert kernel.run(second, clock=VirtualClock()) == "precious"


async def test_join_waits_for_task_done(virtual_clock: VirtualClock) -> None:
    queue: Queue[int] = Queue()
    await queue.join()  # nothing unfinished: returns at once

    async def worker() -> None:
        while True:
            await queue.get()
            await kernel.sleep(1)
            queue.task_done()

    await kernel.spawn(worker, daemon=True)
    for i in range(3):
        await queue.put(i)
    await queue.join()
    assert virtual_clock.now() == 3.0
    with pytest.raises(ValueError, match="task_done\\(\\) called more times"):
        queue.task_done()


@pytest.mark.parametrize("bad", [-1, 2.0, True, None])
def test_maxsize_is_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match="maxsize must be a whole number"):
        Queue(bad)


class TestCancellation:
    async def test_cancelled_get_consumes_nothing(self) -> None:
        queue: Queue[str] = Queue()
        getter = await kernel.spawn(queue.get)
        await settle()
        await getter.cancel()
        await queue.put("item")
        assert queue.qsize() == 1 and await queue.get() == "item"

    async def test_get_that_times_out_consumes_nothing(self) -> None:
        queue: Queue[str] = Queue()
        with pytest.raises(TaskTimeout):
            await kernel.timeout_after(1, queue.get)
        queue.put_nowait("item")
        assert queue.get_nowait() == "item"

    async def test_cancelled_put_adds_nothing(self) -> None:
        queue: Queue[str] = Queue(maxsize=1)
        await queue.put("kept")
        putter = await kernel.spawn(queue.put, "dropped")
        await settle()
        await putter.cancel()
        assert queue.get_nowait() == "kept"
        assert queue.empty() and queue._waiting_items == {}
        with pytest.raises(TaskTimeout):
            await kernel.timeout_after(1, queue.get)

    async def test_put_that_times_out_adds_nothing(self) -> None:
        queue: Queue[str] = Queue(maxsize=1)
        await queue.put("kept")
        with pytest.raises(TaskTimeout):
            await kernel.timeout_after(1, queue.put, "dropped")
        assert queue.get_nowait() == "kept" and queue.empty()

    async def test_a_getter_cancelled_after_receiving_keeps_its_item(self) -> None:
        queue: Queue[str] = Queue()
        received: list[str] = []

        async def getter() -> None:
            received.append(await queue.get())
            await kernel.sleep(1)  # the cancel lands here

        task = await kernel.spawn(getter)
        await settle()
        await queue.put("item")  # handed over: the getter is woken, not yet run
        await task.cancel()
        assert received == ["item"] and queue.empty()

    async def test_join_that_times_out_leaves_no_stale_waiter(self) -> None:
        queue: Queue[int] = Queue()
        await queue.put(1)
        with pytest.raises(TaskTimeout):
            await kernel.timeout_after(1, queue.join)
        assert len(queue._joiners) == 0
        await queue.get()
        queue.task_done()
        await queue.join()

    async def test_cancelled_join_leaves_no_stale_waiter(self) -> None:
        queue: Queue[int] = Queue()
        await queue.put(1)
        joiner = await kernel.spawn(queue.join)
        await settle()
        await joiner.cancel()
        assert len(queue._joiners) == 0
        await queue.get()
        queue.task_done()


# -- Hypothesis: random puts, gets, cancels and timeouts against a model --------------------

timeouts = st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 2.0]))


class KernelMachine(RuleBasedStateMachine):
    """A kernel kept open across steps: rules spawn tasks, cancel them, and let time pass."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = Kernel(clock=VirtualClock())
        self.tasks: list[Task] = []

    def spawn(self, corofunc: Any) -> Task:
        async def start() -> Task:
            return await kernel.spawn(corofunc, daemon=True)

        task: Task = self.kernel.run(start)
        self.tasks.append(task)
        return task

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        alive = [t for t in self.tasks if not t.done]
        if alive:
            task = data.draw(st.sampled_from(alive))

            async def cancel_it() -> None:
                await task.cancel(blocking=False)

            self.kernel.run(cancel_it)

    @rule(seconds=st.sampled_from([0.0, 0.25, 1.0]))
    def advance(self, seconds: float) -> None:
        async def wait() -> None:
            await kernel.sleep(seconds)
            await settle()

        self.kernel.run(wait)

    def cancel_all_and_close(self) -> None:
        async def finish() -> None:
            for task in self.tasks:
                await task.cancel()

        self.kernel.run(finish)
        self.kernel.close()


class QueueMachine(KernelMachine):
    """Puts and gets (one getter at a time, so arrival order is visible), cancels, timeouts.

    Checked: every item is delivered exactly once, in the order it was put; an item whose
    put was cancelled or timed out is never delivered; the queue never exceeds its bound.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queue: Queue[int] = Queue(maxsize=2)
        self.next_item = 0
        self.put_ok: set[int] = set()
        self.put_failed: set[int] = set()
        self.received: list[int] = []
        self.getters: list[Task] = []

    @rule(timeout=timeouts)
    def put(self, timeout: float | None) -> None:
        item, self.next_item = self.next_item, self.next_item + 1

        async def putter() -> None:
            try:
                await kernel.timeout_after(timeout, self.queue.put, item)
            except CancelledError:
                self.put_failed.add(item)
                raise
            self.put_ok.add(item)

        self.spawn(putter)

    @precondition(lambda self: all(t.done for t in self.getters))
    @rule(timeout=timeouts)
    def get(self, timeout: float | None) -> None:
        async def getter() -> None:
            self.received.append(await kernel.timeout_after(timeout, self.queue.get))

        self.getters.append(self.spawn(getter))

    @invariant()
    def consistent(self) -> None:
        assert len(self.received) == len(set(self.received)), "an item was delivered twice"
        assert self.received == sorted(self.received), "items left out of order"
        assert not set(self.received) & self.put_failed, "a cancelled put was delivered"
        assert self.queue.qsize() <= self.queue.maxsize

    def teardown(self) -> None:
        self.cancel_all_and_close()
        rest = []
        while not self.queue.empty():
            rest.append(self.queue.get_nowait())
        delivered = self.received + rest
        assert delivered == sorted(set(delivered)), "lost order or duplicated"
        assert set(delivered) == self.put_ok, "an item that was put is missing"


class SemaphoreMachine(KernelMachine):
    """Acquirers that hold a permit for a while, cancels and timeouts, against a count."""

    PERMITS = 2

    def __init__(self) -> None:
        super().__init__()
        self.sem = Semaphore(self.PERMITS)
        self.holders: set[int] = set()
        self.next_id = 0

    @rule(hold=st.sampled_from([0.5, 1.0, 3.0]), timeout=timeouts)
    def acquire(self, hold: float, timeout: float | None) -> None:
        me, self.next_id = self.next_id, self.next_id + 1

        async def user() -> None:
            await kernel.timeout_after(timeout, self.sem.acquire)
            self.holders.add(me)
            try:
                await kernel.sleep(hold)
            finally:
                self.holders.discard(me)
                await self.sem.release()

        self.spawn(user)

    @invariant()
    def never_over_committed(self) -> None:
        assert len(self.holders) <= self.PERMITS
        assert 0 <= self.sem.value <= self.PERMITS
        assert self.sem.value == 0 or len(self.sem._waiters) == 0, "a permit idles while tasks wait"

    def teardown(self) -> None:
        self.cancel_all_and_close()
        assert self.holders == set()
        assert self.sem.value == self.PERMITS, "a permit was lost or invented"


TestQueueMachine = QueueMachine.TestCase
TestQueueMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSemaphoreMachine = SemaphoreMachine.TestCase
TestSemaphoreMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


async def test_a_priority_queue_delivers_items_its_reordering_cannot_compare() -> None:
    # Two items that were never compared on their way in (equal priorities, data without
    # an order) meet when get() reorders the heap -- after it took out the smallest, which
    # was lost; and failing each get would jam the queue for good.
    class Unordered:
        pass

    queue: kernel.PriorityQueue[tuple[int, object]] = kernel.PriorityQueue()
    a, b = Unordered(), Unordered()
    await queue.put((0, "first"))
    await queue.put((1, a))
    await queue.put((1, b))
    await queue.put((2, "last"))
    assert await queue.get() == (0, "first")
    assert {id((await queue.get())[1]), id(queue.get_nowait()[1])} == {id(a), id(b)}
    assert await queue.get() == (2, "last")  # still in order where there is one
    assert queue.empty()
