"""asyncio transports for sockets: readiness callbacks in, protocol calls out.

asyncio splits a connection into two objects. The *protocol* is the application: it is told
``connection_made(transport)``, ``data_received(data)``, ``eof_received()`` and
``connection_lost(exc)``, and it calls ``transport.write(data)``. The *transport* is the
plumbing in between. This module holds the adapter loop's transport for stream sockets
(TCP, Unix), ``SocketTransport``; what it shares with the UDP one (``DatagramTransport``,
in ``datagram_transport.py``) -- its lifetime, the reading switch, write flow control and
the loop's read buffer -- is in ``transport_base.py``.

A transport never blocks and never runs a task. It is driven only by the loop's readiness
callbacks (``loop.add_reader`` / ``loop.add_writer``, which the adapter maps onto the kernel's
I/O wait table). Each callback does one non-blocking system call and turns its outcome into
protocol calls::

    readable   -> sock.recv_into() bytes  -> protocol.data_received(bytes)
                                   b""    -> protocol.eof_received()  (True keeps us half-open)
                                   error  -> connection_lost(exc), after a fatal-error report
    writable   -> sock.send(buffer)        buffer drained below low water -> resume_writing()
    write()    -> sock.send(data) at once; the rest is buffered and a writer registered;
                  buffer above high water -> protocol.pause_writing()

The key invariants:

* A reader is registered exactly while the transport is reading: not before
  ``connection_made`` has run, not while ``pause_reading()`` holds, not after EOF or
  ``close()``. A writer is registered exactly while the write buffer is not empty.
* ``connection_lost`` is called exactly once, always from a fresh loop callback (never from
  inside a call the protocol made), and only after it the socket is closed. ``_conn_lost``
  counts from the moment that call is scheduled.
* Errors of the operating system (``OSError``: a reset, a broken pipe) are the peer's doing:
  they end the connection and reach the protocol as ``connection_lost(exc)``. Any other
  exception is a bug in the protocol and also goes to ``loop.call_exception_handler``. That
  is asyncio's rule too.

A protocol that subclasses ``asyncio.BufferedProtocol`` is read into its own buffer
(``get_buffer`` / ``recv_into`` / ``buffer_updated``) instead of receiving fresh ``bytes``;
the stdlib's TLS layer (``asyncio.sslproto.SSLProtocol``, which ``network.py`` stacks on a
``SocketTransport``) is such a protocol.

Differences from asyncio's selector transports:

* The transports only use the loop's public API (``add_reader`` and friends, ``call_soon``,
  ``call_exception_handler``); asyncio's transports reach into the selector loop's private
  methods and its fd-to-transport map. So ``loop.add_reader(fd)`` on a descriptor that a
  transport owns is not refused with ``RuntimeError`` here (do not do it: it steals the
  transport's reads).
* After EOF was received and the protocol kept the transport open, ``resume_reading()``
  does not register the reader again (asyncio's would, and would report EOF twice).
* A ``close()`` that waits for the write buffer to drain counts as a lost connection, so a
  later ``abort()`` does not schedule a second ``connection_lost``.

Read next: ``kernel/aio/transport_base.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from .transport_base import (
    LOG_WRITES_AFTER_LOST,
    BufferedWriting,
    ConnectionTracker,
    SocketTransportBase,
    byte_size,
    set_result_unless_cancelled,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["SocketTransport"]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it


class SocketTransport(BufferedWriting, SocketTransportBase, asyncio.Transport):
    """A connected stream socket (TCP or Unix) driving a ``Protocol`` or ``BufferedProtocol``.

    ``waiter``, if given, gets its result once ``connection_made`` has run: that is when
    ``create_connection`` returns.
    """

    # loop.start_tls may stack TLS on this transport (asyncio checks the same attribute).
    _start_tls_compatible = True
    _write_error = "Fatal write error on socket transport"

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        *,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
        server: ConnectionTracker | None = None,
    ) -> None:
        self._buffer = bytearray()  # bytes write() could not send yet
        self._write_now = sock.send  # BufferedWriting's system call
        self._eof_sent = False  # write_eof() called: shut down writing once drained
        self._drained: asyncio.Future[None] | None = None  # a sendfile waits for the buffer
        self._buffered_protocol = False
        super().__init__(loop, sock, protocol, extra, server)
        self.set_protocol(protocol)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            # No Nagle: a small write goes out now instead of waiting for the last ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        super().set_protocol(protocol)
        self._buffered_protocol = isinstance(protocol, asyncio.BufferedProtocol)

    # -- reading -----------------------------------------------------------------------

    def _on_readable(self) -> None:
        """The reader callback: one recv, turned into one protocol call."""
        if self._conn_lost:
            return
        if self._buffered_protocol:
            self._read_into_protocol_buffer()
        else:
            self._read_bytes()

    def _read_bytes(self) -> None:
        protocol: Any = self._protocol
        assert self._sock is not None
        scratch = self._scratch
        try:
            size = self._sock.recv_into(scratch)
        except (BlockingIOError, InterruptedError):
            return  # a spurious wake-up: stay registered
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not size:
            self._eof()
            return
        data = bytes(scratch[:size])  # the protocol's to keep: the scratch is reused
        try:
            protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _read_into_protocol_buffer(self) -> None:
        protocol: Any = self._protocol
        assert self._sock is not None
        try:
            buf = protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            nbytes = self._sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._eof()
            return
        try:
            protocol.buffer_updated(nbytes)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _eof(self) -> None:
        """The peer shut down its side; the protocol decides whether ours stays open."""
        protocol: Any = self._protocol
        self._at_eof = True
        try:
            keep_open = protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if keep_open:
            # Half-open: nothing more will come in, but the protocol may still write.
            self._loop.remove_reader(self._fd)
        else:
            self.close()

    # -- writing -----------------------------------------------------------------------

    def write(self, data: ReadableBuffer) -> None:
        size = byte_size(data)
        if self._eof_sent:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._drained is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not size:
            return
        if self._conn_lost:
            # Writing to a lost connection is silently dropped, as in asyncio; a program
            # that keeps at it is told in the log.
            if self._conn_lost >= LOG_WRITES_AFTER_LOST:
                log.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        self._write_or_buffer(data, size)

    def _start_writing(self) -> None:
        self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        """The writer callback: send what the buffer holds; when it is empty, finish up."""
        if self._conn_lost or self._sock is None:
            return
        try:
            sent = self._sock.send(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.remove_writer(self._fd)
            self._buffer.clear()
            self._fatal_error(exc, self._write_error)
            if self._drained is not None and not self._drained.done():
                self._drained.set_exception(exc)
            return
        # Deleting from the front of a bytearray is cheap: CPython moves its start pointer.
        del self._buffer[:sent]
        self._maybe_resume_protocol()  # the protocol may write again right here
        if self._buffer:
            return
        self._loop.remove_writer(self._fd)
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self._closing:
            self._conn_lost += 1
            self._call_connection_lost(None)
        elif self._eof_sent:
            self._shutdown_write()

    def write_eof(self) -> None:
        if self._closing or self._eof_sent:
            return
        self._eof_sent = True
        if not self._buffer:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        assert self._sock is not None
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal_error(exc, "Fatal error on shutdown of socket transport")

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def _write_pending(self) -> bool:
        return bool(self._buffer)

    def _clear_write_buffer(self) -> None:
        self._buffer.clear()

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            super()._call_connection_lost(exc)
        finally:
            if self._drained is not None and not self._drained.done():
                self._drained.set_exception(ConnectionError("Connection is closed by peer"))

    # -- handing the socket to sendfile ------------------------------------------------

    async def _begin_sendfile(self) -> socket.socket:
        """Wait until the write buffer is empty and block ``write`` until ``_end_sendfile``.

        ``loop.sendfile`` then sends the file straight from the socket (``os.sendfile``);
        bytes written meanwhile would land in the middle of the file, so ``write`` raises.
        """
        if self._drained is not None:
            raise RuntimeError("sendfile is already in progress on this transport")
        self._drained = self._loop.create_future()
        if not self._buffer:
            self._drained.set_result(None)
        await self._drained
        assert self._sock is not None
        return self._sock

    def _end_sendfile(self) -> None:
        self._drained = None
