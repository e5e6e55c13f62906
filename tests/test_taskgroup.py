"""Task groups: wait policies, failures as ExceptionGroup, start/started, collecting results."""

from __future__ import annotations

import contextlib
import errno
import signal
from typing import Any

import pytest
from trio_typing import TaskStatus

import kernel
from kernel import TASK_STATUS_IGNORED, TaskCancelled, TaskError, TaskGroup, VirtualClock


async def after(seconds: float, value: Any) -> Any:
    await kernel.sleep(seconds)
    return value


async def fail_after(seconds: float, exc: BaseException) -> None:
    await kernel.sleep(seconds)
    raise exc


async def test_wait_all_waits_for_every_task(virtual_clock: VirtualClock) -> None:
    async with TaskGroup() as g:
        t3 = await g.spawn(after, 3, "c")
        t1 = await g.spawn(after, 1, "a")
        t2 = await g.spawn(after, 2, None)
    assert virtual_clock.now() == 3.0
    assert g.tasks == [t3, t1, t2]
    assert g.results == ["c", "a", None]  # in the order the tasks joined the group
    assert g.completed is t1 and g.result == "a"
    assert g.exception is None and g.exceptions == []


async def test_wait_any_cancels_the_rest_after_the_first(virtual_clock: VirtualClock) -> None:
    async with TaskGroup(wait=any) as g:
        slow = await g.spawn(after, 5, "slow")
        await g.spawn(after, 1, "fast")
    assert virtual_clock.now() == 1.0
    assert g.result == "fast"
    assert slow.cancelled
    assert g.results == ["fast"]


async def test_wait_object_waits_for_the_first_real_result(virtual_clock: VirtualClock) -> None:
    async with TaskGroup(wait=object) as g:
        await g.spawn(after, 1, None)
        await g.spawn(after, 2, "value")
        late = await g.spawn(after, 3, "late")
    assert virtual_clock.now() == 2.0
    assert g.result == "value"
    assert late.cancelled


async def test_wait_none_cancels_everything_at_once(virtual_clock: VirtualClock) -> None:
    async with TaskGroup(wait=None) as g:
        t = await g.spawn(after, 5, "never")
    assert virtual_clock.now() == 0.0
    assert t.cancelled
    assert g.results == []


def test_wait_must_be_a_known_policy() -> None:
    with pytest.raises(ValueError, match="must be all, any, object or None"):
        TaskGroup(wait="all")


async def test_a_failure_cancels_siblings_at_once_and_leaves_as_an_exception_group(
    virtual_clock: VirtualClock,
) -> None:
    cancelled_at: list[float] = []

    async def sibling() -> None:
        try:
            await kernel.sleep(100)
        except TaskCancelled:
            cancelled_at.append(await kernel.clock())
            raise

    with pytest.raises(ExceptionGroup) as info:
        async with TaskGroup() as g:
            await g.spawn(sibling)
            await g.spawn(fail_after, 2, ValueError("bad"))
            await g.spawn(sibling)
    assert cancelled_at == [2.0, 2.0]
    assert virtual_clock.now() == 2.0
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert isinstance(g.exception, ValueError)


async def test_failures_can_be_caught_with_except_star() -> None:
    caught: list[str] = []
    try:
        async with TaskGroup() as g:
            await g.spawn(fail_after, 1, KeyError("k"))
            await g.spawn(fail_after, 1, OSError("o"))
    except* KeyError as group:
        caught.append(f"key {len(group.exceptions)}")
    except* OSError as group:
        caught.append(f"os {len(group.exceptions)}")
    assert caught == ["key 1", "os 1"]
    assert [type(e) for e in g.exceptions] == [KeyError, OSError]


async def test_the_body_is_not_interrupted_by_a_failure(virtual_clock: VirtualClock) -> None:
    log: list[float] = []
    with pytest.raises(ExceptionGroup):
        async with TaskGroup() as g:
            await g.spawn(fail_after, 1, ValueError())
            await kernel.sleep(5)
            log.append(virtual_clock.now())
    assert log == [5.0]


async def test_a_failing_body_cancels_the_children_and_propagates_unchanged() -> None:
    error = RuntimeError("body")
    with pytest.raises(RuntimeError) as info:
        async with TaskGroup() as g:
            child = await g.spawn(after, 10, "x")
            raise error
    assert info.value is error
    assert child.cancelled


async def test_a_failing_body_and_a_failing_child_leave_together() -> None:
    with pytest.raises(ExceptionGroup) as info:
        async with TaskGroup() as g:
            await g.spawn(fail_after, 0, ValueError("child"))
            await kernel.sleep(1)
            raise KeyError("body")
    assert [type(e) for e in info.value.exceptions] == [KeyError, ValueError]


async def test_a_timeout_around_a_group_is_not_wrapped(virtual_clock: VirtualClock) -> None:
    with pytest.raises(kernel.TaskTimeout):
        async with kernel.timeout_after(1), TaskGroup() as g:
            child = await g.spawn(after, 10, "x")
            await kernel.sleep(10)
    assert child.cancelled
    assert virtual_clock.now() == 1.0


async def test_failures_already_seen_are_not_raised_again() -> None:
    async with TaskGroup() as g:
        await g.spawn(fail_after, 1, ValueError("seen"))
        with pytest.raises(TaskError) as info:
            await g.next_result()
        assert isinstance(info.value.__cause__, ValueError)
    assert isinstance(g.exception, ValueError)


async def test_next_done_hands_out_tasks_in_the_order_they_end() -> None:
    async with TaskGroup() as g:
        await g.spawn(after, 3, "c")
        await g.spawn(after, 1, "a")
        await g.spawn(after, 2, "b")
        order = []
        while (task := await g.next_done()) is not None:
            order.append(task.result)
    assert order == ["a", "b", "c"]
    assert await g.next_done() is None
    with pytest.raises(RuntimeError, match="no task left"):
        await g.next_result()


async def test_async_for_and_next_result() -> None:
    async with TaskGroup() as g:
        await g.spawn(after, 2, "b")
        await g.spawn(after, 1, "a")
        assert await g.next_result() == "a"
        rest = [task.result async for task in g]
    assert rest == ["b"]


async def test_cancel_remaining(virtual_clock: VirtualClock) -> None:
    async with TaskGroup() as g:
        fast = await g.spawn(after, 1, "fast")
        slow = await g.spawn(after, 10, "slow")
        await g.next_done()
        await g.cancel_remaining()
        assert virtual_clock.now() == 1.0
    assert fast.result == "fast" and slow.cancelled


async def test_add_task_and_membership_rules() -> None:
    loose = await kernel.spawn(after, 1, "loose")
    done = await kernel.spawn(after, 0, "done")
    await done.wait()
    async with TaskGroup([done]) as g:
        await g.add_task(loose)
        other = TaskGroup()
        with pytest.raises(RuntimeError, match="already belongs to"):
            await other.add_task(loose)
    assert g.results == ["done", "loose"]
    with pytest.raises(RuntimeError, match="has finished"):
        await g.spawn(after, 1, "late")
    joined = await kernel.spawn(after, 0, 1)
    await joined.join()
    with pytest.raises(RuntimeError, match="already joined"):
        await TaskGroup().add_task(joined)


async def test_a_cancelled_parent_leaves_no_child_behind(virtual_clock: VirtualClock) -> None:
    children: list[kernel.Task] = []

    async def parent() -> None:
        async with TaskGroup() as g:
            children.append(await g.spawn(after, 100, "x"))
            children.append(await g.spawn(after, 100, "y"))

    task = await kernel.spawn(parent)
    await kernel.sleep(1)
    await task.cancel()
    assert task.cancelled
    assert all(child.cancelled for child in children)
    assert virtual_clock.now() == 1.0


async def server(port: int, task_status: TaskStatus[int] = TASK_STATUS_IGNORED) -> str:
    await kernel.sleep(1)  # "bind"
    task_status.started(port + 1)
    await kernel.sleep(10)
    return "served"


async def broken(task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
    await kernel.sleep(1)  # a "bind" that fails
    raise OSError("address in use")


class TestStart:
    async def test_start_returns_the_started_value(self, virtual_clock: VirtualClock) -> None:
        async with TaskGroup() as g:
            port = await g.start(server, 8000)
            assert port == 8001
            assert virtual_clock.now() == 1.0
        assert g.results == ["served"]
        assert virtual_clock.now() == 11.0

    async def test_the_same_function_runs_without_a_group(self) -> None:
        assert await kernel.timeout_after(20, server, 1) == "served"

    async def test_started_twice_is_an_error(self) -> None:
        async def twice(task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> str:
            task_status.started()
            try:
                task_status.started()
            except RuntimeError as error:
                return str(error)
            return "no error"

        async with TaskGroup() as g:
            await g.start(twice)
        assert "already called" in g.results[0]

    async def test_returning_without_started_is_an_error(self) -> None:
        async def forgetful(task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
            await kernel.sleep(1)

        async with TaskGroup() as g:
            with pytest.raises(RuntimeError, match=r"without calling task_status\.started"):
                await g.start(forgetful)

    async def test_a_failure_before_started_is_raised_by_start(self) -> None:
        async with TaskGroup() as g:
            with pytest.raises(OSError, match="address in use"):
                await g.start(broken)
        # It never joined the group: the error is start()'s caller's alone.
        assert g.tasks == []
        assert g.exception is None
        assert g.exceptions == []

    # What the group does once the failed start is behind it: the same as if it had never
    # been called. A sibling is not cancelled, and the failed task is not the "first to end".
    @pytest.mark.parametrize(
        ("wait", "ends_at", "sibling_cancelled"),
        [(all, 3.0, False), (any, 3.0, False), (object, 3.0, False), (None, 1.0, True)],
    )
    async def test_a_failure_before_started_leaves_the_siblings_alone(
        self, virtual_clock: VirtualClock, wait: Any, ends_at: float, sibling_cancelled: bool
    ) -> None:
        async with TaskGroup(wait=wait) as g:
            sibling = await g.spawn(after, 3, "sibling")
            with pytest.raises(OSError, match="address in use"):
                await g.start(broken)
            assert virtual_clock.now() == 1.0
            assert not sibling.done
        assert virtual_clock.now() == ends_at
        assert sibling.cancelled is sibling_cancelled  # wait=None cancels it, as it would anyway
        assert g.tasks == [sibling]
        assert g.exceptions == []
        if not sibling_cancelled:
            assert g.completed is sibling
            assert g.results == ["sibling"]

    async def test_a_failure_before_started_leaves_a_started_server_serving(self) -> None:
        async def echo(client: kernel.socket.Socket, address: Any) -> None:
            while data := await client.recv(1000):
                await client.sendall(data)

        async with TaskGroup(wait=None) as g:
            host, port = await g.start(kernel.tcp_server, "127.0.0.1", 0, echo)
            with pytest.raises(OSError) as failure:
                await g.start(kernel.tcp_server, host, port, echo)
            assert failure.value.errno == errno.EADDRINUSE
            # No deadline while the bytes travel: the virtual clock would jump to it.
            async with await kernel.open_connection(host, port) as client:
                await client.sendall(b"ping")
                assert await client.recv(10) == b"ping"
        assert len(g.tasks) == 1
        assert g.exceptions == []

    async def test_a_failure_after_started_cancels_the_siblings(
        self, virtual_clock: VirtualClock
    ) -> None:
        async def crashes_once_up(task_status: TaskStatus[str] = TASK_STATUS_IGNORED) -> None:
            task_status.started("up")
            await kernel.sleep(2)
            raise ValueError("crashed while serving")

        with pytest.raises(ExceptionGroup) as failures:
            async with TaskGroup() as g:
                sibling = await g.spawn(after, 10, "sibling")
                assert await g.start(crashes_once_up) == "up"
        assert virtual_clock.now() == 2.0
        assert sibling.cancelled
        assert [str(e) for e in failures.value.exceptions] == ["crashed while serving"]
        assert len(g.tasks) == 2

    async def test_a_caller_timing_out_cancels_the_task_it_starts(
        self, virtual_clock: VirtualClock
    ) -> None:
        async with TaskGroup() as g:
            with pytest.raises(kernel.TaskTimeout):
                await kernel.timeout_after(0.5, g.start, server, 8000)  # it starts at 1.0
            # Cancelled, and waited for, by start(): the group has nothing left to wait for.
            assert virtual_clock.now() == 0.5
        assert virtual_clock.now() == 0.5
        assert g.tasks == []
        assert g.exceptions == []

    async def test_a_cancelled_caller_that_is_not_the_body_takes_the_task_along(
        self, virtual_clock: VirtualClock
    ) -> None:
        starting: list[kernel.Task] = []

        async def slow_start(task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
            starting.append(await kernel.current_task())
            await kernel.sleep(10)
            task_status.started()

        async with TaskGroup() as g:
            sibling = await g.spawn(after, 3, "sibling")
            caller = await kernel.spawn(g.start, slow_start)
            await kernel.sleep(1)
            await caller.cancel()
            assert starting[0].cancelled
        assert virtual_clock.now() == 3.0
        assert not sibling.cancelled
        assert g.tasks == [sibling]
        assert g.exceptions == []


async def test_a_failure_cancels_the_siblings_in_the_order_they_joined() -> None:
    # The cancelled siblings run their cleanup in the order they were cancelled; that order
    # must be the group's, not a set's (which follows memory addresses), so that a schedule
    # -- and a trace of it -- is the same on every run.
    cleaned: list[int] = []

    async def sibling(number: int) -> None:
        try:
            await kernel.sleep(10)
        finally:
            cleaned.append(number)

    async def fails() -> None:
        await kernel.sleep(1)
        raise ValueError("boom")

    with pytest.raises(ExceptionGroup):
        async with kernel.TaskGroup() as group:
            for number in range(40):
                await group.spawn(sibling, number)
            await group.spawn(fails)
    assert cleaned == list(range(40))


async def test_a_sibling_failing_while_the_body_starts_a_task_is_reported(
    virtual_clock: kernel.VirtualClock,
) -> None:
    """The failure cancels the task being started, so start() raises that cancellation in
    the body; the block still ends with the failure, not with a cancellation that would
    hide it."""

    async def fails() -> None:
        await kernel.sleep(1)
        raise ValueError("sibling broke")

    async def slow_to_start(task_status: Any) -> None:
        await kernel.sleep(10)
        task_status.started()

    with pytest.raises(BaseExceptionGroup) as info:
        async with kernel.TaskGroup() as group:
            await group.spawn(fails)
            await group.start(slow_to_start)
    [error] = info.value.exceptions
    assert isinstance(error, ValueError) and str(error) == "sibling broke"
    assert virtual_clock.now() == 1


async def test_a_members_own_timeout_is_a_failure_not_a_cancellation(
    virtual_clock: VirtualClock,
) -> None:
    # Nobody cancelled it: its own deadline passed, and the TaskTimeout left its block.
    # That is "this timed out" (asyncio's TimeoutError, trio's TooSlowError): the group
    # must not pass it over as if the member had been cancelled.
    async def fetch() -> str:
        async with kernel.timeout_after(1):
            await kernel.sleep(5)
        return "data"

    async def sibling() -> None:
        await kernel.sleep(100)

    with pytest.raises(BaseExceptionGroup) as caught:
        async with TaskGroup() as group:
            timed_out = await group.spawn(fetch)
            other = await group.spawn(sibling)
    assert [type(error) for error in caught.value.exceptions] == [kernel.TaskTimeout]
    assert not timed_out.cancelled
    assert other.cancelled  # cancelled for the failure, at the deadline
    assert virtual_clock.now() == 1.0


@pytest.mark.parametrize("call", ["spawn", "spawn a coroutine", "start"])
async def test_a_finished_group_refuses_a_newcomer_before_it_runs(call: str) -> None:
    ran: list[str] = []

    async def newcomer(task_status: TaskStatus[None] = TASK_STATUS_IGNORED) -> None:
        ran.append("ran")
        task_status.started()

    async with TaskGroup() as group:
        pass
    with pytest.raises(RuntimeError, match="has finished"):
        if call == "spawn":
            await group.spawn(newcomer)
        elif call == "spawn a coroutine":
            await group.spawn(newcomer())  # (closed unrun: no "never awaited" warning)
        else:
            await group.start(newcomer)
    await kernel.sleep(0)
    assert ran == []


@pytest.mark.parametrize("how", ["wait=any", "a member failed"])
async def test_a_member_that_joins_while_the_group_cancels_is_cancelled_too(
    how: str, virtual_clock: VirtualClock
) -> None:
    late: list[kernel.Task] = []

    async def member(group: TaskGroup) -> None:
        try:
            await kernel.sleep(10)
        finally:  # its cleanup brings in one more member
            late.append(await group.spawn(kernel.sleep, 100))

    async def fail(seconds: float) -> None:
        await kernel.sleep(seconds)
        raise ValueError("failed")

    with contextlib.suppress(BaseExceptionGroup):
        async with TaskGroup(wait=any) as group:
            await group.spawn(member, group)
            await group.spawn(fail if how == "a member failed" else kernel.sleep, 0.5)
    assert late[0].cancelled and virtual_clock.now() == 0.5


def test_a_members_system_exit_leaves_the_block_and_stops_the_program(
    caplog: pytest.LogCaptureFixture,
) -> None:
    after: list[str] = []

    async def child() -> None:
        await kernel.sleep(0)
        raise SystemExit(3)

    async def worker() -> None:
        async with TaskGroup() as group:
            await group.spawn(child)
            await group.spawn(kernel.sleep, 1)
        after.append("the body went on")  # as if every member had succeeded

    async def main() -> None:
        await (await kernel.spawn(worker)).join()

    with pytest.raises(SystemExit) as stopped:
        kernel.run(main, clock=VirtualClock())
    assert stopped.value.code == 3 and after == []
    assert "nobody looked at its exception" not in caplog.text  # the program stopped for it


def test_a_group_closed_as_the_kernel_abandons_its_tasks_yields_no_trap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def worker() -> None:
        try:
            async with TaskGroup() as group:
                await group.spawn(kernel.sleep, 100)
        except BaseException as error:
            seen.append(type(error).__name__)
            raise

    async def presses_ctrl_c_twice() -> None:
        await kernel.sleep(1)
        signal.raise_signal(signal.SIGINT)  # the first: main is cancelled, cleans up
        await kernel.sleep(0)
        signal.raise_signal(signal.SIGINT)  # the second: stop at once, abandoning tasks

    async def main() -> None:
        await kernel.spawn(worker)
        await kernel.spawn(presses_ctrl_c_twice)
        try:
            await kernel.sleep(100)
        except TaskCancelled:
            await kernel.sleep(10)  # a long cleanup, cut short by the second Ctrl-C
            raise

    with pytest.raises(KeyboardInterrupt):
        kernel.run(main, clock=VirtualClock())
    assert seen == ["GeneratorExit"]
    assert "ignored GeneratorExit" not in caplog.text and "abandoning" not in caplog.text
