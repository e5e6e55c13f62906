"""FileStream's own cases: what it parks as, and whose blocking mode it puts back.

The buffering every stream shares is tested in ``test_streams.py`` (over pipes, as
FileStreams); these are the things only a stream over a bare descriptor has to get right.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kernel
from kernel import filestream
from kernel.filestream import FileStream
from kernel.lifecycle import current_kernel

LIMIT = 10.0  # seconds: no test waits longer than this


def table_size() -> int:
    """How many objects the running kernel's I/O wait table is registered under."""
    running = current_kernel()
    assert running is not None
    return len(running._io._by_object)


async def parked(task: kernel.Task) -> None:
    """Let ``task`` run until it parks in the I/O wait table."""
    for _ in range(10):
        if task.state == "IO_WAIT":
            return
        await kernel.sleep(0)
    raise AssertionError(f"{task!r} did not park")


async def test_fileno_is_minus_one_once_its_file_object_is_closed_behind_its_back() -> None:
    r, w = os.pipe()
    os.close(w)
    raw = open(r, "rb", buffering=0)  # noqa: SIM115 -- closed behind the stream's back
    stream = FileStream(raw)
    assert stream.fileno() == r
    raw.close()
    assert stream.fileno() == -1
    with pytest.raises(OSError):  # not a read of whatever file gets the number next
        await stream.read(1)
    await stream.close()


@contextlib.asynccontextmanager
async def number_freed_behind_its_back(
    old: FileStream, old_writer: int
) -> AsyncIterator[tuple[FileStream, int]]:
    """Close ``old``'s file object directly (and its pipe's writer), then open a new pipe
    that gets the same number: yield a stream over its read end, and its write end."""
    number = old.fileno()
    old._fileobj.close()  # type: ignore[union-attr]  # behind the stream's back
    os.close(old_writer)
    r, w = os.pipe()
    try:
        if r != number:
            os.close(r)
            pytest.skip("the OS did not reuse the descriptor number")
        async with FileStream(r) as new:
            yield new, w
    finally:
        os.close(w)
        await old.close()


async def test_a_number_freed_behind_a_streams_back_serves_a_new_stream() -> None:
    # The old stream parked once (its registration is kept), then its file object was
    # closed directly: epoll dropped the descriptor. A new pipe gets the number; the old
    # registration must not be taken for the new stream's, whose waits would never end.
    r, w = os.pipe()
    old = FileStream(open(r, "rb", buffering=0))  # noqa: SIM115 -- the stream closes it
    reader = await kernel.spawn(old.read, 10)
    await parked(reader)
    os.write(w, b"x")
    assert await kernel.timeout_after(LIMIT, reader.join) == b"x"
    async with number_freed_behind_its_back(old, w) as (new, new_writer):
        reader = await kernel.spawn(new.read, 100)
        await parked(reader)  # it must wait: nothing was written yet
        os.write(new_writer, b"for the new stream")
        assert await kernel.timeout_after(LIMIT, reader.join) == b"for the new stream"
    assert table_size() == 0


async def test_a_task_parked_on_a_file_closed_behind_its_back_wakes_when_the_number_returns() -> (
    None
):
    r, w = os.pipe()
    old = FileStream(open(r, "rb", buffering=0))  # noqa: SIM115 -- the stream closes it
    stuck = await kernel.spawn(old.read, 10)
    await parked(stuck)
    async with number_freed_behind_its_back(old, w) as (new, new_writer):
        reader = await kernel.spawn(new.read, 10)  # no ResourceBusy: a new file, not the old
        await parked(reader)
        await kernel.timeout_after(LIMIT, stuck.wait)
        assert isinstance(stuck.exception, OSError)  # its retried read found the file closed
        os.write(new_writer, b"new")
        assert await kernel.timeout_after(LIMIT, reader.join) == b"new"


async def test_streams_over_one_file_put_its_blocking_mode_back_when_the_last_closes() -> None:
    # A terminal's stdin and stdout are often one open file description: closing the
    # output stream must not make the input stream's descriptor blocking under a reader.
    r, w = os.pipe()
    try:
        first, second = FileStream(os.dup(r)), FileStream(os.dup(r))
        await first.close()
        assert not os.get_blocking(r)  # second still reads it: a blocking read would freeze all
        reader = await kernel.spawn(second.read, 10)
        await parked(reader)
        os.write(w, b"still fine")
        assert await kernel.timeout_after(LIMIT, reader.join) == b"still fine"
        await second.close()
        assert os.get_blocking(r)  # the last one out puts it back
    finally:
        os.close(r)
        os.close(w)


async def test_a_dropped_stream_is_not_kept_open_by_the_kernel() -> None:
    # Its registration outlives its waits: the table must not be what keeps the stream,
    # and its descriptor, alive while the writer stays quiet.
    r, w = os.pipe()
    try:
        stream = FileStream(open(r, "rb", buffering=0))  # noqa: SIM115 -- dropped unclosed
        reader = await kernel.spawn(stream.read, 1)
        await parked(reader)
        os.write(w, b"x")
        assert await kernel.timeout_after(LIMIT, reader.join) == b"x"
        assert table_size() == 1  # still registered, idle
        reader = None  # type: ignore[assignment]  # (its frame held a reference too)
        with pytest.warns(ResourceWarning, match="unclosed"):
            del stream  # no close(): the file object closes itself, as without the kernel
            await kernel.sleep(0)  # (the table lets go of it between task steps)
        assert table_size() == 0
        with pytest.raises(OSError):
            os.fstat(r)  # closed
    finally:
        os.close(w)


async def test_each_open_file_description_gets_back_its_own_mode() -> None:
    # A pipe's two ends are one file (one inode) but two descriptions, each with its mode:
    # here the read end's is blocking and the write end's not. Each stream puts back its own.
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        reader, writer = FileStream(os.dup(r)), FileStream(os.dup(w))
        assert not os.get_blocking(r) and not os.get_blocking(w)
        await reader.close()
        assert os.get_blocking(r)  # at once: the writer's description is another one
        await writer.close()
        assert os.get_blocking(r) and not os.get_blocking(w)  # as each was found
    finally:
        os.close(r)
        os.close(w)


async def test_close_leaves_alone_the_number_its_file_object_lost() -> None:
    # The file object was closed behind the stream's back and its number went to a new,
    # non-blocking pipe: putting "its" blocking mode back would make the new pipe's reads
    # block -- and freeze every task.
    r, w = os.pipe()
    os.close(w)
    stream = FileStream(open(r, "rb", buffering=0))  # noqa: SIM115 -- closed below
    stream._fileobj.close()  # type: ignore[union-attr]  # behind the stream's back
    r2, w2 = os.pipe()
    try:
        if r2 != r:
            pytest.skip("the OS did not reuse the descriptor number")
        os.set_blocking(r2, False)
        await stream.close()
        assert not os.get_blocking(r2)
    finally:
        os.close(r2)
        os.close(w2)


def test_a_stream_that_cannot_be_made_leaves_no_record(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_PATH)  # fstat works on it; the blocking flag cannot be set
    try:
        with pytest.raises(OSError) as failed:
            FileStream(fd)
        # (The error's traceback keeps the half-made stream alive, as a task's would.)
        status = os.fstat(fd)
        assert (status.st_dev, status.st_ino) not in filestream._shares
        del failed
    finally:
        os.close(fd)


def test_streams_made_in_two_threads_at_once_find_their_shared_description(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reading the mode lets other threads run: without a lock around the records, both
    # streams would start a record of their own, and the first to close would make the
    # description blocking under the other.
    get_blocking = os.get_blocking

    def slow_get_blocking(fd: int) -> bool:
        time.sleep(0.02)  # (widens the window the real call leaves open)
        return get_blocking(fd)

    monkeypatch.setattr(os, "get_blocking", slow_get_blocking)
    r, w = os.pipe()
    made: list[FileStream] = []
    try:

        def make() -> None:
            made.append(FileStream(os.dup(r)))

        threads = [threading.Thread(target=make) for _ in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(LIMIT)
        first, second = made
        assert first._share is second._share
        first._close_now()
        assert not get_blocking(r)  # the second still reads through it
        second._close_now()
        assert get_blocking(r)
    finally:
        os.close(r)
        os.close(w)
