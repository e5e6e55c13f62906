"""The benchmark workloads written for ``kernel``, this project's microkernel.

Each function has the same name, arguments and meaning in every ``lib_*.py`` module (the
``Suite`` protocol in ``workloads.py``); compare this file with ``lib_curio.py``, whose API
``kernel`` follows, and with ``lib_asyncio.py``. The worker times each call from outside.

The two TCP echo servers at the end are written as a user would write them with
``kernel.socket``, the drop-in for the stdlib module, and with its streams.

Read next: ``lib_asyncio.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import kernel
from kernel import socket

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
    "tcp_echo_lines",
    "thread_roundtrip",
    "timers",
]

T = TypeVar("T")

IDLE_SLEEP = 1000.0  # seconds: far longer than the run, so idle tasks never wake by themselves


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a fresh kernel and return its result."""
    result: T = kernel.run(main)
    return result


def _ignore(event: str, task: kernel.Task | None, **details: Any) -> None:
    """A tracer that does nothing: the cost of being traced, without the cost of a trace."""


def run_traced(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a fresh kernel with a tracer attached (the ``kernel+tracer`` column)."""
    result: T = kernel.run(main, tracer=_ignore)
    return result


async def _trivial() -> None:
    return None


async def spawn_join(n: int) -> None:
    """Spawn ``n`` tasks that return at once, then join each of them."""
    tasks = [await kernel.spawn(_trivial) for _ in range(n)]
    for task in tasks:
        await task.join()


async def _yielder(rounds: int) -> None:
    for _ in range(rounds):
        await kernel.sleep(0)


async def switch(tasks: int, rounds: int) -> None:
    """Run ``tasks`` tasks that each yield ``rounds`` times with ``sleep(0)``."""
    spawned = [await kernel.spawn(_yielder, rounds) for _ in range(tasks)]
    for task in spawned:
        await task.join()


async def _sleeper(delays: Sequence[float]) -> None:
    for delay in delays:
        await kernel.sleep(delay)


async def timers(delays: Sequence[Sequence[float]]) -> None:
    """Run one task per entry of ``delays``, each sleeping for those durations in turn."""
    spawned = [await kernel.spawn(_sleeper, own) for own in delays]
    for task in spawned:
        await task.join()


async def _idle(count: IdleCount) -> None:
    count.value += 1
    await kernel.sleep(IDLE_SLEEP)


async def idle_memory(n: int) -> int:
    """Return the traced bytes added by ``n`` tasks blocked in a long sleep, then cancel them."""
    count = IdleCount()
    mark = memory_mark()
    spawned = [await kernel.spawn(_idle, count) for _ in range(n)]
    while count.value < n:
        await kernel.sleep(0)
    added = memory_added_since(mark)
    for task in spawned:
        await task.cancel()
    return added


async def _sleep_once() -> None:
    await kernel.sleep(0)


async def spawn_scale(alive: int, batches: int) -> None:
    """``batches`` times: spawn ``alive`` tasks that each yield once, then join them all."""
    for _ in range(batches):
        spawned = [await kernel.spawn(_sleep_once) for _ in range(alive)]
        for task in spawned:
            await task.join()


async def _produce(queue: kernel.Queue[int], items: int) -> None:
    for item in range(items):
        await queue.put(item)


async def _consume(queue: kernel.Queue[int], items: int) -> None:
    for _ in range(items):
        await queue.get()


async def queue(items: int, maxsize: int) -> None:
    """A producer puts ``items`` ints into a queue of ``maxsize``; a consumer gets them all."""
    channel: kernel.Queue[int] = kernel.Queue(maxsize)
    spawned = [
        await kernel.spawn(_produce, channel, items),
        await kernel.spawn(_consume, channel, items),
    ]
    for task in spawned:
        await task.join()


async def _take_turns(lock: kernel.Lock, rounds: int) -> None:
    for _ in range(rounds):
        async with lock:
            await kernel.sleep(0)


async def lock_pingpong(rounds: int) -> None:
    """Two tasks each take the lock ``rounds`` times, yielding while they hold it."""
    lock = kernel.Lock()
    spawned = [await kernel.spawn(_take_turns, lock, rounds) for _ in range(2)]
    for task in spawned:
        await task.join()


async def _wait_for(event: kernel.Event, count: IdleCount) -> None:
    count.value += 1
    await event.wait()


async def event_fanout(waiters: int) -> None:
    """Spawn ``waiters`` tasks that wait on one event, set it once all wait, join them all."""
    event = kernel.Event()
    count = IdleCount()
    spawned = [await kernel.spawn(_wait_for, event, count) for _ in range(waiters)]
    while count.value < waiters:
        await kernel.sleep(0)
    await event.set()
    for task in spawned:
        await task.join()


async def thread_roundtrip(calls: int) -> None:
    """Run a do-nothing function in a worker thread ``calls`` times, one after the other."""
    for _ in range(calls):
        await kernel.run_in_thread(thread_work)


async def _echo_bytes(client: socket.Socket) -> None:
    async with client:
        while data := await client.recv(ECHO_BUFSIZE):
            await client.sendall(data)


async def _echo_lines(client: socket.Socket) -> None:
    async with client:
        stream = client.as_stream()
        async for line in stream:
            await stream.write(line)


async def _serve(
    handler: Callable[[socket.Socket], Coroutine[Any, Any, None]],
    connections: int,
    started: Callable[[int], None],
) -> None:
    """Accept ``connections`` connections, each served by ``handler`` in its own task."""
    async with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((ECHO_HOST, 0))
        listener.listen(ECHO_BACKLOG)
        started(listener.getsockname()[1])
        async with kernel.TaskGroup() as group:
            for _ in range(connections):
                client, _address = await listener.accept()
                await group.spawn(handler, client)


async def tcp_echo(connections: int, started: Callable[[int], None]) -> None:
    """Echo every byte received, one task per connection, with ``recv`` and ``sendall``."""
    await _serve(_echo_bytes, connections, started)


async def tcp_echo_lines(connections: int, started: Callable[[int], None]) -> None:
    """Echo every line received, one task per connection, with the socket's stream."""
    await _serve(_echo_lines, connections, started)
