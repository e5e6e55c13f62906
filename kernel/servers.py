"""Servers: serve every connection with a handler task, until cancelled.

::

    async def handler(client, address):
        async with client:
            while data := await client.recv(1000):
                await client.sendall(data)

    await kernel.tcp_server("127.0.0.1", 8000, handler)          # serves until cancelled

A server runs one task per connection. A handler that crashes does not take the server down:
its exception (a ``TaskTimeout`` of its own included) is logged with its traceback, its
connection is closed, and the other connections go on. Nor does an ``accept()`` that fails
for want of descriptors or memory: the server logs it, pauses, and accepts again. Cancelling
the server cancels every handler and closes every connection before the cancellation leaves
``tcp_server`` -- with cancellation disabled meanwhile, so a second one cannot cut that short.

With ``ssl=``, a server's ``ssl.SSLContext``, each connection's handshake runs in its
handler's task (``kernel/tls.py``); a client that fails it, or has not finished it within
``ssl_handshake_timeout`` seconds, is logged as a warning (the handler never ran). A context
made for the other side is refused before any socket exists.

A host name to listen on is resolved in a worker thread (``kernel/resolver.py``), never by
``bind()``, which would resolve it in the C library on the kernel's own thread and stall
every task for as long as DNS takes.

Read next: ``kernel/streams.py``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket as _stdlib_socket
import ssl as _ssl
import stat
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import resolver
from . import socket as ksocket
from .errors import CancelledError, TaskCancelled, TaskTimeout
from .scheduler import running_task
from .task import Task, disable_cancellation, spawn
from .taskgroup import TASK_STATUS_IGNORED
from .time import _check_seconds, sleep, timeout_after
from .tls import start_tls
from .traps import _cancel, _wait_task

if TYPE_CHECKING:
    from trio_typing import TaskStatus

__all__ = [
    "run_server",
    "tcp_server",
    "tcp_server_socket",
    "unix_server",
    "unix_server_socket",
]

log = logging.getLogger("kernel")

Handler = Callable[[ksocket.Socket, Any], Awaitable[Any]]

# What names a Unix socket: a str or bytes path (or abstract name), or a path-like object.
UnixPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]

# accept() failures that say "not now" rather than "never": the process or the system is out
# of descriptors or memory. Connections that are already open may close and free some, so
# the server pauses this long (on the kernel's clock) and accepts again instead of ending.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_RETRY_SECONDS = 0.1

# How long a server gives a client to finish the TLS handshake (asyncio's default too): a
# client that connects and then says nothing must not hold a handler task and a descriptor.
TLS_HANDSHAKE_TIMEOUT = 60.0


def _check_server_ssl(ssl: Any, handshake_timeout: Any) -> None:
    """A server's ``ssl=`` and ``ssl_handshake_timeout=``, checked before a socket exists
    that would need closing."""
    if handshake_timeout is not None and not (
        _check_seconds(handshake_timeout, "ssl_handshake_timeout") > 0
    ):
        raise ValueError(
            f"ssl_handshake_timeout must be a positive number of seconds (or None for no "
            f"limit), not {handshake_timeout!r}"
        )
    if ssl is None:
        return
    if not isinstance(ssl, _ssl.SSLContext):
        raise TypeError(f"a server's ssl= takes an ssl.SSLContext, not {ssl!r}")
    # The stdlib refuses either on a server socket: every connection would fail, one at a
    # time, far from the mistake.
    if ssl.protocol == _ssl.PROTOCOL_TLS_CLIENT:
        raise ValueError(
            "a server's ssl= got a client-side context (protocol PROTOCOL_TLS_CLIENT), such "
            "as ssl.create_default_context() makes; make the server's with "
            "ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) and load its certificate "
            "with load_cert_chain()"
        )
    if ssl.check_hostname:
        raise ValueError(
            "a server's ssl= context has check_hostname=True, and the ssl module refuses to "
            "wrap a server's socket with it (a server has no host name to check). Set "
            "context.check_hostname = False: it checks nothing on a server's side, and a "
            "client's certificate is still verified as context.verify_mode says"
        )


def tcp_server_socket(
    host: str,
    port: int,
    family: int = ksocket.AF_INET,
    backlog: int = 100,
    reuse_address: bool = True,
    reuse_port: bool = False,
) -> ksocket.Socket:
    """A bound, listening TCP ``Socket`` (port 0 picks a free one: see ``getsockname()``).

    Give ``host`` as a numeric address: a name is resolved by ``bind()``, blocking every
    task until DNS answers (``tcp_server`` resolves it in a worker thread first).
    """
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


def unix_server_socket(path: UnixPath, backlog: int = 100) -> ksocket.Socket:
    """A bound, listening Unix ``Socket`` at ``path`` (``str``, ``bytes`` or path-like).

    A socket file left there by a server that is gone is replaced; one that a running
    server still listens on is not: that is ``OSError(EADDRINUSE)``, and so is one that a
    test connection cannot show to be stale (a datagram server's, another user's). A
    ``path`` that starts with a NUL byte names a socket in Linux's abstract namespace:
    there is no file, so nothing stale to look for (the kernel refuses a name in use by
    itself).
    """
    path = os.fspath(path)  # (a pathlib.Path, say: the stdlib's bind() takes no other)
    if path[:1] not in ("\0", b"\0"):
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                in_use = _in_use_error(path, _probe(path))
                if in_use is not None:
                    raise in_use
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


# What a test connection to a Unix socket file answers when no socket is behind it:
# ECONNREFUSED, the file is all that is left of a server that is gone; ENOENT, the file
# itself went meanwhile. Whatever else it answers, some socket may be there.
_NOBODY_THERE = frozenset({errno.ECONNREFUSED, errno.ENOENT})


def _probe(path: str | bytes) -> int:
    """Try a stream connection to the Unix socket file at ``path``: 0 if it was accepted,
    else the ``errno`` of the refusal.

    A Unix connect does not wait for the other side, so this never blocks: it is accepted
    into the backlog (or refused with EAGAIN, the backlog full) if a server listens.
    """
    with _stdlib_socket.socket(_stdlib_socket.AF_UNIX, _stdlib_socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        return probe.connect_ex(path)


def _in_use_error(path: str | bytes, probe_errno: int) -> OSError | None:
    """The ``OSError(EADDRINUSE)`` to refuse ``path`` with, given what ``_probe`` answered;
    None if the socket file there is stale, and may be replaced.

    Discussion: only a refusal that says no socket is behind the file makes it stale. Any
    other refusal may come from a running server: EPROTOTYPE from a datagram or seqpacket
    one (the probe is a stream socket), EACCES from one whose file we may not write to
    (another user's). Replacing its file would take its address from it, unseen, while
    it goes on running; so when in doubt, the file stays and the caller is told why.
    """
    if probe_errno == 0 or probe_errno == errno.EAGAIN:
        return OSError(
            errno.EADDRINUSE,
            f"a running server listens on {path!r} (it took a test connection); stop it "
            f"first, or serve on another path",
        )
    if probe_errno in _NOBODY_THERE:
        return None
    if probe_errno == errno.EPROTOTYPE:
        found = "a running server of another socket type (datagram or seqpacket) is bound there"
    else:
        found = "a running server may be bound there"
    name = errno.errorcode.get(probe_errno, str(probe_errno))
    return OSError(
        errno.EADDRINUSE,
        f"{path!r} is in use: a test connection to it failed with {name} "
        f"({os.strerror(probe_errno)}), not ECONNREFUSED as from a file left by a server "
        f"that is gone, so {found}; stop that server (or, if you know the file is stale, "
        f"remove it yourself), or serve on another path",
    )


async def _accept(sock: ksocket.Socket) -> tuple[ksocket.Socket, Any]:
    """The next connection on the listening ``sock``, riding out the failures that pass.

    Out of descriptors or memory, the error is logged (once per run of failures) and
    accepting resumes after a pause, the clients waiting in the backlog meanwhile. A
    connection its client aborted before it was accepted is skipped. Any other error is
    raised, and ends the server.
    """
    logged = False
    while True:
        try:
            return await sock.accept()
        except OSError as error:
            if error.errno == errno.ECONNABORTED:
                continue  # that client gave up while queued: the next one is not affected
            if error.errno not in _OUT_OF_RESOURCES:
                raise
            if not logged:
                log.error(
                    "accepting a connection on %r failed (%s); retrying every %g s",
                    sock.getsockname(),
                    error,
                    _ACCEPT_RETRY_SECONDS,
                )
                logged = True
            await sleep(_ACCEPT_RETRY_SECONDS)


async def run_server(
    sock: ksocket.Socket,
    handler: Handler,
    *,
    ssl: Any = None,
    ssl_handshake_timeout: float | None = TLS_HANDSHAKE_TIMEOUT,
    task_status: TaskStatus[Any] = TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on a listening ``sock`` forever, one ``handler`` task each.

    Cancelled (or on error), it closes ``sock``, then cancels every handler and waits for
    them; a second cancellation arriving meanwhile waits until that is done. The handler
    tasks are daemons if the server's task is one (spawned with ``daemon=True``), so the
    kernel ends them quietly at exit, as it does the server.
    ``task_status.started(address)`` reports the address it listens on. With ``ssl``, a
    client gets ``ssl_handshake_timeout`` seconds (None: no limit) to finish the handshake;
    an ``ssl`` or ``ssl_handshake_timeout`` that cannot work is refused, ``sock`` closed.
    """
    try:
        _check_server_ssl(ssl, ssl_handshake_timeout)
    except BaseException:
        await sock.close()  # it would go on queueing clients that nobody accepts
        raise
    handlers: set[Task] = set()
    daemon = running_task().daemon  # a daemon server's handlers are daemons too

    async def serve_one(client: ksocket.Socket, address: Any) -> None:
        me = running_task()
        try:
            if ssl is not None:
                try:
                    async with timeout_after(ssl_handshake_timeout):
                        client = await start_tls(client, ssl, True, None)
                except TaskTimeout:  # _start_tls closed the client
                    log.warning(
                        "TLS handshake with %r did not finish within %s s; connection closed",
                        address,
                        ssl_handshake_timeout,
                    )
                    return
                except OSError as error:  # ssl.SSLError is one; _start_tls closed the client
                    # A port scanner, a plain-text client, one that does not trust our
                    # certificate: the client's trouble, not a crash (the handler never ran).
                    log.warning("TLS handshake with %r failed: %s", address, error)
                    return
            async with client:
                await handler(client, address)
        except TaskCancelled:
            raise  # the server is shutting down
        except (Exception, CancelledError) as error:  # reported; the others go on being served
            # A TaskTimeout is a CancelledError, but one leaving the handler can only come
            # from its own timeout_after: a bug of the handler's like any other exception.
            log.error("connection handler %r for %r crashed", handler, address, exc_info=error)
        finally:
            handlers.discard(me)

    try:
        task_status.started(sock.getsockname())
        while True:
            client, address = await _accept(sock)
            handler_task = await spawn(
                serve_one, client, address, daemon=daemon, name=f"handler {address}"
            )
            handlers.add(handler_task)
    finally:
        # Discussion: waiting for the handlers blocks, and a blocking call is where a second
        # cancellation (an enclosing timeout, a group cancelling its members) would land,
        # leaving with the port open and handlers still running. So cancellation waits until
        # this is done. The listening socket closes first, so that no client is queued
        # behind a shutdown that will never accept it -- and closes even if the rest fails.
        async with disable_cancellation():
            try:
                await sock.close()
            finally:
                for task in list(handlers):
                    await _cancel(task, TaskCancelled("the server is shutting down"))
                for task in list(handlers):
                    await _wait_task(task)


async def tcp_server(
    host: str,
    port: int,
    handler: Handler,
    *,
    family: int = ksocket.AF_INET,
    backlog: int = 100,
    ssl: Any = None,
    ssl_handshake_timeout: float | None = TLS_HANDSHAKE_TIMEOUT,
    reuse_address: bool = True,
    reuse_port: bool = False,
    task_status: TaskStatus[Any] = TASK_STATUS_IGNORED,
) -> None:
    """Serve TCP connections on ``host:port`` with ``handler(client, address)``, forever.

    Run it in a task (or ``await TaskGroup.start(tcp_server, ...)`` to learn the bound
    address, e.g. with port 0); cancel that task to stop the server.
    """
    _check_server_ssl(ssl, ssl_handshake_timeout)  # before a socket exists to close
    address = await resolver.numeric_host(host, family)
    sock = tcp_server_socket(address, port, family, backlog, reuse_address, reuse_port)
    await run_server(
        sock, handler, ssl=ssl, ssl_handshake_timeout=ssl_handshake_timeout, task_status=task_status
    )


async def unix_server(
    path: UnixPath,
    handler: Handler,
    *,
    backlog: int = 100,
    ssl: Any = None,
    ssl_handshake_timeout: float | None = TLS_HANDSHAKE_TIMEOUT,
    task_status: TaskStatus[Any] = TASK_STATUS_IGNORED,
) -> None:
    """Serve connections on the Unix socket at ``path`` with ``handler``, forever.

    A ``path`` starting with a NUL byte is a name in Linux's abstract namespace.
    """
    _check_server_ssl(ssl, ssl_handshake_timeout)
    sock = unix_server_socket(path, backlog)
    await run_server(
        sock, handler, ssl=ssl, ssl_handshake_timeout=ssl_handshake_timeout, task_status=task_status
    )
