"""Async subprocesses: run, check_output, Popen pipes, pipelines, errors, and no leftovers.

The children are small ``python -S -c`` programs (no site import: they start fast). Where a
test must know that a child got somewhere, the child says so on a pipe and the test reads
it; nothing sleeps to wait for a child. Tests that need a child to react to SIGTERM within
the grace period run on the real clock: on the virtual clock the grace period passes as soon
as every task is blocked, so a child would be killed before it could handle SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator

import pytest

import kernel
import kernel.subprocess as ksubprocess
from kernel.filestream import FileStream
from kernel.processes import TERMINATE_GRACE_SECONDS
from kernel.scheduler import current_kernel
from kernel.subprocess import PIPE, CalledProcessError, Popen, TimeoutExpired, check_output, run


def python(code: str) -> list[str]:
    return [sys.executable, "-S", "-c", code]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def gone(pid: int) -> bool:
    """The process has exited *and* been reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    before = open_fds()
    yield
    assert open_fds() == before


ECHO_UPPER = "import sys\nfor line in sys.stdin: print(line.upper(), end='', flush=True)"
SLEEP = "import time; time.sleep(60)"


@pytest.mark.usefixtures("no_fd_leak")
async def test_run_captures_output_and_exit_status() -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    done = await run(python(code), capture_output=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")
    assert done.args == python(code)


async def test_run_with_input_in_text_mode() -> None:
    code = "import sys; sys.stdout.write(sys.stdin.read().upper() + '\\r\\n')"
    done = await run(python(code), input="héllo", text=True, capture_output=True, encoding="utf-8")
    assert done.stdout == "HÉLLO\n"  # universal newlines, like subprocess in text mode
    assert done.stderr == ""


async def test_run_without_pipes_leaves_output_alone() -> None:
    done = await run(python("pass"), stdout=ksubprocess.DEVNULL)
    assert (done.returncode, done.stdout, done.stderr) == (0, None, None)


async def test_check_raises_called_process_error() -> None:
    code = "import sys; print('partial'); sys.exit(2)"
    with pytest.raises(CalledProcessError) as info:
        await run(python(code), capture_output=True, check=True)
    assert (info.value.returncode, info.value.output) == (2, b"partial\n")


async def test_check_output() -> None:
    assert await check_output(python("print(6 * 7)")) == b"42\n"
    assert await check_output(python("print(input())"), input=b"echo\n") == b"echo\n"
    assert await check_output(python("print('t')"), text=True) == "t\n"
    with pytest.raises(CalledProcessError):
        await check_output(python("raise SystemExit(1)"), stderr=ksubprocess.DEVNULL)
    with pytest.raises(ValueError, match="stdout"):
        await check_output(python("pass"), stdout=PIPE)


async def test_popen_talks_through_its_pipes() -> None:
    async with Popen(python(ECHO_UPPER), stdin=PIPE, stdout=PIPE) as child:
        assert child.stdin is not None and child.stdout is not None
        for word in (b"one\n", b"two\n"):
            await child.stdin.write(word)
            assert await child.stdout.readline() == word.upper()
        assert child.poll() is None
        await child.stdin.close()
        assert await child.stdout.read() == b""
        assert await child.wait() == 0
    assert child.returncode == 0
    assert child.poll() == 0
    assert gone(child.pid)


@pytest.mark.usefixtures("no_fd_leak")
async def test_poll_reaps_and_the_block_still_cleans_up() -> None:
    before = open_fds()
    async with Popen(python("raise SystemExit(9)")) as child:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet
        assert child.poll() == 9
    assert open_fds() == before  # while `child` lives: its pidfd was closed, not collected
    assert child.returncode == 9


@pytest.mark.usefixtures("no_fd_leak")
async def test_communicate_moves_more_than_a_pipe_holds_both_ways() -> None:
    data = os.urandom(1 << 20)
    code = (
        "import sys; data = sys.stdin.buffer.read()\n"
        "sys.stderr.buffer.write(data[:1000]); sys.stdout.buffer.write(data)"
    )
    child = Popen(python(code), stdin=PIPE, stdout=PIPE, stderr=PIPE)
    out, err = await child.communicate(data)
    assert (out, err, child.returncode) == (data, data[:1000], 0)


async def test_communicate_ignores_a_child_that_does_not_read_its_input() -> None:
    child = Popen(python("print('no reading')"), stdin=PIPE, stdout=PIPE)
    out, err = await child.communicate(b"x" * (1 << 20))  # EPIPE on stdin is not an error
    assert (out, err) == (b"no reading\n", None)


@pytest.mark.usefixtures("no_fd_leak")
async def test_a_pipeline_of_two_processes() -> None:
    numbers = Popen(python("for i in range(1000): print(i)"), stdout=PIPE)
    async with numbers:
        assert numbers.stdout is not None
        total = Popen(
            python("import sys; print(sum(int(line) for line in sys.stdin))"),
            stdin=numbers.stdout,  # handed over: back to blocking mode, the child reads it
            stdout=PIPE,
        )
        async with total:
            await numbers.stdout.close()  # the parent's copy: only the second child reads
            assert total.stdout is not None
            assert await total.stdout.read() == b"499500\n"
    assert (numbers.returncode, total.returncode) == (0, 0)


async def test_a_handed_over_stream_refuses_io() -> None:
    r, w = os.pipe()
    os.close(w)
    stream = FileStream(r)
    async with Popen(python("pass"), stdin=stream):
        with pytest.raises(ValueError, match="handed to a child"):
            await stream.read()
    await stream.close()


async def test_two_tasks_wait_for_one_child() -> None:
    child = Popen(python("import sys; sys.stdin.read(); sys.exit(4)"), stdin=PIPE)
    waiters = [await kernel.spawn(child.wait) for _ in range(3)]
    await kernel.sleep(0)
    assert child.stdin is not None
    await child.stdin.close()
    assert [await task.join() for task in waiters] == [4, 4, 4]


@pytest.mark.parametrize("reaped_by", ["terminate", "poll"])
@pytest.mark.usefixtures("no_fd_leak")
async def test_a_waiter_wakes_when_a_cancelled_waiter_reaps_the_child(reaped_by: str) -> None:
    # The task parked on the pidfd is cancelled after the child has exited but before the
    # kernel has seen the pidfd ready. Stopping the child then reaps it outside the wait:
    # terminate() polls first (or a poll() got there before the cancel).
    child = Popen(python("import sys; sys.stdin.read()"), stdin=PIPE)
    first = await kernel.spawn(child.wait)
    await kernel.sleep(0)  # on the pidfd
    second = await kernel.spawn(child.wait)
    await kernel.sleep(0)  # waiting for the first to reap
    assert child.stdin is not None
    await child.stdin.close()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    if reaped_by == "poll":
        assert child.poll() == 0
    await first.cancel()
    assert await second.join() == 0
    assert gone(child.pid)


async def test_popen_refuses_text_options() -> None:
    with pytest.raises(TypeError, match="text"):
        Popen(python("pass"), stdout=PIPE, text=True)
    with pytest.raises(TypeError, match="bufsize"):
        Popen(python("pass"), stdout=PIPE, bufsize=0)


async def test_a_missing_program_raises_at_once() -> None:
    with pytest.raises(FileNotFoundError):
        await run(["/nonexistent/program"])


async def started_child_pid(reader: FileStream) -> int:
    """The pid a child wrote to its end of a pipe once it was running."""
    return int(await reader.read(32))


@pytest.mark.realtime
@pytest.mark.usefixtures("no_fd_leak")
async def test_a_cancelled_run_terminates_the_child() -> None:
    r, w = os.pipe()
    code = f"import os, time; os.write({w}, str(os.getpid()).encode()); {SLEEP}"
    async with FileStream(r) as reader:
        task = await kernel.spawn(run(python(code), pass_fds=(w,)))
        pid = await started_child_pid(reader)
        os.close(w)
        await task.cancel()
    assert task.cancelled
    assert gone(pid)


@pytest.mark.realtime
@pytest.mark.usefixtures("no_fd_leak")
async def test_a_cancelled_wait_terminates_then_reaps() -> None:
    child = Popen(python(f"print('up', flush=True); {SLEEP}"), stdout=PIPE)
    assert child.stdout is not None
    assert await child.stdout.readline() == b"up\n"
    waiter = await kernel.spawn(child.wait)
    await kernel.sleep(0)
    await waiter.cancel()
    assert child.returncode == -signal.SIGTERM
    assert gone(child.pid)
    assert child.stdout.closed


@pytest.mark.usefixtures("no_fd_leak")
async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(
    virtual_clock: kernel.VirtualClock,
) -> None:
    code = (
        "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"print('ignoring SIGTERM', flush=True); {SLEEP}"
    )
    child = Popen(python(code), stdout=PIPE)
    assert child.stdout is not None
    await child.stdout.readline()
    waiter = await kernel.spawn(child.communicate)
    await kernel.sleep(0)
    await waiter.cancel()
    assert child.returncode == -signal.SIGKILL
    assert virtual_clock.now() == TERMINATE_GRACE_SECONDS
    assert gone(child.pid)


@pytest.mark.realtime
@pytest.mark.usefixtures("no_fd_leak")
async def test_run_timeout_raises_timeout_expired() -> None:
    with pytest.raises(TimeoutExpired) as info:
        await run(python(SLEEP), timeout=0.1)
    assert info.value.timeout == 0.1


@pytest.mark.usefixtures("no_fd_leak")
@pytest.mark.parametrize("closes_stdout", [False, True])
async def test_run_timeout_carries_the_output_read_so_far(
    virtual_clock: kernel.VirtualClock, closes_stdout: bool
) -> None:
    # The clock waits (in real time) for the child to start instead of jumping to run()'s
    # deadline. The child writes to both pipes, then says so on a third: by then its output
    # is in the pipes, and the kernel reads it before the clock, jumping again, can reach
    # the deadline -- which it does only when nothing at all is ready. A child that closes
    # its stdout first has let that reader finish: what it read is its result by then, no
    # longer in the stream's buffer.
    virtual_clock.autojump_threshold = 30.0
    r, w = os.pipe()
    code = (
        "import os, sys; print('progress', flush=True); "
        + ("os.close(1); " if closes_stdout else "")
        + f"print('warning', file=sys.stderr, flush=True); os.write({w}, b'!'); {SLEEP}"
    )
    async with FileStream(r) as said:
        task = await kernel.spawn(run(python(code), capture_output=True, timeout=10, pass_fds=(w,)))
        assert await said.read(1) == b"!"
        os.close(w)
        virtual_clock.autojump_threshold = 0.0
        with pytest.raises(kernel.TaskError) as info:
            await task.join()
    expired = info.value.__cause__
    assert isinstance(expired, TimeoutExpired)
    assert (expired.stdout, expired.stderr) == (b"progress\n", b"warning\n")


@pytest.mark.usefixtures("no_fd_leak")
async def test_an_outer_timeout_around_run_is_the_outer_blocks() -> None:
    with pytest.raises(kernel.TaskTimeout):  # not TimeoutExpired: run() was given no timeout
        async with kernel.timeout_after(1):
            await run(python(SLEEP), capture_output=True)


@pytest.mark.usefixtures("no_fd_leak")
async def test_an_error_in_the_block_stops_the_child() -> None:
    with pytest.raises(ZeroDivisionError):
        async with Popen(python(SLEEP), stdout=PIPE) as child:
            1 / 0  # noqa: B018
    assert child.returncode is not None
    assert gone(child.pid)


@pytest.mark.usefixtures("no_fd_leak")
async def test_without_pidfd_a_thread_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel.popen, "_open_pidfd", lambda pid: None)
    assert await check_output(python("print('threaded')")) == b"threaded\n"
    child = Popen(python(SLEEP))
    waiter = await kernel.spawn(child.wait)
    await kernel.sleep(0)
    await waiter.cancel()
    assert child.returncode is not None
    assert gone(child.pid)


def test_a_closed_coroutine_kills_and_reaps_without_awaiting() -> None:
    before = open_fds()
    child = Popen(python(SLEEP), stdout=PIPE)
    waiting = child.wait()
    waiting.send(None)  # parks on the pidfd: the trap comes out here, no kernel needed
    waiting.close()  # GeneratorExit (a kernel abandoning its tasks): nothing may be awaited
    assert child.returncode == -signal.SIGKILL
    assert gone(child.pid)
    assert child.stdout is not None and child.stdout.closed
    assert open_fds() == before


async def test_check_output_with_input_none_gives_an_empty_stdin() -> None:
    # As subprocess.check_output does: input=None passed explicitly is input=b"". The child
    # says which file its stdin is (without reading it: ours may be a terminal).
    code = "import os; s = os.fstat(0); print(s.st_dev, s.st_ino)"

    def identity(path_or_fd: str | int) -> bytes:
        s = os.stat(path_or_fd)
        return f"{s.st_dev} {s.st_ino}\n".encode()

    ours = identity(0)
    assert await check_output(python(code)) == ours  # left out: inherited
    assert await check_output(python(code), input=None) != ours  # a pipe of its own
    assert await check_output(python(code), input=None, text=True) != ours.decode()
    assert await check_output(python("import sys; print(repr(sys.stdin.read()))"), input=None) == (
        b"''\n"
    )
    devnull = identity(os.devnull)
    assert await check_output(python(code), input=None, stdin=ksubprocess.DEVNULL) == devnull


def test_a_daemon_task_communicating_is_not_reported_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The daemon's helper tasks, which serve the pipes, are daemons too: cancelled quietly.
    r, w = os.pipe()
    children: list[Popen] = []

    async def background() -> None:
        code = f"import os; os.write({w}, b'!'); {SLEEP}"
        child = Popen(python(code), stdout=PIPE, stderr=PIPE, pass_fds=(w,))
        children.append(child)
        await child.communicate()

    async def main() -> None:
        await kernel.spawn(background, daemon=True)
        async with FileStream(r) as said:
            assert await said.read(1) == b"!"  # the daemon is in communicate() by now

    try:
        kernel.run(main, clock=kernel.VirtualClock())
    finally:
        os.close(w)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert gone(children[0].pid)  # stopped as the daemon was cancelled


@pytest.mark.usefixtures("no_fd_leak")
async def test_a_second_communicate_returns_the_same_output(
    caplog: pytest.LogCaptureFixture,
) -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr)"
    child = Popen(python(code), stdin=PIPE, stdout=PIPE, stderr=PIPE)
    assert await child.communicate() == (b"out\n", b"err\n")
    assert await child.communicate() == (b"out\n", b"err\n")  # as subprocess does
    with pytest.raises(ValueError, match="input"):
        await child.communicate(b"more")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no helper crashed


@pytest.mark.usefixtures("no_fd_leak")
async def test_communicate_after_a_cancelled_one_returns_what_was_read() -> None:
    # The standard library's recipe after a timeout: kill, then communicate() for the rest.
    # Here the child was stopped already; the second call gives what the first had read.
    child = Popen(python(f"import os; os.write(1, b'up\\n'); {SLEEP}"), stdout=PIPE)
    assert child.stdout is not None
    assert await child.stdout.read(1) == b"u"  # and b"p\n" is kept in the stream's buffer
    waiter = await kernel.spawn(child.communicate)
    await kernel.sleep(0)  # its reader waits for more
    await waiter.cancel()
    assert await child.communicate() == (b"p\n", None)
    assert gone(child.pid)


@pytest.mark.usefixtures("no_fd_leak")
async def test_communicate_skips_pipes_the_caller_closed() -> None:
    # As subprocess.Popen.communicate does: a closed pipe is at its end (b""), a closed
    # stdin is not fed; the other pipes are served to the end and the child is reaped.
    code = (
        "import sys; print('first', flush=True)\n"
        "sys.stderr.write(sys.stdin.read() or 'end of stdin'); sys.exit(7)"
    )
    child = Popen(python(code), stdin=PIPE, stdout=PIPE, stderr=PIPE)
    assert child.stdin is not None and child.stdout is not None
    assert await child.stdout.readline() == b"first\n"
    await child.stdout.close()
    await child.stdin.close()  # the child's read ends
    assert await child.communicate() == (b"", b"end of stdin")
    assert child.returncode == 7
    assert gone(child.pid)


async def test_communicate_refuses_input_for_a_closed_stdin() -> None:
    async with Popen(python("pass"), stdin=PIPE) as child:
        assert child.stdin is not None
        await child.stdin.close()
        with pytest.raises(ValueError, match="stdin is closed already"):
            await child.communicate(b"lost")


class _KernelFailure:
    """A callback that raises in the kernel's loop, as a second Ctrl-C does: the kernel
    abandons its tasks (closing their coroutines: GeneratorExit)."""

    def _run(self) -> None:
        raise KeyboardInterrupt


def _kernel_of_this_task() -> kernel.Kernel:
    running = current_kernel()
    assert running is not None
    return running


@pytest.mark.parametrize("waiting_in", ["communicate", "run"])
def test_an_abandoned_communicate_kills_and_reaps_the_child(
    waiting_in: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = open_fds()
    r, w = os.pipe()
    args = python(f"import os; os.write({w}, str(os.getpid()).encode()); {SLEEP}")
    pids: list[int] = []

    async def main() -> None:
        if waiting_in == "run":
            await kernel.spawn(run(args, capture_output=True, pass_fds=(w,)))
        else:
            await kernel.spawn(Popen(args, stdout=PIPE, pass_fds=(w,)).communicate)
        said = FileStream(r)
        pids.append(await started_child_pid(said))
        await said.close()
        _kernel_of_this_task().call_soon(_KernelFailure())
        await kernel.sleep(1)  # the failure comes first, with the other task in communicate()

    try:
        with pytest.raises(KeyboardInterrupt):
            kernel.run(main, clock=kernel.VirtualClock())
    finally:
        os.close(w)
        if pids and not gone(pids[0]):  # (without the fix: not to leave it running)
            os.kill(pids[0], signal.SIGKILL)
            os.waitpid(pids[0], 0)
            pids.clear()
    assert pids and gone(pids[0])  # killed and reaped
    assert open_fds() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # none ignored the exit


def test_an_abandoned_grace_period_kills_and_reaps_the_child(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A cancelled wait() sent SIGTERM, which the child notes and ignores; the kernel is
    # abandoned during the grace period. (The virtual clock waits in real time for the
    # child instead of jumping to the end of the grace period.)
    before = open_fds()
    r, w = os.pipe()
    code = (
        "import os, signal\n"
        f"signal.signal(signal.SIGTERM, lambda *_: os.write({w}, b'T'))\n"
        f"os.write({w}, b'!'); {SLEEP}"
    )
    child = Popen(python(code), pass_fds=(w,))
    os.close(w)

    async def main() -> None:
        waiter = await kernel.spawn(child.wait)
        said = FileStream(r)
        assert await said.read(1) == b"!"  # SIGTERM is ignored from now on
        await waiter.cancel(blocking=False)
        assert await said.read(1) == b"T"  # the waiter is in its grace period
        await said.close()
        _kernel_of_this_task().call_soon(_KernelFailure())
        await kernel.sleep(0)

    try:
        with pytest.raises(KeyboardInterrupt):
            kernel.run(main, clock=kernel.VirtualClock(autojump_threshold=30.0))
    finally:
        if child.returncode is None:  # (without the fix: not to leave it running)
            child._popen.kill()
            child._popen.wait()
    assert child.returncode == -signal.SIGKILL
    assert gone(child.pid)
    assert open_fds() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # none ignored the exit
