"""Clients: connect to a host or a Unix socket, over TLS if asked.

::

    sock = await kernel.open_connection("example.org", 443, ssl=True)
    async with sock:
        await sock.sendall(b"GET / HTTP/1.0\\r\\nHost: example.org\\r\\n\\r\\n")

A host name is resolved in a worker thread (``kernel/resolver.py``), each address it gives
tried in turn (``kernel.socket.create_connection``). TLS comes from the stdlib ``ssl``
module: pass an ``ssl.SSLContext``, or ``ssl=True`` for the default one; the handshake runs
through the I/O wait table like any other read or write (``kernel/tls.py``). Arguments
that cannot work -- a ``server_hostname`` without TLS, a context made for a server -- are
refused before any socket exists.

Read next: ``kernel/servers.py``.
"""

from __future__ import annotations

import os
import ssl as _ssl
from typing import Any

from . import socket as ksocket
from .servers import UnixPath
from .time import timeout_after
from .tls import start_tls

__all__ = ["open_connection", "open_unix_connection"]


def _client_context(ssl: Any, server_hostname: str | None) -> _ssl.SSLContext | None:
    """What a client's ``ssl=`` means; checked before any socket exists that would leak."""
    if ssl is None or ssl is False:
        if server_hostname is not None:
            raise ValueError(
                f"server_hostname={server_hostname!r} is given without ssl=: the name is "
                f"only checked against a TLS certificate, so the connection would be plain "
                f"and unauthenticated. Pass ssl=True (or an ssl.SSLContext), or drop "
                f"server_hostname"
            )
        return None
    if ssl is True:
        return _ssl.create_default_context()
    if not isinstance(ssl, _ssl.SSLContext):
        raise TypeError(f"ssl= takes an ssl.SSLContext (or True for a client), not {ssl!r}")
    # The stdlib refuses a PROTOCOL_TLS_SERVER context on a client socket -- but only once
    # the connection exists, and the server has seen a client that hung up mid-handshake.
    if ssl.protocol == _ssl.PROTOCOL_TLS_SERVER:
        raise ValueError(
            "a client's ssl= got a server-side context (protocol PROTOCOL_TLS_SERVER), such "
            "as ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) makes; make the "
            "client's with ssl.create_default_context() (or pass ssl=True), trust a "
            "private CA with load_verify_locations(), and load a client certificate, if "
            "the server asks for one, with load_cert_chain()"
        )
    return ssl


async def open_connection(
    host: str,
    port: int,
    *,
    ssl: Any = None,
    server_hostname: str | None = None,
    source_addr: Any = None,
    timeout: float | None = None,
) -> ksocket.Socket:
    """Connect to ``host:port`` (trying each address it resolves to); TLS if ``ssl``.

    ``server_hostname`` is the name checked against the server's certificate (by default
    ``host``); given without ``ssl`` it is a ``ValueError``, as is a server's context
    (``PROTOCOL_TLS_SERVER``), both before connecting. ``source_addr`` is bound as
    ``kernel.socket.create_connection`` binds it. ``timeout`` bounds the connection (and
    handshake) with ``TaskTimeout``.
    """
    context = _client_context(ssl, server_hostname)

    async def connect() -> ksocket.Socket:
        sock = await ksocket.create_connection((host, port), source_address=source_addr)
        if context is not None:
            return await start_tls(sock, context, False, server_hostname or host)
        return sock

    return await timeout_after(timeout, connect)


async def open_unix_connection(
    path: UnixPath, *, ssl: Any = None, server_hostname: str | None = None
) -> ksocket.Socket:
    """Connect to the Unix socket at ``path`` (``str``, ``bytes`` or path-like); TLS if ``ssl``.

    A path names no host, so a context that checks host names (``ssl=True`` makes one) needs
    ``server_hostname``: the name on the server's certificate.
    """
    context = _client_context(ssl, server_hostname)
    if context is not None and context.check_hostname and not server_hostname:
        raise ValueError(
            "open_unix_connection(ssl=...) with a context that checks host names needs "
            "server_hostname=, the name on the server's certificate (a Unix path names no "
            "host); pass it, or a context with check_hostname = False"
        )
    address = os.fspath(path)  # (a pathlib.Path, say: the stdlib's connect() takes no other)
    sock = ksocket.socket(ksocket.AF_UNIX, ksocket.SOCK_STREAM)
    try:
        await sock.connect(address)
    except BaseException:
        await sock.close()
        raise
    if context is not None:
        return await start_tls(sock, context, False, server_hostname)
    return sock
