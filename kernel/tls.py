"""TLS over a kernel ``Socket``: ``SSLSocket``, made by ``wrap_ssl``.

The stdlib's ``ssl`` module does the cryptography; this module only parks where a call
would block -- in either direction, as ``SSLSocket`` explains.

Read next: ``kernel/resolver.py``, how names become addresses off the kernel's thread.
"""

from __future__ import annotations

import contextlib
import socket as _stdlib
import ssl as _ssl
from collections.abc import Callable
from typing import Any, TypeVar

from .asyncsocket import Socket, flat_bytes
from .iotable import EVENT_READ, EVENT_WRITE
from .traps import _io_wait

__all__ = ["SSLSocket", "start_tls", "wrap_ssl"]

T = TypeVar("T")


class SSLSocket(Socket):
    """A ``Socket`` over an ``ssl.SSLSocket``.

    TLS can need the *other* direction to make progress (a read may have to send, a write
    may have to receive), so it reports ``SSLWantReadError`` / ``SSLWantWriteError`` rather
    than ``BlockingIOError``; every call here parks for whichever the TLS layer asks for.
    """

    _socket: _ssl.SSLSocket

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
        return await self._retry(lambda: self._send(data, flags), EVENT_WRITE)

    async def sendall(self, data: Any, flags: int = 0) -> None:
        with memoryview(data) as view, flat_bytes(view) as remaining:
            sent = 0
            try:
                while sent < len(remaining):
                    sent += await self.send(remaining[sent:], flags)
            except BaseException as error:
                error.bytes_sent = sent  # type: ignore[attr-defined]
                raise

    async def do_handshake(self) -> None:
        """Run the TLS handshake (sockets are wrapped with do_handshake_on_connect=False)."""
        await self._retry(self._socket.do_handshake, EVENT_READ)

    async def unwrap(self) -> Socket:
        """End TLS and return the plain socket underneath."""
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
        gone, TLS was already unwrapped -- the socket closes without it, as before.
        """
        if self._socket.fileno() >= 0:
            # SSLWantReadError: ours went, the peer's has not come (and is not awaited);
            # SSLWantWriteError or another SSLError / OSError: it could not go; ValueError:
            # no TLS left on the socket.
            with contextlib.suppress(_ssl.SSLError, OSError, ValueError):
                self._socket.unwrap()
        await super().close()


def wrap_ssl(
    sock: Socket, context: _ssl.SSLContext, *, server_side: bool, server_hostname: str | None
) -> SSLSocket:
    """Wrap a connected ``Socket`` in TLS (the handshake is ``await ssock.do_handshake()``).

    ``sock`` is used up either way: its descriptor moves to the ``SSLSocket``, or, if
    wrapping fails (a bad ``server_hostname``, say), it is closed.
    """
    raw = _stdlib.socket(fileno=sock.stdlib_socket.detach())
    try:
        wrapped = context.wrap_socket(
            raw,
            server_side=server_side,
            server_hostname=server_hostname,
            do_handshake_on_connect=False,
        )
    except BaseException:
        # ``sock`` no longer holds the descriptor, so closing ``sock`` would not close it:
        # only ``raw`` can (a no-op if wrap_socket had already taken and closed it).
        raw.close()
        raise
    return SSLSocket(wrapped)


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
