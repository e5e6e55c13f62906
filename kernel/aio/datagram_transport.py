"""The adapter's datagram transport: UDP (or Unix datagram) sockets for ``DatagramProtocol``.

Like the stream transport (``transports.py``), it never blocks and runs no task: a reader
callback does one ``recvfrom_into`` (into the loop's buffer, copied out) and hands the
datagram to ``protocol.datagram_received(data, addr)``; ``sendto`` sends at once, and
when the socket's buffer is full it queues whole datagrams until a writer callback says
there is room. Lifetime and flow control are ``transport_base.py``'s.

Differences from asyncio: the buffer size counts payload bytes only (3.13 adds 8 per
datagram on the way in and forgets them on the way out); empty datagrams are sent, as in
3.13 (3.11 and 3.12 drop ``sendto(b"")`` without a word). One that has to wait is queued
like any other: ``close()`` sends it before ``connection_lost``, as 3.13 does.

Read next: ``kernel/aio/network.py`` -- the loop methods that create these transports.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from typing import TYPE_CHECKING, Any

from .transport_base import (
    LOG_WRITES_AFTER_LOST,
    SocketTransportBase,
    byte_size,
    set_result_unless_cancelled,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["DatagramTransport"]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it


class DatagramTransport(SocketTransportBase, asyncio.DatagramTransport, asyncio.Transport):
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
            loop.call_soon(set_result_unless_cancelled, waiter)

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
        byte_size(data)  # a TypeError unless bytes-like
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

    def _write_pending(self) -> bool:
        return bool(self._buffer)  # an empty datagram counts: see the base class

    def _clear_write_buffer(self) -> None:
        self._buffer.clear()
        self._buffer_size = 0
