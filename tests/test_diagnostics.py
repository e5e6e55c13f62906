"""The two diagnostics that teach: the slow step and the deadlock (``kernel/diagnostics.py``).

The slow-step tests busy-wait for a few hundredths of a second inside a task: a task that
keeps the kernel for real time is the very thing under test. Thresholds sit well away from
the busy times, so a loaded machine (which can only make a step *longer*) does not turn a
"reported" into a "not reported"; the tests that expect silence leave a wide margin too.

The deadlock tests are plain ``def`` tests that run their own kernel with ``kernel.run``, and
use the ``no_timeout_signal`` fixture: pytest-timeout's SIGALRM handler could wake a task as
far as the kernel can tell, which would keep the detector silent.
"""

from __future__ import annotations

import logging
import re
import runpy
import signal
import threading
import time
import types
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import kernel
import kernel.scheduler
from kernel.deadlock import find_deadlock, possible_waker
from kernel.traps import SLEEP

pytestmark = pytest.mark.usefixtures("no_timeout_signal")


def busy(seconds: float) -> None:
    """Keep the CPU (and so the kernel) for ``seconds`` of real time."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.fixture
def reports(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """The warnings the kernel logged, as a function to call after the run."""
    caplog.set_level(logging.WARNING, logger="kernel")
    yield lambda: [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# -- the slow step ------------------------------------------------------------------------


def test_a_step_longer_than_the_threshold_is_reported_with_the_task_and_its_time(
    reports: Callable[[], list[str]],
) -> None:
    async def hog() -> None:
        await kernel.sleep(0)
        busy(0.05)  # stands for a blocking call
        await kernel.sleep(0)

    async def main() -> None:
        await (await kernel.spawn(hog, name="hog")).join()

    kernel.run(main, slow_task_threshold=0.02)
    [report] = reports()
    assert re.match(r"task 2 'hog' ran for 0\.\d\d s without letting any other task run", report)
    assert re.search(r"\(until test_diagnostics\.py:\d+ in .*hog\)", report)
    assert "This is what cooperative scheduling means." in report
    assert "kernel.run_in_thread" in report


def test_a_step_that_ends_the_task_says_so(reports: Callable[[], list[str]]) -> None:
    async def compute() -> int:
        busy(0.05)
        return 42

    async def fail() -> None:
        busy(0.05)
        raise ValueError("late")

    async def main() -> None:
        assert await (await kernel.spawn(compute)).join() == 42
        with pytest.raises(kernel.TaskError):
            await (await kernel.spawn(fail)).join()

    kernel.run(main, slow_task_threshold=0.02)
    first, second = reports()
    assert "(until it returned)" in first
    assert "(until it raised ValueError)" in second


def test_non_blocking_traps_do_not_end_a_step(reports: Callable[[], list[str]]) -> None:
    # clock() is answered at once and the same task goes on: nobody else ran meanwhile.
    async def spinner() -> None:
        end = time.perf_counter() + 0.05
        while time.perf_counter() < end:
            await kernel.clock()
        await kernel.sleep(0)

    async def main() -> None:
        await (await kernel.spawn(spinner, name="spinner")).join()

    kernel.run(main, slow_task_threshold=0.02)
    [report] = reports()
    assert report.startswith("task 2 'spinner' ran for 0.")


def test_time_spent_waiting_in_the_ready_queue_does_not_count(
    reports: Callable[[], list[str]],
) -> None:
    # Eleven tasks, each busy for 0.01 s a step: a task waits 0.1 s for the other ten to
    # take their turns, twice the threshold, yet none of its own steps comes close.
    async def worker() -> None:
        for _ in range(2):
            busy(0.01)
            await kernel.sleep(0)

    async def main() -> None:
        tasks = [await kernel.spawn(worker) for _ in range(11)]
        for task in tasks:
            await task.join()

    kernel.run(main, slow_task_threshold=0.05)
    assert reports() == []


def test_a_bad_yield_ends_the_step(reports: Callable[[], list[str]]) -> None:
    # After a bad yield the task goes to the back of the ready queue, behind a slow
    # callback: the callback's time is not the task's.
    class SlowCallback:
        def _run(self) -> None:
            busy(0.05)

    @types.coroutine
    def bad_yield() -> Generator[Any, Any, None]:
        yield "not a trap"

    async def confused() -> None:
        running = kernel.current_kernel()
        assert running is not None
        running.call_soon(SlowCallback())
        with pytest.raises(TypeError, match="not a trap"):
            await bad_yield()
        await kernel.sleep(0)

    async def main() -> None:
        await (await kernel.spawn(confused)).join()

    kernel.run(main, slow_task_threshold=0.03)
    assert reports() == []


def test_the_watch_and_the_tracer_work_together(reports: Callable[[], list[str]]) -> None:
    events: list[str] = []

    def tracer(event: str, task: kernel.Task | None, **details: Any) -> None:
        events.append(event)

    async def main() -> str:
        coro = (await kernel.current_task()).coro  # the task's own, under both wrappers
        assert isinstance(coro, types.CoroutineType) and coro.cr_code is main.__code__
        busy(0.05)
        return "done"

    assert kernel.run(main, tracer=tracer, slow_task_threshold=0.02) == "done"
    assert "run" in events and "exit" in events
    [report] = reports()
    assert "(until it returned)" in report


def test_the_watch_is_off_by_default_and_costs_nothing_then(
    reports: Callable[[], list[str]],
) -> None:
    plain = kernel.Kernel()
    watched = kernel.Kernel(slow_task_threshold=0.1)
    try:
        # Nothing swapped in: the loop runs the kernel's own methods, as if diagnostics
        # did not exist.
        assert "_new_task" not in vars(plain) and "_bad_yield" not in vars(plain)
        assert plain._handlers[SLEEP] == plain._trap_sleep
        assert "_new_task" in vars(watched) and watched._handlers[SLEEP] != watched._trap_sleep

        async def hog() -> None:
            busy(0.05)

        plain.run(hog)
    finally:
        plain.close()
        watched.close()
    assert reports() == []


@pytest.mark.parametrize("threshold", [-1, True, "0.1", float("nan")])
def test_the_threshold_must_be_a_number_of_seconds(threshold: Any) -> None:
    with pytest.raises(ValueError, match="slow_task_threshold"):
        kernel.Kernel(slow_task_threshold=threshold)


def test_the_blocking_call_example_names_the_task(reports: Callable[[], list[str]]) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "20_blocking_call.py"
    kernel.run(runpy.run_path(str(example))["main"], slow_task_threshold=0.1)
    [report] = reports()
    assert re.match(r"task 2 'fetch' ran for 0\.\d\d s .* \(until it returned\)", report)


# -- deadlocks ----------------------------------------------------------------------------


def deadlock_of(main: Callable[[], Any]) -> str:
    """Run ``main``; it must end in a Deadlock. Its message, with the line numbers blanked
    and the tests' names left out of the functions' (main, not test_x.<locals>.main)."""
    with pytest.raises(kernel.Deadlock) as caught:
        kernel.run(main)
    report = re.sub(r"test_diagnostics\.py:\d+", "test_diagnostics.py:N", str(caught.value))
    return re.sub(r"\btest_\w+\.<locals>\.", "", report)


def lines_of(report: str) -> list[str]:
    """The report's lines after its opening sentence."""
    header, *lines = report.splitlines()
    assert header.startswith("every task is blocked, and nothing is left that could wake one")
    return lines


async def transfer(first: kernel.Lock, second: kernel.Lock) -> None:
    async with first:
        await kernel.sleep(0)
        async with second:
            pass


def test_two_locks_taken_in_opposite_orders() -> None:
    async def main() -> None:
        a, b = kernel.Lock(), kernel.Lock()
        alice = await kernel.spawn(transfer, a, b, name="alice")
        bob = await kernel.spawn(transfer, b, a, name="bob")
        await alice.join()
        await bob.join()

    assert lines_of(deadlock_of(main)) == [
        "Who waits for what:",
        "  task 1 'main' (at test_diagnostics.py:N in main) waits for task 2 'alice' to end",
        "  task 2 'alice' (at test_diagnostics.py:N in transfer) waits for Lock #1, held by "
        "task 3 'bob'",
        "  task 3 'bob' (at test_diagnostics.py:N in transfer) waits for Lock #2, held by "
        "task 2 'alice'",
        "The wait-for chain (task -> what it waits for -> who could end the wait):",
        "  task 1 'main' -> task 2 'alice' -> Lock #1 -> task 3 'bob' -> Lock #2 -> "
        "task 2 'alice': a cycle",
    ]


def test_the_deadlock_is_raised_in_the_main_task_where_it_waits() -> None:
    # main catches it and carries on: the kernel is fine, only the program was stuck.
    async def main() -> str:
        never = kernel.Event()
        try:
            await never.wait()
        except kernel.Deadlock as deadlock:
            assert "waits for Event #1 to be set" in str(deadlock)
            return "caught"
        return "woken"

    assert kernel.run(main) == "caught"


def test_cleanup_runs_in_every_task() -> None:
    cleaned: list[str] = []

    async def stuck(name: str, lock: kernel.Lock) -> None:
        try:
            await lock.acquire()
        finally:
            cleaned.append(name)

    async def main() -> None:
        lock = kernel.Lock()
        await lock.acquire()
        for name in ("one", "two"):
            await kernel.spawn(stuck, name, lock, daemon=True)
        try:
            await kernel.Event().wait()
        finally:
            cleaned.append("main")

    deadlock_of(main)
    assert cleaned == ["main", "one", "two"]  # main where it waited, the others at close


def test_a_chain_ends_where_nobody_is_left_to_act() -> None:
    async def main() -> None:
        event, semaphore, condition = kernel.Event(), kernel.Semaphore(0), kernel.Condition()
        empty: kernel.Queue[int] = kernel.Queue()
        full: kernel.Queue[int] = kernel.Queue(maxsize=1)
        unfinished: kernel.Queue[int] = kernel.Queue()
        await full.put(1)
        await unfinished.put(1)

        async def notified() -> None:
            async with condition:
                await condition.wait()

        waits = [
            event.wait,
            semaphore.acquire,
            notified,
            empty.get,
            lambda: full.put(2),
            unfinished.join,
        ]
        for wait in waits:
            await kernel.spawn(wait, daemon=True, name="waiter")
        await event.wait()

    chains = lines_of(deadlock_of(main))[8:]
    assert chains == [
        "The wait-for chain (task -> what it waits for -> who could end the wait):",
        "  task 1 'main' -> Event #1 (nobody is left to set it)",
        "  task 2 'waiter' -> Event #1 (nobody is left to set it)",
        "  task 3 'waiter' -> Semaphore #1 (nobody is left to release one)",
        "  task 4 'waiter' -> Condition #1 (nobody is left to notify it)",
        "  task 5 'waiter' -> Queue #1 (nobody is left to put into it)",
        "  task 6 'waiter' -> Queue #2 (nobody is left to get from it)",
        "  task 7 'waiter' -> Queue #3 (nobody is left to call task_done())",
    ]


def test_each_wait_is_described() -> None:
    async def main() -> None:
        full: kernel.Queue[int] = kernel.Queue(maxsize=1)
        await full.put(1)
        unfinished: kernel.Queue[int] = kernel.Queue()
        await unfinished.put(1)
        await kernel.spawn(lambda: full.put(2), daemon=True, name="putter")
        await kernel.spawn(unfinished.join, daemon=True, name="joiner")
        await kernel.Semaphore(0).acquire()

    waits = [line.split(") ", 1)[1] for line in lines_of(deadlock_of(main))[1:4]]
    assert waits == [
        "waits for a permit of Semaphore #1",
        "waits to put into Queue #1, which is full (maxsize 1)",
        "waits for join() of Queue #2: 1 item(s) not marked task_done()",
    ]


def test_a_lock_whose_holder_ended_without_releasing_it() -> None:
    async def forgetful(lock: kernel.Lock) -> None:
        await lock.acquire()  # and never release()

    async def main() -> None:
        lock = kernel.Lock()
        await (await kernel.spawn(forgetful, lock, name="forgetful")).join()
        await lock.acquire()

    lines = lines_of(deadlock_of(main))
    assert lines[1].endswith(
        "waits for Lock #1, held by task 2 'forgetful', which ended without releasing it"
    )
    assert lines[3] == "  task 1 'main' -> Lock #1 (task 2 'forgetful' ended without releasing it)"


def test_a_task_group_leads_to_its_members() -> None:
    async def main() -> None:
        a, b = kernel.Lock(), kernel.Lock()
        async with kernel.TaskGroup() as group:
            await group.spawn(transfer, a, b, name="alice")
            await group.spawn(transfer, b, a, name="bob")

    lines = lines_of(deadlock_of(main))
    assert lines[1].endswith(
        "waits for a task of TaskGroup #1 to end (task 2 'alice', task 3 'bob')"
    )
    assert lines[-1] == (
        "  task 1 'main' -> TaskGroup #1 -> task 2 'alice' -> Lock #1 -> task 3 'bob' -> "
        "Lock #2 -> task 2 'alice': a cycle"
    )


def test_separate_deadlocks_get_separate_chains() -> None:
    async def main() -> None:
        a, b, c, d = kernel.Lock(), kernel.Lock(), kernel.Lock(), kernel.Lock()
        for first, second, name in ((a, b, "p"), (b, a, "q"), (c, d, "r"), (d, c, "s")):
            await kernel.spawn(transfer, first, second, name=name, daemon=True)
        await kernel.Event().wait()

    assert lines_of(deadlock_of(main))[-3:] == [
        "  task 1 'main' -> Event #1 (nobody is left to set it)",
        "  task 2 'p' -> Lock #1 -> task 3 'q' -> Lock #2 -> task 2 'p': a cycle",
        "  task 4 'r' -> Lock #3 -> task 5 's' -> Lock #4 -> task 4 'r': a cycle",
    ]


def test_with_no_main_task_the_deadlock_leaves_the_loop() -> None:
    # run_until (what the asyncio adapter uses) has no main task to raise it in.
    async def waiter() -> None:
        await kernel.Event().wait()

    with kernel.Kernel() as k:
        task = k.start_task(waiter, daemon=True, name="waiter")
        with pytest.raises(kernel.Deadlock, match="task 1 'waiter'"):
            k.run_until(lambda: task.done)
        assert not k.closed  # the program's bug, not the kernel's: it can still close cleanly


def test_a_cleanup_that_deadlocks_at_close() -> None:
    async def stubborn() -> None:
        try:
            await kernel.Event().wait()
        finally:
            await kernel.Event().wait()  # cancelled at close, and waits again

    async def main() -> None:
        await kernel.spawn(stubborn, daemon=True, name="stubborn")

    with pytest.raises(kernel.Deadlock, match="task 2 'stubborn'"):
        kernel.run(main)


def test_deadlock_detection_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # For a program woken in ways the kernel cannot see (a thread started from C code, say).
    asked: list[kernel.Kernel] = []
    monkeypatch.setattr(kernel.scheduler, "find_deadlock", asked.append)

    async def main() -> int:
        return await kernel.run_in_thread(sum, [3, 4])  # main waits with no deadline, no I/O

    assert kernel.run(main, detect_deadlocks=False) == 7
    assert asked == []


# -- ... and only deadlocks -------------------------------------------------------------


def test_a_thread_about_to_wake_a_task_is_no_deadlock() -> None:
    # However the thread and the kernel interleave -- the thread's call before the task
    # parks, between the park and select(), or during select() -- the task is woken.
    async def main() -> int:
        k = kernel.current_kernel()
        assert k is not None
        results: kernel.Queue[int] = kernel.Queue()
        thread = threading.Thread(target=k.call_threadsafe, args=(results.put_nowait, 1))
        thread.start()
        try:
            return await results.get()
        finally:
            thread.join()

    for _ in range(50):
        assert kernel.run(main) == 1


def test_what_could_still_wake_a_task() -> None:
    k = kernel.Kernel()
    try:
        assert possible_waker(k) is None and find_deadlock(k) is None  # no task: no deadlock

        go = threading.Event()
        thread = threading.Thread(target=go.wait, name="sensor")
        thread.start()
        assert possible_waker(k) == "thread 'sensor' is alive"
        go.set()
        thread.join()
        assert possible_waker(k) is None

        previous = signal.signal(signal.SIGUSR1, lambda signo, frame: None)
        try:
            assert possible_waker(k) == "a Python handler for SIGUSR1 is installed"
        finally:
            signal.signal(signal.SIGUSR1, previous)
        with kernel.SignalEvent(signal.SIGUSR2):
            assert possible_waker(k) == "a Python handler for SIGUSR2 is installed"
        assert possible_waker(k) is None
    finally:
        k.close()


def test_a_run_in_thread_job_and_the_idle_pool() -> None:
    async def main() -> str | None:
        k = kernel.current_kernel()
        assert k is not None
        seen: list[str | None] = []
        await kernel.run_in_thread(lambda: seen.append(possible_waker(k)))  # from the worker
        assert seen == ["1 run_in_thread job(s) not yet delivered"]
        # Back in the kernel: the worker is idle, waiting for the next job -- no waker.
        return possible_waker(k)

    assert kernel.run(main) is None


def test_a_tracer_hears_of_the_deadlock() -> None:
    events: list[tuple[str, int | None]] = []

    def tracer(event: str, task: kernel.Task | None, **details: Any) -> None:
        if event in ("deadlock", "wake") or (event == "exit" and task is not None):
            events.append((event, task.id if task is not None else None))
        if event == "deadlock":
            assert "Event #1 (nobody is left to set it)" in details["report"]

    async def main() -> None:
        await kernel.Event().wait()

    with pytest.raises(kernel.Deadlock):
        kernel.run(main, tracer=tracer)
    assert events == [("deadlock", 1), ("wake", 1), ("exit", 1)]
