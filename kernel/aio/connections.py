"""Connections: ``create_connection``, ``create_unix_connection`` and ``start_tls``.

``ConnectionsMixin`` builds on ``SocketsMixin`` (``sockets.py``). ``create_connection``
resolves, tries the addresses one after another with ``sock_connect`` (which waits for each
connect to finish with ``add_writer``), and hands the connected socket to a
``SocketTransport`` (``transports.py``) with the protocol the factory makes. The transport
runs the protocol from then on, from its own ``add_reader``/``add_writer`` callbacks;
nothing this module registers outlives the call.

TLS is not written here. The stdlib's ``asyncio.sslproto.SSLProtocol`` is a protocol that
sits on any transport and offers a transport to the application protocol above it;
``ssl=`` stacks it on a plain ``SocketTransport`` (``_stream_transport``, which servers use
for accepted connections too), and ``start_tls`` slides it under the protocol of a live
connection.

Differences from asyncio (``base_events.py``):

* None left in ``create_connection``: with ``happy_eyeballs_delay`` the attempts overlap
  (``_connect_staggered``), as asyncio's ``staggered_race`` makes them.

Read next: ``kernel/aio/servers.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import ssl as _ssl
from asyncio.sslproto import SSLProtocol
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .sockets import SocketsMixin, _AddrInfo, _bind_error, _check_not_tls
from .transport_base import wait_connection_made
from .transports import SocketTransport

if TYPE_CHECKING:
    from .serving import Server

__all__ = ["ConnectionsMixin"]

_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)
_SSLArg = bool | _ssl.SSLContext | None


# -- helpers -----------------------------------------------------------------------------


def _close_if_connected(attempt: asyncio.Task[socket.socket]) -> None:
    """A losing happy-eyeballs attempt ended: if it connected after all, close its socket."""
    if not attempt.cancelled() and attempt.exception() is None:
        attempt.result().close()


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


# -- the mixin ---------------------------------------------------------------------------


class ConnectionsMixin(SocketsMixin):
    """The connection methods of an ``asyncio.AbstractEventLoop``, TLS included."""

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
        await wait_connection_made(transport, waiter)
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

    async def _connect_staggered(
        self,
        infos: list[_AddrInfo],
        local_infos: list[_AddrInfo] | None,
        errors: list[OSError],
        delay: float,
    ) -> socket.socket | None:
        """Happy eyeballs (RFC 8305): overlapping attempts; the first to connect wins.

        The next address is tried ``delay`` seconds after the last attempt started, or as
        soon as every attempt in flight has failed. When one connects, the others are
        cancelled and any socket that connected too late is closed. None if all failed
        (their errors are in ``errors``).
        """
        attempts: set[asyncio.Task[socket.socket]] = set()
        untried = iter(infos)
        winner: socket.socket | None = None
        try:
            while True:
                info = next(untried, None)
                if info is not None:
                    attempts.add(self.create_task(self._connect_one(info, local_infos, errors)))
                if not attempts:
                    return None
                done, _ = await asyncio.wait(
                    attempts,
                    timeout=delay if info is not None else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for attempt in done:
                    attempts.discard(attempt)
                    if attempt.cancelled():
                        continue
                    error = attempt.exception()
                    if isinstance(error, OSError):
                        continue  # recorded in errors by _connect_one; the race goes on
                    if error is not None:
                        raise error  # not a failed connect but a bug: as in the serial path
                    if winner is None:
                        winner = attempt.result()
                    else:  # two connected in the same turn: the first one wins
                        attempt.result().close()
                if winner is not None:
                    return winner
        finally:
            # The losers: cancelled (their sockets closed by _connect_one), or closed here if
            # they connected meanwhile -- even if we are cancelled while waiting for them.
            for attempt in attempts:
                attempt.add_done_callback(_close_if_connected)
                attempt.cancel()
            if attempts:
                await asyncio.wait(attempts)

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
                failures.append(_bind_error(laddr, exc))
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
            if happy_eyeballs_delay is None or len(infos) == 1:
                for info in infos:
                    try:
                        sock = await self._connect_one(info, local_infos, errors)
                        break
                    except OSError:
                        continue
            else:
                sock = await self._connect_staggered(
                    infos, local_infos, errors, happy_eyeballs_delay
                )
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

    # -- TLS on a live connection ----------------------------------------------------

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
