"""Async generators left suspended: the kernel closes each in a task of its own.

Without that, CPython throws ``GeneratorExit`` into a collected generator wherever the
collector runs, a ``finally`` that awaits fails with "async generator ignored
GeneratorExit", and the cleanup is lost (``kernel/asyncgens.py``). pytest turns that
unraisable error into a failure of the test, so each test here would also fail that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import sys
import threading
import types
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest

import kernel
import kernel.aio
from kernel import Kernel, VirtualClock


class Cleanup:
    """What a generator's ``finally`` did, and where."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.threads: list[int] = []
        self.tasks: list[str] = []


async def numbers(cleanup: Cleanup, pause: float = 0.0) -> AsyncGenerator[int, None]:
    """Yield 0, 1, 2...; its cleanup awaits -- which only a task can let it do."""
    try:
        for n in range(1000):
            yield n
    finally:
        await kernel.sleep(pause)
        cleanup.events.append("cleaned up")
        cleanup.threads.append(threading.get_ident())
        cleanup.tasks.append((await kernel.current_task()).name)


def test_break_out_of_async_for_runs_the_cleanup_in_a_task_at_once() -> None:
    cleanup = Cleanup()

    async def main() -> list[str]:
        async for n in numbers(cleanup):
            if n == 2:
                break
        seen = list(cleanup.events)  # not yet: the collector only handed it over
        await kernel.sleep(1)  # the task it is handed to runs meanwhile
        return seen + cleanup.events

    assert kernel.run(main, clock=VirtualClock()) == ["cleaned up"]
    assert cleanup.threads == [threading.get_ident()]
    assert cleanup.tasks == ["closing numbers"]


def test_a_generator_still_suspended_at_the_end_is_closed_by_close() -> None:
    cleanup = Cleanup()
    kept: list[AsyncGenerator[int, None]] = []
    clock = VirtualClock()

    async def main() -> None:
        agen = numbers(cleanup, pause=5)
        kept.append(agen)  # still referenced when the program ends
        assert await agen.__anext__() == 0

    kernel.run(main, clock=clock)
    assert cleanup.events == ["cleaned up"]
    assert clock.now() == 5  # its cleanup's sleep ran, on the kernel's clock
    closed = cast("types.AsyncGeneratorType[int, None]", kept[0])
    assert closed.ag_frame is None  # closed, for good


def test_those_left_at_the_end_are_closed_in_the_order_they_were_first_iterated() -> None:
    order: list[str] = []
    kept: list[Any] = []

    async def named(name: str) -> AsyncGenerator[int, None]:
        try:
            yield 1
        finally:
            await kernel.sleep(0)
            order.append(name)

    async def main() -> None:
        for name in "abcdefgh":
            kept.append(named(name))
            await kept[-1].__anext__()

    kernel.run(main, clock=VirtualClock())
    assert order == list("abcdefgh")


def test_the_cleanup_runs_once_when_main_returns_right_after_the_break(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The request to start the closing task is still queued when the program ends: close()
    # closes the generator itself, and the request, when it comes, finds nothing to do
    # (not a second closing task, which would find the generator busy and fail).
    cleanup = Cleanup()

    async def main() -> None:
        async for _n in numbers(cleanup, pause=1):
            break

    with caplog.at_level(logging.ERROR, logger="kernel"):
        kernel.run(main, clock=VirtualClock())
    assert cleanup.events == ["cleaned up"]
    assert caplog.records == []


def test_a_generator_dropped_between_two_runs_is_closed_in_the_next() -> None:
    cleanup = Cleanup()
    kept: list[AsyncGenerator[int, None]] = []

    async def first() -> None:
        kept.append(numbers(cleanup))
        await kept[0].__anext__()

    async def second() -> list[str]:
        await kernel.sleep(1)
        return list(cleanup.events)

    with Kernel(clock=VirtualClock()) as k:
        k.run(first)
        kept.clear()  # collected now, with the kernel between runs
        assert cleanup.events == []
        assert k.run(second) == ["cleaned up"]


def test_a_generator_collected_in_another_thread_is_closed_in_the_kernel() -> None:
    cleanup = Cleanup()

    async def main() -> None:
        holder = [numbers(cleanup)]
        await holder[0].__anext__()
        await kernel.run_in_thread(holder.clear)  # the last reference goes in a worker

    kernel.run(main, clock=VirtualClock())
    assert cleanup.events == ["cleaned up"]
    assert cleanup.threads == [threading.get_ident()]
    assert cleanup.tasks == ["closing numbers"]


def test_an_error_in_the_cleanup_is_logged_and_the_program_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def failing() -> AsyncGenerator[int, None]:
        try:
            yield 1
            yield 2
        finally:
            await kernel.sleep(0)
            raise ValueError("cleanup failed")

    async def main() -> str:
        async for _n in failing():
            break
        await kernel.sleep(1)
        return "done"

    with caplog.at_level(logging.ERROR, logger="kernel"):
        assert kernel.run(main, clock=VirtualClock()) == "done"
    [record] = [r for r in caplog.records if "closing the async generator" in r.getMessage()]
    assert "failing" in record.getMessage()
    assert isinstance(record.exc_info[1], ValueError)  # type: ignore[index]


def test_a_cleanup_may_start_another_generator_which_is_closed_too() -> None:
    inner_cleanup = Cleanup()
    kept: list[Any] = []

    async def outer() -> AsyncGenerator[int, None]:
        try:
            yield 1
        finally:
            inner = numbers(inner_cleanup)
            kept.append(inner)
            await inner.__anext__()  # left suspended, during close()'s sweep

    async def main() -> None:
        agen = outer()
        kept.append(agen)
        await agen.__anext__()

    kernel.run(main, clock=VirtualClock())
    assert inner_cleanup.events == ["cleaned up"]


def test_the_hooks_are_the_kernels_only_while_it_runs() -> None:
    seen: list[Any] = []

    async def main() -> None:
        seen.append(sys.get_asyncgen_hooks())

    before = sys.get_asyncgen_hooks()
    kernel.run(main)
    assert sys.get_asyncgen_hooks() == before
    assert seen[0].firstiter is not None and seen[0].finalizer is not None


def test_the_hooks_the_thread_had_are_put_back_after_each_run() -> None:
    def firstiter(agen: Any) -> None:
        pass

    async def main() -> Any:
        return sys.get_asyncgen_hooks().firstiter

    before = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=None)
    try:
        assert kernel.run(main) is not firstiter  # the kernel's, while it runs
        assert sys.get_asyncgen_hooks().firstiter is firstiter
    finally:
        sys.set_asyncgen_hooks(*before)


async def kernel_numbers(events: list[str]) -> AsyncGenerator[int, None]:
    """A kernel task's generator: only a kernel task can run its cleanup."""
    try:
        for n in range(10):
            yield n
    finally:
        await kernel.sleep(0.01)
        events.append("kernel cleanup")


async def asyncio_numbers(events: list[str]) -> AsyncGenerator[int, None]:
    """asyncio code's generator: its cleanup's bare yield needs an asyncio task."""
    try:
        for n in range(10):
            yield n
    finally:
        await asyncio.sleep(0)
        events.append("asyncio cleanup")


def test_on_the_adapters_loop_each_generator_is_closed_by_its_own_side() -> None:
    # kernel.aio.run's loop installs asyncio's hooks while it runs: they close asyncio
    # code's generators (shutdown_asyncgens), and the kernel closes its tasks' -- whether
    # dropped by a break or still suspended when the program ends.
    events: list[str] = []
    kept: list[Any] = []

    async def kernel_side() -> list[str]:
        async for n in kernel_numbers(events):
            if n == 1:
                break
        await kernel.sleep(0.1)
        seen = list(events)
        kept.append(kernel_numbers(events))
        await kept[-1].__anext__()  # still suspended at the end
        return seen

    async def main() -> list[str]:
        kept.append(asyncio_numbers(events))
        await kept[-1].__anext__()  # still suspended at the end
        loop = asyncio.get_running_loop()
        assert sys.get_asyncgen_hooks().finalizer is not None
        assert loop._asyncgens  # type: ignore[attr-defined]  # asyncio's hooks saw it
        seen: list[str] = await kernel.aio.run_kernel(kernel_side)
        return seen

    assert kernel.aio.run(main()) == ["kernel cleanup"]
    assert sorted(events) == ["asyncio cleanup", "kernel cleanup", "kernel cleanup"]


def test_asyncio_code_that_drops_a_generator_has_it_closed_by_asyncio() -> None:
    # CPython clears a generator's weak references before it calls the finalizer hook:
    # the kernel must still know it as asyncio's, or its cleanup, which awaits, would be
    # run in a kernel task and fail there (a bare yield is no trap).
    events: list[str] = []

    async def main() -> list[str]:
        async for n in asyncio_numbers(events):
            if n == 1:
                break  # the last reference goes: it is finalized here
        for _ in range(5):  # asyncio's closing task starts, and its cleanup awaits once
            await asyncio.sleep(0)
        return list(events)

    assert kernel.aio.run(main()) == ["asyncio cleanup"]


def test_kernel_run_called_from_asyncio_code_closes_its_tasks_generators() -> None:
    # As a notebook cell does: a blocking kernel.run() inside a running asyncio loop.
    events: list[str] = []

    async def kernel_main() -> None:
        async for _n in kernel_numbers(events):
            break
        await kernel.sleep(1)

    async def outer() -> list[str]:
        kernel.run(kernel_main, clock=VirtualClock())
        return list(events)

    assert asyncio.run(outer()) == ["kernel cleanup"]


def test_a_cleanup_at_close_may_still_use_the_adapters_transports() -> None:
    # close() closes the generators left suspended before it drops the adapter's
    # callbacks and watchers, as asyncio.run does before it closes its loop: the cleanup
    # can read a reply, and the transport it closes really closes.
    events: list[bytes] = []
    kept: list[Any] = []

    def peer(sock: socket.socket) -> None:
        with sock, sock.makefile("rwb", buffering=0) as stream:
            if stream.readline() == b"QUIT\n":
                stream.write(b"BYE\n")
            events.append(stream.read())  # b"": the session closed its side

    async def session(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> AsyncGenerator[int, None]:
        try:
            for n in range(3):
                yield n
        finally:
            writer.write(b"QUIT\n")
            events.append(await reader.readline())
            writer.close()

    async def asyncio_code() -> None:
        ours, theirs = socket.socketpair()
        kept.append(threading.Thread(target=peer, args=(theirs,)))
        kept[0].start()
        reader, writer = await asyncio.open_connection(sock=ours)
        kept.append(session(reader, writer))
        await kept[-1].__anext__()  # still suspended when the program ends

    async def main() -> None:
        await kernel.aio.run_asyncio(asyncio_code())

    kernel.run(main)
    kept[0].join(timeout=10)
    assert events == [b"BYE\n", b""]


def test_asyncio_code_on_run_asyncios_loop_has_its_generators_closed_too() -> None:
    events: list[str] = []
    kept: list[Any] = []

    async def ticks() -> AsyncGenerator[int, None]:
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(1)  # an asyncio future, on the kernel's clock
            events.append("cleaned up")

    async def asyncio_code() -> None:
        agen = ticks()
        kept.append(agen)
        await agen.__anext__()

    async def main() -> None:
        await kernel.aio.run_asyncio(asyncio_code())

    clock = VirtualClock()
    kernel.run(main, clock=clock)
    assert events == ["cleaned up"]
    assert clock.now() == 1


def test_a_generator_finalized_after_its_kernel_closed_is_closed_in_place(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # What CPython's collector would call, as it calls it: the finalizer hook that was in
    # place when the generator first ran. A cleanup that does not await still completes;
    # one that awaits cannot, and is named in a warning, not printed as "ignored
    # GeneratorExit".
    events: list[str] = []

    async def quiet() -> AsyncGenerator[int, None]:
        try:
            yield 1
        finally:
            events.append("quiet cleaned up")

    async def waits() -> AsyncGenerator[int, None]:
        try:
            yield 1
        finally:
            await kernel.sleep(0)
            events.append("never")

    async def main() -> Any:
        return sys.get_asyncgen_hooks().finalizer

    finalizer = kernel.run(main)
    for agen in (quiet(), waits()):
        with pytest.raises(StopIteration):
            agen.asend(None).send(None)  # up to its first yield, by hand
        with caplog.at_level(logging.WARNING, logger="kernel"):
            finalizer(agen)
    assert events == ["quiet cleaned up"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "waits" in warning and "could not finish" in warning
    assert "aclosing" in warning
    gc.collect()


# -- blocks held across a yield -----------------------------------------------------------
# A generator that yields inside ``timeout_after`` or ``disable_cancellation`` entered the
# block for the task iterating it. Closed early, the block must still be left for that task
# -- even when another task closes it -- or its deadline fires later into unrelated code,
# or the task can never be cancelled again.


async def ticks_within(seconds: float) -> AsyncGenerator[int, None]:
    async with kernel.timeout_after(seconds):
        for n in range(1000):
            yield n


async def ticks_uncancellable() -> AsyncGenerator[int, None]:
    async with kernel.disable_cancellation():
        for n in range(1000):
            yield n


def test_a_timeout_block_closed_by_aclose_takes_its_deadline_with_it() -> None:
    async def main() -> float:
        async with contextlib.aclosing(ticks_within(5)) as ticks:
            async for n in ticks:
                if n == 2:
                    break
        async with kernel.ignore_after(100) as block:  # only its own timeout may end it
            await kernel.sleep(10)
        assert not block.expired
        return await kernel.clock()

    assert kernel.run(main, clock=VirtualClock()) == 10.0


def test_a_timeout_block_closed_after_a_break_is_left_for_the_iterating_task() -> None:
    async def main() -> float:
        async for n in ticks_within(5):
            if n == 2:
                break  # collected: the kernel closes it in a task of its own
        await kernel.sleep(10)  # past the generator's deadline
        return await kernel.clock()

    assert kernel.run(main, clock=VirtualClock()) == 10.0


def test_closing_it_from_another_task_keeps_the_iterating_tasks_own_deadline() -> None:
    async def worker(ticks: AsyncGenerator[int, None]) -> float:
        await ticks.__anext__()  # inside the generator's 2-second block
        try:
            async with kernel.timeout_after(6):  # entered after it: not nested in it
                await kernel.sleep(100)
        except kernel.TaskTimeout:
            return await kernel.clock()
        return -1.0

    async def main() -> float:
        ticks = ticks_within(2)
        task = await kernel.spawn(worker, ticks)
        await kernel.sleep(1)
        await ticks.aclose()  # by main, while the worker sleeps
        result: float = await task.join()
        return result

    assert kernel.run(main, clock=VirtualClock()) == 6.0


def test_a_no_cancel_block_closed_after_a_break_leaves_the_task_cancellable() -> None:
    async def worker() -> None:
        async for _ in ticks_uncancellable():
            break
        await kernel.sleep(100)

    async def main() -> tuple[bool, float]:
        task = await kernel.spawn(worker)
        await kernel.sleep(1)
        await task.cancel()
        return task.cancelled, await kernel.clock()

    assert kernel.run(main, clock=VirtualClock()) == (True, 1.0)


def test_a_cancel_held_back_by_a_generators_block_arrives_when_it_is_closed() -> None:
    async def worker(ticks: AsyncGenerator[int, None]) -> None:
        await ticks.__anext__()  # cancellation is off for this task from here ...
        await kernel.sleep(100)

    async def main() -> tuple[bool, float]:
        ticks = ticks_uncancellable()
        task = await kernel.spawn(worker, ticks)
        await kernel.sleep(1)
        await task.cancel(blocking=False)  # held back while the block is open
        await kernel.sleep(1)
        await ticks.aclose()  # ... to here: the cancel is delivered now, not at t=100
        await task.wait()
        return task.cancelled, await kernel.clock()

    assert kernel.run(main, clock=VirtualClock()) == (True, 2.0)
