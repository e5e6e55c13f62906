"""Streams: buffered reads in every shape, writes, iteration and closing, over pipes and sockets.

Pipes and socket pairs are real descriptors, but nothing here waits on the clock: a writer
task that must deliver its bytes in several pieces sleeps between them on the virtual clock,
which jumps as soon as the reader has parked on the descriptor. So each test pins down the
exact pieces the reader sees.
"""

from __future__ import annotations

import array
import errno
import os

import pytest

import kernel
from kernel import socket
from kernel.filestream import FileStream
from kernel.streams import IncompleteReadError, SocketStream
from kernel.traps import _get_kernel


def pipe() -> tuple[FileStream, FileStream]:
    """(read end, write end) of a new pipe, both as streams."""
    r, w = os.pipe()
    return FileStream(r), FileStream(w)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def write_in_pieces(stream: FileStream, *pieces: bytes, close: bool = True) -> None:
    """Write each piece a second apart (virtual time), then close the stream."""
    for piece in pieces:
        await stream.write(piece)
        await kernel.sleep(1)
    if close:
        await stream.close()


async def test_read_returns_what_has_arrived_without_waiting_for_more() -> None:
    reader, writer = pipe()
    async with reader, writer:
        await writer.write(b"abc")
        assert await reader.read(100) == b"abc"
        await writer.write(b"hello world")
        assert await reader.read(5) == b"hello"  # the rest stays buffered...
        assert await reader.read(0) == b""
        assert await reader.read(100) == b" world"  # ...and comes next, without a new read


async def test_read_waits_for_the_first_byte(virtual_clock: kernel.VirtualClock) -> None:
    reader, writer = pipe()
    async with reader:
        await kernel.spawn(write_in_pieces, writer, b"late")
        assert await reader.read(10) == b"late"
        assert virtual_clock.now() == 0.0  # the writer wrote before its first sleep
        assert await reader.read(10) == b""  # closed by the writer, a second later
        assert virtual_clock.now() == 1.0


async def test_read_without_a_size_reads_to_the_end() -> None:
    reader, writer = pipe()
    async with reader:
        await kernel.spawn(write_in_pieces, writer, b"one ", b"two ", b"three")
        assert await reader.read() == b"one two three"
        assert await reader.readall() == b""


async def test_read_exactly_gathers_pieces() -> None:
    reader, writer = pipe()
    async with reader:
        await kernel.spawn(write_in_pieces, writer, b"ab", b"cd", b"efgh")
        assert await reader.read_exactly(3) == b"abc"
        assert await reader.read_exactly(0) == b""
        assert await reader.read_exactly(4) == b"defg"
        assert await reader.read(10) == b"h"


async def test_read_exactly_at_the_end_raises_eof_with_the_partial_data() -> None:
    reader, writer = pipe()
    async with reader:
        await kernel.spawn(write_in_pieces, writer, b"ab", b"c")
        with pytest.raises(EOFError) as info:
            await reader.read_exactly(5)
        assert isinstance(info.value, IncompleteReadError)
        assert info.value.partial == b"abc"
        assert info.value.expected == 5
        assert await reader.read(10) == b""  # the partial data was handed out, once


async def test_a_cancelled_read_keeps_what_it_gathered() -> None:
    reader, writer = pipe()
    async with reader, writer:
        await writer.write(b"abc")
        for call in (reader.read_exactly(6), reader.readline()):
            blocked = await kernel.spawn(call)
            await kernel.sleep(0)  # it buffers b"abc" and parks, waiting for more
            await blocked.cancel()
        assert await reader.read(10) == b"abc"


async def test_readline_across_chunk_boundaries() -> None:
    reader, writer = pipe()
    async with reader:
        await kernel.spawn(write_in_pieces, writer, b"hel", b"lo\nwor", b"ld\n\nla", b"st")
        assert await reader.readline() == b"hello\n"
        assert await reader.readline() == b"world\n"
        assert await reader.readline() == b"\n"
        assert await reader.readline() == b"last"  # no newline at the end: the rest
        assert await reader.readline() == b""


async def test_a_line_longer_than_any_buffer() -> None:
    reader, writer = pipe()
    line = b"x" * (1 << 20) + b"\n"  # 16 times a pipe's buffer: the writer must wait too
    async with reader:
        await kernel.spawn(write_in_pieces, writer, line + line[:10])
        assert await reader.readline() == line
        assert await reader.readline() == line[:10]


async def test_readlines_and_writelines() -> None:
    reader, writer = pipe()
    async with reader, writer:
        await writer.writelines([b"a\n", b"b\n", b"c"])
        await writer.flush()
        await writer.close()
        assert await reader.readlines() == [b"a\n", b"b\n", b"c"]


async def test_async_iteration_yields_each_line() -> None:
    reader, writer = pipe()
    async with reader:
        await kernel.spawn(write_in_pieces, writer, b"1\n2", b"\n3\n")
        assert [line async for line in reader] == [b"1\n", b"2\n", b"3\n"]


async def test_closed_stream_refuses_io_and_closes_its_descriptor() -> None:
    before = open_fds()
    reader, writer = pipe()
    fd = reader.fileno()
    await writer.write(b"unread")
    await reader.close()
    await reader.close()  # a second close does nothing
    assert reader.closed
    with pytest.raises(ValueError, match="closed"):
        await reader.read(10)
    with pytest.raises(OSError):
        os.fstat(fd)
    await writer.close()
    with pytest.raises(ValueError, match="closed"):
        await writer.write(b"more")
    # Those that need no I/O too, as for a file.
    for needs_no_io in (reader.read(0), reader.read_exactly(0), writer.flush()):
        with pytest.raises(ValueError, match="closed"):
            await needs_no_io
    assert open_fds() == before


async def test_a_cancelled_write_says_how_much_was_written() -> None:
    reader, writer = pipe()
    data = b"x" * (4 << 20)  # far more than a pipe holds: the write parks part-way
    with pytest.raises(kernel.TaskTimeout) as timed_out:
        await kernel.timeout_after(1, writer.write, data)
    written = timed_out.value.bytes_sent  # type: ignore[attr-defined]
    assert 0 < written < len(data)
    await writer.close()
    assert await reader.readall() == data[:written]
    await reader.close()


async def test_closing_wakes_a_task_parked_on_the_stream() -> None:
    reader, writer = pipe()
    blocked = await kernel.spawn(reader.read, 10)
    await kernel.sleep(0)  # it parks on the empty pipe
    await reader.close()
    with pytest.raises(kernel.TaskError) as info:
        await blocked.join()
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.EBADF
    await writer.close()
    assert (await _get_kernel())._io.waiters() == []


async def test_writing_to_a_pipe_nobody_reads_raises_broken_pipe() -> None:
    reader, writer = pipe()
    await reader.close()
    with pytest.raises(BrokenPipeError):
        await writer.write(b"lost")
    await writer.close()


async def test_close_puts_back_the_blocking_mode() -> None:
    r, w = os.pipe()
    try:
        stream = FileStream(os.dup(r))  # shares r's open file description, and its mode
        assert not os.get_blocking(r)
        await stream.close()
        assert os.get_blocking(r)
    finally:
        os.close(r)
        os.close(w)


async def test_a_file_object_is_closed_with_the_stream() -> None:
    r, w = os.pipe()
    with open(r, "rb", buffering=0) as raw, open(w, "wb", buffering=0) as out:
        stream = FileStream(raw)
        out.write(b"line\n")
        assert await stream.readline() == b"line\n"
        await stream.close()
        assert raw.closed


async def test_socket_stream_echo_over_a_socket_pair() -> None:
    left, right = socket.socketpair()

    async def echo(stream: SocketStream) -> None:
        async with stream:
            async for line in stream:
                await stream.write(line.upper())

    server = await kernel.spawn(echo, SocketStream(right))
    async with SocketStream(left) as client:
        for word in (b"ping\n", b"a longer line\n"):
            await client.write(word)
            assert await client.readline() == word.upper()
        await client.writelines([b"x\n", b"y\n"])
        assert await client.read_exactly(4) == b"X\nY\n"
        await client.socket.shutdown(socket.SHUT_WR)  # the server's iteration ends
        await server.join()
        assert await client.read() == b""


@pytest.mark.parametrize("kind", ["socket", "pipe"])
async def test_a_second_writer_during_an_unfinished_write_is_busy_not_spliced_in(
    kind: str,
) -> None:
    # The first write is larger than the OS takes at once, so it waits with part of it
    # sent; a second write taken then would land in the middle of the first's bytes.
    reader: SocketStream | FileStream
    writer: SocketStream | FileStream
    if kind == "socket":
        left, right = socket.socketpair()
        reader, writer = SocketStream(left), SocketStream(right)
    else:
        reader, writer = pipe()
    message = bytes(range(256)) * 16384  # 4 MiB
    async with reader, writer:
        first = await kernel.spawn(writer.write, message)
        while first.state != "IO_WAIT":
            await kernel.sleep(0)
        with pytest.raises(kernel.ResourceBusy, match="another task is writing"):
            await writer.writelines([b"<second>"])
        with pytest.raises(kernel.ResourceBusy, match="another task is writing"):
            await writer.write(b"<second>")
        assert await kernel.timeout_after(10, reader.read_exactly, len(message)) == message
        await first.join()
        await writer.write(b"<now its turn>")  # the first write is over: free again
        assert await reader.read_exactly(14) == b"<now its turn>"


async def test_socket_stream_closes_its_socket() -> None:
    left, right = socket.socketpair()
    stream = SocketStream(left)
    assert "SocketStream" in repr(stream)
    await stream.close()
    assert left.fileno() == -1
    await right.close()


async def test_write_counts_bytes_not_items() -> None:
    # 400 000 bytes in 4-byte items: more than a pipe holds, so the write is taken in parts,
    # and each part is counted in bytes, not in items.
    numbers = array.array("i", range(100_000))
    reader, writer = pipe()
    async with reader:

        async def write_and_close() -> None:
            await writer.write(numbers)  # type: ignore[arg-type]
            await writer.close()

        await kernel.spawn(write_and_close)
        assert await reader.read() == numbers.tobytes()


async def test_read_exactly_refuses_a_negative_count() -> None:
    reader, writer = pipe()
    async with reader, writer:
        await writer.write(b"hello")
        assert await reader.read(1) == b"h"
        with pytest.raises(ValueError, match=r"read_exactly\(n\) needs .* n >= 0, not -1"):
            await reader.read_exactly(-1)
        assert await reader.read(10) == b"ello"  # nothing was taken


@pytest.mark.parametrize("source", ["pipe", "socket"])
async def test_read_exactly_a_huge_count_reads_a_chunk_at_a_time(source: str) -> None:
    # A length from an untrusted header: asking the source for all of it at once would
    # allocate that much first (MemoryError), not wait for the bytes.
    reader: FileStream | SocketStream
    if source == "pipe":
        reader, writer = pipe()
        await writer.write(b"abc")
        await writer.close()
    else:
        left, right = socket.socketpair()
        reader = left.as_stream()
        await right.sendall(b"abc")
        await right.close()
    async with reader:
        with pytest.raises(IncompleteReadError) as info:
            await reader.read_exactly(1 << 62)
        assert info.value.partial == b"abc"


async def test_read_exactly_a_large_count_gathers_it_all() -> None:
    data = bytes(range(256)) * 20_000  # 5 MB: many pipe-fuls, more than one ask can take
    reader, writer = pipe()
    async with reader:
        await kernel.spawn(write_in_pieces, writer, data)
        assert await reader.read_exactly(len(data)) == data
        assert await reader.read(10) == b""
