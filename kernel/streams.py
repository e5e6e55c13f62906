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
  thread is involved. It has a module of its own, ``kernel/filestream.py``.

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

Read next: ``kernel/filestream.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, Self

from .errors import ResourceBusy
from .resource import AsyncResource

__all__ = ["CHUNK_SIZE", "IncompleteReadError", "SocketStream"]

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
        self._writing = False  # a write() is under way (see write)

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
        the exception's ``bytes_sent`` says how much. A second task that writes while this
        write waits gets ``ResourceBusy`` at once.

        Discussion: a write that had to wait has handed the OS only part of ``data``. A
        second writer's bytes, taken at once, would land in the middle of the first's --
        two messages spliced, with no error anywhere. (The I/O wait table refuses only a
        second writer that has to *wait*.) trio refuses the second writer too; asyncio
        never splits a write, because its writes go into a buffer.
        """
        if self._writing:
            raise ResourceBusy(
                f"another task is writing to {self!r}, and has not finished: a second write "
                f"now would splice its bytes into the middle of the first's. Write from one "
                f"task (a queue in front of a writer task, say), or take turns with a "
                f"kernel.Lock"
            )
        self._writing = True
        try:
            await self._send_all(data)
        finally:
            self._writing = False

    async def writelines(self, lines: Iterable[bytes]) -> None:
        """Write each of ``lines`` (they are joined, then written in one go)."""
        await self.write(b"".join(lines))

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
