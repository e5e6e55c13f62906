"""aopen: the async file object reads, writes, seeks and iterates like the built-in one.

The calls run in worker threads; the tests only look at what comes back (and that the files
are closed and the threads gone when the kernel is).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import kernel
from kernel.files import AsyncFile, aopen


async def test_write_then_read_text(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    async with aopen(path, "w", encoding="utf-8") as f:
        assert await f.write("première ligne\n") == 15
        await f.writelines(["two\n", "three\n"])
        await f.flush()
    assert f.closed
    async with aopen(path, encoding="utf-8") as f:
        assert await f.readline() == "première ligne\n"
        assert await f.read() == "two\nthree\n"
        assert await f.read() == ""


async def test_await_aopen_gives_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    f = await aopen(path, "rb")
    assert isinstance(f, AsyncFile)
    async with f:
        assert f.name == str(path)
        assert f.mode == "rb"
        assert await f.read(3) == b"012"
        assert await f.tell() == 3
        assert await f.seek(-2, os.SEEK_END) == 8
        assert await f.read() == b"89"
        os.fstat(f.fileno())
    assert f.closed
    await f.close()  # a second close does nothing


async def test_async_with_await_aopen(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    async with await aopen(path, "w") as f:
        await f.write("x")
    assert f.closed
    assert path.read_text() == "x"


async def test_iterating_lines(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("a\nb\n\nc")
    async with aopen(path) as f:
        assert [line async for line in f] == ["a\n", "b\n", "\n", "c"]
    async with aopen(path, "rb") as f:
        assert await f.readlines() == [b"a\n", b"b\n", b"\n", b"c"]


async def test_update_mode_truncate(tmp_path: Path) -> None:
    path = tmp_path / "u.bin"
    path.write_bytes(b"abcdef")
    async with aopen(path, "r+b") as f:
        await f.seek(2)
        await f.write(b"XY")
        assert await f.truncate() == 4
    assert path.read_bytes() == b"abXY"


async def test_errors_are_the_builtin_ones(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await aopen(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        async with aopen(tmp_path / "missing"):
            pass  # pragma: no cover


async def test_the_work_happens_in_a_worker_thread(tmp_path: Path) -> None:
    seen: list[int] = []

    def opener(name: str, flags: int) -> int:
        seen.append(threading.get_ident())
        return os.open(name, flags, 0o644)

    async with aopen(tmp_path / "t", "w", opener=opener):
        pass
    assert seen and seen[0] != threading.get_ident()


def test_nothing_left_open(tmp_path: Path) -> None:
    before = set(os.listdir("/proc/self/fd"))
    path = tmp_path / "f"
    path.write_text("hello\n")

    async def main() -> str:
        async with aopen(path) as f:
            return str(await f.read())

    assert kernel.run(main) == "hello\n"
    assert set(os.listdir("/proc/self/fd")) == before


def test_a_file_opened_for_a_task_that_left_is_closed_at_once(tmp_path: Path) -> None:
    """The task is cancelled while a worker opens its file: the file arrives with nobody to
    take it, and is closed then -- not dropped for the garbage collector to close, with a
    ResourceWarning."""
    path = tmp_path / "late.txt"
    path.write_text("late")
    opening, go_on = threading.Event(), threading.Event()
    descriptors: list[int] = []

    def slow_opener(name: str, flags: int) -> int:
        opening.set()
        go_on.wait(5)
        descriptors.append(os.open(name, flags))
        return descriptors[-1]

    async def opens() -> None:
        await aopen(path, opener=slow_opener)

    async def main() -> None:
        task = await kernel.spawn(opens)
        await kernel.sleep(0)  # its job is in the (one) worker's hands...
        assert opening.wait(5)  # ... which is inside the opener (it needs nothing from us)
        await task.cancel()
        go_on.set()
        await kernel.run_in_thread(int, "0")  # the same worker: delivered after the file

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kernel.run(main, max_threads=1)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    with pytest.raises(OSError):  # closed
        os.fstat(descriptors[0])


def test_a_file_still_opening_as_the_kernel_closes_is_closed_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """main returns while a daemon task's file is being opened: close() cancels the task,
    and the worker, done after that, finds the kernel closed. The file is closed, once --
    no error logged for a second release -- and no descriptor is left open."""
    path = tmp_path / "late.txt"
    path.write_text("late")
    opening, go_on = threading.Event(), threading.Event()
    before = set(os.listdir("/proc/self/fd"))

    def slow_opener(name: str, flags: int) -> int:
        opening.set()
        go_on.wait(5)
        return os.open(name, flags)

    async def opens() -> None:
        async with aopen(path, opener=slow_opener) as f:
            await f.read()

    async def main() -> None:
        await kernel.spawn(opens, daemon=True)
        await kernel.sleep(0)  # its job is in a worker's hands...
        assert opening.wait(5)  # ... which is inside the opener (it needs nothing from us)
        k.add_close_callback(go_on.set)  # before the pool's shutdown joins it (last in, first)

    with caplog.at_level(logging.WARNING, logger="kernel"), kernel.Kernel() as k:
        k.run(main)
    assert caplog.records == []
    assert set(os.listdir("/proc/self/fd")) == before


# -- calls are seen through, one at a time -------------------------------------------------------


class OneWorker:
    """A kernel with one worker thread, and a way to keep that worker busy until released:
    a file call made meanwhile waits in the queue, where a cancellation can reach it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def occupy(self) -> None:
        self.started.set()
        self.release.wait(5)

    async def busy(self) -> kernel.Task:
        task = await kernel.spawn(kernel.run_in_thread, self.occupy)
        await kernel.sleep(0)  # its job submitted ...
        assert self.started.wait(5)  # ... and the worker inside it
        return task


async def cancel_while_it_waits_for_the_worker(
    worker: OneWorker, call: Callable[[], Awaitable[object]]
) -> None:
    """Run ``call`` in a task while ``worker`` (the only one) is busy, cancel the task while
    its file call waits for the worker, then free the worker: the task ends cancelled."""
    busy = await worker.busy()
    task = await kernel.spawn(call)
    await kernel.sleep(0)
    await task.cancel(blocking=False)
    worker.release.set()
    await task.wait()
    await busy.join()
    assert task.cancelled


def test_a_cancelled_call_still_completes_and_returns_what_it_read(tmp_path: Path) -> None:
    # Abandoned, the read would move the file's position all the same, and its line be lost.
    path = tmp_path / "lines.txt"
    path.write_text("one\ntwo\n")
    worker = OneWorker()
    got: list[str] = []

    async def reader(f: AsyncFile) -> None:
        got.append(await f.readline())  # cancelled while this waits for the worker
        await kernel.sleep(0)  # the cancellation is raised here, at the next blocking call
        got.append("not reached")

    async def main() -> str:
        async with aopen(path) as f:
            await cancel_while_it_waits_for_the_worker(worker, lambda: reader(f))
            return str(await f.readline())

    assert kernel.run(main, max_threads=1) == "two\n"
    assert got == ["one\n"]


def test_leaving_async_with_closes_the_file_even_when_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("data")
    worker = OneWorker()
    before = set(os.listdir("/proc/self/fd"))

    async def user(f: AsyncFile) -> None:
        async with f:
            pass  # close() waits for the worker, and is cancelled meanwhile

    async def main() -> bool:
        f = await aopen(path)
        busy = await worker.busy()
        task = await kernel.spawn(user, f)
        await kernel.sleep(0)
        await task.cancel(blocking=False)
        worker.release.set()
        await task.wait()
        await busy.join()
        return f.closed

    assert kernel.run(main, max_threads=1)
    assert set(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("mode", ["r", "rb"])
def test_tasks_sharing_a_file_take_turns(tmp_path: Path, mode: str) -> None:
    # Python's buffered files are not safe to use from two threads at once: readline calls
    # racing in the worker threads lost and repeated lines.
    path = tmp_path / "lines.txt"
    lines = [f"line {n:05}\n" for n in range(5000)]
    path.write_text("".join(lines))
    switch_interval = sys.getswitchinterval()

    async def read_lines(f: AsyncFile, into: list[str]) -> None:
        while line := await f.readline():
            into.append(line if mode == "r" else line.decode())

    async def main() -> list[str]:
        got: list[str] = []
        async with aopen(path, mode) as f, kernel.TaskGroup() as group:
            for _ in range(4):
                await group.spawn(read_lines, f, got)
        return got

    sys.setswitchinterval(1e-6)  # threads switch often: a race shows at once
    try:
        got = kernel.run(main)
    finally:
        sys.setswitchinterval(switch_interval)
    assert sorted(got) == lines


# -- what else the file offers: its attributes and queries, and the binary reads ----------------


async def test_a_text_file_s_attributes_and_queries_are_its_own(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(b"one\r\ntwo\r\n")
    async with aopen(path, encoding="latin-1", errors="replace") as f:
        assert (f.encoding, f.errors, f.line_buffering) == ("latin-1", "replace", False)
        assert f.buffer is f.file.buffer  # type: ignore[attr-defined]
        assert f.newlines is None
        await f.readline()
        assert f.newlines == "\r\n"  # seen by now
        assert (f.readable(), f.writable(), f.seekable(), f.isatty()) == (True, False, True, False)
        with pytest.raises(AttributeError, match=r"'_io\.TextIOWrapper' .* attribute 'raw'"):
            f.raw  # noqa: B018
        assert not hasattr(f, "raw")
        # A blocking method not wrapped is not reachable by accident (only through f.file).
        assert not hasattr(f, "detach") and not hasattr(f, "reconfigure")
    with pytest.raises(ValueError, match="closed file"):
        f.readable()  # as the file's own


async def test_a_binary_file_s_attributes_and_queries_are_its_own(tmp_path: Path) -> None:
    path = tmp_path / "b.bin"
    async with aopen(path, "wb") as f:
        assert f.raw is f.file.raw  # type: ignore[attr-defined]
        assert (f.readable(), f.writable(), f.seekable()) == (False, True, True)
        for name in ("encoding", "errors", "newlines", "line_buffering", "buffer"):
            message = rf"'_io\.BufferedWriter' object has no attribute '{name}'"
            with pytest.raises(AttributeError, match=message):
                getattr(f, name)


def test_isatty_asks_the_file() -> None:
    leader, follower = os.openpty()

    async def main() -> bool:
        async with aopen(follower, "wb", buffering=0) as f:
            return f.isatty()

    try:
        assert kernel.run(main)
    finally:
        os.close(leader)


async def test_the_size_and_hint_arguments_are_the_builtin_ones(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("a\nbb\nccc\ndddd\n")
    with open(path) as plain:
        expected = [plain.readline(1), plain.readlines(3), plain.read(None)]
    async with aopen(path) as f:
        assert [await f.readline(1), await f.readlines(3), await f.read(None)] == expected
    assert expected == ["a", ["\n", "bb\n"], "ccc\ndddd\n"]
    async with aopen(path, "rb") as f:
        assert await f.readlines(hint=4) == [b"a\n", b"bb\n"]
        assert await f.readline(None) == b"ccc\n"


async def test_binary_reads(tmp_path: Path) -> None:
    path = tmp_path / "digits.bin"
    path.write_bytes(b"0123456789")
    async with aopen(path, "rb") as f:
        assert (await f.peek()).startswith(b"0")
        assert await f.tell() == 0  # peek does not move
        assert await f.read1(3) == b"012"
        buf = bytearray(3)
        assert await f.readinto(buf) == 3
        assert buf == b"345"
        rest = bytearray(10)
        assert await f.readinto1(memoryview(rest)) == 4
        assert rest[:4] == b"6789"
        assert await f.read1() == b""
    async with aopen(path, "rb", buffering=0) as f:  # unbuffered: a raw FileIO
        await f.seek(8)
        assert await f.readall() == b"89"


async def test_a_read_the_file_lacks_raises_its_attribute_error(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("text")
    async with aopen(path) as f:
        for name in ("read1", "readinto", "readinto1", "peek", "readall"):
            args = (bytearray(1),) if "into" in name else ()
            with pytest.raises(AttributeError, match=rf"'_io\.TextIOWrapper' .* '{name}'"):
                await getattr(f, name)(*args)
        assert await f.read() == "text"  # nothing was read meanwhile
    async with aopen(path, "ab") as g:
        with pytest.raises(AttributeError, match=r"'_io\.BufferedWriter' .* 'peek'"):
            await g.peek()


def test_a_cancelled_readinto_still_fills_the_buffer(tmp_path: Path) -> None:
    # The new reads go the same way as the others: one at a time, in a worker, to their end.
    path = tmp_path / "data.bin"
    path.write_bytes(b"abcdef")
    worker = OneWorker()
    buf = bytearray(3)

    async def reader(f: AsyncFile) -> None:
        await f.readinto(buf)  # cancelled while this waits for the worker
        await kernel.sleep(0)  # pragma: no cover (the cancellation is raised here)

    async def main() -> bytes:
        async with aopen(path, "rb") as f:
            await cancel_while_it_waits_for_the_worker(worker, lambda: reader(f))
            return bytes(await f.read1())

    assert kernel.run(main, max_threads=1) == b"def"
    assert buf == b"abc"
