"""Every script in examples/ runs, and prints exactly what it is expected to print.

Two ways, for each example:

* imported, with its ``main`` run under a ``VirtualClock``: no real time passes (except what
  example 08's real thread takes), and stdout must match the golden text below character
  for character;
* as a script, in a subprocess on the real clock: it must exit with status 0, write nothing
  to stderr, and end with the expected line. The scripts are started together, once per
  test session, so the whole set takes as long as the slowest one (about 4 seconds).

The golden texts are the same on both clocks: the examples print times relative to their
start, rounded. Example 08, which starts a thread, prints no times, and nothing whose order
depends on how the thread and the tasks interleave.

The asyncio programs (15, 17-19) are the course's scripts: their work is done at the bottom,
under ``if __name__ == "__main__":``, on a loop from ``kernel.aio.new_event_loop()``. On the
virtual clock they are run as ``__main__`` (``runpy``) with that function swapped for one that
gives the loop a ``VirtualClock``; their golden text is the whole of what the script prints.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import kernel
import kernel.aio

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# What each example's main() prints, exactly.
GOLDEN = {
    "01_hello.py": """\
main runs as task 1, named 'main'
hello, kernel
""",
    "02_sleep_then_123.py": """\
main woke up after 1.0s
""",
    "03_spawn_join.py": """\
t=1s id=2 nap-1: slept 1s
t=2s id=3 nap-2: slept 2s
t=3s id=4 nap-3: slept 3s
results kept on the tasks: ['slept 1s', 'slept 2s', 'slept 3s']
join raised TaskError, caused by ValueError('no such file')
""",
    "04_timeouts.py": """\
t=1s timeout_after(1) raised TaskTimeout
t=2s ignore_after(1) returned quietly, expired=True
t=3s inner block: TimeoutCancellationError
t=3s outer block: TaskTimeout
""",
    "05_taskgroup.py": """\
t=2s all: ['job2 done', 'job1 done']
t=3s any: 'job1 done', cancelled=['job2']
t=4s caught (ValueError('job1 failed'),)
""",
    "06_producer_consumer.py": """\
t=1s producer: all 6 put (it waited for room)
t=3s queue.join() returned: {'c1': [0, 2, 4], 'c2': [1, 3, 5]}
consumers cancelled; 0 items left in the queue
""",
    "07_worker_pool.py": """\
t=0s started jobs [0, 1, 2]
t=1s started jobs [3, 4, 5]
t=2s started jobs [6, 7, 8]
t=3s started jobs [9]
t=4s 10 jobs done, at most 3 at once
""",
    # Starts a real thread: no times printed, and nothing that depends on the interleaving.
    "08_thread_feeds_tasks.py": """\
thread: sent 1..6, got back [1, 4, 9, 16, 25, 36]
main: thread joined; 0 numbers and 0 squares left
""",
    # Real sockets on loopback: every reply is awaited, so the transcript is fixed.
    "09_echo_server.py": """\
echoed back: ['alice: hello', 'alice: kernel']
echoed back: ['bob: hello', 'bob: kernel']
server stopped
""",
    "10_udp_echo.py": """\
sent 'ping', got 'PING'
sent 'datagram', got 'DATAGRAM'
""",
    "11_fetch_with_timeout.py": """\
answer after 0.1s
answer after 0.2s
gave up after 0.5s
took about the timeout, not the 3.3s of all the waits: True
""",
    "12_stream_echo.py": """\
echo: first line
echo: second line
""",
    # Its server under stress, a test for each bug its first version had: test_chat_example.py
    "13_chat_server.py": """\
ann heard ['bo: hello', 'cy: hey']
bo heard ['ann: hi all', 'cy: hey']
cy heard ['ann: hi all', 'bo: hello']
""",
    # Real child processes: they take real time on either clock, and print no times.
    "14_subprocess_pipeline.py": """\
1 + 2 + ... + 100 = 5050
exit codes: 0, 0
""",
    # The asyncio programs print everything they print as scripts.
    "15_asyncio_sleep_then_123.py": """\
main woke up after 1.0s
123
""",
    "16_kernel_task_result.py": """\
got_result: Future is done!
main saw it finish after 1s
""",
    "17_asyncio_done_callback.py": """\
got_result: Future is done!
run_until_complete returned
""",
    "18_asyncio_run_forever_stop.py": """\
got_result: Future is done!
run_forever returned
""",
    "19_asyncio_old_style_coroutine.py": """\
got_result: Future is done!
run_until_complete returned
""",
    # Blocks the kernel for real time (0.4 s), then a worker thread for as long.
    "20_blocking_call.py": """\
fetch blocked the kernel: the ticker ticked 0 times during the call
fetch waited in a thread: the ticker ticked 2 times during the call
""",
    # The report names lines of the example: it changes when they move.
    "21_deadlock.py": """\
kernel.Deadlock: every task is blocked, and nothing is left that could wake one of them: \
no task is ready to run, no timer is set, nothing waits for I/O, and no thread or signal \
handler could step in. Without this error the program would hang here forever.
Who waits for what:
  task 1 'main' (at 21_deadlock.py:27 in main) waits for a task of TaskGroup #1 to end \
(task 2 'alice', task 3 'bob')
  task 2 'alice' (at 21_deadlock.py:20 in transfer) waits for Lock #1, held by task 3 'bob'
  task 3 'bob' (at 21_deadlock.py:20 in transfer) waits for Lock #2, held by task 2 'alice'
The wait-for chain (task -> what it waits for -> who could end the wait):
  task 1 'main' -> TaskGroup #1 -> task 2 'alice' -> Lock #1 -> task 3 'bob' -> Lock #2 -> \
task 2 'alice': a cycle
same order: both transfers done
""",
}

# The asyncio programs, run as scripts on an adapter loop: the virtual time each takes.
ON_THE_ADAPTER = {
    "15_asyncio_sleep_then_123.py": 1.0,
    "17_asyncio_done_callback.py": 1.0,
    "18_asyncio_run_forever_stop.py": 1.0,
    "19_asyncio_old_style_coroutine.py": 1.0,
}

# What main() returns, when it returns something.
RETURNS = {"01_hello.py": "main returned", "02_sleep_then_123.py": 123}

# The last line each script prints when run from the command line.
LAST_LINE = {
    "01_hello.py": "main returned",
    "02_sleep_then_123.py": "123",
    "03_spawn_join.py": "join raised TaskError, caused by ValueError('no such file')",
    "04_timeouts.py": "t=3s outer block: TaskTimeout",
    "05_taskgroup.py": "t=4s caught (ValueError('job1 failed'),)",
    "06_producer_consumer.py": "consumers cancelled; 0 items left in the queue",
    "07_worker_pool.py": "t=4s 10 jobs done, at most 3 at once",
    "08_thread_feeds_tasks.py": "main: thread joined; 0 numbers and 0 squares left",
    "09_echo_server.py": "server stopped",
    "10_udp_echo.py": "sent 'datagram', got 'DATAGRAM'",
    "11_fetch_with_timeout.py": "took about the timeout, not the 3.3s of all the waits: True",
    "12_stream_echo.py": "echo: second line",
    "13_chat_server.py": "cy heard ['ann: hi all', 'bo: hello']",
    "14_subprocess_pipeline.py": "exit codes: 0, 0",
    "15_asyncio_sleep_then_123.py": "123",
    "16_kernel_task_result.py": "main saw it finish after 1s",
    "17_asyncio_done_callback.py": "run_until_complete returned",
    "18_asyncio_run_forever_stop.py": "run_forever returned",
    "19_asyncio_old_style_coroutine.py": "run_until_complete returned",
    "20_blocking_call.py": "fetch waited in a thread: the ticker ticked 2 times during the call",
    "21_deadlock.py": "same order: both transfers done",
}

# Examples whose sockets or child processes move real bytes (see the virtual-clock test).
REAL_IO = {
    "09_echo_server.py",
    "10_udp_echo.py",
    "11_fetch_with_timeout.py",
    "12_stream_echo.py",
    "13_chat_server.py",
    "14_subprocess_pipeline.py",
}

# Examples whose kernel must see a deadlock: pytest-timeout's SIGALRM handler would hide it
# (see the no_timeout_signal fixture in conftest.py).
DEADLOCKS = {"21_deadlock.py"}

# Real seconds a script may take before it counts as hung.
SCRIPT_TIMEOUT = 30.0


def load(filename: str) -> ModuleType:
    """Import an example from its path (its name starts with a digit: not importable)."""
    path = EXAMPLES / filename
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_has_a_golden_output() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(GOLDEN)
    assert sorted(GOLDEN) == sorted(LAST_LINE)


@pytest.mark.parametrize("filename", sorted(set(GOLDEN) - set(ON_THE_ADAPTER)))
def test_example_on_the_virtual_clock(
    filename: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    if filename in DEADLOCKS:
        request.getfixturevalue("no_timeout_signal")
    module = load(filename)
    # Examples with real sockets or child processes: bytes in flight take real time, which
    # a loaded machine stretches. Let the virtual clock wait that long for them (it still
    # jumps when nothing arrives) rather than race past a deadline while they travel.
    clock = kernel.VirtualClock(autojump_threshold=0.25 if filename in REAL_IO else 0.0)
    result = kernel.run(module.main, clock=clock)
    assert capsys.readouterr().out == GOLDEN[filename]
    assert result == RETURNS.get(filename)
    # Nothing was reported as crashed: every failure in the examples is handled.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("filename", sorted(ON_THE_ADAPTER))
def test_asyncio_example_on_the_virtual_clock(
    filename: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = kernel.VirtualClock()
    loops: list[kernel.aio.EventLoop] = []
    new_event_loop = kernel.aio.new_event_loop

    def new_virtual_event_loop() -> kernel.aio.EventLoop:
        loops.append(new_event_loop(clock=clock))
        return loops[-1]

    monkeypatch.setattr(kernel.aio, "new_event_loop", new_virtual_event_loop)
    runpy.run_path(str(EXAMPLES / filename), run_name="__main__")
    assert capsys.readouterr().out == GOLDEN[filename]
    assert clock.now() == ON_THE_ADAPTER[filename]  # it slept, on the virtual clock
    assert len(loops) == 1 and loops[0].is_closed()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_generator_form_of_example_02(capsys: pytest.CaptureFixture[str]) -> None:
    module = load("02_sleep_then_123.py")
    clock = kernel.VirtualClock()
    assert kernel.run(module.main_generator, clock=clock) == 123
    assert clock.now() == 1.0
    assert capsys.readouterr().out == "main_generator woke up\n"


@pytest.mark.parametrize("filename", sorted(GOLDEN))
def test_example_docstring_points_to_the_next_step(filename: str) -> None:
    doc = load(filename).__doc__
    assert doc is not None and doc.startswith(filename[:2] + " -- ")
    assert "What it teaches:" in doc
    next_step = doc.split("Read next:")[1].split()[0].rstrip(",.")
    assert (ROOT / next_step).exists(), next_step


@pytest.fixture(scope="module")
def scripts() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Start every example as a script at once; each test then collects its own."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    processes = {
        filename: subprocess.Popen(
            [sys.executable, "-W", "error", str(EXAMPLES / filename)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for filename in sorted(LAST_LINE)
    }
    try:
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.mark.parametrize("filename", sorted(LAST_LINE))
def test_example_as_a_script(filename: str, scripts: dict[str, subprocess.Popen[str]]) -> None:
    process = scripts[filename]
    try:
        out, err = process.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{filename} still running after {SCRIPT_TIMEOUT}s")
    assert process.returncode == 0, err
    assert err == ""
    assert out.splitlines()[-1] == LAST_LINE[filename]
