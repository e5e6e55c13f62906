"""kernel.aio pipes and subprocesses: ``ProcessMixin``, its pipe and subprocess transports.

Plain ``def`` tests that drive an adapter loop themselves (the plugin would run an ``async
def`` test as a kernel task). The loop is ``ProcessMixin`` mixed in front of
``kernel.aio.EventLoop``, on the real clock: children run in real time.

The children are small ``python -S -c`` programs (no site import: they start fast). Where a
test must know that a child got somewhere, the child says so on a pipe and the test reads
it; nothing sleeps to wait. Every test checks that it left no descriptor open, and the ones
that start children check that each child was reaped (no zombie).
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import tty
import warnings
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import kernel.aio
import kernel.aio.exitwatch as exitwatch
from kernel.aio.pipes import ReadPipeTransport, WritePipeTransport
from kernel.aio.subprocess import ProcessMixin, SubprocessTransport

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc, uses pidfds")

T = TypeVar("T")
PIPE = subprocess.PIPE
TIMEOUT = 10.0  # seconds any one loop run may take before the test fails


class _Loop(kernel.aio.EventLoop):
    """The adapter loop with pipes and subprocesses."""


class _SelectorLoop(ProcessMixin, asyncio.SelectorEventLoop):
    """asyncio's own loop with this module's methods in front: the mixin needs nothing more."""


def python(code: str) -> list[str]:
    return [sys.executable, "-S", "-c", code]


CAT = python("import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())")
READY_THEN_SLEEP = python("import time; print('ready', flush=True); time.sleep(60)")


def handed_over(fd: int, mode: str) -> io.FileIO:
    """A file object for ``fd`` to give to a pipe transport, which will close it."""
    return io.FileIO(fd, mode)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def reaped(pid: int) -> bool:
    """The process has exited *and* been reaped (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    before = open_fds()
    yield
    gc.collect()
    assert open_fds() == before


@pytest.fixture
def loop() -> Iterator[_Loop]:
    loop = _Loop()
    try:
        yield loop
    finally:
        loop.close()


def run(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``loop``, failing (not hanging) after ``TIMEOUT`` seconds."""
    return loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))


# -- asyncio.create_subprocess_exec / _shell and Process ----------------------------------------


def test_communicate_feeds_stdin_and_collects_stdout(loop: _Loop) -> None:
    async def main() -> tuple[bytes, bytes | None, int | None, int]:
        proc = await asyncio.create_subprocess_exec(*CAT, stdin=PIPE, stdout=PIPE)
        out, err = await proc.communicate(b"some data")
        return out, err, proc.returncode, proc.pid

    out, err, returncode, pid = run(loop, main())
    assert (out, err, returncode) == (b"some data", None, 0)
    assert reaped(pid)


def test_communicate_moves_more_than_a_pipe_holds(loop: _Loop) -> None:
    data = os.urandom(1024 * 1024)  # 16 pipe buffers: both directions must flow together

    async def main() -> bytes:
        proc = await asyncio.create_subprocess_exec(*CAT, stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(data)
        return out

    assert run(loop, main()) == data


def test_stdout_and_stderr_are_separate_pipes(loop: _Loop) -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"

    async def main() -> tuple[bytes, bytes, int | None]:
        proc = await asyncio.create_subprocess_exec(*python(code), stdout=PIPE, stderr=PIPE)
        out, err = await proc.communicate()
        return out, err, proc.returncode

    assert run(loop, main()) == (b"out\n", b"err\n", 3)


def test_stderr_redirected_to_stdout(loop: _Loop) -> None:
    code = "import sys; print('out', flush=True); print('err', file=sys.stderr)"

    async def main() -> tuple[bytes, bytes | None]:
        proc = await asyncio.create_subprocess_exec(
            *python(code), stdout=PIPE, stderr=subprocess.STDOUT
        )
        return await proc.communicate()

    assert run(loop, main()) == (b"out\nerr\n", None)


def test_stdin_stdout_streams_line_by_line(loop: _Loop) -> None:
    code = "import sys\nfor line in sys.stdin: print(line.upper(), end='', flush=True)"

    async def main() -> list[bytes]:
        proc = await asyncio.create_subprocess_exec(*python(code), stdin=PIPE, stdout=PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        lines = []
        for word in (b"one\n", b"two\n"):
            proc.stdin.write(word)
            await proc.stdin.drain()
            lines.append(await proc.stdout.readline())
        proc.stdin.close()
        lines.append(await proc.stdout.read())
        assert await proc.wait() == 0
        return lines

    assert run(loop, main()) == [b"ONE\n", b"TWO\n", b""]


def test_exit_codes_of_exec_and_shell(loop: _Loop) -> None:
    async def main() -> list[int]:
        exec_proc = await asyncio.create_subprocess_exec(*python("raise SystemExit(5)"))
        shell_proc = await asyncio.create_subprocess_shell("exit 7")
        return [await exec_proc.wait(), await shell_proc.wait()]

    assert run(loop, main()) == [5, 7]


def test_shell_runs_a_command_line(loop: _Loop) -> None:
    async def main() -> bytes:
        proc = await asyncio.create_subprocess_shell("echo hello | tr a-z A-Z", stdout=PIPE)
        out, _ = await proc.communicate()
        return out

    assert run(loop, main()) == b"HELLO\n"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("kill", -signal.SIGKILL),
        ("terminate", -signal.SIGTERM),
        ("send_signal", -signal.SIGUSR1),
    ],
)
def test_signals_end_the_child(loop: _Loop, method: str, expected: int) -> None:
    async def main() -> tuple[int, int]:
        proc = await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdout=PIPE)
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"ready\n"
        if method == "send_signal":
            proc.send_signal(signal.SIGUSR1)
        else:
            getattr(proc, method)()
        return await proc.wait(), proc.pid

    returncode, pid = run(loop, main())
    assert returncode == expected
    assert reaped(pid)


def test_signals_after_the_child_is_reaped_do_nothing(loop: _Loop) -> None:
    class HoldStdout(asyncio.SubprocessProtocol):
        """Keeps the stdout pipe unread, so the transport outlives the child."""

        def __init__(self) -> None:
            self.exited = loop.create_future()
            self.lost = loop.create_future()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.SubprocessTransport)
            pipe = transport.get_pipe_transport(1)
            assert isinstance(pipe, asyncio.ReadTransport)
            pipe.pause_reading()

        def process_exited(self) -> None:
            self.exited.set_result(None)

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost.set_result(None)

    async def main() -> None:
        transport, protocol = await loop.subprocess_exec(
            HoldStdout, *python("print('bye')"), stdin=None
        )
        await protocol.exited
        assert transport.get_returncode() == 0
        transport.send_signal(signal.SIGKILL)  # reaped: its pid may be another's now: not sent
        transport.kill()
        transport.close()
        await protocol.lost
        with pytest.raises(ProcessLookupError):  # the transport is done: as asyncio
            transport.terminate()

    run(loop, main())


def test_cancelled_wait_leaves_the_child_running_until_the_transport_closes(
    loop: _Loop,
) -> None:
    async def main() -> tuple[int | None, int, bool]:
        proc = await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdout=PIPE)
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"ready\n"
        waiting = asyncio.ensure_future(proc.wait())
        asyncio.get_running_loop().call_soon(waiting.cancel)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        still_running = proc.returncode is None and not reaped(proc.pid)
        transport = proc._transport  # type: ignore[attr-defined]
        transport.close()  # what asyncio does with a child still running: kill it
        return await proc.wait(), proc.pid, still_running

    returncode, pid, still_running = run(loop, main())
    assert still_running
    assert returncode == -signal.SIGKILL
    assert reaped(pid)


def test_cancelled_subprocess_exec_kills_and_reaps_the_child(
    loop: _Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", recording_popen)

    async def main() -> None:
        creating = asyncio.ensure_future(
            asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdin=PIPE, stdout=PIPE)
        )
        asyncio.get_running_loop().call_soon(creating.cancel)  # while the pipes connect
        with pytest.raises(asyncio.CancelledError):
            await creating

    run(loop, main())
    [popen] = started
    assert popen.returncode == -signal.SIGKILL
    assert reaped(popen.pid)


def test_a_failing_pipe_connection_fails_subprocess_exec_cleanly(loop: _Loop) -> None:
    started: list[int] = []

    async def refuse(protocol_factory: Any, pipe: Any) -> Any:
        started.append(-1)
        raise OSError("no pipes today")

    loop.connect_read_pipe = refuse  # type: ignore[method-assign]

    async def main() -> None:
        await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdin=PIPE, stdout=PIPE)

    with pytest.raises(OSError, match="no pipes today"):
        run(loop, main())
    assert started == [-1]  # (the fd check of the fixture: the child's pipes were closed)


def test_process_concurrent_waits_all_get_the_return_code(loop: _Loop) -> None:
    async def main() -> list[int]:
        proc = await asyncio.create_subprocess_exec(*python("raise SystemExit(4)"))
        return await asyncio.gather(*(proc.wait() for _ in range(5)))

    assert run(loop, main()) == [4] * 5


def test_stdin_broken_pipe_reaches_drain(loop: _Loop) -> None:
    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            *python("import sys; sys.stdin.buffer.read(1)"), stdin=PIPE
        )
        assert proc.stdin is not None
        proc.stdin.write(b"x" * (4 * 1024 * 1024))  # far more than the child will ever read
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            await proc.stdin.drain()
        assert await proc.wait() == 0

    run(loop, main())


def test_a_child_that_exits_at_once_reports_in_protocol_order(loop: _Loop) -> None:
    events: list[Any] = []
    code = "import sys; sys.stdout.write('out'); sys.stderr.write('err')"

    class Recorder(asyncio.SubprocessProtocol):
        def __init__(self) -> None:
            self.done = loop.create_future()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            events.append("connection_made")

        def pipe_data_received(self, fd: int, data: bytes) -> None:
            events.append(("data", fd, data))

        def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
            events.append(("pipe_lost", fd, exc))

        def process_exited(self) -> None:
            events.append("process_exited")

        def connection_lost(self, exc: Exception | None) -> None:
            events.append(("connection_lost", exc))
            self.done.set_result(None)

    async def main() -> SubprocessTransport:
        transport, protocol = await loop.subprocess_exec(Recorder, *python(code), stdin=None)
        assert events[0] == "connection_made"  # already, when subprocess_exec returns
        await protocol.done
        assert isinstance(transport, SubprocessTransport)
        return transport

    transport = run(loop, main())
    assert events[0] == "connection_made"
    assert events[-1] == ("connection_lost", None)
    middle = events[1:-1]
    assert sorted(middle, key=repr) == sorted(
        [
            ("data", 1, b"out"),
            ("data", 2, b"err"),
            ("pipe_lost", 1, None),
            ("pipe_lost", 2, None),
            "process_exited",
        ],
        key=repr,
    )
    for fd, data in ((1, b"out"), (2, b"err")):  # per pipe: its data before its end
        assert middle.index(("data", fd, data)) < middle.index(("pipe_lost", fd, None))
    assert transport.get_returncode() == 0
    transport.close()


def test_transport_accessors(loop: _Loop) -> None:
    async def main() -> None:
        transport, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, *CAT, stderr=subprocess.DEVNULL
        )
        popen = transport.get_extra_info("subprocess")
        assert isinstance(popen, subprocess.Popen)
        assert transport.get_pid() == popen.pid
        assert transport.get_returncode() is None
        assert isinstance(transport.get_pipe_transport(0), WritePipeTransport)
        assert isinstance(transport.get_pipe_transport(1), ReadPipeTransport)
        assert transport.get_pipe_transport(2) is None
        assert f"pid={popen.pid} running" in repr(transport)
        assert not transport.is_closing()
        transport.close()
        assert transport.is_closing()
        assert await transport._wait() == -signal.SIGKILL  # type: ignore[attr-defined]
        assert "returncode=-9" in repr(transport)

    run(loop, main())


def test_a_child_reaped_through_its_popen_keeps_its_return_code(loop: _Loop) -> None:
    async def main() -> int:
        transport, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, *python("raise SystemExit(6)"), stdin=None, stdout=None
        )
        popen = transport.get_extra_info("subprocess")
        popen.wait()  # reaps it behind the transport's back (blocking: it exits at once)
        returncode: int = await transport._wait()  # type: ignore[attr-defined]
        transport.close()
        return returncode

    assert run(loop, main()) == 6  # not asyncio's 255: the Popen knew


def test_a_child_reaped_by_a_stranger_reports_255(
    loop: _Loop, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> int:
        transport, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, *python("pass"), stdin=None, stdout=None, stderr=None
        )
        os.waitpid(transport.get_pid(), 0)  # someone else's waitpid: the status is gone
        returncode: int = await transport._wait()  # type: ignore[attr-defined]
        transport.close()
        return returncode

    assert run(loop, main()) == 255  # what asyncio reports too
    assert "exit status already read" in caplog.text


def test_without_pidfds_the_exit_is_polled(loop: _Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exitwatch, "open_pidfd", lambda pid: None)

    async def main() -> tuple[bytes, int]:
        proc = await asyncio.create_subprocess_exec(*CAT, stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(b"polled")
        return out, await proc.wait()

    assert run(loop, main()) == (b"polled", 0)


def test_the_mixin_works_on_asyncios_own_loop() -> None:
    selector_loop = _SelectorLoop()
    try:

        async def main() -> bytes:
            proc = await asyncio.create_subprocess_exec(*CAT, stdin=PIPE, stdout=PIPE)
            out, _ = await proc.communicate(b"on asyncio")
            return out

        assert run(selector_loop, main()) == b"on asyncio"
    finally:
        selector_loop.close()


def test_asyncio_runner_with_the_loop_factory() -> None:
    async def main() -> bytes:
        proc = await asyncio.create_subprocess_shell("echo from a runner", stdout=PIPE)
        out, _ = await proc.communicate()
        return out

    with asyncio.Runner(loop_factory=_Loop) as runner:
        assert runner.run(asyncio.wait_for(main(), TIMEOUT)) == b"from a runner\n"


def test_debug_mode_logs_the_life_of_a_child(loop: _Loop, caplog: pytest.LogCaptureFixture) -> None:
    loop.set_debug(True)
    caplog.set_level(logging.DEBUG, logger="asyncio")

    async def main() -> int:
        proc = await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdin=PIPE, stdout=PIPE)
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"ready\n"
        proc._transport.close()  # type: ignore[attr-defined]  # kills it, and says so
        return await proc.wait()

    assert run(loop, main()) == -signal.SIGKILL
    text = caplog.text
    assert "execute program" in text
    assert "Close running child process: kill" in text
    assert "exited with return code -9" in text


# -- argument checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"universal_newlines": True}, "universal_newlines must be False"),
        ({"shell": True}, "shell must be False"),
        ({"bufsize": 4096}, "bufsize must be 0"),
        ({"text": True}, "text must be False"),
        ({"encoding": "utf-8"}, "encoding must be None"),
        ({"errors": "strict"}, "errors must be None"),
    ],
)
def test_subprocess_exec_refuses_text_and_shell_options(
    loop: _Loop, option: dict[str, Any], message: str
) -> None:
    async def main() -> None:
        await loop.subprocess_exec(asyncio.SubprocessProtocol, "true", **option)

    with pytest.raises(ValueError, match=message):
        run(loop, main())


@pytest.mark.parametrize(
    ("cmd", "option", "message"),
    [
        (["ls", "-l"], {}, "cmd must be a string"),
        ("true", {"universal_newlines": True}, "universal_newlines must be False"),
        ("true", {"shell": False}, "shell must be True"),
        ("true", {"bufsize": 4096}, "bufsize must be 0"),
        ("true", {"text": True}, "text must be False"),
        ("true", {"encoding": "utf-8"}, "encoding must be None"),
        ("true", {"errors": "strict"}, "errors must be None"),
    ],
)
def test_subprocess_shell_refuses_bad_commands_and_options(
    loop: _Loop, cmd: Any, option: dict[str, Any], message: str
) -> None:
    async def main() -> None:
        await loop.subprocess_shell(asyncio.SubprocessProtocol, cmd, **option)

    with pytest.raises(ValueError, match=message):
        run(loop, main())


def test_a_program_that_does_not_exist(loop: _Loop) -> None:
    async def main() -> None:
        await asyncio.create_subprocess_exec("/nonexistent/program", stdin=PIPE, stdout=PIPE)

    with pytest.raises(FileNotFoundError):
        run(loop, main())


def test_subprocess_on_a_closed_loop_starts_nothing() -> None:
    closed = _Loop()
    closed.close()
    coro = closed.subprocess_exec(asyncio.SubprocessProtocol, "true")
    with pytest.raises(RuntimeError, match="closed"):
        coro.send(None)


# -- closing, leaks and the garbage collector -------------------------------------------------


def test_an_unclosed_transport_warns_when_collected(loop: _Loop) -> None:
    async def main() -> int:
        transport, _ = await loop.subprocess_exec(
            asyncio.SubprocessProtocol, *python("pass"), stdin=None, stdout=None, stderr=None
        )
        await transport._wait()  # type: ignore[attr-defined]
        return transport.get_pid()  # and drop the transport, unclosed

    with pytest.warns(ResourceWarning, match="unclosed transport"):
        pid = run(loop, main())
        gc.collect()
    assert reaped(pid)


def test_closing_after_the_loop_closed_kills_and_reaps_at_once() -> None:
    loop = _Loop()

    async def main() -> SubprocessTransport:
        transport, _ = await loop.subprocess_exec(asyncio.SubprocessProtocol, *READY_THEN_SLEEP)
        assert isinstance(transport, SubprocessTransport)
        return transport

    transport = run(loop, main())
    loop.close()  # the child still runs, its pipes still open
    transport.close()
    assert transport.get_extra_info("subprocess").returncode == -signal.SIGKILL
    assert reaped(transport.get_pid())


def test_a_transport_collected_after_the_loop_closed_leaves_nothing() -> None:
    loop = _Loop()

    async def main() -> int:
        transport, _ = await loop.subprocess_exec(asyncio.SubprocessProtocol, *READY_THEN_SLEEP)
        return transport.get_pid()

    pid = run(loop, main())
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        loop.close()  # the loop lets go of the transport, which is garbage from now on
        gc.collect()
    # The collector finalizes the whole cycle in no set order: the Popen and the pipes' file
    # objects may say they were left open before the transport closes them.
    assert {warning.category for warning in warned} == {ResourceWarning}
    assert any(str(warning.message).startswith("unclosed transport") for warning in warned)
    assert reaped(pid)  # (and the fixture checks that every descriptor is closed)


# -- pipe transports --------------------------------------------------------------------------


class ReadRecorder(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[Any] = []
        self.data = bytearray()
        self.got_data = asyncio.Event()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.got_data.set()

    def eof_received(self) -> bool | None:
        self.events.append("eof")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)

    async def wait_for(self, size: int) -> bytes:
        while len(self.data) < size:
            self.got_data.clear()
            await self.got_data.wait()
        return bytes(self.data)


class WriteRecorder(asyncio.BaseProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[str] = []
        self.lost: asyncio.Future[Exception | None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


def test_read_pipe_delivers_data_then_eof(loop: _Loop) -> None:
    rfd, wfd = os.pipe()
    pipe = handed_over(rfd, "r")

    async def main() -> tuple[ReadRecorder, asyncio.ReadTransport]:
        transport, protocol = await loop.connect_read_pipe(lambda: ReadRecorder(loop), pipe)
        assert protocol.events == ["made"]
        assert transport.get_extra_info("pipe") is pipe
        assert transport.is_reading()
        os.write(wfd, b"hello")
        assert await protocol.wait_for(5) == b"hello"
        os.close(wfd)
        assert await protocol.lost is None
        return protocol, transport

    protocol, transport = run(loop, main())
    assert protocol.events == ["made", "eof", "lost"]
    assert pipe.closed
    assert transport.is_closing()
    assert "closed" in repr(transport)


def test_read_pipe_chunks_are_the_protocols_to_keep(loop: _Loop) -> None:
    # Pipe reads share the loop's read buffer with socket reads (transports.read_scratch).
    rfd, wfd = os.pipe()
    chunks: list[bytes] = []

    class Keep(ReadRecorder):
        def data_received(self, data: bytes) -> None:
            chunks.append(data)
            super().data_received(data)

    async def main() -> None:
        transport, protocol = await loop.connect_read_pipe(
            lambda: Keep(loop), handed_over(rfd, "r")
        )
        os.write(wfd, b"one")
        await protocol.wait_for(3)
        os.write(wfd, b"two!")
        await protocol.wait_for(7)
        transport.close()
        await protocol.lost

    try:
        run(loop, main())
    finally:
        os.close(wfd)
    assert chunks == [b"one", b"two!"]
    assert type(chunks[0]) is bytes


def test_read_pipe_pause_and_resume(loop: _Loop) -> None:
    rfd, wfd = os.pipe()

    async def main() -> bytes:
        transport, protocol = await loop.connect_read_pipe(
            lambda: ReadRecorder(loop), handed_over(rfd, "r")
        )
        transport.pause_reading()
        assert not transport.is_reading()
        assert "idle" in repr(transport)
        os.write(wfd, b"held back")
        for _ in range(5):  # several turns of the loop: nothing is read while paused
            await asyncio.sleep(0)
        assert protocol.data == b""
        transport.resume_reading()
        assert "polling" in repr(transport)
        data = await protocol.wait_for(9)
        transport.close()
        assert await protocol.lost is None
        return data

    try:
        assert run(loop, main()) == b"held back"
    finally:
        os.close(wfd)


def test_read_pipe_protocol_error_is_reported_and_ends_the_transport(loop: _Loop) -> None:
    rfd, wfd = os.pipe()
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: reports.append(context))

    class Failing(ReadRecorder):
        def data_received(self, data: bytes) -> None:
            raise ZeroDivisionError

    async def main() -> Exception | None:
        _, protocol = await loop.connect_read_pipe(lambda: Failing(loop), handed_over(rfd, "r"))
        os.write(wfd, b"x")
        return await protocol.lost

    try:
        assert isinstance(run(loop, main()), ZeroDivisionError)
    finally:
        os.close(wfd)
    [report] = reports
    assert isinstance(report["exception"], ZeroDivisionError)


def test_write_pipe_writes_and_closes(loop: _Loop) -> None:
    rfd, wfd = os.pipe()
    pipe = handed_over(wfd, "w")

    async def main() -> WriteRecorder:
        transport, protocol = await loop.connect_write_pipe(lambda: WriteRecorder(loop), pipe)
        assert protocol.events == ["made"]
        assert transport.get_extra_info("pipe") is pipe
        assert transport.can_write_eof()
        transport.write(b"12")
        transport.writelines([b"3", bytearray(b"4"), memoryview(b"5")])
        transport.write(b"")
        with pytest.raises(TypeError, match="bytes-like"):
            transport.write("text")  # type: ignore[arg-type]
        assert os.read(rfd, 100) == b"12345"
        transport.close()
        assert transport.is_closing()
        transport.write(b"dropped")  # after close: silently dropped, as in asyncio
        assert await protocol.lost is None
        transport.abort()  # too late to matter: no second connection_lost
        await asyncio.sleep(0)
        return protocol

    try:
        protocol = run(loop, main())
        assert protocol.events == ["made", "lost"]
        assert pipe.closed
        assert os.read(rfd, 100) == b""  # EOF: the write end is closed
    finally:
        os.close(rfd)


def test_write_pipe_buffers_with_flow_control_and_drains_before_closing(loop: _Loop) -> None:
    rfd, wfd = os.pipe()
    chunk = b"x" * 100_000
    received = bytearray()

    async def main() -> list[str]:
        transport, protocol = await loop.connect_write_pipe(
            lambda: WriteRecorder(loop), handed_over(wfd, "w")
        )
        transport.set_write_buffer_limits(high=1000)
        assert transport.get_write_buffer_limits() == (250, 1000)
        transport.write(chunk)  # a pipe holds 64 KiB: the rest waits in the buffer
        assert transport.get_write_buffer_size() > 1000
        assert protocol.events == ["made", "pause"]
        assert "polling" in repr(transport)
        transport.close()  # a close waits for the buffer to drain

        def read_some() -> None:
            received.extend(os.read(rfd, 65536))

        loop.add_reader(rfd, read_some)
        try:
            assert await protocol.lost is None
        finally:
            loop.remove_reader(rfd)
        received.extend(os.read(rfd, 1 << 20))
        return protocol.events

    try:
        assert run(loop, main()) == ["made", "pause", "resume", "lost"]
    finally:
        os.close(rfd)
    assert bytes(received) == chunk


def test_write_pipe_limits_are_checked(loop: _Loop) -> None:
    rfd, wfd = os.pipe()

    async def main() -> None:
        transport, protocol = await loop.connect_write_pipe(
            lambda: WriteRecorder(loop), handed_over(wfd, "w")
        )
        with pytest.raises(ValueError, match="must be >="):
            transport.set_write_buffer_limits(high=1, low=2)
        transport.set_write_buffer_limits(low=100)
        assert transport.get_write_buffer_limits() == (100, 400)
        transport.abort()
        assert await protocol.lost is None

    try:
        run(loop, main())
    finally:
        os.close(rfd)


def test_write_pipe_error_on_write_ends_the_transport(loop: _Loop) -> None:
    rfd, wfd = os.pipe()

    async def main() -> Exception | None:
        transport, protocol = await loop.connect_write_pipe(
            lambda: WriteRecorder(loop), handed_over(wfd, "w")
        )
        os.close(rfd)
        transport.write(b"x")  # before the loop could notice: os.write fails with EPIPE
        assert transport.is_closing()
        return await protocol.lost

    assert isinstance(run(loop, main()), BrokenPipeError)


def test_writes_after_close_are_dropped_and_then_logged(
    loop: _Loop, caplog: pytest.LogCaptureFixture
) -> None:
    rfd, wfd = os.pipe()

    async def main() -> None:
        transport, protocol = await loop.connect_write_pipe(
            lambda: WriteRecorder(loop), handed_over(wfd, "w")
        )
        transport.close()
        for _ in range(6):
            transport.write(b"dropped")
        assert await protocol.lost is None

    try:
        run(loop, main())
        assert os.read(rfd, 100) == b""
    finally:
        os.close(rfd)
    assert caplog.text.count("pipe closed by peer") == 1


def test_a_failing_pause_writing_is_reported(loop: _Loop) -> None:
    rfd, wfd = os.pipe()
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: reports.append(context))

    class FailingPause(WriteRecorder):
        def pause_writing(self) -> None:
            raise ZeroDivisionError

    async def main() -> None:
        transport, protocol = await loop.connect_write_pipe(
            lambda: FailingPause(loop), handed_over(wfd, "w")
        )
        transport.write(b"x" * 200_000)  # over the high-water mark: pause_writing fails
        assert not transport.is_closing()  # the pipe is fine, the protocol is buggy
        transport.abort()
        assert await protocol.lost is None

    try:
        run(loop, main())
    finally:
        os.close(rfd)
    [report] = reports
    assert report["message"] == "protocol.pause_writing() failed"


def test_write_pipe_learns_that_the_reader_went_away(loop: _Loop) -> None:
    rfd, wfd = os.pipe()

    async def main() -> Exception | None:
        _, protocol = await loop.connect_write_pipe(
            lambda: WriteRecorder(loop), handed_over(wfd, "w")
        )
        os.close(rfd)  # nothing written: the transport ends without an error
        return await protocol.lost

    assert run(loop, main()) is None


def test_write_pipe_with_bytes_left_over_ends_with_broken_pipe(loop: _Loop) -> None:
    rfd, wfd = os.pipe()

    async def main() -> Exception | None:
        transport, protocol = await loop.connect_write_pipe(
            lambda: WriteRecorder(loop), handed_over(wfd, "w")
        )
        transport.write(b"x" * 200_000)  # more than the pipe holds
        os.close(rfd)
        return await protocol.lost

    assert isinstance(run(loop, main()), BrokenPipeError)


def test_write_pipe_on_a_socket_ends_when_the_peer_closes(loop: _Loop) -> None:
    ours, theirs = socket.socketpair()
    pipe = handed_over(ours.detach(), "w")

    async def main() -> Exception | None:
        transport, protocol = await loop.connect_write_pipe(lambda: WriteRecorder(loop), pipe)
        transport.write(b"1")
        assert theirs.recv(10) == b"1"
        theirs.close()
        return await protocol.lost

    assert run(loop, main()) is None


def test_read_pipe_on_a_socket(loop: _Loop) -> None:
    ours, theirs = socket.socketpair()
    pipe = handed_over(ours.detach(), "r")

    async def main() -> tuple[bytes, list[Any]]:
        _, protocol = await loop.connect_read_pipe(lambda: ReadRecorder(loop), pipe)
        theirs.sendall(b"over a socket")
        data = await protocol.wait_for(13)
        theirs.close()
        assert await protocol.lost is None
        return data, protocol.events

    assert run(loop, main()) == (b"over a socket", ["made", "eof", "lost"])


def test_pipes_to_and_from_a_fifo(loop: _Loop, tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    reading = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    writing = os.open(path, os.O_WRONLY)

    async def main() -> tuple[bytes, Exception | None]:
        _, reader = await loop.connect_read_pipe(
            lambda: ReadRecorder(loop), handed_over(reading, "r")
        )
        writer_transport, writer = await loop.connect_write_pipe(
            lambda: WriteRecorder(loop), handed_over(writing, "w")
        )
        writer_transport.write(b"through the fifo")
        data = await reader.wait_for(16)
        writer_transport.close()
        assert await writer.lost is None
        return data, await reader.lost

    assert run(loop, main()) == (b"through the fifo", None)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs os.openpty()")
def test_pipes_on_a_pseudo_terminal(loop: _Loop) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    write_slave = os.dup(slave)
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: reports.append(context))

    async def main() -> tuple[bytes, bytes, Exception | None, Exception | None]:
        _, master_reader = await loop.connect_read_pipe(
            lambda: ReadRecorder(loop), handed_over(master, "r")
        )
        slave_transport, slave_reader = await loop.connect_read_pipe(
            lambda: ReadRecorder(loop), handed_over(slave, "r")
        )
        writer_transport, writer = await loop.connect_write_pipe(
            lambda: WriteRecorder(loop), handed_over(write_slave, "w")
        )
        writer_transport.write(b"to the master")
        to_master = await master_reader.wait_for(13)
        os.write(master, b"to the slave")
        to_slave = await slave_reader.wait_for(12)
        slave_transport.close()
        writer_transport.close()
        assert await slave_reader.lost is None
        assert await writer.lost is None
        # Both slave descriptors are closed now: the master reads EIO, its way of saying EOF.
        return to_master, to_slave, await master_reader.lost, None

    to_master, to_slave, master_lost, _ = run(loop, main())
    assert (to_master, to_slave) == (b"to the master", b"to the slave")
    assert isinstance(master_lost, OSError)
    assert reports == []  # EIO is not reported as an error


def test_pipe_transports_refuse_regular_files(loop: _Loop, tmp_path: Path) -> None:
    path = tmp_path / "regular"
    path.write_bytes(b"data")
    with open(path, "rb") as reading, open(path, "ab") as writing:

        async def main() -> None:
            with pytest.raises(ValueError, match="pipes/sockets only"):
                await loop.connect_read_pipe(asyncio.Protocol, reading)
            with pytest.raises(ValueError, match="pipes, sockets and character devices"):
                await loop.connect_write_pipe(asyncio.BaseProtocol, writing)

        run(loop, main())
        assert not reading.closed and not writing.closed  # still the caller's


def test_unclosed_pipe_transports_warn_when_collected(loop: _Loop) -> None:
    rfd, wfd = os.pipe()

    async def main() -> None:
        await loop.connect_read_pipe(asyncio.Protocol, handed_over(rfd, "r"))
        await loop.connect_write_pipe(asyncio.BaseProtocol, handed_over(wfd, "w"))

    run(loop, main())
    with pytest.warns(ResourceWarning, match="unclosed transport") as warned:
        loop.close()  # drops the loop's registrations: the transports are garbage now
        gc.collect()
    assert len(warned) == 2


def test_closing_pipe_transports_on_a_closed_loop_closes_the_pipes(loop: _Loop) -> None:
    rfd, wfd = os.pipe()
    reading = handed_over(rfd, "r")
    writing = handed_over(wfd, "w")

    async def main() -> tuple[asyncio.ReadTransport, asyncio.WriteTransport]:
        reader, _ = await loop.connect_read_pipe(asyncio.Protocol, reading)
        writer, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, writing)
        return reader, writer

    reader, writer = run(loop, main())
    loop.close()
    assert "open" in repr(reader) and "open" in repr(writer)
    reader.close()
    writer.close()
    assert reading.closed and writing.closed


def test_connect_pipe_cancelled_closes_the_transport(loop: _Loop) -> None:
    rfd, wfd = os.pipe()
    protocols: list[ReadRecorder] = []

    def factory() -> ReadRecorder:
        protocols.append(ReadRecorder(loop))
        return protocols[-1]

    async def main() -> Exception | None:
        connecting = asyncio.ensure_future(loop.connect_read_pipe(factory, handed_over(rfd, "r")))
        await asyncio.sleep(0)  # it has made its transport and waits for connection_made
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        return await protocols[0].lost

    try:
        assert run(loop, main()) is None
    finally:
        os.close(wfd)
    assert protocols[0].events == ["made", "lost"]


def test_many_children_leave_no_descriptor_or_zombie(loop: _Loop) -> None:
    async def one(i: int) -> tuple[bytes, int]:
        proc = await asyncio.create_subprocess_exec(
            *python(f"print({i})"), stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        out, _ = await proc.communicate()
        return out, proc.pid

    async def main() -> list[tuple[bytes, int]]:
        return await asyncio.gather(*(one(i) for i in range(10)))

    before = open_fds()
    results = run(loop, main())
    assert [out for out, _ in results] == [f"{i}\n".encode() for i in range(10)]
    assert all(reaped(pid) for _, pid in results)
    gc.collect()
    assert open_fds() == before
