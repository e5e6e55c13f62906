"""TLS over a kernel ``Socket``: ``SSLSocket``, made by ``wrap_ssl``.

The stdlib's ``ssl`` module does the cryptography; this module only parks where a call
would block -- in either direction -- and sees a write that TLS has begun through to its
end, as ``SSLSocket`` explains.

Read next: ``kernel/resolver.py``, how names become addresses off the kernel's thread.
"""

from __future__ import annotations

import contextlib
import socket as _stdlib
import ssl as _ssl
from collections.abc import Callable
from typing import Any, TypeVar

from .asyncsocket import Socket, flat_bytes, forward_names
from .iotable import EVENT_READ, EVENT_WRITE
from .traps import _io_wait

__all__ = ["SSLSocket", "start_tls", "wrap_ssl"]

T = TypeVar("T")

# The most plaintext one TLS record carries (2**14 bytes, RFC 8446 section 5.1): the most one
# SSL_write is given here, so that a write TLS has to interrupt is one record (SSLSocket).
_RECORD = 16384


class SSLSocket(Socket):
    """A ``Socket`` over an ``ssl.SSLSocket``.

    TLS can need the *other* direction to make progress (a read may have to send, a write
    may have to receive), so it reports ``SSLWantReadError`` / ``SSLWantWriteError`` rather
    than ``BlockingIOError``; every call here parks for whichever the TLS layer asks for.

    Discussion: a write that has to wait is not undone. OpenSSL cuts what one ``SSL_write``
    is given into records and writes them out; when the socket fills part-way, it reports
    "want write" having counted nothing, yet the records it made are committed: the next
    ``SSL_write`` must be given the same bytes again, and goes on where it stopped (given
    other bytes, it sends them as if they were those, or refuses them with ``BAD_LENGTH``).
    Handed a whole buffer, a cancelled ``sendall`` could not know how much the peer may
    already have, and the next write would send the wrong bytes. So one ``SSL_write`` here
    is given at most one record's worth (``_RECORD``); one that has to wait is kept as
    ``_unfinished`` and counted as sent -- TLS has taken it, and the peer gets it once the
    write is finished -- and the next ``send``, ``sendall`` or ``unwrap`` finishes exactly
    that record, before anything new.
    """

    _socket: _ssl.SSLSocket

    def __init__(self, sock: _ssl.SSLSocket) -> None:
        super().__init__(sock)
        # A record TLS began to write and must finish before anything new (b"": none).
        self._unfinished = b""

    async def _retry(self, call: Callable[[], T], event: int) -> T:
        while True:
            try:
                return call()
            except BlockingIOError:
                await _io_wait(self._socket, event)
            except _ssl.SSLWantReadError:
                await _io_wait(self._socket, EVENT_READ)
            except _ssl.SSLWantWriteError:
                await _io_wait(self._socket, EVENT_WRITE)

    async def recv(self, maxsize: int, flags: int = 0) -> bytes:
        return await self._retry(lambda: self._recv(maxsize, flags), EVENT_READ)

    async def send(self, data: Any, flags: int = 0) -> int:
        """Send up to one TLS record's worth (16 KiB) of ``data``; return how many bytes went.
        If cancelled, the exception carries ``bytes_sent``, as ``sendall``'s does."""
        sent = 0
        try:
            if self._unfinished:
                await self._finish()
            with memoryview(data) as view, flat_bytes(view) as flat, flat[:_RECORD] as record:
                sent = self._hand_over(record, flags)
            if self._unfinished:
                await self._finish()
        except BaseException as error:
            error.bytes_sent = sent  # type: ignore[attr-defined]
            raise
        return sent

    async def sendall(self, data: Any, flags: int = 0) -> None:
        """Send every byte of ``data``. If cancelled part-way, the exception carries
        ``bytes_sent``: what the peer may already have -- a record TLS began to write counts
        (the next ``send`` or ``sendall`` on this socket finishes it first)."""
        sent = 0
        try:
            if self._unfinished:  # left by a write that was cancelled
                await self._finish()
            if type(data) is bytes and len(data) <= _RECORD:  # the common case: one record
                sent = self._hand_over(data, flags)
                if self._unfinished:
                    await self._finish()
                return
            with memoryview(data) as view, flat_bytes(view) as remaining:
                total = len(remaining)
                while sent < total:
                    with remaining[sent : sent + _RECORD] as record:
                        sent += self._hand_over(record, flags)
                    if self._unfinished:
                        await self._finish()
        except BaseException as error:
            error.bytes_sent = sent  # type: ignore[attr-defined]
            raise

    def _hand_over(self, record: Any, flags: int) -> int:
        """Give TLS ``record`` (one record's worth at most) and return how many bytes it took:
        written out at once, or, if the socket has to be waited for, all of them, begun and
        kept as ``_unfinished`` for ``_finish``."""
        try:
            return self._send(record, flags)
        except (_ssl.SSLWantWriteError, _ssl.SSLWantReadError):
            self._unfinished = bytes(record)  # a copy: the caller's buffer may change meanwhile
            return len(self._unfinished)

    async def _finish(self) -> None:
        """Finish writing ``_unfinished``, parking until TLS can: the same bytes each try."""
        record = self._unfinished
        await self._retry(lambda: self._send(record), EVENT_WRITE)
        self._unfinished = b""

    async def do_handshake(self) -> None:
        """Run the TLS handshake (sockets are wrapped with do_handshake_on_connect=False)."""
        await self._retry(self._socket.do_handshake, EVENT_READ)

    async def unwrap(self) -> Socket:
        """End TLS and return the plain socket underneath."""
        if self._unfinished:  # TLS's close_notify can only follow the record it began
            await self._finish()
        plain = await self._retry(self._socket.unwrap, EVENT_READ)
        return Socket(plain)

    async def close(self) -> None:
        """Send TLS's close_notify if it can go at once, then close the socket.

        Discussion: close_notify tells the peer that the data ends here, rather than that
        the connection was cut short; without it, a strict peer (an ``ssl.SSLObject``, a
        socket wrapped with ``suppress_ragged_eofs=False``, trio) reports the end as an
        error -- from outside, a truncation attack looks the same. One non-blocking TLS
        shutdown sends it, and the peer's close_notify in reply is not waited for: a peer
        that never answers would hold ``close()``, which must not block. When it cannot go
        at once -- the send buffer is full, the handshake never finished, the peer is
        gone, TLS was already unwrapped, a cancelled write left a record unfinished that
        cannot go at once either -- the socket closes without it, as before.
        """
        if self._socket.fileno() >= 0:
            # SSLWantReadError: ours went, the peer's has not come (and is not awaited);
            # SSLWantWriteError or another SSLError / OSError: it could not go; ValueError:
            # no TLS left on the socket.
            with contextlib.suppress(_ssl.SSLError, OSError, ValueError):
                if self._unfinished:  # first the record TLS began, if it can go at once
                    self._send(self._unfinished)
                self._socket.unwrap()
        await super().close()


def wrap_ssl(
    sock: Socket, context: _ssl.SSLContext, *, server_side: bool, server_hostname: str | None
) -> SSLSocket:
    """Wrap a connected ``Socket`` in TLS (the handshake is ``await ssock.do_handshake()``).

    ``sock`` is used up either way: its descriptor moves to the ``SSLSocket``, or, if
    wrapping fails (a bad ``server_hostname``, say), it is closed.
    """
    fd = sock.stdlib_socket.detach()
    raw = _stdlib.socket(fileno=fd)
    try:
        wrapped = context.wrap_socket(
            raw,
            server_side=server_side,
            server_hostname=server_hostname,
            do_handshake_on_connect=False,
        )
    except BaseException as error:
        # ``sock`` no longer holds the descriptor, so closing ``sock`` would not close it.
        if raw.fileno() >= 0:
            raw.close()  # wrap_socket failed before taking the descriptor over
        else:
            _close_half_built(error, fd)
        raise
    return SSLSocket(wrapped)


# What an ``ssl.SSLSocket`` adds (getpeercert, cipher, ...), and what it keeps on its
# instances rather than its class; the rest its Socket base forwards already.
forward_names(
    SSLSocket,
    [
        *dir(_ssl.SSLSocket),
        "server_side",
        "server_hostname",
        "do_handshake_on_connect",
        "suppress_ragged_eofs",
    ],
)


def _close_half_built(error: BaseException, fd: int) -> None:
    """Close the ``ssl.SSLSocket`` holding ``fd`` that a failed ``wrap_socket`` left behind.

    Discussion: the stdlib's ``SSLSocket._create`` takes the descriptor over from ``raw``
    before its last checks, and before CPython's fix for gh-113280 (3.11.7 still has it)
    some of them raise without closing the socket they half built: a peer that reset the
    connection (``ConnectionResetError`` from the ``recv`` that probes an unconnected
    socket), a ``server_hostname`` that IDNA cannot encode (``UnicodeError``) or that holds
    a NUL (``TypeError``). The descriptor then stays open for as long as the error's
    traceback, the one thing that still holds that socket, and closes with a
    ``ResourceWarning`` when it goes. Checking ``getpeername()`` before wrapping would not
    do: a reset can land between that check and the stdlib's own, and the host-name errors
    are not about the connection at all. So the socket is found where it is held -- the
    ``self`` of a frame in the traceback, holding our descriptor -- and closed. A stdlib
    that closed it itself has left it at ``fileno() == -1``: nothing is found.
    """
    traceback = error.__traceback__
    while traceback is not None:
        half_built = traceback.tb_frame.f_locals.get("self")
        if isinstance(half_built, _ssl.SSLSocket) and half_built.fileno() == fd:
            half_built.close()
            return
        traceback = traceback.tb_next


async def start_tls(
    sock: Socket, context: _ssl.SSLContext, server_side: bool, server_hostname: str | None
) -> SSLSocket:
    """``sock`` wrapped in TLS with the handshake done; if anything fails, it is closed."""
    wrapped: SSLSocket | None = None
    try:
        wrapped = wrap_ssl(sock, context, server_side=server_side, server_hostname=server_hostname)
        await wrapped.do_handshake()
    except BaseException:
        # Before the wrapper exists, the plain socket is what to close (a no-op if wrap_ssl
        # had already taken its descriptor over: closing that is then wrap_ssl's job).
        await (sock if wrapped is None else wrapped).close()
        raise
    return wrapped
