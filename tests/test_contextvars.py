"""Context variables: each task has its own, copied from its spawner's when it is made.

As with asyncio's tasks and trio's, a value one task sets is not seen by any other task, and
a new task starts from what its spawner had. ``run_in_thread`` runs its function in a copy
of the calling task's context, as ``asyncio.to_thread`` and trio's ``to_thread`` do.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Generator
from typing import Any

import kernel
import kernel.aio
from kernel import Kernel, VirtualClock

request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


async def set_then_read(value: str) -> str:
    request.set(value)
    await kernel.sleep(1)  # every other task sets its own meanwhile
    return request.get()


def test_a_value_one_task_sets_is_not_seen_by_the_others() -> None:
    async def main() -> tuple[list[str], str]:
        request.set("main")
        tasks = [await kernel.spawn(set_then_read, name) for name in ("a", "b", "c")]
        return [await task.join() for task in tasks], request.get()

    assert kernel.run(main, clock=VirtualClock()) == (["a", "b", "c"], "main")


def test_a_task_starts_from_a_copy_of_its_spawners_values() -> None:
    async def child() -> tuple[str, str]:
        inherited = request.get()
        await kernel.sleep(1)
        return inherited, request.get()  # the parent's later change is not seen

    async def main() -> tuple[tuple[str, str], str]:
        request.set("from parent")
        task = await kernel.spawn(child)
        request.set("changed later")
        return await task.join(), request.get()

    assert kernel.run(main, clock=VirtualClock()) == (
        ("from parent", "from parent"),
        "changed later",
    )


def test_the_main_task_starts_from_the_callers_context_and_leaves_it_alone() -> None:
    async def main() -> str:
        seen = request.get()
        request.set("inside")
        return seen

    token = request.set("caller")
    try:
        assert kernel.run(main) == "caller"
        assert request.get() == "caller"  # the main task's set stayed in its own copy
    finally:
        request.reset(token)


def test_generator_based_tasks_and_task_groups_have_their_own_too() -> None:
    def old_style(value: str) -> Generator[Any, Any, str]:
        request.set(value)
        yield from kernel.sleep(1)
        return request.get()

    async def main() -> list[str]:
        request.set("main")
        async with kernel.TaskGroup() as group:
            await group.spawn(old_style, "x")
            await group.spawn(set_then_read, "y")
            await group.spawn(old_style, "z")
        return [*group.results, request.get()]

    assert kernel.run(main, clock=VirtualClock()) == ["x", "y", "z", "main"]


def test_run_in_thread_runs_the_function_in_a_copy_of_the_tasks_context() -> None:
    def in_thread() -> str:
        seen = request.get()
        request.set("set in the thread")
        return seen

    async def main() -> tuple[str, str]:
        request.set("task's")
        return await kernel.run_in_thread(in_thread), request.get()

    assert kernel.run(main) == ("task's", "task's")


def test_the_values_cross_the_bridges_to_and_from_asyncio_code() -> None:
    async def kernel_side() -> str:
        return request.get()

    async def asyncio_side() -> tuple[str, str]:
        seen = request.get()
        request.set("asyncio task's")
        return seen, await kernel.aio.run_kernel(kernel_side)

    async def main() -> tuple[tuple[str, str], str]:
        request.set("kernel task's")
        return await kernel.aio.run_asyncio(asyncio_side()), request.get()

    assert kernel.run(main, clock=VirtualClock()) == (
        ("kernel task's", "asyncio task's"),
        "kernel task's",
    )


def test_asyncio_tasks_on_the_adapter_keep_asyncios_rules() -> None:
    async def child(value: str) -> str:
        request.set(value)
        await asyncio.sleep(0)
        return request.get()

    async def main() -> list[str]:
        request.set("main")
        results = await asyncio.gather(child("a"), child("b"))
        return [*results, request.get()]

    assert kernel.aio.run(main()) == ["a", "b", "main"]


def test_a_task_started_from_outside_any_task_copies_the_current_context() -> None:
    async def started() -> str:
        return request.get()

    with Kernel() as k:
        token = request.set("outside")
        try:
            task = k.start_task(started)
        finally:
            request.reset(token)
        k.run_until(lambda: task.done)
        assert task.result == "outside"
