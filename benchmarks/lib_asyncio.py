"""The benchmark workloads written for asyncio; also run on uvloop's loop and kernel.aio's.

The same functions serve three columns of the table, which differ only in the event loop:
``run`` uses asyncio's default loop, ``run_uvloop`` uvloop's, and ``run_kernel_aio`` the
loop of this project's asyncio adapter (``kernel.aio.new_event_loop``), whose Futures, Tasks
and callbacks live on the kernel's queues. Nothing here knows which loop it runs on: every
call goes through ``asyncio`` (which reaches the running loop) or ``get_running_loop()``.
Tasks are created with ``asyncio.create_task`` and joined by awaiting each one, the closest
match to ``kernel``'s ``spawn`` and ``join``.

The TCP echo servers use what asyncio offers for each style: for bytes, the loop's socket
calls (``loop.sock_accept``, ``sock_recv``, ``sock_sendall``) on plain non-blocking sockets,
the closest match to ``kernel.socket``; for lines, streams (``asyncio.start_server`` with a
``StreamReader`` and ``StreamWriter`` per connection).

Read next: ``lib_curio.py``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

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
    "run_kernel_aio",
    "run_uvloop",
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
    """Run ``main`` on a fresh default asyncio event loop and return its result."""
    return asyncio.run(main)


def run_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a fresh uvloop event loop and return its result."""
    import uvloop  # type: ignore[import-not-found,unused-ignore]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def run_kernel_aio(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a fresh kernel.aio event loop (a fresh kernel) and return its result."""
    import kernel.aio

    with asyncio.Runner(loop_factory=kernel.aio.new_event_loop) as runner:
        return runner.run(main)


async def _trivial() -> None:
    return None


async def spawn_join(n: int) -> None:
    """Spawn ``n`` tasks that return at once, then join each of them."""
    tasks = [asyncio.create_task(_trivial()) for _ in range(n)]
    for task in tasks:
        await task


async def _yielder(rounds: int) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def switch(tasks: int, rounds: int) -> None:
    """Run ``tasks`` tasks that each yield ``rounds`` times with ``sleep(0)``."""
    spawned = [asyncio.create_task(_yielder(rounds)) for _ in range(tasks)]
    for task in spawned:
        await task


async def _sleeper(delays: Sequence[float]) -> None:
    for delay in delays:
        await asyncio.sleep(delay)


async def timers(delays: Sequence[Sequence[float]]) -> None:
    """Run one task per entry of ``delays``, each sleeping for those durations in turn."""
    spawned = [asyncio.create_task(_sleeper(own)) for own in delays]
    for task in spawned:
        await task


async def _idle(count: IdleCount) -> None:
    count.value += 1
    await asyncio.sleep(IDLE_SLEEP)


async def idle_memory(n: int) -> int:
    """Return the traced bytes added by ``n`` tasks blocked in a long sleep, then cancel them."""
    count = IdleCount()
    mark = memory_mark()
    spawned = [asyncio.create_task(_idle(count)) for _ in range(n)]
    while count.value < n:
        await asyncio.sleep(0)
    added = memory_added_since(mark)
    for task in spawned:
        task.cancel()
    await asyncio.gather(*spawned, return_exceptions=True)
    return added


async def _sleep_once() -> None:
    await asyncio.sleep(0)


async def spawn_scale(alive: int, batches: int) -> None:
    """``batches`` times: spawn ``alive`` tasks that each yield once, then join them all."""
    for _ in range(batches):
        spawned = [asyncio.create_task(_sleep_once()) for _ in range(alive)]
        for task in spawned:
            await task


async def _produce(queue: asyncio.Queue[int], items: int) -> None:
    for item in range(items):
        await queue.put(item)


async def _consume(queue: asyncio.Queue[int], items: int) -> None:
    for _ in range(items):
        await queue.get()


async def queue(items: int, maxsize: int) -> None:
    """A producer puts ``items`` ints into a queue of ``maxsize``; a consumer gets them all."""
    channel: asyncio.Queue[int] = asyncio.Queue(maxsize)
    spawned = [
        asyncio.create_task(_produce(channel, items)),
        asyncio.create_task(_consume(channel, items)),
    ]
    for task in spawned:
        await task


async def _take_turns(lock: asyncio.Lock, rounds: int) -> None:
    for _ in range(rounds):
        async with lock:
            await asyncio.sleep(0)


async def lock_pingpong(rounds: int) -> None:
    """Two tasks each take the lock ``rounds`` times, yielding while they hold it."""
    lock = asyncio.Lock()
    spawned = [asyncio.create_task(_take_turns(lock, rounds)) for _ in range(2)]
    for task in spawned:
        await task


async def _wait_for(event: asyncio.Event, count: IdleCount) -> None:
    count.value += 1
    await event.wait()


async def event_fanout(waiters: int) -> None:
    """Spawn ``waiters`` tasks that wait on one event, set it once all wait, join them all."""
    event = asyncio.Event()
    count = IdleCount()
    spawned = [asyncio.create_task(_wait_for(event, count)) for _ in range(waiters)]
    while count.value < waiters:
        await asyncio.sleep(0)
    event.set()  # not a coroutine in asyncio
    for task in spawned:
        await task


async def thread_roundtrip(calls: int) -> None:
    """Run a do-nothing function in a worker thread ``calls`` times, one after the other.

    ``asyncio.to_thread`` uses the loop's default executor, on uvloop too.
    """
    for _ in range(calls):
        await asyncio.to_thread(thread_work)


async def _echo_bytes(loop: asyncio.AbstractEventLoop, client: socket.socket) -> None:
    with client:
        while data := await loop.sock_recv(client, ECHO_BUFSIZE):
            await loop.sock_sendall(client, data)


async def tcp_echo(connections: int, started: Callable[[int], None]) -> None:
    """Echo every byte received, one task per connection, with the loop's socket calls."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((ECHO_HOST, 0))
        listener.listen(ECHO_BACKLOG)
        listener.setblocking(False)
        started(listener.getsockname()[1])
        async with asyncio.TaskGroup() as group:
            for _ in range(connections):
                client, _address = await loop.sock_accept(listener)  # made non-blocking
                group.create_task(_echo_bytes(loop, client))


async def tcp_echo_lines(connections: int, started: Callable[[int], None]) -> None:
    """Echo every line received, with ``asyncio.start_server`` and its streams.

    The server calls the handler in a task of its own for each connection and keeps no
    handle on it, so a handler counts itself out when it ends, and the last one tells the
    main task; a handler's failure is kept and raised here rather than only logged.
    """
    all_closed = asyncio.Event()
    failures: list[BaseException] = []
    ended = 0

    async def echo_lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal ended
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
            writer.close()
            await writer.wait_closed()
        except BaseException as failure:
            failures.append(failure)
            raise
        finally:
            ended += 1
            if ended == connections or failures:
                all_closed.set()

    server = await asyncio.start_server(echo_lines, ECHO_HOST, 0, backlog=ECHO_BACKLOG)
    async with server:
        started(server.sockets[0].getsockname()[1])
        await all_closed.wait()
    if failures:
        raise failures[0]
