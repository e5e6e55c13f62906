"""Datagram endpoints: ``create_datagram_endpoint``.

``DatagramsMixin`` builds on ``SocketsMixin`` (``sockets.py``). It resolves the local and
remote addresses, keeps the (family, protocol) pairs that have both, and makes a bound
and/or connected UDP (or Unix datagram) socket for the first pair that works, connecting it
with ``sock_connect``. The socket goes to a ``DatagramTransport`` (``datagram_transport.py``),
which receives from an ``add_reader`` callback and, when the socket's buffer is full,
queues datagrams until an ``add_writer`` callback says there is room.

Differences from asyncio (``base_events.py``):

* ``create_datagram_endpoint(reuse_address=True)`` raises ``ValueError`` with the reason
  (3.11 removed the argument and raises ``TypeError``).

Read next: ``kernel/aio/sendfile.py``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from .datagram_transport import DatagramTransport
from .sockets import SocketsMixin, _remove_stale_unix_socket, _set_reuse_port
from .transport_base import wait_connection_made

__all__ = ["DatagramsMixin"]

_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)


class DatagramsMixin(SocketsMixin):
    """The datagram method of an ``asyncio.AbstractEventLoop``."""

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
        await wait_connection_made(transport, waiter)
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
