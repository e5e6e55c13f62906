"""Socket operations one at a time: the adapter loop's ``sock_*`` coroutines and resolver.

``SocketsMixin`` is the bottom layer of the loop's network half (``network.py`` combines the
layers). Each ``sock_*`` coroutine does one operation on a plain non-blocking socket, and
they all map onto the loop's readiness callbacks the same way::

    try the non-blocking call          -> done at once if the socket was ready
    BlockingIOError?  -> create a future, add_reader(fd, attempt), await the future
                         (add_writer to send or to finish a connect)
    attempt() on each readiness event  -> retry the call; complete the future when it
                                          stops raising BlockingIOError
    finally (result, error or cancel)  -> remove_reader(fd): nothing stays registered

The registration is removed in the awaiting coroutine's ``finally``, so when a cancelled
``sock_recv`` has returned to its caller, the I/O table no longer holds it (unless another
``sock_*`` call has taken the slot over meanwhile: see ``_sock_waits``).

``getaddrinfo`` and ``getnameinfo`` run the blocking resolver in the executor; a host that
already is an IP address skips it. They sit in this bottom layer because ``sock_connect``
resolves its address too. The module also holds the socket helpers that the layers above
share (``_check_not_tls``, ``_set_reuse_port``, ``_bind_error``,
``_remove_stale_unix_socket``).

Differences from asyncio (``selector_events.py``):

* ``sock_*`` refuse a blocking socket with ``ValueError`` always; asyncio checks only in
  debug mode (a blocking socket would stall every task of the kernel, not just one).
* A ``sock_accept`` whose task is cancelled after the connection was accepted but before
  the task resumed closes the accepted socket instead of leaking it.
* There is no fd-to-transport map, so ``sock_recv`` on a socket owned by a transport is not
  refused (it would steal the transport's bytes).

Read next: ``kernel/aio/connections.py``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import ssl as _ssl
import stat
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop as _LoopBase
    from socket import _GetAddrInfoResult

    from _typeshed import ReadableBuffer, WriteableBuffer
else:
    _LoopBase = object

__all__ = ["SocketsMixin"]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it

_T = TypeVar("_T")
_AddrInfo = tuple[int, int, int, str, Any]  # (family, type, proto, canonname, address)


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


def _set_reuse_port(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented."
        ) from None


# How the running Python's asyncio words a failed bind: the error's strerror (3.11, 3.12.0 to
# 3.12.4: "address already in use"), or all of str(error) (3.12.5 on, where CPython's
# gh-121913 changed it: "[errno 98] address already in use").
_BIND_ERROR_WITH_ERRNO = sys.version_info >= (3, 12, 5)


def _bind_error(address: Any, error: OSError) -> OSError:
    """The ``OSError`` that ``create_server`` and ``create_connection(local_addr=...)``
    raise when ``bind(address)`` failed with ``error``: its errno, and the message that the
    running Python's asyncio gives it.

    Discussion: an error without a strerror (``OSError("bind(): bad family")``, from a
    Python built without IPv6) is described by its str() on every Python. The asyncio of
    3.11 and of 3.12 before 3.12.5 fails there with an ``AttributeError`` of its own
    (``None.lower()``), which is the bug that gh-121913 fixed; there is nothing to match.
    """
    reason = error.strerror
    if _BIND_ERROR_WITH_ERRNO or reason is None:
        reason = str(error)
    return OSError(
        error.errno, f"error while attempting to bind on address {address!r}: {reason.lower()}"
    )


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


# -- the mixin ---------------------------------------------------------------------------


class SocketsMixin(_LoopBase):
    """The ``sock_*`` methods and name resolution of an ``asyncio.AbstractEventLoop``.

    The layers above (``ConnectionsMixin``, ``DatagramsMixin``, ``SendfileMixin``) build
    on these. The one piece of state, created on first use, is ``_sock_waits``.
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
