"""The adapter loop's network methods: sockets, connections, servers, datagrams, TLS.

``NetworkMixin`` is mixed into the adapter's event loop class and gives it the network half
of ``asyncio.AbstractEventLoop``. It is written against the loop's *public* interface only
(``add_reader``/``remove_reader``, ``add_writer``/``remove_writer``, ``call_soon``,
``call_later``, ``call_exception_handler``, ``create_future``, ``create_task``,
``run_in_executor``, ``get_debug``, ``is_closed``) plus the loop's ``_check_closed()``, so
the same code runs on asyncio's own selector loop (the tests do that) and on the kernel.

There are three layers, each built on the one before:

1. ``sock_*`` coroutines: one socket operation each. They all follow one pattern::

       try the non-blocking call          -> done at once if the socket was ready
       BlockingIOError?  -> create a future, add_reader(fd, attempt), await the future
       attempt() on each readiness event  -> retry the call; complete the future when it
                                             stops raising BlockingIOError
       finally (result, error or cancel)  -> remove_reader(fd): nothing stays registered

   The registration is removed in the awaiting coroutine's ``finally``, so when a
   cancelled ``sock_recv`` has returned to its caller, the I/O table no longer holds it
   (unless another ``sock_*`` call has taken the slot over meanwhile: see ``_sock_waits``).

2. Connections: ``create_connection`` resolves, connects a socket with ``sock_connect``,
   and hands it to a ``SocketTransport`` (``transports.py``) with the protocol the
   factory makes. The transport runs the protocol from then on, from readiness callbacks.
   ``create_server`` binds listening sockets and returns a ``Server``, which accepts from a
   reader callback and builds one transport per connection.

3. TLS is not written here. The stdlib's ``asyncio.sslproto.SSLProtocol`` is a protocol
   that sits on any transport and offers a transport to the application protocol above it;
   ``ssl=`` stacks it on a plain ``SocketTransport``, and ``start_tls`` slides it under the
   protocol of a live connection.

Differences from asyncio (``base_events.py``, ``selector_events.py``, ``unix_events.py``):

* ``sock_*`` refuse a blocking socket with ``ValueError`` always; asyncio checks only in
  debug mode (a blocking socket would stall every task of the kernel, not just one).
* A ``sock_accept`` whose task is cancelled after the connection was accepted but before
  the task resumed closes the accepted socket instead of leaking it.
* ``create_connection`` accepts ``happy_eyeballs_delay`` and ``interleave`` (addresses are
  interleaved by family) but tries addresses one after another, never in parallel.
* Accepted connections are set up in a done callback, not a task per connection. A
  protocol factory that raises is reported to the exception handler (asyncio does that in
  debug mode only) and the accepted socket is closed (asyncio leaks it).
* ``Server.wait_closed`` has the 3.12.1+ meaning on every Python: it waits until the server
  is closed *and* its connections are gone (3.11's returned at once once closed, which
  CPython calls a bug). ``Server.close_clients``/``abort_clients`` and
  ``create_unix_server(cleanup_socket=...)`` (3.13) exist on every Python; the latter's
  default follows the running Python (the socket file is removed on close from 3.13 on).
  ``Server.start_serving`` on a closed server raises RuntimeError (asyncio: TypeError).
* There is no fd-to-transport map, so ``sock_recv`` on a socket owned by a transport is not
  refused (it would steal the transport's bytes).
* ``create_datagram_endpoint(reuse_address=True)`` raises ``ValueError`` with the reason
  (3.11 removed the argument and raises ``TypeError``).

Read next: ``kernel/aio/transports.py``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import errno
import functools
import io
import itertools
import logging
import os
import socket
import ssl as _ssl
import stat
import sys
import weakref
from asyncio.sslproto import SSLProtocol
from asyncio.trsock import TransportSocket
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

from .transports import DatagramTransport, SocketTransport, WriteFlowControl

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop as _LoopBase
    from socket import _GetAddrInfoResult

    from _typeshed import ReadableBuffer, StrPath, WriteableBuffer
else:
    _LoopBase = object

__all__ = ["NetworkMixin", "Server"]

log = logging.getLogger("kernel")

_T = TypeVar("_T")
_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)
_SSLArg = bool | _ssl.SSLContext | None
_AddrInfo = tuple[int, int, int, str, Any]  # (family, type, proto, canonname, address)

ACCEPT_RETRY_DELAY = 1.0  # seconds a server stops accepting after running out of fds
SENDFILE_CHUNK = 256 * 1024  # bytes per read when sendfile falls back to read + send
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


# -- helpers -----------------------------------------------------------------------------


def _check_socket(sock: socket.socket) -> None:
    """The ``sock_*`` methods take plain non-blocking sockets only."""
    _check_not_tls(sock)
    if sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


def _check_not_tls(sock: socket.socket) -> None:
    if isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _try_io(fut: asyncio.Future[_T], attempt: Callable[[], _T]) -> None:
    """The readiness callback of every ``sock_*`` wait: retry the call, maybe finish."""
    if fut.done():
        return  # cancelled; the waiting coroutine removes us when it resumes
    try:
        result = attempt()
    except (BlockingIOError, InterruptedError):
        return  # not yet: stay registered for the next readiness event
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _numeric_addrinfo(
    host: Any, port: Any, family: int, type: int, proto: int, flowinfo: int = 0, scopeid: int = 0
) -> _AddrInfo | None:
    """The getaddrinfo() entry for a host that already is an IP address, else None.

    Lets ``create_connection("127.0.0.1", ...)`` skip the resolver thread.
    """
    if host is None or proto not in (0, socket.IPPROTO_TCP, socket.IPPROTO_UDP):
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None
    if port is None or port in ("", b""):
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None  # a service name such as "http": the resolver knows it
    if isinstance(host, bytes):
        host = host.decode("idna")
    if "%" in host:
        return None  # an IPv6 zone index ("fe80::1%eth0") needs the resolver
    families = [socket.AF_INET, socket.AF_INET6] if family == socket.AF_UNSPEC else [family]
    for af in families:
        try:
            socket.inet_pton(af, host)
        except (OSError, ValueError):
            continue
        if af == socket.AF_INET6:
            return (af, type, proto, "", (host, port, flowinfo, scopeid))
        return (af, type, proto, "", (host, port))
    return None


def _interleave(infos: list[_AddrInfo], first_family_count: int) -> list[_AddrInfo]:
    """Reorder addresses so families alternate (IPv6, IPv4, IPv6, ...), RFC 8305 style."""
    by_family: dict[int, list[_AddrInfo]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    groups = list(by_family.values())
    reordered: list[_AddrInfo] = []
    if first_family_count > 1:
        reordered += groups[0][: first_family_count - 1]
        del groups[0][: first_family_count - 1]
    for row in itertools.zip_longest(*groups):
        reordered += [info for info in row if info is not None]
    return reordered


def _set_reuse_port(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented."
        ) from None


def _combined_error(errors: list[OSError], all_errors: bool) -> Exception:
    """One exception for every failed connection attempt, as asyncio reports them."""
    if all_errors:
        return ExceptionGroup("create_connection failed", errors)
    if len(errors) == 1 or all(str(exc) == str(errors[0]) for exc in errors):
        return errors[0]
    return OSError(f"Multiple exceptions: {', '.join(str(exc) for exc in errors)}")


def _check_tls_args(
    ssl: _SSLArg, handshake_timeout: float | None, shutdown_timeout: float | None
) -> None:
    if handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


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


def _remove_stale_unix_socket(path: str | bytes) -> None:
    """A socket file left by a dead server would make bind() fail: remove it."""
    if path[0] in (0, "\x00"):
        return  # Linux abstract namespace: no file
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("Unable to check or remove stale UNIX socket %r: %r", path, exc)


# -- servers -----------------------------------------------------------------------------


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
        loop: NetworkMixin,
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
        """Wait until the server is closed and every connection it accepted is lost."""
        if self._waiters is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter


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


class NetworkMixin(_LoopBase):
    """The network methods of an ``asyncio.AbstractEventLoop``; mix in before the loop class.

    ::

        class EventLoop(NetworkMixin, <the loop class with add_reader, call_soon, ...>): ...

    The mixin has no ``__init__`` and keeps one piece of state on the loop, created on
    first use: which ``sock_*`` call owns each descriptor's reader and writer slot. What a
    connection needs lives in its transport, what a server needs in its ``Server``.
    """

    if TYPE_CHECKING:

        def _check_closed(self) -> None: ...

    # -- low-level socket operations -------------------------------------------------

    def _sock_waits(self) -> dict[tuple[int, bool], asyncio.Future[Any]]:
        """Which ``sock_*`` wait owns the reader (False) or writer (True) slot of each fd.

        Discussion: a wait removes its registration when its coroutine resumes. A task may
        be cancelled while waiting, and before it resumes another call on the same socket
        (``sock_recv`` again, in the task that cancelled it) registers in the same slot,
        replacing it. The cancelled wait must then leave the newcomer's registration alone,
        so each wait checks it still owns the slot. The map lives on the loop (created on
        first use, under a name no loop class will clash with), not in a module global.
        """
        try:
            return self.__sock_waits
        except AttributeError:
            self.__sock_waits: dict[tuple[int, bool], asyncio.Future[Any]] = {}
            return self.__sock_waits

    async def _sock_io(
        self,
        sock: socket.socket,
        writing: bool,
        attempt: Callable[[], _T],
        discard: Callable[[_T], object] | None = None,
    ) -> _T:
        """Wait until ``sock`` is ready, then ``attempt()``; repeat until it does not block.

        ``discard`` disposes of a result that arrived just before a cancellation (the task
        was cancelled after the future completed but before it resumed).
        """
        self._check_closed()
        fd = sock.fileno()
        fut: asyncio.Future[_T] = self.create_future()
        waits = self._sock_waits()
        waits[fd, writing] = fut
        if writing:
            self.add_writer(fd, _try_io, fut, attempt)
        else:
            self.add_reader(fd, _try_io, fut, attempt)
        try:
            return await fut
        except asyncio.CancelledError:
            completed = fut.done() and not fut.cancelled() and fut.exception() is None
            if discard is not None and completed:
                discard(fut.result())
            raise
        finally:
            if waits.get((fd, writing)) is fut:
                del waits[fd, writing]
                if self.is_closed():
                    pass  # the loop's I/O table is gone with it
                elif writing:
                    self.remove_writer(fd)
                else:
                    self.remove_reader(fd)

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        _check_socket(sock)
        try:
            return sock.recv(nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_io(sock, False, functools.partial(sock.recv, nbytes))

    async def sock_recv_into(self, sock: socket.socket, buf: WriteableBuffer) -> int:
        _check_socket(sock)
        try:
            return sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_io(sock, False, functools.partial(sock.recv_into, buf))

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        _check_socket(sock)
        try:
            return sock.recvfrom(bufsize)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_io(sock, False, functools.partial(sock.recvfrom, bufsize))

    async def sock_recvfrom_into(
        self, sock: socket.socket, buf: WriteableBuffer, nbytes: int = 0
    ) -> tuple[int, Any]:
        _check_socket(sock)
        if not nbytes:
            nbytes = memoryview(buf).nbytes
        try:
            return sock.recvfrom_into(buf, nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_io(sock, False, functools.partial(sock.recvfrom_into, buf, nbytes))

    async def sock_sendall(self, sock: socket.socket, data: ReadableBuffer) -> None:
        _check_socket(sock)
        view = memoryview(data).cast("B")
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent == len(view):
            return

        def send_rest() -> None:
            nonlocal sent
            sent += sock.send(view[sent:])
            if sent < len(view):
                raise BlockingIOError  # not finished: wait for the next writable event

        await self._sock_io(sock, True, send_rest)

    async def sock_sendto(self, sock: socket.socket, data: ReadableBuffer, address: Any) -> int:
        _check_socket(sock)
        try:
            return sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_io(sock, True, lambda: sock.sendto(data, address))

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        _check_socket(sock)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type, proto=sock.proto
            )
            address = resolved[0][4]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass  # connecting in the background: writable means it finished, either way

        def outcome() -> None:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"Connect call failed {address}")

        await self._sock_io(sock, True, outcome)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        _check_socket(sock)

        def accept() -> tuple[socket.socket, Any]:
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address

        try:
            return accept()
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_io(sock, False, accept, discard=lambda pair: pair[0].close())

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

    # -- name resolution -------------------------------------------------------------

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> _GetAddrInfoResult:
        return await self.run_in_executor(
            None, socket.getaddrinfo, host, port, family, type, proto, flags
        )

    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int = 0
    ) -> tuple[str, str]:
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    async def _ensure_resolved(
        self,
        address: Any,
        *,
        family: int = 0,
        type: int = socket.SOCK_STREAM,
        proto: int = 0,
        flags: int = 0,
    ) -> list[_AddrInfo]:
        host, port = address[:2]
        info = _numeric_addrinfo(host, port, family, type, proto, *address[2:])
        if info is not None:
            return [info]
        infos = await self.getaddrinfo(
            host, port, family=family, type=type, proto=proto, flags=flags
        )
        return list(infos)

    # -- connections -----------------------------------------------------------------

    def _stream_transport(
        self,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None],
        ssl: _SSLArg,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: dict[str, Any] | None = None,
        server: Server | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """A transport running ``protocol`` on a connected ``sock``, with TLS if ``ssl``.

        With TLS the stack is: our ``SocketTransport`` -> the stdlib's ``SSLProtocol`` ->
        its application-side transport -> ``protocol``. ``waiter`` completes when the
        protocol's ``connection_made`` has run (after the handshake, with TLS).
        """
        if not ssl:
            return SocketTransport(self, sock, protocol, waiter=waiter, extra=extra, server=server)
        tls = SSLProtocol(
            self,
            protocol,
            cast(Any, None if isinstance(ssl, bool) else ssl),  # None: a default context
            waiter,
            server_side,
            server_hostname,
            # typeshed says int; the stdlib takes any number of seconds.
            ssl_handshake_timeout=cast(Any, ssl_handshake_timeout),
            ssl_shutdown_timeout=cast(Any, ssl_shutdown_timeout),
        )
        SocketTransport(self, sock, tls, extra=extra, server=server)
        return tls._app_transport

    async def _connect_transport(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], _ProtocolT],
        ssl: _SSLArg,
        server_hostname: str | None,
        *,
        server_side: bool = False,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        own_sock: bool = False,
    ) -> tuple[asyncio.Transport, _ProtocolT]:
        sock.setblocking(False)
        try:
            protocol = protocol_factory()
        except BaseException:
            if own_sock:
                sock.close()
            raise
        waiter: asyncio.Future[None] = self.create_future()
        transport = self._stream_transport(
            sock,
            protocol,
            waiter,
            ssl,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _connect_one(
        self, info: _AddrInfo, local_infos: list[_AddrInfo] | None, errors: list[OSError]
    ) -> socket.socket:
        """Create, maybe bind, and connect one socket; its errors are added to ``errors``."""
        family, type_, proto, _, address = info
        sock = None
        try:
            sock = socket.socket(family, type_, proto)
            sock.setblocking(False)
            if local_infos is not None:
                self._bind_local(sock, family, local_infos, errors)
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            errors.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise

    @staticmethod
    def _bind_local(
        sock: socket.socket, family: int, local_infos: list[_AddrInfo], errors: list[OSError]
    ) -> None:
        failures: list[OSError] = []
        for lfamily, _, _, _, laddr in local_infos:
            if lfamily != family:
                continue
            try:
                sock.bind(laddr)
                return
            except OSError as exc:
                msg = f"error while attempting to bind on address {laddr!r}: {str(exc).lower()}"
                failures.append(OSError(exc.errno, msg))
        if not failures:
            raise OSError(f"no matching local address with family={family!r} found")
        errors.extend(failures[:-1])
        raise failures[-1]

    async def create_connection(
        self,
        protocol_factory: Callable[[], _ProtocolT],
        host: str | None = None,
        port: int | str | None = None,
        *,
        ssl: _SSLArg = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: tuple[str, int] | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[asyncio.Transport, _ProtocolT]:
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            # The certificate is checked against the host connected to. Pass
            # server_hostname="" to skip the check.
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        _check_tls_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            _check_not_tls(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1
        own_sock = False
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            self._check_closed()
            infos = await self._ensure_resolved(
                (host, port), family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
            )
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            local_infos = None
            if local_addr is not None:
                local_infos = await self._ensure_resolved(
                    local_addr, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
                )
                if not local_infos:
                    raise OSError("getaddrinfo() returned empty list")
            if interleave:
                infos = _interleave(infos, interleave)
            errors: list[OSError] = []
            for info in infos:
                try:
                    sock = await self._connect_one(info, local_infos, errors)
                    break
                except OSError:
                    continue
            if sock is None:
                raise _combined_error(errors, all_errors)
            own_sock = True
        elif sock is None:
            raise ValueError("host and port was not specified and no sock specified")
        elif sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        return await self._connect_transport(
            sock,
            protocol_factory,
            ssl,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            own_sock=own_sock,
        )

    async def create_unix_connection(
        self,
        protocol_factory: Callable[[], _ProtocolT],
        path: str | None = None,
        *,
        ssl: _SSLArg = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, _ProtocolT]:
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        elif server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        _check_tls_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            self._check_closed()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, os.fspath(path))
            except BaseException:
                sock.close()
                raise
        elif sock is None:
            raise ValueError("no path and sock were specified")
        elif sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        return await self._connect_transport(
            sock,
            protocol_factory,
            ssl,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            own_sock=path is not None,
        )

    async def connect_accepted_socket(
        self,
        protocol_factory: Callable[[], _ProtocolT],
        sock: socket.socket,
        *,
        ssl: _SSLArg = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, _ProtocolT]:
        """Wrap a connection accepted elsewhere (the server side of it) in a transport."""
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        _check_tls_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        _check_not_tls(sock)
        return await self._connect_transport(
            sock,
            protocol_factory,
            ssl,
            "",
            server_side=True,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    # -- servers ---------------------------------------------------------------------

    def _stop_serving(self, sock: socket.socket) -> None:
        """Stop accepting on a listening socket and close it (asyncio's loop has the same)."""
        if not self.is_closed():
            self.remove_reader(sock.fileno())
        sock.close()

    async def create_server(  # type: ignore[override]  # typeshed names asyncio's Server
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | Sequence[str] | None = None,
        port: int | str | None = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: _SSLArg = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_tls_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            _check_not_tls(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            self._check_closed()
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            sockets = await self._bind_listeners(
                host, port, family, flags, reuse_address, reuse_port, keep_alive
            )
        elif sock is None:
            raise ValueError("Neither host/port nor sock were specified")
        elif sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        else:
            sockets = [sock]
        for listener in sockets:
            listener.setblocking(False)
        server = Server(
            self,
            sockets,
            protocol_factory,
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        if start_serving:
            await server.start_serving()
        return server

    async def _bind_listeners(
        self,
        host: str | Sequence[str] | None,
        port: int | str | None,
        family: int,
        flags: int,
        reuse_address: bool,
        reuse_port: bool | None,
        keep_alive: bool | None,
    ) -> list[socket.socket]:
        """One bound socket per distinct address the hosts resolve to."""
        if host == "":
            hosts: Iterable[str | None] = [None]  # every interface
        elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
            hosts = [host]
        else:
            hosts = host

        async def resolve(one: str | None) -> list[_AddrInfo]:
            infos = await self._ensure_resolved(
                (one, port), family=family, type=socket.SOCK_STREAM, flags=flags
            )
            if not infos:
                raise OSError(f"getaddrinfo({one!r}) returned empty list")
            return infos

        resolved = await asyncio.gather(*(resolve(one) for one in hosts))
        infos = list(dict.fromkeys(itertools.chain.from_iterable(resolved)))
        sockets: list[socket.socket] = []
        completed = False
        try:
            for af, socktype, proto, _, address in infos:
                try:
                    sock = socket.socket(af, socktype, proto)
                except OSError:
                    continue  # this family/type/protocol is not available here
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    _set_reuse_port(sock)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    # One socket per family: do not let the IPv6 one take IPv4 as well.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    sock.bind(address)
                except OSError as err:
                    if err.errno == errno.EADDRNOTAVAIL:
                        sockets.pop().close()  # this family is not configured: skip it
                        continue
                    msg = (
                        f"error while attempting to bind on address {address!r}: {str(err).lower()}"
                    )
                    raise OSError(err.errno, msg) from None
            if not sockets:
                raise OSError(
                    f"could not bind on any address out of {[info[4] for info in infos]!r}"
                )
            completed = True
        finally:
            if not completed:
                for sock in sockets:
                    sock.close()
        return sockets

    async def create_unix_server(  # type: ignore[override]  # typeshed names asyncio's Server
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        path: StrPath | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: _SSLArg = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool = sys.version_info >= (3, 13),
    ) -> Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_tls_args(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            self._check_closed()
            fspath = os.fspath(path)
            _remove_stale_unix_socket(fspath)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(fspath)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(
                        errno.EADDRINUSE, f"Address {fspath!r} is already in use"
                    ) from None
                raise
            except BaseException:
                sock.close()
                raise
        elif sock is None:
            raise ValueError("path was not specified, and no sock specified")
        elif sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        unlink: dict[socket.socket, tuple[str | bytes, int]] = {}
        if cleanup_socket:
            bound = sock.getsockname()
            if bound and bound[0] not in (0, "\x00"):
                with contextlib.suppress(FileNotFoundError):
                    unlink[sock] = (bound, os.stat(bound).st_ino)
        sock.setblocking(False)
        server = Server(
            self,
            [sock],
            protocol_factory,
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
            unlink,
        )
        if start_serving:
            await server.start_serving()
        return server

    # -- datagrams -------------------------------------------------------------------

    async def create_datagram_endpoint(
        self,
        protocol_factory: Callable[[], _ProtocolT],
        local_addr: tuple[str, int] | str | None = None,
        remote_addr: tuple[str, int] | str | None = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, _ProtocolT]:
        if reuse_address:
            raise ValueError(
                "Passing `reuse_address=True` is no longer supported, as the usage of "
                "SO_REUSEPORT in UDP poses a significant security concern."
            )
        remote = None
        if sock is not None:
            if sock.type == socket.SOCK_STREAM:
                raise ValueError(f"A datagram socket was expected, got {sock!r}")
            options = {
                "local_addr": local_addr,
                "remote_addr": remote_addr,
                "family": family,
                "proto": proto,
                "flags": flags,
                "reuse_port": reuse_port,
                "allow_broadcast": allow_broadcast,
            }
            if any(options.values()):
                problems = ", ".join(f"{k}={v}" for k, v in options.items() if v)
                raise ValueError(
                    "socket modifier keyword arguments can not be used "
                    f"when sock is specified. ({problems})"
                )
            sock.setblocking(False)
        else:
            self._check_closed()
            sock, remote = await self._open_datagram_socket(
                local_addr, remote_addr, family, proto, flags, reuse_port, allow_broadcast
            )
        protocol = protocol_factory()
        waiter: asyncio.Future[None] = self.create_future()
        transport = DatagramTransport(self, sock, protocol, remote, waiter=waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _open_datagram_socket(
        self,
        local_addr: Any,
        remote_addr: Any,
        family: int,
        proto: int,
        flags: int,
        reuse_port: bool | None,
        allow_broadcast: bool | None,
    ) -> tuple[socket.socket, Any]:
        """A bound and/or connected datagram socket for the first address pair that works."""
        pairs: list[tuple[tuple[int, int], tuple[Any, Any]]]
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            pairs = [((family, proto), (None, None))]
        elif family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, str):
                    raise TypeError("string is expected")
            if local_addr:
                _remove_stale_unix_socket(local_addr)
            pairs = [((family, proto), (local_addr, remote_addr))]
        else:
            # Resolve both ends, then keep the (family, proto) pairs that have both.
            by_key: dict[tuple[int, int], list[Any]] = {}
            for index, addr in ((0, local_addr), (1, remote_addr)):
                if addr is None:
                    continue
                if not (isinstance(addr, tuple) and len(addr) == 2):
                    raise TypeError("2-tuple is expected")
                infos = await self._ensure_resolved(
                    addr, family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags
                )
                if not infos:
                    raise OSError("getaddrinfo() returned empty list")
                for fam, _, pro, _, address in infos:
                    by_key.setdefault((fam, pro), [None, None])[index] = address
            pairs = [
                (key, (ends[0], ends[1]))
                for key, ends in by_key.items()
                if not ((local_addr and ends[0] is None) or (remote_addr and ends[1] is None))
            ]
            if not pairs:
                raise ValueError("can not get address information")
        errors: list[OSError] = []
        for (fam, pro), (local, remote) in pairs:
            sock = None
            try:
                sock = socket.socket(fam, socket.SOCK_DGRAM, pro)
                if reuse_port:
                    _set_reuse_port(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if local_addr:
                    sock.bind(local)
                if remote_addr:
                    if not allow_broadcast:
                        await self.sock_connect(sock, remote)
                    return sock, remote
                return sock, None
            except OSError as exc:
                if sock is not None:
                    sock.close()
                errors.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
        raise errors[0]

    # -- TLS and sendfile on live connections ----------------------------------------

    async def start_tls(
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        sslcontext: _ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """Upgrade a connection to TLS; return the transport ``protocol`` must use from now."""
        if not isinstance(sslcontext, _ssl.SSLContext):
            raise TypeError(
                f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}"
            )
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        plain = cast(asyncio.Transport, transport)
        waiter: asyncio.Future[None] = self.create_future()
        tls = SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=cast(Any, ssl_handshake_timeout),
            ssl_shutdown_timeout=cast(Any, ssl_shutdown_timeout),
            call_connection_made=False,
        )
        # Pause first, so no bytes reach the TLS protocol before its connection_made.
        plain.pause_reading()
        plain.set_protocol(tls)
        made = self.call_soon(tls.connection_made, plain)
        resumed = self.call_soon(plain.resume_reading)
        try:
            await waiter
        except BaseException:
            plain.close()
            made.cancel()
            resumed.cancel()
            raise
        return tls._app_transport

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
