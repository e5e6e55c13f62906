"""Servers: ``create_server``, ``create_unix_server``, ``connect_accepted_socket``.

``ServersMixin`` builds on ``ConnectionsMixin`` (``connections.py``). ``create_server``
resolves the hosts, binds one listening socket per address they resolve to, and hands the
sockets to a ``Server`` (``serving.py``), which serves them from one ``add_reader`` callback
per listening socket; ``_stop_serving`` is the ``remove_reader`` that ends it.
``create_unix_server`` does the same for a Unix socket path. ``connect_accepted_socket``
wraps a connection accepted elsewhere in a transport (the server side of it, TLS included),
as a ``Server`` does for each connection it accepts.

Differences from asyncio (``base_events.py``, ``unix_events.py``):

* ``create_unix_server(cleanup_socket=...)`` (3.13) exists on every Python; its default
  follows the running Python (the socket file is removed on close from 3.13 on).

Read next: ``kernel/aio/serving.py``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import errno
import itertools
import os
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from .connections import ConnectionsMixin, _check_tls_args, _ProtocolT, _SSLArg
from .serving import Server
from .sockets import (
    _AddrInfo,
    _bind_error,
    _check_not_tls,
    _remove_stale_unix_socket,
    _set_reuse_port,
)

if TYPE_CHECKING:
    from _typeshed import StrPath

__all__ = ["ServersMixin"]


class ServersMixin(ConnectionsMixin):
    """The server methods of an ``asyncio.AbstractEventLoop``."""

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
                    raise _bind_error(address, err) from None
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

    # -- a connection accepted elsewhere ---------------------------------------------

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
