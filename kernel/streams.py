"""Streams: buffered reading and plain writing over a socket or a file descriptor.

A socket or a pipe hands over bytes in whatever pieces the network or the writer produced;
a program wants lines, or exactly 4 bytes of header. A stream sits in between. It asks its
*source* for a chunk at a time and keeps what it has not given out yet in one ``bytearray``,
the read buffer, from which ``read``, ``read_exactly``, ``readline`` and friends serve. Two
sources exist, and they share every line of the buffering (``_Stream``):

* ``SocketStream(sock)`` -- a ``kernel.socket`` socket; it reads with the socket's async
  ``recv`` and writes with its async ``sendall``, which park the task in the I/O wait table;
* ``FileStream(fileobj)`` -- a pipe, a tty or any file descriptor, put into non-blocking
  mode; it calls ``os.read`` / ``os.write`` and, when they raise ``BlockingIOError``, parks
  the task with the ``IO_WAIT`` trap until the selector reports the descriptor ready. No
  thread is involved. (A regular file is always "ready", so it works but never waits; for
  files use ``kernel.files.aopen``, which is honest about blocking.)

Invariant: bytes leave the read buffer in the order they arrived, each exactly once. A read
that is cancelled while it waits takes nothing out of the buffer (what it had gathered stays
there for the next read), and ``read_exactly`` meeting the end of the stream hands what it
took to its ``IncompleteReadError``.

Writes are not buffered: when ``write()`` returns, every byte has been handed to the
operating system, so ``flush()`` has nothing to do and exists for code written against
buffered streams.

The hot path is ``readline`` + ``write`` in an echo loop: when the buffer is empty and one
chunk from the source is exactly one line -- the usual case for request/response traffic --
``readline`` returns that chunk as it came, without copying it through the buffer.

Read next: ``kernel/files.py``, async files on worker threads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, Self

from .iotable import EVENT_READ, EVENT_WRITE
from .resource import AsyncResource
from .traps import _io_release, _io_wait

__all__ = ["CHUNK_SIZE", "FileStream", "IncompleteReadError", "SocketStream"]

# How much a stream asks its source for at a time. Bigger reads fewer times; 64 KiB is the
# size of a Linux pipe buffer and far above what one TCP segment carries.
CHUNK_SIZE = 65536

# The most ``read_exactly`` asks its source for at once, however many bytes it still needs.
# CPython allocates the whole size before the system call, so an untrusted length from a
# protocol header (10**12) would raise MemoryError, and a large one would cost that much
# memory per call; yet a source rarely has more ready at once (a pipe holds 64 KiB, a
# socket's receive buffer a few hundred KiB), so large reads take no more calls for it.
_MOST_AT_ONCE = 16 * CHUNK_SIZE

Receive = Callable[[int], Awaitable[bytes]]
SendAll = Callable[[bytes], Awaitable[None]]


class IncompleteReadError(EOFError):
    """``read_exactly(n)`` met the end of the stream first. ``partial``: the bytes it got."""

    def __init__(self, partial: bytes, expected: int) -> None:
        super().__init__(f"the stream ended after {len(partial)} of the {expected} bytes expected")
        self.partial = partial
        self.expected = expected


class _Stream(AsyncResource):
    """The shared core: a read buffer in front of ``receive``, and ``send_all`` behind writes.

    Subclasses pass the two source operations to ``__init__`` and implement
    ``_close_source``. Holding them as plain attributes (not methods to override) keeps one
    coroutine frame per read off the hot path, and lets ``close()`` swap in operations that
    refuse, so that no method has to check a "closed" flag on every call.
    """

    def __init__(self, receive: Receive, send_all: SendAll) -> None:
        self._receive = receive  # await receive(n): up to n bytes, b"" at the end
        self._send_all = send_all  # await send_all(data): all of data, or raise
        self._buffer = bytearray()  # read but not yet given out, oldest first
        self._closed = False
        self._refusal: str | None = None  # why reads and writes are refused (see _refuse_io)

    # -- reading ---------------------------------------------------------------------------

    async def read(self, maxbytes: int = -1) -> bytes:
        """Up to ``maxbytes`` bytes: what is buffered, else one chunk from the source.

        Returns b"" at the end of the stream. ``maxbytes=-1`` (the default) reads everything
        up to the end, like ``readall()``.
        """
        if maxbytes < 0:
            return await self.readall()
        if self._buffer:
            return self._take(maxbytes)
        if maxbytes == 0:
            self._check_usable()
            return b""
        data = await self._receive(CHUNK_SIZE)
        if len(data) > maxbytes:
            self._buffer += data[maxbytes:]  # keep the rest for the next read
            return data[:maxbytes]
        return data

    async def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``IncompleteReadError`` (an ``EOFError``) if the stream ends
        first, with the bytes that did arrive as its ``partial``."""
        if n < 0:
            raise ValueError(f"read_exactly(n) needs a byte count n >= 0, not {n}")
        if n == 0:
            self._check_usable()
        buffer = self._buffer
        while len(buffer) < n:
            data = await self._receive(max(CHUNK_SIZE, min(n - len(buffer), _MOST_AT_ONCE)))
            if not data:
                raise IncompleteReadError(self._take(len(buffer)), n)
            buffer += data
        return self._take(n)

    async def readall(self) -> bytes:
        """Everything up to the end of the stream."""
        buffer = self._buffer
        while data := await self._receive(CHUNK_SIZE):
            buffer += data
        return self._take(len(buffer))

    async def readline(self) -> bytes:
        """One line, up to and including b"\\n"; at the end, what is left (b"" if nothing)."""
        buffer = self._buffer
        end = buffer.find(b"\n") + 1
        if end:
            return self._take(end)
        while True:
            data = await self._receive(CHUNK_SIZE)
            if not data:
                return self._take(len(buffer))
            end = data.find(b"\n") + 1
            if end:
                if end == len(data) and not buffer:
                    return data  # the hot path: one chunk, one whole line, nothing to copy
                end += len(buffer)
                buffer += data
                return self._take(end)
            buffer += data  # no newline yet: a long line, or one split across chunks

    async def readlines(self) -> list[bytes]:
        """Every remaining line, up to the end of the stream."""
        lines = []
        while line := await self.readline():
            lines.append(line)
        return lines

    def _take(self, n: int) -> bytes:
        """Remove and return the first ``n`` bytes of the buffer (fewer if it holds less)."""
        buffer = self._buffer
        if n >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:n])
            del buffer[:n]  # cheap: a bytearray drops bytes from its front without moving
        return data

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        """``async for line in stream``: each line, until the end of the stream."""
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # -- writing ---------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Write all of ``data``, waiting for the OS to take it (not buffered: see ``flush``).

        If the task is cancelled while it waits, part of ``data`` may have been written:
        the exception's ``bytes_sent`` says how much.
        """
        await self._send_all(data)

    async def writelines(self, lines: Iterable[bytes]) -> None:
        """Write each of ``lines`` (they are joined, then written in one go)."""
        await self._send_all(b"".join(lines))

    async def flush(self) -> None:
        """Nothing to do: ``write()`` hands every byte to the OS before it returns. (On a
        closed stream, ``ValueError``, as for a file.)"""
        self._check_usable()

    # -- closing ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the stream and what it wraps; unread buffered bytes are dropped.

        Reading or writing afterwards raises ``ValueError``. Closing twice does nothing.
        """
        if not self._closed:
            self._mark_closed()
            await self._close_source()

    def _mark_closed(self) -> None:
        self._closed = True
        self._buffer.clear()
        self._refuse_io("I/O operation on a closed stream")

    def _refuse_io(self, message: str) -> None:
        """From now on, every read and write raises ``ValueError(message)``."""

        async def refuse(_: Any) -> Any:
            raise ValueError(message)

        self._receive = self._send_all = refuse
        self._refusal = message

    def _check_usable(self) -> None:
        """For the calls that need no I/O (``read(0)``, ``flush``): refuse them as the
        others are refused once the stream is closed."""
        if self._refusal is not None:
            raise ValueError(self._refusal)

    async def _close_source(self) -> None:
        raise NotImplementedError


class StreamSocket(Protocol):
    """What a ``SocketStream`` uses of its socket (a ``kernel.socket`` socket has it all)."""

    async def recv(self, maxbytes: int, /) -> bytes: ...
    async def sendall(self, data: bytes, /) -> None: ...
    async def shutdown(self, how: int, /) -> None: ...
    async def close(self) -> None: ...


class SocketStream(_Stream):
    """A stream over a connected ``kernel.socket`` socket (what ``sock.as_stream()`` returns).

    ``socket`` is the socket, for what a stream does not do (``shutdown``, options, ...).
    Closing the stream closes the socket.
    """

    def __init__(self, sock: StreamSocket) -> None:
        super().__init__(sock.recv, sock.sendall)
        self.socket = sock

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"buffered={len(self._buffer)}"
        return f"<SocketStream {state} socket={self.socket!r}>"

    async def _close_source(self) -> None:
        await self.socket.close()


class FileLike(Protocol):
    """What a ``FileStream`` uses of a file object: its descriptor, and a way to close it."""

    def fileno(self) -> int: ...
    def close(self) -> None: ...


class FileStream(_Stream):
    """A stream over a file descriptor -- a pipe, a tty, a socket's fd -- or a file object.

    The descriptor is put into non-blocking mode; closing the stream puts back the mode it
    had and closes the file object (or the descriptor, if a bare int was given). Pass an
    *unbuffered* file object (``open(..., buffering=0)``, ``Popen(..., bufsize=0)``): the
    stream reads the descriptor directly, so bytes sitting in a buffered object's own buffer
    would be skipped.

    Discussion: non-blocking mode is a property of the *open file description*, which a
    descriptor shares with its duplicates -- in other processes too. Wrapping a terminal
    that the shell also uses switches the shell's copy as well, which is why ``close()``
    switches it back.
    """

    def __init__(self, fileobj: int | FileLike) -> None:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        self._fileobj = fileobj
        self._fd = fd
        self._was_blocking = os.get_blocking(fd)
        os.set_blocking(fd, False)
        super().__init__(self._read_fd, self._write_fd)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._fd} buffered={len(self._buffer)}"
        return f"<FileStream {state}>"

    def fileno(self) -> int:
        """The descriptor (so that the stream can be passed where a file is expected)."""
        return self._fd

    # Discussion: the stream parks in the I/O wait table as *itself*, not as the bare
    # descriptor number. The table keeps a descriptor registered between waits and tells a
    # stale registration (the number closed and reused) by the object it was made for; the
    # int 7 of a closed pipe and the int 7 of a new one would be the very same object.

    async def _read_fd(self, maxbytes: int) -> bytes:
        while True:
            try:
                return os.read(self._fd, maxbytes)
            except BlockingIOError:
                await _io_wait(self, EVENT_READ)

    async def _write_fd(self, data: bytes) -> None:
        # A pipe may take only part of a large write. os.write counts what it took in bytes,
        # so the rest is sliced from a view of bytes: a view in the caller's format (the
        # 4-byte items of an array('i')) would skip most of it.
        written = 0
        try:
            with memoryview(data) as view, view.cast("B") as remaining:
                total = len(remaining)
                while written < total:
                    try:
                        written += os.write(self._fd, remaining[written:])
                    except BlockingIOError:
                        await _io_wait(self, EVENT_WRITE)
        except BaseException as error:  # cancelled part-way, say: what the reader may have
            error.bytes_sent = written  # type: ignore[attr-defined]
            raise

    def _hand_to_child(self) -> None:
        """The descriptor becomes a child process's stdin/stdout (``kernel.subprocess``).

        The child expects a blocking descriptor, and the mode is shared with it, so it goes
        back to blocking -- and this stream must no longer read or write it (a blocking read
        would freeze every task). It only remains to close it.
        """
        os.set_blocking(self._fd, True)
        self._was_blocking = True
        self._buffer.clear()
        self._refuse_io(f"{self!r} was handed to a child process; close it, do not use it")

    def _close_now(self) -> None:
        """``close()`` for code that cannot await (``kernel.subprocess``, when its coroutine
        is being closed)."""
        if not self._closed:
            self._mark_closed()
            self._close_fd()

    async def _close_source(self) -> None:
        # Out of the I/O wait table first: a task parked on the descriptor wakes with
        # OSError(EBADF), and the selector never keeps watching a closed number.
        await _io_release(self)
        self._close_fd()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1
        if self._was_blocking:
            with contextlib.suppress(OSError):  # closed underneath us: nothing to put back
                os.set_blocking(fd, True)
        if isinstance(self._fileobj, int):
            os.close(fd)
        else:
            self._fileobj.close()
