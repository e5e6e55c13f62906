"""Clients and servers: connect to a host, or serve every connection with a handler task.

::

    async def handler(client, address):
        async with client:
            while data := await client.recv(1000):
                await client.sendall(data)

    await kernel.tcp_server("127.0.0.1", 8000, handler)          # serves until cancelled
    sock = await kernel.open_connection("example.org", 443, ssl=True)

A server runs one task per connection. A handler that crashes does not take the server down:
its exception is logged with its traceback, its connection is closed, and the other
connections go on. Cancelling the server cancels every handler and closes every connection
before the cancellation leaves ``tcp_server``.

TLS comes from the stdlib ``ssl`` module: pass an ``ssl.SSLContext`` (or ``ssl=True`` on the
client side for the default one); the handshake runs through the I/O wait table like any
other read or write.

Read next: ``kernel/streams.py``.
"""

from __future__ import annotations

import logging
import os
import ssl as _ssl
import stat
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import socket as ksocket
from .errors import TaskCancelled
from .scheduler import running_task
from .task import Task, spawn
from .taskgroup import TASK_STATUS_IGNORED
from .traps import _cancel, _wait_task

if TYPE_CHECKING:
    from trio_typing import TaskStatus

__all__ = [
    "open_connection",
    "open_unix_connection",
    "run_server",
    "tcp_server",
    "tcp_server_socket",
    "unix_server",
    "unix_server_socket",
]

log = logging.getLogger("kernel")

Handler = Callable[[ksocket.Socket, Any], Awaitable[Any]]


def _client_context(ssl: Any) -> _ssl.SSLContext | None:
    """What a client's ``ssl=`` means; checked before any socket exists that would leak."""
    if ssl is None or ssl is False:
        return None
    if ssl is True:
        return _ssl.create_default_context()
    if not isinstance(ssl, _ssl.SSLContext):
        raise TypeError(f"ssl= takes an ssl.SSLContext (or True for a client), not {ssl!r}")
    return ssl


async def _start_tls(
    sock: ksocket.Socket, ssl: _ssl.SSLContext, server_side: bool, server_hostname: str | None
) -> ksocket.Socket:
    wrapped = ksocket.wrap_ssl(sock, ssl, server_side=server_side, server_hostname=server_hostname)
    try:
        await wrapped.do_handshake()
    except BaseException:
        await wrapped.close()
        raise
    return wrapped


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
    ``host``). ``timeout`` bounds the connection (and handshake) with ``TaskTimeout``.
    """
    from .time import timeout_after

    context = _client_context(ssl)

    async def connect() -> ksocket.Socket:
        sock = await ksocket.create_connection((host, port), source_address=source_addr)
        if context is not None:
            return await _start_tls(sock, context, False, server_hostname or host)
        return sock

    return await timeout_after(timeout, connect)


async def open_unix_connection(
    path: str, *, ssl: Any = None, server_hostname: str | None = None
) -> ksocket.Socket:
    """Connect to the Unix socket at ``path``; TLS if ``ssl``."""
    context = _client_context(ssl)
    sock = ksocket.socket(ksocket.AF_UNIX, ksocket.SOCK_STREAM)
    try:
        await sock.connect(path)
    except BaseException:
        await sock.close()
        raise
    if context is not None:
        return await _start_tls(sock, context, False, server_hostname)
    return sock


def tcp_server_socket(
    host: str,
    port: int,
    family: int = ksocket.AF_INET,
    backlog: int = 100,
    reuse_address: bool = True,
    reuse_port: bool = False,
) -> ksocket.Socket:
    """A bound, listening TCP ``Socket`` (port 0 picks a free one: see ``getsockname()``)."""
    sock = ksocket.socket(family, ksocket.SOCK_STREAM)
    try:
        if reuse_address:
            sock.setsockopt(ksocket.SOL_SOCKET, ksocket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(ksocket.SOL_SOCKET, ksocket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.stdlib_socket.close()
        raise
    return sock


def unix_server_socket(path: str, backlog: int = 100) -> ksocket.Socket:
    """A bound, listening Unix ``Socket`` at ``path`` (a stale socket file is replaced)."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = ksocket.socket(ksocket.AF_UNIX, ksocket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.stdlib_socket.close()
        raise
    return sock


async def run_server(
    sock: ksocket.Socket,
    handler: Handler,
    *,
    ssl: Any = None,
    task_status: TaskStatus[Any] = TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on a listening ``sock`` forever, one ``handler`` task each.

    Cancelled (or on error), it cancels every handler, waits for them, then closes
    ``sock``. ``task_status.started(address)`` reports the address it listens on.
    """
    _check_server_ssl(ssl)
    handlers: set[Task] = set()

    async def serve_one(client: ksocket.Socket, address: Any) -> None:
        me = running_task()
        try:
            if ssl is not None:
                client = await _start_tls(client, ssl, True, None)
            async with client:
                await handler(client, address)
        except TaskCancelled:
            raise
        except Exception as error:  # reported, and the server goes on serving the others
            log.error("connection handler %r for %r crashed", handler, address, exc_info=error)
        finally:
            handlers.discard(me)

    try:
        task_status.started(sock.getsockname())
        while True:
            client, address = await sock.accept()
            handlers.add(await spawn(serve_one, client, address, name=f"handler {address}"))
    finally:
        for task in list(handlers):
            await _cancel(task, TaskCancelled("the server is shutting down"))
        for task in list(handlers):
            await _wait_task(task)
        await sock.close()


def _check_server_ssl(ssl: Any) -> None:
    if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
        raise TypeError(f"a server's ssl= takes an ssl.SSLContext, not {ssl!r}")


async def tcp_server(
    host: str,
    port: int,
    handler: Handler,
    *,
    family: int = ksocket.AF_INET,
    backlog: int = 100,
    ssl: Any = None,
    reuse_address: bool = True,
    reuse_port: bool = False,
    task_status: TaskStatus[Any] = TASK_STATUS_IGNORED,
) -> None:
    """Serve TCP connections on ``host:port`` with ``handler(client, address)``, forever.

    Run it in a task (or ``await TaskGroup.start(tcp_server, ...)`` to learn the bound
    address, e.g. with port 0); cancel that task to stop the server.
    """
    _check_server_ssl(ssl)  # before a socket exists that would need closing
    sock = tcp_server_socket(host, port, family, backlog, reuse_address, reuse_port)
    await run_server(sock, handler, ssl=ssl, task_status=task_status)


async def unix_server(
    path: str,
    handler: Handler,
    *,
    backlog: int = 100,
    ssl: Any = None,
    task_status: TaskStatus[Any] = TASK_STATUS_IGNORED,
) -> None:
    """Serve connections on the Unix socket at ``path`` with ``handler``, forever."""
    _check_server_ssl(ssl)
    sock = unix_server_socket(path, backlog)
    await run_server(sock, handler, ssl=ssl, task_status=task_status)
