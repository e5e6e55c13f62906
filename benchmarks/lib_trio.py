"""The benchmark workloads written for trio.

trio has no task handle to join: a nursery starts tasks with ``start_soon`` and waits for
all of them when its ``async with`` block ends, so "join them all" is the end of the block.
Cancelling the idle tasks is one call on the nursery's cancel scope.

The TCP echo server uses trio's own stream layer, which is what trio offers for TCP
(``trio.open_tcp_listeners``; each ``accept`` gives a ``SocketStream`` with ``receive_some``
and ``send_all``); ``trio.socket`` has no ``sendall``. trio's streams have no ``readline``,
so trio sits out the line echo.

Read next: ``worker.py``, which runs these.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import trio

from .workloads import (
    ECHO_BACKLOG,
    ECHO_BUFSIZE,
    ECHO_HOST,
    IdleCount,
    memory_added_since,
    memory_mark,
    thread_work,
)

__all__ = [
    "event_fanout",
    "idle_memory",
    "lock_pingpong",
    "queue",
    "run",
    "spawn_join",
    "spawn_scale",
    "switch",
    "tcp_echo",
    "thread_roundtrip",
    "timers",
]

T = TypeVar("T")

IDLE_SLEEP = 1000.0  # seconds: far longer than the run, so idle tasks never wake by themselves


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` with ``trio.run`` and return its result.

    ``trio.run`` wants a function to call, not a coroutine; the lambda hands over the one
    already made.
    """
    return trio.run(lambda: main)


async def _trivial() -> None:
    return None


async def spawn_join(n: int) -> None:
    """Spawn ``n`` tasks that return at once, then join each of them."""
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(_trivial)


async def _yielder(rounds: int) -> None:
    for _ in range(rounds):
        await trio.sleep(0)


async def switch(tasks: int, rounds: int) -> None:
    """Run ``tasks`` tasks that each yield ``rounds`` times with ``sleep(0)``."""
    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(_yielder, rounds)


async def _sleeper(delays: Sequence[float]) -> None:
    for delay in delays:
        await trio.sleep(delay)


async def timers(delays: Sequence[Sequence[float]]) -> None:
    """Run one task per entry of ``delays``, each sleeping for those durations in turn."""
    async with trio.open_nursery() as nursery:
        for own in delays:
            nursery.start_soon(_sleeper, own)


async def _idle(count: IdleCount) -> None:
    count.value += 1
    await trio.sleep(IDLE_SLEEP)


async def idle_memory(n: int) -> int:
    """Return the traced bytes added by ``n`` tasks blocked in a long sleep, then cancel them."""
    count = IdleCount()
    mark = memory_mark()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(_idle, count)
        while count.value < n:
            await trio.sleep(0)
        added = memory_added_since(mark)
        nursery.cancel_scope.cancel()
    return added


async def _sleep_once() -> None:
    await trio.sleep(0)


async def spawn_scale(alive: int, batches: int) -> None:
    """``batches`` times: spawn ``alive`` tasks that each yield once, then join them all."""
    for _ in range(batches):
        async with trio.open_nursery() as nursery:
            for _ in range(alive):
                nursery.start_soon(_sleep_once)


async def _produce(send: trio.MemorySendChannel[int], items: int) -> None:
    for item in range(items):
        await send.send(item)


async def _consume(receive: trio.MemoryReceiveChannel[int], items: int) -> None:
    for _ in range(items):
        await receive.receive()


async def queue(items: int, maxsize: int) -> None:
    """A producer sends ``items`` ints into a memory channel with a buffer of ``maxsize``; a
    consumer receives them all. trio has no queue class: the channel pair is its queue."""
    send, receive = trio.open_memory_channel[int](maxsize)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_produce, send, items)
        nursery.start_soon(_consume, receive, items)


async def _take_turns(lock: trio.Lock, rounds: int) -> None:
    for _ in range(rounds):
        async with lock:
            await trio.sleep(0)


async def lock_pingpong(rounds: int) -> None:
    """Two tasks each take the lock ``rounds`` times, yielding while they hold it."""
    lock = trio.Lock()
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(_take_turns, lock, rounds)


async def _wait_for(event: trio.Event, count: IdleCount) -> None:
    count.value += 1
    await event.wait()


async def event_fanout(waiters: int) -> None:
    """Spawn ``waiters`` tasks that wait on one event, set it once all wait, join them all."""
    event = trio.Event()
    count = IdleCount()
    async with trio.open_nursery() as nursery:
        for _ in range(waiters):
            nursery.start_soon(_wait_for, event, count)
        while count.value < waiters:
            await trio.sleep(0)
        event.set()  # not a coroutine in trio


async def thread_roundtrip(calls: int) -> None:
    """Run a do-nothing function in a worker thread ``calls`` times, one after the other."""
    for _ in range(calls):
        await trio.to_thread.run_sync(thread_work)


async def _echo_bytes(stream: trio.SocketStream) -> None:
    async with stream:
        while data := await stream.receive_some(ECHO_BUFSIZE):
            await stream.send_all(data)


async def tcp_echo(connections: int, started: Callable[[int], None]) -> None:
    """Echo every byte received, one task per connection, with trio's socket streams."""
    (listener,) = await trio.open_tcp_listeners(0, host=ECHO_HOST, backlog=ECHO_BACKLOG)
    async with listener:
        started(listener.socket.getsockname()[1])
        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                stream = await listener.accept()
                nursery.start_soon(_echo_bytes, stream)
