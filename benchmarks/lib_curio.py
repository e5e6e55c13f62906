"""The benchmark workloads written for curio.

curio's API is the one ``kernel`` follows (``spawn`` returns a task, ``join`` waits for its
result, ``cancel`` cancels and waits), so this module reads line for line like
``lib_kernel.py``. curio is not installed in the test environment, hence the import guard
for mypy; the worker reports "not installed" when the import fails.

The TCP echo servers use ``curio.socket``, curio's async twin of the stdlib module, and its
streams (``as_stream``), as kernel's do. A curio task group does not raise a member's
failure when its block ends (it stops waiting and cancels the rest), so the servers look
at ``group.exceptions`` themselves.

Read next: ``lib_trio.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import curio  # type: ignore[import-not-found,import-untyped,unused-ignore]
from curio import socket  # type: ignore[import-not-found,import-untyped,unused-ignore]

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
    """Run ``main`` on a fresh curio kernel and return its result."""
    result: T = curio.run(main)
    return result


async def _trivial() -> None:
    return None


async def spawn_join(n: int) -> None:
    """Spawn ``n`` tasks that return at once, then join each of them."""
    tasks = [await curio.spawn(_trivial) for _ in range(n)]
    for task in tasks:
        await task.join()


async def _yielder(rounds: int) -> None:
    for _ in range(rounds):
        await curio.sleep(0)


async def switch(tasks: int, rounds: int) -> None:
    """Run ``tasks`` tasks that each yield ``rounds`` times with ``sleep(0)``."""
    spawned = [await curio.spawn(_yielder, rounds) for _ in range(tasks)]
    for task in spawned:
        await task.join()


async def _sleeper(delays: Sequence[float]) -> None:
    for delay in delays:
        await curio.sleep(delay)


async def timers(delays: Sequence[Sequence[float]]) -> None:
    """Run one task per entry of ``delays``, each sleeping for those durations in turn."""
    spawned = [await curio.spawn(_sleeper, own) for own in delays]
    for task in spawned:
        await task.join()


async def _idle(count: IdleCount) -> None:
    count.value += 1
    await curio.sleep(IDLE_SLEEP)


async def idle_memory(n: int) -> int:
    """Return the traced bytes added by ``n`` tasks blocked in a long sleep, then cancel them."""
    count = IdleCount()
    mark = memory_mark()
    spawned = [await curio.spawn(_idle, count) for _ in range(n)]
    while count.value < n:
        await curio.sleep(0)
    added = memory_added_since(mark)
    for task in spawned:
        await task.cancel()
    return added


async def _sleep_once() -> None:
    await curio.sleep(0)


async def spawn_scale(alive: int, batches: int) -> None:
    """``batches`` times: spawn ``alive`` tasks that each yield once, then join them all."""
    for _ in range(batches):
        spawned = [await curio.spawn(_sleep_once) for _ in range(alive)]
        for task in spawned:
            await task.join()


async def _produce(queue: Any, items: int) -> None:
    for item in range(items):
        await queue.put(item)


async def _consume(queue: Any, items: int) -> None:
    for _ in range(items):
        await queue.get()


async def queue(items: int, maxsize: int) -> None:
    """A producer puts ``items`` ints into a queue of ``maxsize``; a consumer gets them all."""
    channel = curio.Queue(maxsize)
    spawned = [
        await curio.spawn(_produce, channel, items),
        await curio.spawn(_consume, channel, items),
    ]
    for task in spawned:
        await task.join()


async def _take_turns(lock: Any, rounds: int) -> None:
    for _ in range(rounds):
        async with lock:
            await curio.sleep(0)


async def lock_pingpong(rounds: int) -> None:
    """Two tasks each take the lock ``rounds`` times, yielding while they hold it."""
    lock = curio.Lock()
    spawned = [await curio.spawn(_take_turns, lock, rounds) for _ in range(2)]
    for task in spawned:
        await task.join()


async def _wait_for(event: Any, count: IdleCount) -> None:
    count.value += 1
    await event.wait()


async def event_fanout(waiters: int) -> None:
    """Spawn ``waiters`` tasks that wait on one event, set it once all wait, join them all."""
    event = curio.Event()
    count = IdleCount()
    spawned = [await curio.spawn(_wait_for, event, count) for _ in range(waiters)]
    while count.value < waiters:
        await curio.sleep(0)
    await event.set()
    for task in spawned:
        await task.join()


async def thread_roundtrip(calls: int) -> None:
    """Run a do-nothing function in a worker thread ``calls`` times, one after the other."""
    for _ in range(calls):
        await curio.run_in_thread(thread_work)


async def _echo_bytes(client: Any) -> None:
    async with client:
        while data := await client.recv(ECHO_BUFSIZE):
            await client.sendall(data)


async def _echo_lines(client: Any) -> None:
    async with client:
        stream = client.as_stream()
        async for line in stream:
            await stream.write(line)


async def _serve(
    handler: Callable[[Any], Coroutine[Any, Any, None]],
    connections: int,
    started: Callable[[int], None],
) -> None:
    """Accept ``connections`` connections, each served by ``handler`` in its own task."""
    async with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((ECHO_HOST, 0))
        listener.listen(ECHO_BACKLOG)
        started(listener.getsockname()[1])
        async with curio.TaskGroup() as group:
            for _ in range(connections):
                client, _address = await listener.accept()
                await group.spawn(handler, client)
    failures = [failure for failure in group.exceptions if failure is not None]
    first_cause = [f for f in failures if not isinstance(f, curio.TaskCancelled)] or failures
    if first_cause:
        raise first_cause[0]  # a handler that failed, rather than a sibling it got cancelled


async def tcp_echo(connections: int, started: Callable[[int], None]) -> None:
    """Echo every byte received, one task per connection, with ``recv`` and ``sendall``."""
    await _serve(_echo_bytes, connections, started)


async def tcp_echo_lines(connections: int, started: Callable[[int], None]) -> None:
    """Echo every line received, one task per connection, with the socket's stream."""
    await _serve(_echo_lines, connections, started)
