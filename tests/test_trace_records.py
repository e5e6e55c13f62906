"""The trace records: every scheduler decision as plain data, with the three structures.

The programs traced here are the examples and the small scripts under tests/golden/explain/,
run by ``kernel.trace.script.trace`` on a virtual clock (deterministic mode). The tests look
at the records one decision at a time: which turn it belongs to, where a task was parked,
who woke whom, and what the ready queue, sleeping queue and I/O wait table held after it.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import kernel
import kernel.aio
from kernel.trace import Labels, Recorder, asyncio_script
from kernel.trace.script import Traced, trace

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PROGRAMS = Path(__file__).resolve().parent / "golden" / "explain"


def traced(path: Path, aio: bool = False) -> Traced:
    result = trace(path, aio=aio, deterministic=True)
    assert result.error is None
    return result


def program(tmp_path: Path, source: str, aio: bool = False) -> list[dict[str, Any]]:
    """The records of a small program, written out to ``tmp_path``."""
    path = tmp_path / "program.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return traced(path, aio).records


def find(records: list[dict[str, Any]], event: str, **fields: Any) -> list[dict[str, Any]]:
    """The records of ``event`` whose fields have the given values."""
    return [
        r for r in records if r["event"] == event and all(r.get(k) == v for k, v in fields.items())
    ]


def test_records_are_plain_json() -> None:
    for path, aio in [
        (EXAMPLES / "02_sleep_then_123.py", False),
        (EXAMPLES / "03_spawn_join.py", False),
        (EXAMPLES / "15_asyncio_sleep_then_123.py", True),
        (EXAMPLES / "17_asyncio_done_callback.py", True),
        (PROGRAMS / "socketpair_io.py", False),
    ]:
        records = traced(path, aio).records
        assert json.loads(json.dumps(records)) == records


def test_every_record_has_the_common_fields_and_the_three_structures() -> None:
    records = traced(EXAMPLES / "03_spawn_join.py").records
    assert [r["step"] for r in records] == list(range(1, len(records) + 1))
    for record in records:
        assert {"step", "tick", "phase", "t", "event", "task", "state"} <= set(record)
        assert set(record["state"]) == {"ready", "sleeping", "io"}


def test_the_sleep_then_123_program_decision_by_decision() -> None:
    records = traced(EXAMPLES / "02_sleep_then_123.py").records
    shape = [(r["tick"], r["event"], r["task"]) for r in records]
    main = "main (task 1)"
    assert shape == [
        (0, "spawn", main),
        (1, "turn", None),
        (1, "run", main),
        (1, "trap", main),  # clock
        (1, "run", main),  # carries on
        (1, "trap", main),  # sleep
        (1, "park", main),
        (2, "turn", None),
        (2, "select", None),
        (2, "timer", main),
        (2, "wake", main),
        (2, "run", main),
        (2, "trap", main),  # clock
        (2, "run", main),
        (2, "output", main),
        (2, "exit", main),
        (2, "close", None),
    ]
    spawn, _, _, clock, answer, sleep, park, _, select, timer, wake, *_, exit_, _ = records
    assert spawn["state"]["ready"] == [main]
    assert clock["call"] == "('clock',)" and answer["value"] == "0.0"
    assert sleep["call"] == "('sleep', 1)"
    assert park["to"] == "sleeping" and park["until"] == 1.0
    assert park["state"]["sleeping"] == [{"until": 1.0, "who": main, "kind": "sleep"}]
    assert select["timeout"] == 1.0 and select["ready"] == []
    assert select["nearest"] == {"who": main, "until": 1.0, "kind": "sleep"}
    assert timer["t"] == 1.0 and timer["kind"] == "sleep"
    assert wake["reason"] == "timer" and wake["state"]["ready"] == [main]
    assert exit_["result"] == "123"


def test_a_turn_is_numbered_even_when_select_is_skipped() -> None:
    records = traced(EXAMPLES / "03_spawn_join.py").records
    turns = find(records, "turn")
    assert [r["tick"] for r in turns] == list(range(1, len(turns) + 1))
    # Turn 2 runs the three new tasks without polling: tasks were ready, nobody waited for I/O.
    assert not find(records, "select", tick=2)
    assert [r["task"] for r in find(records, "run", tick=2)] == [
        "nap-1 (task 2)",
        "nap-2 (task 3)",
        "nap-3 (task 4)",
    ]


def test_the_state_is_the_one_after_the_decision() -> None:
    records = traced(EXAMPLES / "03_spawn_join.py").records
    spawn_trap = find(records, "trap", trap="spawn")[0]
    assert spawn_trap["state"]["ready"] == ["nap-1 (task 2)"]
    # A run record: the task has left the ready queue; a wake: it has joined it.
    first_run = find(records, "run", task="nap-1 (task 2)")[0]
    assert "nap-1 (task 2)" not in first_run["state"]["ready"]
    woken = find(records, "wake", task="nap-1 (task 2)")[0]
    assert woken["state"]["ready"] == ["nap-1 (task 2)"]


def test_who_woke_whom_an_event_a_lock_and_a_join() -> None:
    records = traced(PROGRAMS / "event_and_lock.py").records
    by_event = find(records, "wake", was="EVENT_WAIT")
    assert [(w["task"], w["by"], w["reason"], w["on"]) for w in by_event] == [
        ("waiter (task 2)", "main (task 1)", "wake", "Event-1")
    ]
    by_lock = find(records, "wake", was="LOCK")
    assert [(w["task"], w["by"], w["on"]) for w in by_lock] == [
        ("contender (task 3)", "main (task 1)", "Lock-1")
    ]
    joins = find(records, "wake", reason="join")
    assert [(w["task"], w["by"]) for w in joins] == [
        ("main (task 1)", "waiter (task 2)"),
        ("main (task 1)", "contender (task 3)"),
    ]
    parked = find(records, "park", task="waiter (task 2)")
    assert [(p["to"], p["on"], p["why"]) for p in parked] == [("wait", "Event-1", "EVENT_WAIT")]


def test_a_timeout_cancels_and_a_task_cancels_another() -> None:
    records = traced(PROGRAMS / "timeout_and_cancel.py").records
    timeout, by_main = find(records, "cancel")
    assert (timeout["task"], timeout["by"], timeout["exc"]) == (
        "main (task 1)",
        "timeout",
        "TaskTimeout(0.5)",
    )
    assert find(records, "timer", kind="timeout")[0]["t"] == 0.5
    assert (by_main["task"], by_main["by"], by_main["blocked"]) == (
        "sleeper (task 2)",
        "main (task 1)",
        True,
    )
    woken = find(records, "wake", reason="cancel")
    assert [(w["task"], w["by"]) for w in woken] == [
        ("main (task 1)", "timeout"),
        ("sleeper (task 2)", "main (task 1)"),
    ]
    thrown = find(records, "run", how="throw")
    assert [(r["task"], r["exc"]) for r in thrown] == [
        ("main (task 1)", "TaskTimeout(0.5)"),
        ("sleeper (task 2)", "TaskCancelled()"),
    ]
    assert find(records, "exit", task="sleeper (task 2)")[0]["cancelled"] is True


def test_an_io_wait_on_a_socketpair() -> None:
    records = traced(PROGRAMS / "socketpair_io.py").records
    (park,) = find(records, "park", to="io")
    assert (park["task"], park["fd"], park["for"]) == ("reader (task 2)", "fd #1", "read")
    assert park["state"]["io"] == [
        {"fd": "fd #1", "for": "read", "who": "reader (task 2)", "watcher": False}
    ]
    select = find(records, "select", ready=["reader (task 2)"])[0]
    assert select["timeout"] is None  # nothing sleeps: it waits for the descriptor alone
    wake = find(records, "wake", task="reader (task 2)")[0]
    assert (wake["reason"], wake["by"], wake["on"]) == ("io", None, "fd #1")


def test_asyncio_decisions_in_asyncio_terms() -> None:
    records = traced(EXAMPLES / "15_asyncio_sleep_then_123.py", aio=True).records
    events = [r["event"] for r in records]
    assert events[:4] == ["run_until_complete", "call_soon", "add_done_callback", "run_forever"]
    assert records[0]["argument"] == "main()" and records[0]["wraps"] is True
    first = records[1]
    assert (first["callback"], first["kind"], first["first_step"]) == (
        "Task-1.__step",
        "step",
        True,
    )
    assert records[2]["callback"] == "_run_until_complete_cb"
    (timer,) = find(records, "call_at")
    assert (timer["kind"], timer["future"], timer["until"], timer["by"]) == (
        "timer",
        "Future-1",
        1.0,
        "Task-1.__step",
    )
    yielded = find(records, "callback_done", kind="step")[0]
    assert yielded["outcome"] == {"yielded": "Future-1"}
    wakeup, stop = find(records, "call_soon", future="Future-1") + find(
        records, "call_soon", kind="stop"
    )
    assert (wakeup["callback"], wakeup["outcome"]) == (
        "Task-1.__wakeup(Future-1)",
        {"result": "None"},
    )
    assert (stop["future"], stop["outcome"], stop["finished_step"]) == (
        "Task-1",
        {"result": "123"},
        True,
    )
    assert find(records, "stop")[0]["by"] == "_run_until_complete_cb(Task-1)"
    assert records[-2]["event"] == "run_until_complete_return"
    assert records[-2]["outcome"] == {"result": "123"}
    due = find(records, "timer", kind="call")[0]
    assert due["who"] == "TimerHandle(futures._set_result_unless_cancelled(Future-1, None))"
    assert due["task"] == "Task-1"  # the task waiting on the sleep's future


def test_deterministic_records_do_not_depend_on_what_ran_before() -> None:
    first = json.dumps(traced(EXAMPLES / "15_asyncio_sleep_then_123.py", aio=True).records)

    # asyncio names tasks from a process-wide counter: make it move.
    async def two_tasks() -> None:
        await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))

    loop = kernel.aio.new_event_loop(clock=kernel.VirtualClock())
    try:
        loop.run_until_complete(two_tasks())
    finally:
        loop.close()
    again = json.dumps(traced(EXAMPLES / "15_asyncio_sleep_then_123.py", aio=True).records)
    assert again == first


def test_labels_leave_out_what_varies() -> None:
    labels = Labels(deterministic=True)
    assert labels.clean("<Handle f() at /usr/lib/x.py:12>") == "<Handle f()>"
    assert labels.clean("<object at 0x7f3a2c>") == "<object>"
    assert labels.clean("<socket fd=9, family=1>") == "<socket fd=#1, family=1>"
    assert labels.fd(9) == "fd #1" and labels.fd(4) == "fd #2"
    assert Labels().fd(9) == "fd 9"
    event = kernel.Event()
    assert labels.value(event) == "Event-1" and labels.value(event) == "Event-1"
    assert labels.value(kernel.Event()) == "Event-2"


def test_times_count_from_the_start_of_the_recording() -> None:
    recorder = Recorder()

    async def main() -> None:
        await kernel.sleep(0.25)

    clock = kernel.VirtualClock(start=100.0)
    with kernel.Kernel(clock=clock, tracer=recorder) as k:
        recorder.attach(k)
        k.run(main)
    records = recorder.finish()
    assert records[0]["t"] == 0.0
    assert find(records, "park")[0]["until"] == 0.25
    assert records[-1]["t"] == 0.25


def test_on_record_sees_each_record_complete() -> None:
    seen: list[dict[str, Any]] = []
    result = trace(EXAMPLES / "02_sleep_then_123.py", deterministic=True, on_record=seen.append)
    assert sorted(r["step"] for r in seen) == [r["step"] for r in result.records]
    assert all("state" in r for r in seen)


def test_an_untraced_kernel_has_none_of_the_wrappers() -> None:
    # Zero cost: the loop, the callbacks and the handlers are the class's own.
    # call_soon is the one exception, and the cheaper for it: the ready queue's own append,
    # one bound method for the kernel's life (a new one per lookup fed the GC in spawn_join).
    with kernel.Kernel() as plain:
        wrapped = {"_loop", "call_at", "add_watcher", "_reschedule", "_bad_yield"}
        wrapped |= {"call_soon_threadsafe", "_run_threadsafe_callbacks"}
        assert not wrapped & set(vars(plain))
        assert plain.call_soon is plain.call_soon
        assert plain.call_soon == plain._ready.append
    # time() is the clock's own now, per kernel: the adapter asks for it on every timer.
    clock = kernel.VirtualClock()
    with kernel.Kernel(clock=clock) as timed:
        assert timed.time == clock.now
        clock.advance(2.5)
        assert timed.time() == 2.5
    with kernel.Kernel(tracer=Recorder()) as traced_kernel:
        assert {"_loop", "call_soon", "_reschedule"} <= set(vars(traced_kernel))


def test_only_a_tracer_that_asks_for_turns_hears_them() -> None:
    events: list[str] = []

    def tracer(event: str, task: Any, **details: Any) -> None:
        events.append(event)

    async def main() -> None:
        await kernel.sleep(0)

    kernel.run(main, clock=kernel.VirtualClock(), tracer=tracer)
    assert "turn" not in events and "run" in events


# -- what the loop does that is easy to miss ------------------------------------------------------


def test_a_callback_queued_with_call_soon_threadsafe_is_queued_and_runs(tmp_path: Path) -> None:
    records = program(
        tmp_path,
        """
        import asyncio
        import threading

        def hello(future):
            future.set_result(1)

        async def main():
            loop = asyncio.get_running_loop()
            here, there = loop.create_future(), loop.create_future()
            loop.call_soon_threadsafe(hello, here)  # from the loop's own thread
            await here
            thread = threading.Thread(target=loop.call_soon_threadsafe, args=(hello, there))
            thread.start()
            await there
            thread.join()
        """,
        aio=True,
    )
    queued = find(records, "call_soon_threadsafe")
    assert [(r["callback"], r["kind"], r["by"], r["other_thread"]) for r in queued] == [
        ("hello(Future-1)", "callback", "Task-1.__step", False),
        ("hello(Future-2)", "callback", None, True),  # told by the kernel's thread, later
    ]
    assert queued[0]["state"]["ready"] == ["hello(Future-1)"]
    ran = find(records, "callback", kind="callback")
    assert [r["callback"] for r in ran] == ["hello(Future-1)", "hello(Future-2)"]
    assert all(arrival["step"] < run["step"] for arrival, run in zip(queued, ran, strict=True))
    assert len(find(records, "callback_done", kind="callback")) == 2


class _ThreadNoting(Recorder):
    """A recorder that notes the threads it is called from."""

    def __init__(self) -> None:
        super().__init__(deterministic=True)
        self.threads: set[int] = set()

    def __call__(self, event: str, task: Any, **details: Any) -> None:
        self.threads.add(threading.get_ident())
        super().__call__(event, task, **details)


def test_work_handed_back_by_threads_is_told_on_the_kernels_thread() -> None:
    # run_in_executor and to_thread hand their result back with call_soon_threadsafe, from
    # a worker thread: the tracer (not thread-safe) hears of it on the kernel's thread only.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        # Each job waits until the kernel's side has registered for its result, so that the
        # result is handed back from the worker, not found done at once on this thread.
        released = threading.Event()
        future = loop.run_in_executor(None, released.wait)
        released.set()
        await future
        released.clear()
        task = asyncio.ensure_future(asyncio.to_thread(released.wait))
        await asyncio.sleep(0)  # the task submits the job and waits for it
        released.set()
        await task

    recorder = _ThreadNoting()
    with kernel.Kernel(clock=kernel.VirtualClock(), tracer=recorder) as k:
        recorder.attach(k)
        loop = kernel.aio.EventLoop(k)
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    records = recorder.finish()
    assert recorder.threads == {threading.get_ident()}
    handed = find(records, "call_soon_threadsafe", other_thread=True)
    assert len(handed) == 2 and all(r["by"] is None for r in handed)
    for arrival in handed:  # and each one runs, after it is told
        (run,) = find(records, "callback", callback=arrival["callback"])
        assert run["step"] > arrival["step"]


def test_a_handle_cancelled_in_the_ready_queue_does_not_run(tmp_path: Path) -> None:
    records = program(
        tmp_path,
        """
        import asyncio

        async def main():
            loop = asyncio.get_running_loop()
            loop.call_soon(print, "never printed").cancel()
            await asyncio.sleep(0)
        """,
        aio=True,
    )
    (queued,) = find(records, "call_soon", kind="callback")
    assert queued["callback"] == "print('never printed')"
    # asyncio's _run_once skips a cancelled Handle, and so does the kernel: it never runs,
    # and it is left out of the ready queue shown, as the asyncio recorder leaves it out.
    # (Once cancelled, a Handle forgets its callback: it would be named "<cancelled>()".)
    assert [r["callback"] for r in find(records, "callback")] == [
        "Task-1.__step",
        "Task-1.__step",
        "_run_until_complete_cb(Task-1)",
    ]
    shown = {entry for record in records for entry in record["state"]["ready"]}
    assert shown == {"Task-1.__step", "_run_until_complete_cb(Task-1)"}
    assert not find(records, "output")


def test_a_bad_yield_sends_the_task_to_the_back_of_the_ready_queue(tmp_path: Path) -> None:
    records = program(
        tmp_path,
        """
        import asyncio
        import kernel

        async def other():
            pass

        async def main():
            await kernel.spawn(other)
            try:
                await asyncio.sleep(0)  # asyncio's bare yield: not a kernel trap
            except TypeError:
                return "TypeError"
        """,
    )
    main = "main (task 1)"
    (bad,) = find(records, "bad_yield")
    assert (bad["task"], bad["value"]) == (main, "None")
    assert bad["exc"].startswith("TypeError(")
    park = records[bad["step"]]  # the record after it (steps count from 1)
    assert (park["event"], park["task"], park["to"]) == ("park", main, "ready")
    assert park["state"]["ready"] == ["other (task 2)", main]
    resumed = find(records, "run", task=main)[-1]
    assert resumed["how"] == "throw" and resumed["exc"].startswith("TypeError(")
    assert find(records, "exit", task=main)[0]["result"] == "'TypeError'"


@pytest.mark.usefixtures("no_timeout_signal")
def test_the_deadlock_detector_wakes_the_main_task(tmp_path: Path) -> None:
    records = program(
        tmp_path,
        """
        import kernel

        async def main():
            try:
                await kernel.Event().wait()
            except kernel.Deadlock:
                return "deadlock caught"
        """,
    )
    (deadlock,) = find(records, "deadlock")
    assert deadlock["task"] == "main (task 1)" and deadlock["phase"] == 1
    assert deadlock["report"].startswith("every task is blocked")
    wake = records[deadlock["step"]]
    assert (wake["event"], wake["task"], wake["reason"], wake["by"], wake["was"]) == (
        "wake",
        "main (task 1)",
        "deadlock",  # not a thread's hand-over: no thread is involved
        None,
        "EVENT_WAIT",
    )


def test_a_deadline_that_never_comes_is_null_in_json(tmp_path: Path) -> None:
    records = program(
        tmp_path,
        """
        import math
        import kernel

        async def forever():
            await kernel.sleep(math.inf)

        async def main():
            task = await kernel.spawn(forever)
            await kernel.sleep(1)
            await task.cancel()
        """,
    )
    json.dumps(records, allow_nan=False)  # no Infinity: standard JSON
    (park,) = find(records, "park", task="forever (task 2)")
    assert (park["to"], park["until"]) == ("sleeping", None)
    sleeping = park["state"]["sleeping"]
    assert {"until": None, "who": "forever (task 2)", "kind": "sleep"} in sleeping


def test_an_infinite_asyncio_sleep_is_null_in_json_on_both_loops(tmp_path: Path) -> None:
    path = tmp_path / "program.py"
    path.write_text(
        textwrap.dedent(
            """
            import asyncio
            import math

            async def main():
                task = asyncio.create_task(asyncio.sleep(math.inf))
                await asyncio.sleep(1)
                task.cancel()
            """
        ),
        encoding="utf-8",
    )
    on_asyncio = asyncio_script.trace(path, deterministic=True).records
    for records in (traced(path, aio=True).records, on_asyncio):
        json.dumps(records, allow_nan=False)
        timers = [(r["until"], r["delay"]) for r in find(records, "call_at")]
        assert timers == [(1.0, 1.0), (None, None)]  # main's sleep(1), then the task's


def test_a_kernel_task_started_from_an_asyncio_task_is_spawned_by_it(tmp_path: Path) -> None:
    records = program(
        tmp_path,
        """
        import kernel
        import kernel.aio

        async def ktask():
            await kernel.sleep(1)

        async def main():
            await kernel.aio.run_kernel(ktask)
        """,
        aio=True,
    )
    (spawn,) = find(records, "spawn")
    assert (spawn["task"], spawn["by"]) == ("ktask (task 1)", "Task-1.__step")
