"""sleep, clock and timeouts under the virtual clock: exact times, curio's nesting rules."""

from __future__ import annotations

import contextlib
import math
import re
import sys
from collections.abc import Callable
from typing import Any

import pytest

import kernel
from kernel import (
    TaskCancelled,
    TaskTimeout,
    TimeoutCancellationError,
    UncaughtTimeoutError,
    VirtualClock,
)


async def test_sleep_takes_exactly_its_time(virtual_clock: VirtualClock) -> None:
    await kernel.sleep(1.5)
    assert await kernel.clock() == 1.5
    await kernel.sleep(0)
    await kernel.sleep(-3)  # the past: just yields
    assert virtual_clock.now() == 1.5


async def test_sleepers_wake_in_deadline_order() -> None:
    log: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await kernel.sleep(seconds)
        log.append((name, await kernel.clock()))

    async with kernel.TaskGroup() as g:
        await g.spawn(nap, "c", 3)
        await g.spawn(nap, "a", 1)
        await g.spawn(nap, "b", 2)
        await g.spawn(nap, "a2", 1)
    assert log == [("a", 1.0), ("a2", 1.0), ("b", 2.0), ("c", 3.0)]


async def test_sleep_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"sleep\(\) takes a number of seconds, not '1'"):
        await kernel.sleep("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await kernel.sleep(True)
    with pytest.raises(ValueError, match="NaN"):
        await kernel.sleep(math.nan)


async def test_virtual_clock_can_be_advanced_by_hand(virtual_clock: VirtualClock) -> None:
    virtual_clock.advance(10)
    assert await kernel.clock() == 10.0
    with pytest.raises(ValueError, match="backwards"):
        virtual_clock.advance(-1)


def test_virtual_clock_arguments() -> None:
    assert VirtualClock(5.0).now() == 5.0
    with pytest.raises(ValueError, match="autojump_threshold"):
        VirtualClock(autojump_threshold=-1)


async def test_timeout_after_raises_task_timeout_at_the_deadline(
    virtual_clock: VirtualClock,
) -> None:
    with pytest.raises(TaskTimeout) as info:
        async with kernel.timeout_after(2):
            await kernel.sleep(10)
    assert virtual_clock.now() == 2.0
    assert info.value.args == (2.0,)


async def test_a_block_that_finishes_in_time_leaves_no_timeout_behind(
    virtual_clock: VirtualClock,
) -> None:
    async with kernel.timeout_after(2) as block:
        await kernel.sleep(1)
    assert not block.expired
    await kernel.sleep(5)  # the old deadline (t=2) must not fire here
    assert virtual_clock.now() == 6.0


async def test_a_timeout_and_a_sleep_due_together_wake_the_task_once(
    virtual_clock: VirtualClock,
) -> None:
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(1, kernel.sleep, 1)  # both deadlines are t=1
    await kernel.sleep(5)  # a stale second wake-up would end this early
    assert virtual_clock.now() == 6.0


async def test_timeout_after_with_a_coroutine() -> None:
    async def slow(x: int) -> int:
        await kernel.sleep(5)
        return x

    assert await kernel.timeout_after(10, slow, 3) == 3
    assert await kernel.timeout_after(10, slow(4)) == 4
    with pytest.raises(TaskTimeout):
        await kernel.timeout_after(1, slow, 5)


async def test_timeout_at_uses_an_absolute_deadline(virtual_clock: VirtualClock) -> None:
    await kernel.sleep(1)
    with pytest.raises(TaskTimeout):
        async with kernel.timeout_at(3):
            await kernel.sleep(10)
    assert virtual_clock.now() == 3.0
    assert await kernel.ignore_at(4, kernel.sleep, 10) is None
    assert virtual_clock.now() == 4.0


async def test_ignore_after_swallows_the_timeout(virtual_clock: VirtualClock) -> None:
    async with kernel.ignore_after(1, timeout_result="late") as block:
        await kernel.sleep(10)
    assert block.expired and block.result == "late"
    assert virtual_clock.now() == 1.0
    async with kernel.ignore_after(5) as block:
        await kernel.sleep(1)
    assert not block.expired and block.result is None


async def test_ignore_after_with_a_coroutine() -> None:
    async def slow() -> str:
        await kernel.sleep(5)
        return "done"

    assert await kernel.ignore_after(1, slow, timeout_result="gave up") == "gave up"
    assert await kernel.ignore_after(10, slow) == "done"


async def test_timeout_none_means_no_timeout(virtual_clock: VirtualClock) -> None:
    async with kernel.timeout_after(None):
        await kernel.sleep(1000)
    assert virtual_clock.now() == 1000.0


async def test_timeout_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match=r"timeout_after\(\) takes a number"):
        kernel.timeout_after("5")  # type: ignore[call-overload]
    block = kernel.timeout_after(5)
    async with block:
        pass
    with pytest.raises(RuntimeError, match="entered twice"):
        async with block:
            pass


class TestNesting:
    async def test_outer_expiring_first_is_a_cancellation_inside(
        self, virtual_clock: VirtualClock
    ) -> None:
        seen: list[str] = []
        with pytest.raises(TaskTimeout):
            async with kernel.timeout_after(1):
                try:
                    async with kernel.timeout_after(5):
                        await kernel.sleep(10)
                except TimeoutCancellationError:
                    seen.append("inner block saw TimeoutCancellationError")
                    raise
        assert seen == ["inner block saw TimeoutCancellationError"]
        assert virtual_clock.now() == 1.0

    async def test_inner_expiring_first_is_caught_inside(self, virtual_clock: VirtualClock) -> None:
        async with kernel.timeout_after(5) as outer:
            with pytest.raises(TaskTimeout):
                async with kernel.timeout_after(1):
                    await kernel.sleep(10)
            assert virtual_clock.now() == 1.0
            await kernel.sleep(2)  # outer is still armed, and does not fire early
        assert not outer.expired
        assert virtual_clock.now() == 3.0

    async def test_outer_still_fires_after_an_inner_block(
        self, virtual_clock: VirtualClock
    ) -> None:
        with pytest.raises(TaskTimeout):
            async with kernel.timeout_after(3):
                async with kernel.ignore_after(1):
                    await kernel.sleep(10)
                await kernel.sleep(10)
        assert virtual_clock.now() == 3.0

    async def test_ignore_inside_timeout_when_the_outer_expires(
        self, virtual_clock: VirtualClock
    ) -> None:
        async with kernel.ignore_after(1) as outer, kernel.ignore_after(5) as inner:
            await kernel.sleep(10)
        assert outer.expired and not inner.expired
        assert virtual_clock.now() == 1.0

    async def test_an_escaped_inner_timeout_is_an_uncaught_timeout_error(self) -> None:
        with pytest.raises(UncaughtTimeoutError):
            async with kernel.timeout_after(10):
                try:
                    async with kernel.timeout_after(1):
                        await kernel.sleep(5)
                except TaskTimeout as error:
                    escaped = error
                raise escaped

    async def test_three_levels_outermost_wins(self, virtual_clock: VirtualClock) -> None:
        kinds: list[str] = []
        with pytest.raises(TaskTimeout):
            async with kernel.timeout_after(2):
                try:
                    async with kernel.timeout_after(4):
                        try:
                            async with kernel.timeout_after(6):
                                await kernel.sleep(10)
                        except BaseException as e:
                            kinds.append(type(e).__name__)
                            raise
                except BaseException as e:
                    kinds.append(type(e).__name__)
                    raise
        assert kinds == ["TimeoutCancellationError", "TimeoutCancellationError"]
        assert virtual_clock.now() == 2.0


class TestTimeoutWhileNotBlocked:
    async def test_delivered_at_the_next_blocking_call(self, virtual_clock: VirtualClock) -> None:
        steps: list[str] = []
        with pytest.raises(TaskTimeout):
            async with kernel.timeout_after(1):
                virtual_clock.advance(5)  # time passes while the task is busy
                await kernel.sleep(0)  # the deadline fires while we are in the ready queue
                steps.append("still running after the deadline")
                await kernel.sleep(1)
                steps.append("never")
        assert steps == ["still running after the deadline"]

    async def test_dropped_if_the_block_ends_first(self, virtual_clock: VirtualClock) -> None:
        async with kernel.timeout_after(1) as block:
            virtual_clock.advance(5)
            await kernel.sleep(0)
        assert not block.expired
        await kernel.sleep(1)  # no stale timeout arrives here
        assert virtual_clock.now() == 6.0

    async def test_an_expired_outer_deadline_is_owed_after_the_inner_block(
        self, virtual_clock: VirtualClock
    ) -> None:
        with pytest.raises(TaskTimeout):
            async with kernel.timeout_after(1):
                async with kernel.timeout_after(10):
                    virtual_clock.advance(5)
                    await kernel.sleep(0)
                # the inner block ended without blocking again; the outer one is owed
                await kernel.sleep(1)
        assert virtual_clock.now() == 5.0


async def test_what_the_code_recorded_on_a_timeout_survives_the_blocks_it_crosses() -> None:
    # An enclosing block's deadline passes: inside the inner block it is a TaskTimeout,
    # crossing that block it becomes a TimeoutCancellationError, and the outer block turns
    # it back into a TaskTimeout. Whatever was recorded on it on the way stays (sendall's
    # bytes_sent is one such record).
    with pytest.raises(TaskTimeout) as info:
        async with kernel.timeout_after(1), kernel.timeout_after(10):
            try:
                await kernel.sleep(5)
            except TaskTimeout as timeout:
                timeout.bytes_sent = 42  # type: ignore[attr-defined]
                timeout.add_note("sent 42 bytes")
                raise
    assert info.value.bytes_sent == 42  # type: ignore[attr-defined]
    assert info.value.__notes__ == ["sent 42 bytes"]
    assert info.value.args == (1.0,)


async def test_a_cancel_is_not_lost_behind_a_pending_timeout(
    virtual_clock: VirtualClock,
) -> None:
    async def worker() -> None:
        async with kernel.disable_cancellation(), kernel.ignore_after(1):
            await kernel.sleep(5)  # timeout at t=1 and cancel at t=2 both wait
        await kernel.sleep(100)

    task = await kernel.spawn(worker)
    await kernel.sleep(2)
    await task.cancel(blocking=False)
    await task.wait()
    assert isinstance(task.exception, TaskCancelled)
    assert virtual_clock.now() == 5.0


class _KernelFailure:
    """A callback that raises in the kernel's loop, as a second Ctrl-C does: the kernel then
    abandons its tasks, closing their coroutines (GeneratorExit)."""

    def _run(self) -> None:
        raise KeyboardInterrupt


@pytest.mark.parametrize("block", ["timeout_after", "ignore_after", "disable_cancellation"])
def test_a_block_left_by_an_abandoned_task_yields_no_trap(
    block: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A closing coroutine may not await: a block exit that yields a trap then is reported by
    # Python as "coroutine ignored GeneratorExit", and the cleanup after it never runs.
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    cleanup: list[str] = []
    blocks: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Any]]] = {
        "timeout_after": lambda: kernel.timeout_after(10),
        "ignore_after": lambda: kernel.ignore_after(10),
        "disable_cancellation": kernel.disable_cancellation,
    }

    async def inside_a_block() -> None:
        try:
            async with blocks[block]():
                await kernel.sleep(5)
        finally:
            cleanup.append("ran")

    async def main() -> None:
        await kernel.spawn(inside_a_block)
        await kernel.sleep(0)  # it parks inside its block
        running = kernel.current_kernel()
        assert running is not None
        running.call_soon(_KernelFailure())
        await kernel.sleep(1)

    with pytest.raises(KeyboardInterrupt):
        kernel.run(main, clock=kernel.VirtualClock())
    assert cleanup == ["ran"]
    assert unraisable == []


@pytest.mark.parametrize("block", ["ignore_after", "timeout_after"])
async def test_a_deadline_passing_during_a_cancelled_tasks_cleanup_does_not_end_the_cancel(
    virtual_clock: kernel.VirtualClock, block: str
) -> None:
    # Cancelled inside the block, the task's cleanup waits past the block's deadline. The
    # timeout interrupts the cleanup; swallowed by ignore_after (or caught as TaskTimeout),
    # it would let the task carry on as if it had never been cancelled.
    carried_on: list[float] = []

    async def child() -> None:
        while True:  # a retry loop: it catches TaskTimeout, and tries again
            try:
                async with getattr(kernel, block)(1):
                    try:
                        await kernel.sleep(10)
                    finally:
                        await kernel.sleep(5)  # cleanup that waits (a graceful close, say)
            except kernel.TaskTimeout:
                pass
            carried_on.append(await kernel.clock())
            await kernel.sleep(100)

    task = await kernel.spawn(child)
    await kernel.sleep(0.5)
    await kernel.timeout_after(50, task.cancel)  # (without the fix: the task never ends)
    assert task.cancelled and isinstance(task.exception, kernel.TaskCancelled)
    assert carried_on == []
    assert await kernel.clock() == 1.0  # the cleanup was cut short by the deadline


@pytest.mark.usefixtures("no_timeout_signal")  # (its SIGALRM handler could wake a task)
def test_a_program_waiting_only_for_a_sleep_without_end_is_a_deadlock() -> None:
    with pytest.raises(kernel.Deadlock, match=r"sleeps for ever \(a deadline of math.inf\)"):
        kernel.run(kernel.sleep, math.inf, clock=kernel.VirtualClock())


async def test_a_cleanup_bounded_on_purpose_after_a_cancellation_ends_at_its_deadline(
    virtual_clock: kernel.VirtualClock,
) -> None:
    # The cancellation came before the block: the block bounds the cleanup, and its own
    # timeout is its to swallow -- the code after it still runs, then the cancel goes on.
    steps: list[tuple[str, float]] = []

    async def child() -> None:
        try:
            await kernel.sleep(10)
        except kernel.TaskCancelled:
            async with kernel.ignore_after(1):
                await kernel.sleep(5)  # a goodbye that takes too long
            steps.append(("gave up on the goodbye", await kernel.clock()))
            raise

    task = await kernel.spawn(child)
    await kernel.sleep(0.5)
    await kernel.timeout_after(50, task.cancel)
    assert task.cancelled
    assert steps == [("gave up on the goodbye", 1.5)]


async def test_another_tasks_cancellation_handled_here_does_not_outrank_a_deadline(
    virtual_clock: kernel.VirtualClock,
) -> None:
    # A cancellation can reach a task that was never cancelled: TaskGroup.start() raises
    # the one that ended the task it was starting. Handled inside a timeout block, it must
    # not be taken for this task's own -- the block's deadline is its to swallow.
    other = await kernel.spawn(kernel.sleep, 10)
    await other.cancel()
    theirs = other.exception
    assert isinstance(theirs, kernel.TaskCancelled)
    async with kernel.ignore_after(1) as block:
        try:
            raise theirs
        except kernel.TaskCancelled:
            await kernel.sleep(5)  # a fallback that takes too long
    assert block.expired
    assert virtual_clock.now() == 1.0


def test_a_task_timeout_raised_by_hand_with_a_message_is_not_mistaken_for_a_time() -> None:
    async def main() -> None:
        async with kernel.timeout_after(5):
            raise kernel.TaskTimeout("gave up waiting for the reply")

    # Not a TypeError from comparing the message with the deadlines: the block's own
    # deadline has not passed, so it is a timeout that is not this block's.
    with pytest.raises(kernel.UncaughtTimeoutError):
        kernel.run(main, clock=VirtualClock())


@pytest.mark.parametrize(
    ("call", "advice"),
    [
        (kernel.timeout_after, "timeout_after(seconds, func, *args)"),
        (kernel.ignore_at, "ignore_at(deadline, func(*args))"),
    ],
)
def test_a_coroutine_with_arguments_gets_advice_that_keeps_the_time(call: Any, advice: str) -> None:
    async def fetch(url: str) -> str:
        return url

    async def main() -> None:
        coro = fetch("a")
        try:
            await call(1, coro, "b")
        finally:
            coro.close()

    with pytest.raises(TypeError, match=re.escape(advice)):
        kernel.run(main, clock=VirtualClock())
