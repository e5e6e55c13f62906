"""``Server``: listening sockets, and the connections accepted on them until they are lost.

A ``Server`` is what ``create_server`` and ``create_unix_server`` (``servers.py``) return.
Serving is one ``add_reader`` per listening socket: its callback accepts every pending
connection and gives each a protocol and a transport (the loop's ``_stream_transport``,
TLS included). ``close`` takes the readers away again (``_stop_serving``). A server out of
file descriptors removes its reader for ``ACCEPT_RETRY_DELAY`` seconds (``call_later``)
instead of spinning on a socket that stays readable.

Differences from asyncio (``base_events.py``, ``selector_events.py``):

* Accepted connections are set up in a done callback, not a task per connection. A
  protocol factory that raises is reported to the exception handler (asyncio does that in
  debug mode only) and the accepted socket is closed (asyncio leaks it).
* ``Server.close_clients``/``abort_clients`` (3.13) exist on every Python.
  ``Server.start_serving`` on a closed server raises RuntimeError (asyncio: TypeError).

``Server.wait_closed`` means what it means to the running Python's asyncio, which changed it
twice (``WAIT_CLOSED_RULE``); so do the ends that wait with it: a cancelled
``serve_forever`` and leaving ``async with server``.

Read next: ``kernel/aio/datagrams.py``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import socket
import ssl as _ssl
import sys
import weakref
from asyncio.trsock import TransportSocket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from .servers import ServersMixin

__all__ = ["Server"]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it

ACCEPT_RETRY_DELAY = 1.0  # seconds a server stops accepting after running out of fds
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

# When ``Server.wait_closed`` returns at once, as the running Python's asyncio has it (else
# it waits until the server is closed and its last connection is gone):
#   "closed"  (3.11 and before): once the server is closed, connections or not;
#   "idle"    (3.12.0): whenever no connection is open, closed or not;
#   "drained" (3.12.1 on): only once it is closed and its last connection is gone.
WAIT_CLOSED_RULE = (
    "closed"
    if sys.version_info < (3, 12)
    else "idle"
    if sys.version_info < (3, 12, 1)
    else "drained"
)


class Server(asyncio.AbstractServer):
    """Listening sockets, and the connections accepted on them until they are lost.

    While serving, each listening socket has a reader callback that accepts every pending
    connection and builds a transport for it. Transports tell the server when they start
    and end (``_attach``/``_detach``), which is how ``wait_closed`` knows when the last
    connection is gone and how ``close_clients`` finds them. The set is weak, like
    asyncio's, so a transport the program dropped without closing can still be collected
    (and warn).
    """

    def __init__(
        self,
        loop: ServersMixin,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        ssl_context: _ssl.SSLContext | None,
        backlog: int,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None,
        unlink_on_close: dict[socket.socket, tuple[str | bytes, int]] | None = None,
    ) -> None:
        self._loop = loop
        self._sockets: list[socket.socket] | None = sockets  # None once closed
        self._clients: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()
        self._waiters: list[asyncio.Future[None]] | None = []  # None once fully closed
        self._protocol_factory = protocol_factory
        self._ssl_context = ssl_context
        self._backlog = backlog
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._unlink_on_close = unlink_on_close or {}  # Unix socket -> (path, inode)
        self._serving = False
        self._serving_forever_fut: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    # -- what transports call --------------------------------------------------------

    def _attach(self, transport: asyncio.BaseTransport) -> None:
        self._clients.add(transport)

    def _detach(self, transport: asyncio.BaseTransport) -> None:
        self._clients.discard(transport)
        if not self._clients and self._sockets is None:
            self._wakeup()

    def _wakeup(self) -> None:
        """Closed and no connections left: release every ``wait_closed``, now and later."""
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    # -- accepting -------------------------------------------------------------------

    def _start_serving(self) -> None:
        if self._serving:
            return
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._loop.add_reader(sock.fileno(), self._on_acceptable, sock)

    def _on_acceptable(self, sock: socket.socket) -> None:
        """The listening socket's reader callback: accept all that is pending (up to backlog)."""
        for _ in range(self._backlog):
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # no more pending, or the client gave up before we got to it
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise  # the loop reports it and calls us again on the next event
                # Out of file descriptors: the socket stays readable, so stop listening
                # for a while instead of spinning on it.
                self._loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": exc,
                        "socket": TransportSocket(sock),
                    }
                )
                self._loop.remove_reader(sock.fileno())
                self._loop.call_later(ACCEPT_RETRY_DELAY, self._resume_accepting, sock)
                return
            conn.setblocking(False)
            self._serve(conn, addr)

    def _resume_accepting(self, sock: socket.socket) -> None:
        if self._serving and self._sockets is not None and sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._on_acceptable, sock)

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        """Give an accepted connection its protocol and transport."""
        try:
            protocol = self._protocol_factory()
        except (SystemExit, KeyboardInterrupt):
            conn.close()
            raise
        except BaseException as exc:
            conn.close()
            self._loop.call_exception_handler(
                {
                    "message": "protocol_factory() failed for an incoming connection",
                    "exception": exc,
                }
            )
            return
        waiter = self._loop.create_future()
        transport = self._loop._stream_transport(
            conn,
            protocol,
            waiter,
            self._ssl_context,
            server_side=True,
            extra={"peername": addr},
            server=self,
            ssl_handshake_timeout=self._ssl_handshake_timeout,
            ssl_shutdown_timeout=self._ssl_shutdown_timeout,
        )
        waiter.add_done_callback(functools.partial(self._connection_ready, transport, protocol))

    def _connection_ready(
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None],
    ) -> None:
        # The waiter fails when the connection dies before it is set up (a TLS handshake
        # that fails, say). That is the client's business, so asyncio only reports it in
        # debug mode; either way the transport is closed.
        if waiter.cancelled() or waiter.exception() is None:
            return
        transport.close()
        if self._loop.get_debug():
            self._loop.call_exception_handler(
                {
                    "message": "Error on transport creation for incoming connection",
                    "exception": waiter.exception(),
                    "protocol": protocol,
                    "transport": transport,
                }
            )

    # -- the AbstractServer interface ------------------------------------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[TransportSocket, ...]:
        if self._sockets is None:
            return ()
        return tuple(TransportSocket(sock) for sock in self._sockets)

    def close(self) -> None:
        """Stop listening and close the listening sockets; connections go on."""
        sockets, self._sockets = self._sockets, None
        if sockets is None:
            return
        for sock in sockets:
            self._loop._stop_serving(sock)
            self._unlink(sock)
        self._serving = False
        if self._serving_forever_fut is not None and not self._serving_forever_fut.done():
            self._serving_forever_fut.cancel()
            self._serving_forever_fut = None
        if not self._clients:
            self._wakeup()

    def _unlink(self, sock: socket.socket) -> None:
        # Only the file we bound: if another server has since bound the same path, its
        # inode differs and the file is left alone.
        path, inode = self._unlink_on_close.pop(sock, (None, None))
        if path is None:
            return
        try:
            if os.stat(path).st_ino == inode:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("Unable to clean up listening UNIX socket %r: %r", path, exc)

    def close_clients(self) -> None:
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self) -> None:
        for transport in list(self._clients):
            cast(asyncio.Transport, transport).abort()

    async def start_serving(self) -> None:
        self._start_serving()
        await asyncio.sleep(0)  # let the add_reader registrations take effect

    async def serve_forever(self) -> None:
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection it accepted is lost.

        That is 3.12.1's meaning, and 3.13's. On an older Python it returns at once where
        that Python's asyncio does (``WAIT_CLOSED_RULE``): on 3.11, once the server is
        closed, even with connections still open; on 3.12.0, whenever no connection is
        open, even if the server is not closed.

        Discussion: the adapter follows the running Python rather than the newest meaning,
        because programs were written against their Python's. A 3.11 program whose
        ``asyncio.run`` ends while a client is still connected cancels ``serve_forever``,
        which waits here: 3.11's asyncio finishes, where 3.12.1's meaning would wait for a
        connection that nothing is going to close (a cancelled ``start_server`` handler
        does not close its transport).
        """
        if self._waiters is None:
            return
        if WAIT_CLOSED_RULE == "closed" and self._sockets is None:
            return
        if WAIT_CLOSED_RULE == "idle" and not self._clients:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter
