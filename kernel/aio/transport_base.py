"""What the adapter's socket transports share: lifetime, reading switch, flow control.

``SocketTransportBase`` is the part of a socket transport that does not care whether the
socket carries a byte stream or datagrams: the ``extra`` info, registering the reader
while the transport reads (``pause_reading`` / ``resume_reading``), and ending the
connection -- ``close()`` after the write buffer drains, ``abort()`` and fatal errors at
once, ``connection_lost`` exactly once from a fresh callback, the socket closed after it.
``WriteFlowControl`` (also used by the pipe transports) tells a protocol to pause writing
above the high-water mark and to resume below the low one; ``BufferedWriting`` is the write
path of the byte-stream transports, stream sockets and pipes alike. ``read_scratch`` is the
one buffer a loop's transports read into; ``byte_size`` checks what ``write`` is given, and
``wait_connection_made`` is how every transport-making loop method waits for its protocol.

Read next: ``kernel/aio/datagram_transport.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import warnings
import weakref
from asyncio.trsock import TransportSocket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "HIGH_WATER",
    "LOG_WRITES_AFTER_LOST",
    "MAX_READ",
    "BufferedWriting",
    "ConnectionTracker",
    "SocketTransportBase",
    "WriteFlowControl",
    "byte_size",
    "read_scratch",
    "set_result_unless_cancelled",
    "wait_connection_made",
]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it

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


def byte_size(data: object) -> int:
    """How many bytes ``data`` holds; what ``write`` and ``sendto`` accept is bytes, a
    bytearray or a memoryview, anything else is a ``TypeError``."""
    if isinstance(data, memoryview):
        return data.nbytes  # its len() counts items, which may be wider than a byte
    if isinstance(data, (bytes, bytearray)):
        return len(data)
    raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")


async def wait_connection_made(
    transport: asyncio.BaseTransport, waiter: asyncio.Future[None]
) -> None:
    """Wait for the new ``transport`` to have called ``connection_made``; if that wait ends in
    an error (the protocol raised, or we are cancelled), close the transport first."""
    try:
        await waiter
    except BaseException:
        transport.close()
        raise


class ConnectionTracker(Protocol):
    """What a transport needs of the server that accepted it (``network.Server``)."""

    def _attach(self, transport: asyncio.BaseTransport) -> None: ...

    def _detach(self, transport: asyncio.BaseTransport) -> None: ...


def set_result_unless_cancelled(fut: asyncio.Future[None]) -> None:
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


class BufferedWriting(WriteFlowControl):
    """The write path of the byte-stream transports (stream sockets, pipes).

    ``write`` makes the system call at once when nothing is queued before it, and keeps what
    the call did not take in ``_buffer``; the transport's writer callback, registered by
    ``_start_writing``, sends the rest. The transport provides ``_write_now`` (``sock.send``
    or ``os.write`` on its descriptor, bound once), ``_write_error`` (the message of a fatal
    write error), ``_start_writing`` and ``_fatal_error``.
    """

    _buffer: bytearray
    _write_now: Callable[[ReadableBuffer], int]
    _write_error: str

    if TYPE_CHECKING:

        def _start_writing(self) -> None: ...
        def _fatal_error(self, exc: BaseException, message: str) -> None: ...

    def _write_or_buffer(self, data: ReadableBuffer, size: int) -> None:
        """Write ``data`` (``size`` bytes) now if nothing waits before it; buffer the rest."""
        if not self._buffer:
            # Nothing queued before us, so we may write now and often save the buffer copy.
            try:
                written = self._write_now(data)
            except (BlockingIOError, InterruptedError):
                written = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, self._write_error)
                return
            if written == size:
                return
            data = memoryview(data).cast("B")[written:]
            self._start_writing()
        self._buffer += data
        self._maybe_pause_protocol()


class SocketTransportBase(WriteFlowControl, asyncio.BaseTransport):
    """What stream and datagram transports share: lifetime, reading switch, flow control.

    Subclasses implement ``_on_readable`` (the reader callback), ``get_write_buffer_size``,
    ``_write_pending`` and ``_clear_write_buffer``.
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
        server: ConnectionTracker | None = None,
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
        if not self._write_pending():
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
        if self._write_pending():
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

    def _write_pending(self) -> bool:
        """Whether anything is queued to send; the writer callback is registered exactly then.

        ``close()`` waits for the queue to drain, and ``_force_close`` drops it and removes
        the writer, only when this is true -- asyncio's ``if self._buffer:``.

        Discussion: not ``get_write_buffer_size() > 0``. That counts payload bytes, and an
        empty datagram queued behind a full socket buffer has none, yet it holds the writer
        registered: judged by the size, ``abort()`` left that writer behind on a socket it
        then closed, and the next socket to get the same descriptor number never heard that
        it was writable (while ``close()`` dropped the empty datagrams unsent).
        """
        raise NotImplementedError

    def _clear_write_buffer(self) -> None:
        raise NotImplementedError
