"""SignalEvent and SignalQueue: delivery, order, closing, and the handlers put back after.

Signals are sent with ``signal.raise_signal``, whose handler runs before the call returns,
so every test knows exactly when its signal has arrived; one test sends from another thread
with ``os.kill`` to show that a kernel blocked in ``select()`` wakes up for it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from signal import SIGINT, SIGUSR1, SIGUSR2
from types import FrameType

import pytest

import kernel
from kernel.signals import SignalEvent, SignalQueue
from kernel.traps import _get_kernel


@pytest.fixture(autouse=True)
def handlers_restored() -> Iterator[None]:
    """Every test leaves the handlers of the signals it used as it found them."""
    before = {signo: signal.getsignal(signo) for signo in (SIGINT, SIGUSR1, SIGUSR2)}
    yield
    assert {signo: signal.getsignal(signo) for signo in before} == before


async def test_an_event_is_set_by_its_signal() -> None:
    with SignalEvent(SIGUSR1, SIGUSR2) as event:
        waiter = await kernel.spawn(event.wait)
        await kernel.sleep(0)  # it parks
        assert not event.is_set()
        signal.raise_signal(SIGUSR2)
        assert event.is_set()
        await waiter.join()
        event.clear()
        assert not event.is_set()
        signal.raise_signal(SIGUSR1)
        await event.wait()  # already set: returns at once
    assert event.closed


async def test_a_queue_gives_the_signals_in_arrival_order() -> None:
    async with SignalQueue(SIGUSR1, SIGUSR2) as queue:
        getter = await kernel.spawn(queue.get)
        await kernel.sleep(0)  # one task already waits when the first signal comes
        for signo in (SIGUSR1, SIGUSR2, SIGUSR1, SIGUSR1):
            signal.raise_signal(signo)
        assert await getter.join() == SIGUSR1
        assert queue.qsize() == 3
        assert [await queue.get() for _ in range(3)] == [SIGUSR2, SIGUSR1, SIGUSR1]


async def test_async_iteration_ends_when_the_queue_is_closed() -> None:
    queue = SignalQueue(SIGUSR1)
    seen: list[int] = []

    async def consume() -> None:
        async for signo in queue:
            seen.append(signo)

    consumer = await kernel.spawn(consume)
    await kernel.sleep(0)
    signal.raise_signal(SIGUSR1)
    signal.raise_signal(SIGUSR1)
    await kernel.sleep(0)  # the consumer takes both
    queue.close()
    await consumer.join()
    assert seen == [SIGUSR1, SIGUSR1]


async def test_a_cancelled_get_loses_no_signal() -> None:
    with SignalQueue(SIGUSR1) as queue:
        getter = await kernel.spawn(queue.get)
        await kernel.sleep(0)
        await getter.cancel()
        signal.raise_signal(SIGUSR1)
        assert await queue.get() == SIGUSR1


async def test_waiting_on_a_closed_catcher_is_an_error() -> None:
    event = SignalEvent(SIGUSR1)
    waiter = await kernel.spawn(event.wait)
    await kernel.sleep(0)
    event.close()
    event.close()  # a second close does nothing
    with pytest.raises(kernel.TaskError) as info:
        await waiter.join()
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(RuntimeError, match="closed"):
        await event.wait()
    queue = SignalQueue(SIGUSR1)
    queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        await queue.get()


async def test_a_signal_sent_from_another_thread_wakes_the_kernel() -> None:
    with SignalEvent(SIGUSR1) as event:
        sender = threading.Thread(target=os.kill, args=(os.getpid(), SIGUSR1))
        waiter = await kernel.spawn(event.wait)
        await kernel.sleep(0)
        sender.start()
        await waiter.join()  # the kernel is blocked in select() until the signal arrives
        sender.join()


def test_the_previous_handler_is_put_back() -> None:
    calls: list[int] = []

    def previous(signo: int, frame: FrameType | None) -> None:
        calls.append(signo)

    original = signal.signal(SIGUSR1, previous)
    try:
        event = SignalEvent(SIGUSR1)
        assert signal.getsignal(SIGUSR1) is not previous
        signal.raise_signal(SIGUSR1)
        assert event.is_set() and calls == []  # the catcher has it, not the old handler
        event.close()
        assert signal.getsignal(SIGUSR1) is previous
        signal.raise_signal(SIGUSR1)
        assert calls == [SIGUSR1]
    finally:
        signal.signal(SIGUSR1, original)


def test_catchers_of_one_signal_share_it_and_may_close_in_any_order() -> None:
    first, second = SignalEvent(SIGUSR1), SignalQueue(SIGUSR1)
    signal.raise_signal(SIGUSR1)
    assert first.is_set() and second.qsize() == 1
    first.close()
    signal.raise_signal(SIGUSR1)
    assert second.qsize() == 2
    second.close()  # the last one out puts back the handler from before both


def test_outside_a_task_signals_wait_for_the_first_waiter() -> None:
    queue = SignalQueue(SIGUSR2)
    signal.raise_signal(SIGUSR2)  # no kernel yet: kept until a task asks

    async def main() -> int:
        return await queue.get()

    with queue:
        assert kernel.run(main) == SIGUSR2


def test_only_the_main_thread_may_install_handlers() -> None:
    errors: list[BaseException] = []

    def create() -> None:
        try:
            SignalEvent(SIGUSR1)
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=create)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


def test_uncatchable_and_missing_signals_are_refused() -> None:
    before = signal.getsignal(SIGUSR1)
    # (SIGUSR1 first: the handler it got is put back when SIGKILL fails.)
    with pytest.raises(ValueError, match=r"SIGKILL cannot be caught.*such as SIGTERM"):
        SignalEvent(SIGUSR1, signal.SIGKILL)
    assert signal.getsignal(SIGUSR1) == before
    with pytest.raises(TypeError):
        SignalQueue()
    with pytest.raises(ValueError, match=r"SignalQueue\(\) got 12345, which is not a signal.*"):
        SignalQueue(SIGUSR1, 12345)


async def test_a_sigint_catcher_borrows_ctrl_c_from_the_kernel() -> None:
    own_handler = signal.getsignal(SIGINT)
    assert own_handler == (await _get_kernel())._on_sigint  # the kernel owns Ctrl-C here
    async with SignalEvent(SIGINT) as event:
        signal.raise_signal(SIGINT)  # the program's now: no cancellation
        await event.wait()
        await kernel.sleep(0)
    assert signal.getsignal(SIGINT) == own_handler


def test_ctrl_c_stops_the_kernel_again_once_the_catcher_is_closed() -> None:
    async def main() -> None:
        with SignalEvent(SIGINT) as event:
            signal.raise_signal(SIGINT)
            await event.wait()
        signal.raise_signal(SIGINT)  # the kernel's own handler: the main task is cancelled
        await kernel.sleep(10)

    with pytest.raises(KeyboardInterrupt):
        kernel.run(main, clock=kernel.VirtualClock())
    assert signal.getsignal(SIGINT) is signal.default_int_handler


def test_a_sigint_catcher_that_outlives_the_run_puts_back_the_default_handler() -> None:
    catchers: list[SignalEvent] = []

    async def main() -> None:
        catchers.append(SignalEvent(SIGINT))  # over the kernel's own Ctrl-C handler

    kernel.run(main, clock=kernel.VirtualClock())
    catchers[0].close()  # after the run: the kernel's handler is not the one to put back
    assert signal.getsignal(SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(SIGINT)


def test_a_signal_taken_without_waiting_leaves_nothing_queued_in_the_kernel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No task waited when the signals came, so the kernel was not asked to collect them: the
    # tasks took them themselves, and the kernel, closing right after, finds no wake-up
    # still queued to report as never run.
    async def main() -> None:
        with SignalQueue(SIGUSR1) as queue, SignalEvent(SIGUSR2) as event:
            signal.raise_signal(SIGUSR1)
            signal.raise_signal(SIGUSR2)
            assert await queue.get() == SIGUSR1
            await event.wait()

    kernel.run(main, clock=kernel.VirtualClock())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_signal_that_lands_as_a_task_parks_still_wakes_it() -> None:
    # The task counts as waiting from before it collects what arrived: a signal sent in the
    # window between that and its parking must wake it all the same.
    with SignalQueue(SIGUSR1) as queue:
        absorb = queue._absorb

        def absorb_then_signal() -> None:
            absorb()
            if not queue._signals:  # (the first time only)
                signal.raise_signal(SIGUSR1)

        queue._absorb = absorb_then_signal  # type: ignore[method-assign]
        async with kernel.timeout_after(10):  # (virtual time: a lost wake-up fails at once)
            assert await queue.get() == SIGUSR1
