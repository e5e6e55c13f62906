"""Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition: fairness, cancellation, misuse."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import kernel
from kernel import (
    BoundedSemaphore,
    Condition,
    Event,
    Kernel,
    Lock,
    RLock,
    Semaphore,
    TaskCancelled,
    TaskTimeout,
    VirtualClock,
)


async def settle() -> None:
    """Let every ready task run until it blocks (a few passes of the ready queue)."""
    for _ in range(5):
        await kernel.sleep(0)


# -- Event -----------------------------------------------------------------------------------


async def test_event_wakes_every_waiter(virtual_clock: VirtualClock) -> None:
    event = Event()
    woken: list[tuple[str, float]] = []

    async def waiter(name: str) -> None:
        await event.wait()
        woken.append((name, virtual_clock.now()))

    for name in "abc":
        await kernel.spawn(waiter, name)
    await kernel.sleep(2)
    assert not event.is_set()
    await event.set()
    await settle()
    assert woken == [("a", 2.0), ("b", 2.0), ("c", 2.0)]
    await event.wait()  # already set: returns at once
    event.clear()
    assert not event.is_set()
    assert repr(event) == "<Event unset waiting=0>"


async def test_cancelled_event_wait_leaves_no_stale_waiter() -> None:
    event = Event()
    task = await kernel.spawn(event.wait)
    await settle()
    assert len(event._waiters) == 1
    await task.cancel()
    assert len(event._waiters) == 0
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(1, event.wait)
    assert len(event._waiters) == 0


# -- Lock ------------------------------------------------------------------------------------


async def test_lock_serves_waiters_in_arrival_order() -> None:
    lock = Lock()
    order: list[str] = []

    async def worker(name: str) -> None:
        async with lock:
            order.append(name)
            await kernel.sleep(1)

    async with kernel.TaskGroup() as g:
        for name in "abcde":
            await g.spawn(worker, name)
    assert order == list("abcde")
    assert not lock.locked()


async def test_a_released_lock_is_handed_over_not_grabbed() -> None:
    lock = Lock()
    log: list[str] = []

    async def waiter() -> None:
        async with lock:
            log.append("waiter")

    await lock.acquire()
    task = await kernel.spawn(waiter)
    await settle()  # the waiter is parked
    await lock.release()  # handed to the waiter before it even runs...
    assert lock._owner is task
    async with lock:  # ...so the releaser, asking again at once, comes second
        log.append("releaser")
    assert log == ["waiter", "releaser"]


async def test_cancelled_acquire_never_owns_the_lock() -> None:
    lock = Lock()
    await lock.acquire()
    task = await kernel.spawn(lock.acquire)
    await settle()
    await task.cancel()
    assert task.cancelled
    await lock.release()
    assert not lock.locked()  # not handed to the cancelled waiter
    async with lock:
        assert lock.locked()


async def test_acquire_that_times_out_leaves_the_lock_consistent() -> None:
    lock = Lock()
    holder_done = Event()

    async def holder() -> None:
        async with lock:
            await holder_done.wait()

    await kernel.spawn(holder)
    await settle()
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(1, lock.acquire)
    await holder_done.set()
    await settle()
    assert not lock.locked()
    async with lock:
        assert lock.locked()


async def test_a_waiter_cancelled_after_the_hand_over_owns_the_lock_and_releases_it() -> None:
    lock = Lock()
    log: list[str] = []

    async def waiter() -> None:
        try:
            async with lock:
                log.append("got the lock")
                await kernel.sleep(1)  # the pending cancel arrives here, inside the block
        except TaskCancelled:
            log.append("cancelled, lock released on the way out")
            raise

    await lock.acquire()
    task = await kernel.spawn(waiter)
    await settle()
    await lock.release()  # hands over: the waiter is woken, not yet run
    await task.cancel()  # arrives while it is ready: delivered at its next blocking call
    assert log == ["got the lock", "cancelled, lock released on the way out"]
    assert not lock.locked()


async def test_lock_misuse_is_reported() -> None:
    lock = Lock()
    with pytest.raises(RuntimeError, match="not locked"):
        await lock.release()
    await lock.acquire()
    with pytest.raises(RuntimeError, match="already holds"):
        await lock.acquire()

    async def stranger() -> None:
        await lock.release()

    with pytest.raises(kernel.TaskError) as info:
        await (await kernel.spawn(stranger)).join()
    assert "only the owner can" in str(info.value.__cause__)
    await lock.release()


# -- RLock -----------------------------------------------------------------------------------


async def test_rlock_is_reentrant_for_its_owner_only() -> None:
    lock = RLock()
    order: list[str] = []

    async def other() -> None:
        async with lock:
            order.append("other")

    async with lock:
        async with lock:
            task = await kernel.spawn(other)
            await settle()
            order.append("owner, twice")
        assert lock.locked()  # still held once
        await settle()
        assert order == ["owner, twice"]
    await task.join()
    assert order == ["owner, twice", "other"]
    with pytest.raises(RuntimeError, match="not locked"):
        await lock.release()


async def test_cancelled_rlock_acquire_never_owns_it() -> None:
    lock = RLock()
    await lock.acquire()
    task = await kernel.spawn(lock.acquire)
    await settle()
    await task.cancel()
    await lock.release()
    assert not lock.locked()


async def test_rlock_acquire_that_times_out_never_owns_it() -> None:
    lock = RLock()
    release = Event()

    async def holder() -> None:
        async with lock:
            await release.wait()

    await kernel.spawn(holder)
    await settle()
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(1, lock.acquire)
    await release.set()
    await settle()
    assert not lock.locked()


# -- Semaphore -------------------------------------------------------------------------------


async def test_semaphore_limits_and_serves_in_order(virtual_clock: VirtualClock) -> None:
    sem = Semaphore(2)
    running: list[str] = []
    peak = 0
    started: list[tuple[str, float]] = []

    async def job(name: str) -> None:
        nonlocal peak
        async with sem:
            running.append(name)
            started.append((name, virtual_clock.now()))
            peak = max(peak, len(running))
            await kernel.sleep(1)
            running.remove(name)

    async with kernel.TaskGroup() as g:
        for name in "abcde":
            await g.spawn(job, name)
    assert peak == 2
    assert started == [("a", 0), ("b", 0), ("c", 1), ("d", 1), ("e", 2)]
    assert sem.value == 2


async def test_cancelled_semaphore_acquire_keeps_the_count_right() -> None:
    sem = Semaphore(1)
    await sem.acquire()
    assert sem.locked() and sem.value == 0
    task = await kernel.spawn(sem.acquire)
    await settle()
    await task.cancel()
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(1, sem.acquire)
    await sem.release()
    assert sem.value == 1 and not sem.locked()
    assert repr(sem) == "<Semaphore value=1 waiting=0>"


async def test_bounded_semaphore_refuses_over_release() -> None:
    sem = BoundedSemaphore(2)
    await sem.acquire()
    await sem.release()
    with pytest.raises(ValueError, match="released more times than acquired"):
        await sem.release()
    assert sem.value == 2


async def test_a_bounded_semaphore_with_no_permit_out_refuses_a_release_even_to_a_waiter() -> None:
    """A ``BoundedSemaphore(0)`` never gives out a permit, so every release is one too many:
    handing one to a waiter would make a permit that never existed."""
    sem = BoundedSemaphore(0)
    waiter = await kernel.spawn(sem.acquire)
    await settle()
    with pytest.raises(ValueError, match="released more times than acquired"):
        await sem.release()
    assert (sem.value, len(sem._waiters)) == (0, 1)  # nothing given, the waiter still waits
    await waiter.cancel()
    assert waiter.cancelled
    bounded = BoundedSemaphore(1)  # with a permit out, a release still goes to the waiter
    await bounded.acquire()
    waiter = await kernel.spawn(bounded.acquire)
    await settle()
    await bounded.release()
    assert await waiter.join() is True
    assert bounded.value == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_semaphore_value_is_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match="whole number >= 0"):
        Semaphore(bad)


# -- Condition -------------------------------------------------------------------------------


async def test_condition_wait_for_and_notify_in_order() -> None:
    cond = Condition()
    items: list[int] = []
    got: list[tuple[str, int]] = []

    async def consumer(name: str) -> None:
        async with cond:
            await cond.wait_for(lambda: bool(items))
            got.append((name, items.pop(0)))

    for name in "ab":
        await kernel.spawn(consumer, name)
    await settle()
    for value in (1, 2):
        async with cond:
            items.append(value)
            await cond.notify()
        await settle()
    assert got == [("a", 1), ("b", 2)]


async def test_notify_all_wakes_everyone() -> None:
    cond = Condition(Lock())
    woken: list[int] = []

    async def waiter(n: int) -> None:
        async with cond:
            await cond.wait()
            woken.append(n)

    for n in range(3):
        await kernel.spawn(waiter, n)
    await settle()
    async with cond:
        await cond.notify_all()
    await settle()
    assert woken == [0, 1, 2]


async def test_cancelled_condition_wait_reacquires_the_lock_first() -> None:
    cond = Condition()
    seen: list[bool] = []

    async def waiter() -> None:
        async with cond:
            try:
                await cond.wait()
            except TaskCancelled:
                seen.append(cond.locked() and cond._lock._owner is await kernel.current_task())
                raise

    task = await kernel.spawn(waiter)
    await settle()
    assert not cond.locked()  # released while waiting
    await task.cancel()
    assert seen == [True]
    assert not cond.locked()  # and released again by the `async with`


async def test_condition_wait_that_times_out_waits_for_the_lock() -> None:
    cond = Condition()
    log: list[str] = []

    async def waiter() -> None:
        async with cond:
            with pytest.raises(TaskTimeout):
                await kernel.timeout_after(1, cond.wait)
            log.append(f"timed out holding the lock: {cond.locked()}")

    task = await kernel.spawn(waiter)
    await settle()
    async with cond:  # hold the lock across the timeout: the waiter must wait for it
        await kernel.sleep(5)
        assert log == []
    await task.join()
    assert log == ["timed out holding the lock: True"]


async def test_condition_misuse_is_reported() -> None:
    with pytest.raises(TypeError, match="needs a kernel Lock"):
        Condition(RLock())


async def test_waiting_or_notifying_without_the_lock_names_the_method_and_the_fix() -> None:
    cond = Condition()
    for name in ("wait", "notify", "notify_all"):
        with pytest.raises(RuntimeError) as info:
            await getattr(cond, name)()
        message = str(info.value)
        assert message.startswith(f"Condition.{name}() needs the condition's lock, held by")
        assert "nobody holds it" in message and "release()" not in message
        assert message.endswith("call it inside `async with cond:`")
    holder = await kernel.spawn(cond.acquire)  # another task holds it
    await settle()
    with pytest.raises(RuntimeError, match=r"Condition\.notify\(\) needs") as info:
        await cond.notify()
    assert f"{holder!r} holds it" in str(info.value)


@pytest.mark.usefixtures("no_timeout_signal")  # so the kernel can see the deadlock
def test_a_deadlock_in_condition_wait_is_not_hidden_by_the_release() -> None:
    # The notifier keeps the lock forever, so main's wait() can never take it back: the
    # Deadlock thrown in there must leave run(), not "only the owner can" from `async with`.
    async def main() -> None:
        cond = Condition()
        never = Event()

        async def notifier() -> None:
            async with cond:
                await cond.notify()
                await never.wait()

        async with cond:
            await kernel.spawn(notifier, daemon=True)
            await cond.wait()

    with pytest.raises(kernel.Deadlock) as info:
        kernel.run(main, clock=VirtualClock())
    assert "waits for Lock #1, held by task 2" in str(info.value)
    assert info.value.__context__ is None
    assert any("without releasing the lock" in note for note in info.value.__notes__)


async def test_leaving_a_condition_block_without_the_lock_is_still_misuse() -> None:
    cond = Condition()
    with pytest.raises(RuntimeError, match="not locked"):  # no exception: reported
        async with cond:
            await cond.release()
    with pytest.raises(KeyError) as info:  # an exception: it wins, and the misuse is noted
        async with cond:
            await cond.release()
            raise KeyError("the real error")
    assert "without releasing the lock" in info.value.__notes__[0]
    assert not cond.locked()


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (None, TypeError, r"notify\(n\) takes an int, how many waiters to wake, got None"),
        ("2", TypeError, "takes an int"),
        (1.5, TypeError, "takes an int"),
        (True, TypeError, "takes an int"),
        (-1, ValueError, r"notify\(n\) needs n >= 0 \(how many waiters to wake\), got -1"),
    ],
)
async def test_a_bad_notify_count_is_an_error_in_the_caller(
    bad: Any, error: type[Exception], message: str
) -> None:
    cond = Condition()
    woken: list[str] = []

    async def waiter() -> None:
        async with cond:
            await cond.wait()
            woken.append("woken")

    await kernel.spawn(waiter)
    await settle()
    async with cond:
        with pytest.raises(error, match=message):
            await cond.notify(bad)
        await cond.notify(0)  # allowed, as in asyncio: wakes nobody
    await settle()
    assert woken == []  # the kernel is still running, and nobody was woken
    async with cond:
        await cond.notify()
    await settle()
    assert woken == ["woken"]


# -- the docs ---------------------------------------------------------------------------------


def test_the_api_docs_name_the_primitives_that_work_with_async_with() -> None:
    api = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    sentence = re.search(r"[^.]*\bwork with\s+`async with`", api)
    assert sentence is not None
    named = set(re.findall(r"`(\w+)`", sentence.group(0).split("work with")[0]))
    primitives = [getattr(kernel, name) for name in kernel.sync.__all__]
    assert named == {cls.__name__ for cls in primitives if hasattr(cls, "__aenter__")}


# -- one kernel per primitive -----------------------------------------------------------------


def test_a_lock_cannot_be_shared_by_two_open_kernels() -> None:
    lock = Lock()

    async def hold_forever() -> None:
        await lock.acquire()
        await kernel.spawn(lock.acquire, daemon=True)  # parks on the lock's line
        await kernel.sleep(0)

    async def wait_for_it() -> None:
        await lock.acquire()

    with Kernel(clock=VirtualClock()) as first:
        first.run(hold_forever)
        with (
            Kernel(clock=VirtualClock()) as second,
            pytest.raises(RuntimeError, match="is in use by another kernel"),
        ):
            second.run(wait_for_it)


@contextlib.asynccontextmanager
async def a_task_of_another_kernel_waiting(wait: Callable[[], Any]) -> AsyncIterator[None]:
    """Inside: a task of another kernel, run in a thread of its own, is parked in ``wait()``.
    On the way out it is cancelled, and that kernel has closed, with no error."""
    parked = threading.Event()  # the other kernel's task waits
    done = threading.Event()  # this kernel is done with it: it may stop waiting
    errors: list[BaseException] = []

    async def other_kernel() -> None:
        waiter = await kernel.spawn(wait)
        await settle()
        parked.set()
        assert await kernel.run_in_thread(done.wait, 10)
        await waiter.cancel()
        assert waiter.cancelled

    def in_its_thread() -> None:
        try:
            kernel.run(other_kernel, clock=VirtualClock())
        except BaseException as error:
            errors.append(error)
            parked.set()

    thread = threading.Thread(target=in_its_thread, daemon=True)
    thread.start()
    try:
        assert await kernel.run_in_thread(parked.wait, 10)
        yield
    finally:
        done.set()
        await kernel.run_in_thread(thread.join, 10)
    assert not thread.is_alive() and errors == []


@pytest.mark.parametrize("lock_type", [Lock, RLock])
def test_a_lock_is_not_handed_to_another_kernels_waiter(lock_type: type[Lock]) -> None:
    """A lock a task of this kernel holds, with a task of another kernel (another thread)
    parked on it: release() refuses before the lock changes hands -- it stays with its
    holder, who can release it once the other kernel has closed."""
    lock = lock_type()

    async def this_kernel() -> None:
        await lock.acquire()  # uncontended: the lock's line belongs to no kernel yet
        async with a_task_of_another_kernel_waiting(lock.acquire):
            assert len(lock._waiters) == 1
            with pytest.raises(RuntimeError, match="in use by another kernel"):
                await lock.release()
            assert lock._owner is await kernel.current_task()  # not the other's parked task
        await lock.release()  # the other kernel has closed: its line is free again
        assert not lock.locked()

    kernel.run(this_kernel, clock=VirtualClock())


def test_an_event_with_another_kernels_waiter_refuses_set_and_stays_unset() -> None:
    """As a lock's release: the check comes before the event changes, so an error leaves
    it as it was -- not set, with nobody woken."""
    event = Event()

    async def this_kernel() -> None:
        async with a_task_of_another_kernel_waiting(event.wait):
            with pytest.raises(RuntimeError, match="in use by another kernel"):
                await event.set()
            assert not event.is_set()

    kernel.run(this_kernel, clock=VirtualClock())
