"""asyncio transports for sockets: readiness callbacks in, protocol calls out.

asyncio splits a connection into two objects. The *protocol* is the application: it is told
``connection_made(transport)``, ``data_received(data)``, ``eof_received()`` and
``connection_lost(exc)``, and it calls ``transport.write(data)``. The *transport* is the
plumbing in between, and this module holds the adapter loop's two socket transports:
``SocketTransport`` for stream sockets (TCP, Unix) and ``DatagramTransport`` for UDP.

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
* A datagram transport's buffer size counts payload bytes only (3.13 adds 8 per datagram
  on the way in and forgets them on the way out); empty datagrams are sent, as in 3.13.

Read next: ``kernel/aio/network.py`` -- the loop methods that create these transports.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import warnings
import weakref
from asyncio.trsock import TransportSocket
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["DatagramTransport", "SocketTransport", "WriteFlowControl", "read_scratch"]

log = logging.getLogger("kernel")

MAX_READ = 256 * 1024  # bytes asked of one recv(); asyncio's max_size
HIGH_WATER = 64 * 1024  # default write buffer size above which the protocol is paused
LOG_WRITES_AFTER_LOST = 5  # writes after connection loss before each one is logged


def read_scratch(loop: Any) -> memoryview:
    """The loop's receive buffer: every transport of the loop reads into it, then copies.

    Discussion: ``sock.recv(MAX_READ)`` allocates a 256 KiB ``bytes`` per call and shrinks
    it to what arrived. That size is above the C allocator's mmap threshold, so a read of a
    100-byte message can cost an ``mmap``, an ``mremap`` and a ``munmap`` -- or not,
    depending on the heap's history (glibc raises the threshold after freeing a large
    block, and a shrunk block never does): the same server measured 35k or 73k messages/s
    with nothing changed but the order of two imports. Reading into one buffer, allocated
    once per loop, and copying out what arrived costs a ``memcpy`` of the bytes received
    and nothing else. One buffer serves every transport: a loop runs one callback at a
    time, and each read is copied out before the protocol hears of it.
    """
    scratch = _scratch_of.get(loop)
    if scratch is None:
        scratch = _scratch_of[loop] = memoryview(bytearray(MAX_READ))
    return scratch


_scratch_of: weakref.WeakKeyDictionary[Any, memoryview] = weakref.WeakKeyDictionary()


class _ConnectionTracker(Protocol):
    """What a transport needs of the server that accepted it (``network.Server``)."""

    def _attach(self, transport: asyncio.BaseTransport) -> None: ...

    def _detach(self, transport: asyncio.BaseTransport) -> None: ...


def _set_result_unless_cancelled(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.set_result(None)


class WriteFlowControl:
    """Write flow control: pause the protocol above the high-water mark, resume below low.

    The one implementation for every transport of the adapter that buffers writes (the
    socket transports here; pipe transports can use it too). It needs ``self._loop``,
    ``self._protocol`` and ``get_write_buffer_size()``; the transport calls
    ``_maybe_pause_protocol`` after its buffer grew and ``_maybe_resume_protocol`` after it
    shrank. ``_protocol_paused`` says whether the protocol was last told to pause.
    """

    _loop: asyncio.AbstractEventLoop
    _protocol: asyncio.BaseProtocol
    _protocol_paused = False  # we called pause_writing() and not yet resume_writing()
    _high_water = HIGH_WATER
    _low_water = HIGH_WATER // 4

    def get_write_buffer_size(self) -> int:
        raise NotImplementedError

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self.get_write_buffer_size() <= self._high_water:
            return
        self._protocol_paused = True
        self._call_flow_control("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self.get_write_buffer_size() <= self._low_water:
            self._protocol_paused = False
            self._call_flow_control("resume_writing")

    def _call_flow_control(self, name: str) -> None:
        # A protocol that fails here is buggy but the connection is fine: report, go on.
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"protocol.{name}() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )


class _SocketTransportBase(WriteFlowControl, asyncio.BaseTransport):
    """What stream and datagram transports share: lifetime, reading switch, flow control.

    Subclasses implement ``_on_readable`` (the reader callback), ``get_write_buffer_size``
    and ``_clear_write_buffer``.
    """

    _sock: socket.socket | None = None  # None once closed; read by __del__ even if
    # __init__ failed half-way
    _extra: dict[str, Any]  # BaseTransport's slot: what get_extra_info() returns

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        extra: dict[str, Any] | None = None,
        server: _ConnectionTracker | None = None,
    ) -> None:
        super().__init__(extra)
        self._extra["socket"] = TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._loop = loop
        self._fd = sock.fileno()
        self._scratch = read_scratch(loop)  # where reads land before being copied out
        self._protocol = protocol
        self._server = server
        self._closing = False  # close()/abort()/a fatal error: no more reading, ever
        self._paused = False  # pause_reading() holds
        self._at_eof = False  # the peer's EOF arrived; the reader is gone for good
        self._conn_lost = 0  # > 0 once connection_lost is scheduled; then counts writes
        self._sock = sock  # from here on __del__ warns if we are dropped unclosed
        if server is not None:
            server._attach(self)

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else "closing" if self._closing else "open"
        return (
            f"<{type(self).__name__} fd={self._fd} {state} "
            f"reading={self.is_reading()} bufsize={self.get_write_buffer_size()}>"
        )

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    # -- the protocol ------------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # -- reading switch ----------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._closing and not self._paused

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True
        self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()

    def _start_reading(self) -> None:
        """Register the reader, unless the transport should not be reading now.

        Scheduled with ``call_soon`` right after ``connection_made``, so the protocol sees
        no data before it has its transport, and may pause reading in ``connection_made``.
        """
        if self.is_reading() and not self._at_eof:
            self._loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        raise NotImplementedError

    # -- ending the connection ---------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading now; once the write buffer is empty, the connection is lost."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self.get_write_buffer_size():
            self._conn_lost += 1
            self._loop.remove_writer(self._fd)
            self._loop.call_soon(self._call_connection_lost, None)
        # Otherwise the writer callback calls _call_connection_lost when it has drained.

    def abort(self) -> None:
        """Close at once: buffered data is dropped."""
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        """End the connection because of ``exc``; report it unless it is the peer's doing."""
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
        elif self._loop.get_debug():
            log.debug("%r: %s", self, message, exc_info=exc)
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        """Drop the buffer, stop reading and writing, schedule ``connection_lost(exc)``.

        The stdlib's ``SSLProtocol`` calls this on the transport beneath it, so the name is
        part of the interface a transport offers to it.
        """
        if self._conn_lost:
            return
        if self.get_write_buffer_size():
            self._clear_write_buffer()
            self._loop.remove_writer(self._fd)
        if not self._closing:
            self._closing = True
            self._loop.remove_reader(self._fd)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            # Typed Exception | None in typeshed; asyncio passes on what it caught, as we do.
            self._protocol.connection_lost(cast(Exception | None, exc))
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            server, self._server = self._server, None
            if server is not None:
                server._detach(self)

    def _clear_write_buffer(self) -> None:
        raise NotImplementedError


class SocketTransport(_SocketTransportBase, asyncio.Transport):
    """A connected stream socket (TCP or Unix) driving a ``Protocol`` or ``BufferedProtocol``.

    ``waiter``, if given, gets its result once ``connection_made`` has run: that is when
    ``create_connection`` returns.
    """

    # loop.start_tls may stack TLS on this transport (asyncio checks the same attribute).
    _start_tls_compatible = True

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        *,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
        server: _ConnectionTracker | None = None,
    ) -> None:
        self._buffer = bytearray()  # bytes write() could not send yet
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
            loop.call_soon(_set_result_unless_cancelled, waiter)

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
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof_sent:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._drained is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        # In bytes: a memoryview's len() counts items, which may be wider than a byte.
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if not size:
            return
        if self._conn_lost:
            # Writing to a lost connection is silently dropped, as in asyncio; a program
            # that keeps at it is told in the log.
            if self._conn_lost >= LOG_WRITES_AFTER_LOST:
                log.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        assert self._sock is not None
        if not self._buffer:
            # Nothing queued before us, so we may send now and often save the buffer copy.
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on socket transport")
                return
            if sent == size:
                return
            data = memoryview(data).cast("B")[sent:]
            self._loop.add_writer(self._fd, self._on_writable)
        self._buffer += data
        self._maybe_pause_protocol()

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
            self._fatal_error(exc, "Fatal write error on socket transport")
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


class DatagramTransport(_SocketTransportBase, asyncio.DatagramTransport, asyncio.Transport):
    """A UDP (or Unix datagram) socket driving a ``DatagramProtocol``.

    It is also an ``asyncio.Transport``, as asyncio's own datagram transport is (its tests
    check ``isinstance(transport, asyncio.Transport)``); use ``sendto``, not ``write``.

    With ``address`` (a connected endpoint), ``sendto`` may only send there. A failed send
    or receive of one datagram (an ICMP "port unreachable" coming back as
    ``ConnectionRefusedError``, say) is not the end of the endpoint: it goes to
    ``protocol.error_received(exc)`` and the transport carries on.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        address: Any = None,
        *,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self._buffer: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._buffer_size = 0
        super().__init__(loop, sock, protocol, extra)
        self._address = address
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter)

    def _on_readable(self) -> None:
        if self._conn_lost:
            return
        protocol: Any = self._protocol
        assert self._sock is not None
        try:
            size, addr = self._sock.recvfrom_into(self._scratch)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
        else:
            protocol.datagram_received(bytes(self._scratch[:size]), addr)

    def sendto(self, data: ReadableBuffer, addr: Any = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._conn_lost:
            if self._conn_lost >= LOG_WRITES_AFTER_LOST:
                log.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                self._send_one(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(self._fd, self._on_writable)
            except OSError as exc:
                self._protocol_error(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        # The caller may reuse its buffer once we return: keep a copy of our own.
        datagram = bytes(data)
        self._buffer.append((datagram, addr))
        self._buffer_size += len(datagram)
        self._maybe_pause_protocol()

    def _send_one(self, data: ReadableBuffer, addr: Any) -> None:
        assert self._sock is not None
        if self._extra["peername"]:
            self._sock.send(data)
        else:
            self._sock.sendto(data, addr)

    def _protocol_error(self, exc: OSError) -> None:
        protocol: Any = self._protocol
        protocol.error_received(exc)

    def _on_writable(self) -> None:
        """The writer callback: send queued datagrams, oldest first, until one would block."""
        while self._buffer:
            data, addr = self._buffer[0]
            try:
                self._send_one(data, addr)
            except (BlockingIOError, InterruptedError):
                break  # the rest waits for the next writable event
            except OSError as exc:
                self._drop_first()  # this datagram is lost; the others may still go
                self._protocol_error(exc)
                continue
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
            self._drop_first()
        self._maybe_resume_protocol()  # may append to the buffer
        if not self._buffer:
            self._loop.remove_writer(self._fd)
            if self._closing and not self._conn_lost:
                self._conn_lost += 1
                self._call_connection_lost(None)

    def _drop_first(self) -> None:
        data, _ = self._buffer.popleft()
        self._buffer_size -= len(data)

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    def _clear_write_buffer(self) -> None:
        self._buffer.clear()
        self._buffer_size = 0
