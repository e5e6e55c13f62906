"""Sending a file: ``sock_sendfile`` on a socket, ``sendfile`` on a transport.

``SendfileMixin`` builds on ``SocketsMixin`` (``sockets.py``). On a plain socket it uses
``os.sendfile``, which copies from the file to the socket without passing the bytes through
Python; when the socket's buffer is full it waits for an ``add_writer`` callback
(``_sock_io``) and goes on. Where that is not possible (no ``os.sendfile``, not a regular
file) it falls back to reading chunks in a worker thread and sending each with
``sock_sendall``.

``sendfile`` on one of our ``SocketTransport``s waits until the transport's write buffer is
empty, pauses its reading, and does the same on its socket. Any other transport that says
it can (the stdlib's TLS one) is given the chunks through ``transport.write``, while a
stand-in protocol (``_SendfileProtocol``) takes the flow-control calls, so the next chunk
waits for ``resume_writing``.

Read next: ``kernel/aio/transports.py``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import errno
import io
import os
import socket
from collections.abc import Callable
from typing import IO, Any, cast

from .sockets import SocketsMixin, _check_socket
from .transport_base import WriteFlowControl
from .transports import SocketTransport

__all__ = ["SendfileMixin"]

SENDFILE_CHUNK = 256 * 1024  # bytes per read when sendfile falls back to read + send


# -- helpers -----------------------------------------------------------------------------


def _check_sendfile_args(sock: socket.socket, file: Any, offset: int, count: int | None) -> None:
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if sock.type != socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


# -- sendfile over a transport -----------------------------------------------------------


class _SendfileProtocol(asyncio.Protocol):
    """Stands in for a transport's protocol while ``loop.sendfile`` writes through it.

    It takes the flow-control calls (so the loop knows when to write the next chunk) and
    passes a lost connection on to the real protocol; ``restore`` puts the real one back
    and tells it what changed meanwhile.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._protocol = transport.get_protocol()
        self._was_reading = transport.is_reading()
        # Only our own transports say whether their protocol is paused; assume others are
        # not (the worst case is a buffer that grows past its high-water mark).
        self._was_paused = isinstance(transport, WriteFlowControl) and transport._protocol_paused
        self._writable: asyncio.Future[None] | None = None  # set while writing is paused
        self._gone = False  # connection_lost has been passed on
        self._lost: BaseException | None = None  # and why, if there was an error
        if self._was_paused:
            self._writable = loop.create_future()
        transport.pause_reading()
        transport.set_protocol(self)

    async def drain(self) -> None:
        """Return when the transport takes more data; raise if the connection is gone."""
        if self._writable is not None and not self._transport.is_closing():
            await self._writable
        if self._transport.is_closing():
            raise self._lost or ConnectionError("Connection closed by peer")

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None:
            self._writable.set_result(None)
            self._writable = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone, self._lost = True, exc
        self.resume_writing()  # wakes drain(), which sees the transport closing
        self._protocol.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> bool | None:
        raise RuntimeError("Invalid state: reading should be paused")

    def restore(self) -> None:
        self._transport.set_protocol(self._protocol)
        if self._was_reading:
            self._transport.resume_reading()
        paused_now = self._writable is not None
        if self._writable is not None:
            self._writable.cancel()  # nobody awaits it any more
            self._writable = None
        if self._gone:
            return  # the protocol has had connection_lost: nothing more for it
        if paused_now and not self._was_paused:
            self._protocol.pause_writing()  # the matching resume_writing() will reach it
        elif self._was_paused and not paused_now:
            self._protocol.resume_writing()


# -- the mixin ---------------------------------------------------------------------------


class SendfileMixin(SocketsMixin):
    """The ``sock_sendfile`` and ``sendfile`` methods of an ``asyncio.AbstractEventLoop``."""

    # -- sendfile on a socket --------------------------------------------------------

    async def sock_sendfile(
        self,
        sock: socket.socket,
        file: IO[bytes],
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool | None = True,
    ) -> int:
        """Send a file with ``os.sendfile``; if it cannot, read and send it in chunks."""
        _check_socket(sock)
        _check_sendfile_args(sock, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(
        self, sock: socket.socket, file: IO[bytes], offset: int, count: int | None
    ) -> int:
        if not hasattr(os, "sendfile"):
            raise asyncio.SendfileNotAvailableError("os.sendfile() is not available")
        try:
            fileno = file.fileno()
            size = os.fstat(fileno).st_size
        except (AttributeError, io.UnsupportedOperation, OSError):
            raise asyncio.SendfileNotAvailableError("not a regular file") from None
        if not (count or size):
            return 0
        position, total = offset, 0
        try:
            while not count or total < count:
                blocksize = count - total if count else size
                try:
                    sent = os.sendfile(sock.fileno(), fileno, position, min(blocksize, 2**30))
                except (BlockingIOError, InterruptedError):
                    await self._sock_io(sock, True, lambda: None)
                    continue
                except OSError as exc:
                    if total == 0:
                        # Nothing sent yet: maybe this file cannot be sent that way at all
                        # (not mmap-able); the caller may fall back to read + send.
                        raise asyncio.SendfileNotAvailableError("os.sendfile call failed") from exc
                    if exc.errno == errno.ENOTCONN and type(exc) is not ConnectionError:
                        raise ConnectionError(errno.ENOTCONN, "socket is not connected") from exc
                    raise
                if sent == 0:
                    break  # end of file
                position += sent
                total += sent
            return total
        finally:
            if total:
                os.lseek(fileno, position, os.SEEK_SET)  # as if the file had been read

    async def _sock_sendfile_fallback(
        self, sock: socket.socket, file: IO[bytes], offset: int, count: int | None
    ) -> int:
        async def send(chunk: memoryview) -> None:
            await self.sock_sendall(sock, chunk)

        return await self._copy_file(file, offset, count, send)

    async def _copy_file(
        self,
        file: IO[bytes],
        offset: int,
        count: int | None,
        send: Callable[[memoryview], collections.abc.Awaitable[None]],
    ) -> int:
        """Read ``file`` in a worker thread chunk by chunk and ``send`` each chunk."""
        readinto: Callable[[memoryview], int] = cast(Any, file).readinto
        if offset:
            file.seek(offset)
        buf = bytearray(min(count, SENDFILE_CHUNK) if count else SENDFILE_CHUNK)
        total = 0
        try:
            while True:
                blocksize = min(count - total, len(buf)) if count else len(buf)
                if blocksize <= 0:
                    return total
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, readinto, view)
                if not read:
                    return total  # end of file
                await send(view[:read])
                total += read
        finally:
            if total and hasattr(file, "seek"):
                file.seek(offset + total)

    # -- sendfile on a transport -----------------------------------------------------

    async def sendfile(
        self,
        transport: asyncio.WriteTransport,
        file: IO[bytes],
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Send a file over a transport: ``os.sendfile`` on a plain socket, else chunks."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        if isinstance(transport, SocketTransport):
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except asyncio.SendfileNotAvailableError:
                if not fallback:
                    raise
        elif getattr(transport, "_sendfile_compatible", None) is None:
            # Only transports that say they can (ours, the stdlib's TLS one) are used.
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        elif not fallback:
            raise RuntimeError(
                "fallback is disabled and native sendfile is not supported for "
                f"transport {transport!r}"
            )
        return await self._sendfile_fallback(
            cast(asyncio.Transport, transport), file, offset, count
        )

    async def _sendfile_native(
        self, transport: SocketTransport, file: IO[bytes], offset: int, count: int | None
    ) -> int:
        """``os.sendfile`` straight from the transport's socket, once its buffer is empty."""
        resume_reading = transport.is_reading()
        transport.pause_reading()
        try:
            sock = await transport._begin_sendfile()
            return await self.sock_sendfile(sock, file, offset, count, fallback=False)
        finally:
            transport._end_sendfile()
            if resume_reading:
                transport.resume_reading()

    async def _sendfile_fallback(
        self, transport: asyncio.Transport, file: IO[bytes], offset: int, count: int | None
    ) -> int:
        stand_in = _SendfileProtocol(transport, self)

        async def send(chunk: memoryview) -> None:
            await stand_in.drain()
            # The chunk is a view of a buffer the next read overwrites. Our transport
            # copies what it cannot send at once; another one might keep the view.
            transport.write(chunk if isinstance(transport, SocketTransport) else bytes(chunk))

        try:
            return await self._copy_file(file, offset, count, send)
        finally:
            stand_in.restore()
