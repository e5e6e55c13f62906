"""``kernel.socket``: the stdlib ``socket`` module, with the blocking calls made async.

Use it where you would use ``socket``::

    from kernel import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    await sock.connect(("127.0.0.1", 8000))
    await sock.sendall(b"hello")
    reply = await sock.recv(1024)

Every name of the stdlib module is here (constants, exceptions, ``inet_aton``...), looked up
in the stdlib on first use. What differs: ``socket()``, ``socketpair()``, ``fromfd()`` and
``create_server()`` return a ``Socket``, whose calls that can block are coroutines; and the
resolver calls (``getaddrinfo`` and friends), which block in the C library, run in the
kernel's worker threads -- as does the look-up of a host name given to ``connect`` or
``sendto``. A ``Socket`` stays non-blocking: ``settimeout()`` (other than 0) and
``setblocking(True)`` raise ``RuntimeError`` (bound a call with ``kernel.timeout_after``
instead), as does ``makefile()`` (use ``as_stream()``), and ``recv`` returns what has
arrived, so ``MSG_WAITALL`` is not honoured.

This module is the stdlib's face: the constructors, ``create_connection``, the resolver
(``kernel/resolver.py``) and descriptor passing. The ``Socket`` object is in
``kernel/asyncsocket.py``, its TLS form in ``kernel/tls.py``.

Read next: ``kernel/clients.py``, then ``kernel/servers.py``.
"""

from __future__ import annotations

import array
import socket as _stdlib
from typing import Any

from . import resolver
from .asyncsocket import Socket
from .resolver import (
    getaddrinfo,
    getfqdn,
    gethostbyaddr,
    gethostbyname,
    gethostbyname_ex,
    getnameinfo,
)
from .tls import SSLSocket, wrap_ssl

__all__ = [
    "SSLSocket",
    "Socket",
    "create_connection",
    "create_server",
    "fromfd",
    "getaddrinfo",
    "getfqdn",
    "gethostbyaddr",
    "gethostbyname",
    "gethostbyname_ex",
    "getnameinfo",
    "recv_fds",
    "send_fds",
    "socket",
    "socketpair",
    "wrap_ssl",
]
# ``from kernel.socket import *`` stands in for ``from socket import *``, so it gives the
# stdlib's public names too. A name the kernel defines is a global here, found before the
# module ``__getattr__`` is asked: the kernel's version wins.
__all__ += [name for name in _stdlib.__all__ if name not in __all__]


def __getattr__(name: str) -> Any:
    """Everything else is the stdlib's: constants, exceptions, helpers."""
    try:
        return getattr(_stdlib, name)
    except AttributeError:
        raise AttributeError(f"module 'kernel.socket' has no attribute {name!r}") from None


# -- constructors: the stdlib's, returning a kernel Socket ---------------------------------


def socket(family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> Socket:
    """Like ``socket.socket``: a new ``Socket``."""
    return Socket(_stdlib.socket(family, type, proto, fileno))


def socketpair(
    family: int = _stdlib.AF_UNIX, type: int = _stdlib.SOCK_STREAM, proto: int = 0
) -> tuple[Socket, Socket]:
    """Like ``socket.socketpair``: two connected ``Socket``s."""
    a, b = _stdlib.socketpair(family, type, proto)
    return Socket(a), Socket(b)


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> Socket:
    """Like ``socket.fromfd``: a ``Socket`` on a duplicate of ``fd``."""
    return Socket(_stdlib.fromfd(fd, family, type, proto))


def create_server(address: Any, **kwargs: Any) -> Socket:
    """Like ``socket.create_server``: a listening ``Socket`` (binding does not block)."""
    return Socket(_stdlib.create_server(address, **kwargs))


async def create_connection(
    address: tuple[str, int],
    timeout: float | None = None,
    source_address: Any = None,
    *,
    all_errors: bool = False,
) -> Socket:
    """Like ``socket.create_connection``: resolve ``address`` and connect to the first
    address that answers. ``timeout`` bounds the whole attempt (``TaskTimeout``).

    If every address fails, raises like the stdlib: the last address's error (a
    ``ConnectionRefusedError``, say), or with ``all_errors=True`` an ``ExceptionGroup`` of
    them all, in order.
    """
    from .time import timeout_after

    return await timeout_after(timeout, _connect_first, address, source_address, all_errors)


async def _connect_first(address: tuple[str, int], source_address: Any, all_errors: bool) -> Socket:
    host, port = address
    errors: list[OSError] = []
    addresses = await resolver.getaddrinfo(host, port, 0, _stdlib.SOCK_STREAM)
    for family, type_, proto, _, sockaddr in addresses:
        sock = None
        try:
            # In the try: a family this host cannot make (EAFNOSUPPORT for IPv6 where it
            # is disabled, though the resolver returns ::1) is one more address that failed.
            sock = socket(family, type_, proto)
            if source_address:  # a name in it resolved for this address's family
                host_to_bind = await resolver.numeric_host(source_address[0], family)
                sock.bind((host_to_bind, *source_address[1:]))
            await sock.connect(sockaddr)
        except BaseException as error:
            if sock is not None:
                await sock.close()
            if not isinstance(error, OSError):
                raise  # a cancellation or a timeout ends the whole attempt
            errors.append(error)
        else:
            return sock
    if not errors:
        raise OSError(f"getaddrinfo returned no address for {address!r}")
    try:
        if all_errors:
            raise ExceptionGroup(f"create_connection to {address!r} failed", errors)
        raise errors[-1]
    finally:
        errors.clear()  # each error's traceback holds this frame: break the cycle


# -- descriptors over AF_UNIX: the stdlib's helpers, on the async sendmsg/recvmsg -----------


async def send_fds(
    sock: Socket, buffers: Any, fds: Any, flags: int = 0, address: Any = None
) -> int:
    """Like ``socket.send_fds``: send ``buffers`` with the descriptors ``fds`` attached
    (``SCM_RIGHTS``); returns the number of bytes sent. The descriptors stay open here.

    Discussion: the stdlib's ``send_fds`` and ``recv_fds`` call ``sock.sendmsg`` and
    ``sock.recvmsg`` and use the result at once; on a ``Socket`` those are coroutines. (These
    also pass ``flags`` and ``address`` on, as documented; the stdlib's ignore them.)
    """
    rights = [(_stdlib.SOL_SOCKET, _stdlib.SCM_RIGHTS, array.array("i", fds))]
    return await sock.sendmsg(buffers, rights, flags, address)


async def recv_fds(
    sock: Socket, bufsize: int, maxfds: int, flags: int = 0
) -> tuple[bytes, list[int], int, Any]:
    """Like ``socket.recv_fds``: receive up to ``bufsize`` bytes and up to ``maxfds``
    descriptors; returns ``(data, fds, msg_flags, address)``. The descriptors are new ones,
    the caller's to close (``MSG_CTRUNC`` in ``msg_flags``: more were sent than fitted).
    """
    fds = array.array("i")
    space = _stdlib.CMSG_LEN(maxfds * fds.itemsize)
    data, ancillary, msg_flags, address = await sock.recvmsg(bufsize, space, flags)
    for level, kind, payload in ancillary:
        if level == _stdlib.SOL_SOCKET and kind == _stdlib.SCM_RIGHTS:
            whole = len(payload) - len(payload) % fds.itemsize  # a truncated one is dropped
            fds.frombytes(payload[:whole])
    return data, list(fds), msg_flags, address
