"""aopen: the async file object reads, writes, seeks and iterates like the built-in one.

The calls run in worker threads; the tests only look at what comes back (and that the files
are closed and the threads gone when the kernel is).
"""

from __future__ import annotations

import os
import threading
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
