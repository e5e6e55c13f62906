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

Every blocking call follows one pattern -- *try, park, retry*: the socket is non-blocking,
so the call either succeeds at once or raises ``BlockingIOError``; then the task parks in the
I/O wait table (the ``IO_WAIT`` trap) until the selector says the descriptor is ready, and
tries again. ``docs/io.md`` follows one ``recv`` through this path.

Invariant: a ``Socket`` closed through ``close()`` is first released from the I/O wait table
(the ``IO_RELEASE`` trap), so a task parked on it wakes with ``OSError(EBADF)`` instead of
waiting forever.

Read next: ``kernel/streams.py``.
"""

from __future__ import annotations

import array
import errno
import functools
import ipaddress
import os
import socket as _stdlib
import ssl as _ssl
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from .iotable import EVENT_READ, EVENT_WRITE
from .lifecycle import current_kernel
from .resource import AsyncResource
from .streams import SocketStream
from .threads import run_in_thread
from .traps import _io_release, _io_wait

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

T = TypeVar("T")

# connect_ex() on a non-blocking socket: "started, the answer comes later". Not EAGAIN: on
# Linux it means the attempt was never started (a Unix listener's backlog is full, or no
# local port is free), and waiting for "writable" would then report success on a socket
# that is not connected. Windows says "in progress" with its own EWOULDBLOCK (WSAEWOULDBLOCK),
# which is only counted where it is not EAGAIN's number.
_IN_PROGRESS = frozenset(
    {errno.EINPROGRESS, errno.EALREADY}
    | ({errno.EWOULDBLOCK} if errno.EWOULDBLOCK != errno.EAGAIN else set())
)


def __getattr__(name: str) -> Any:
    """Everything else is the stdlib's: constants, exceptions, helpers."""
    try:
        return getattr(_stdlib, name)
    except AttributeError:
        raise AttributeError(f"module 'kernel.socket' has no attribute {name!r}") from None


class Socket(AsyncResource):
    """A stdlib socket in non-blocking mode whose blocking calls are coroutines.

    Methods that never block (``bind``, ``listen``, ``getsockname``, ``setsockopt``,
    ``fileno``...) are the stdlib socket's own, reached through attribute delegation.
    """

    def __init__(self, sock: _stdlib.socket) -> None:
        sock.setblocking(False)
        self._socket = sock
        # The hot paths call these directly: one attribute lookup instead of two.
        self._recv = sock.recv
        self._send = sock.send
        self._drained = False  # the last recv emptied the receive buffer (see recv)

    def __repr__(self) -> str:
        sock = self.__dict__.get("_socket")  # absent in an instance made by __new__ alone
        return f"<kernel {sock!r}>" if sock is not None else "<kernel Socket, uninitialised>"

    def __del__(self) -> None:
        # Dropped without close(): the stdlib socket is left to its own fate -- kept by
        # whoever else holds it, or closed (with its ResourceWarning) -- as it would be
        # without the kernel, whose I/O table must not keep it open (IOWaitTable.forget_idle).
        sock = self.__dict__.get("_socket")
        kernel = current_kernel()
        if sock is not None and kernel is not None:
            kernel._io.forget_idle(sock)

    def __getattr__(self, name: str) -> Any:
        # Asked only for what the instance lacks. An instance made by __new__ alone (as
        # copy and pickle make them) lacks _socket itself: looking it up here would recurse.
        if name == "_socket":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute '_socket'")
        return getattr(self._socket, name)

    def __getstate__(self) -> NoReturn:
        """Refuse, as the stdlib socket does: ``TypeError`` from ``copy``, ``deepcopy`` and
        ``pickle``. A copy would share the descriptor, and two ``Socket``s closing one
        descriptor (each releasing it from the I/O table) is what ``dup()`` exists to avoid.
        """
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    def makefile(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refuse with ``RuntimeError``: use ``as_stream()`` instead.

        Discussion: the stdlib's ``makefile`` reads and writes with the socket's blocking
        calls. On the kernel's non-blocking socket a read that finds nothing yet returns
        ``b""`` or ``None`` -- a false end of file -- and a write can stop part-way. It is
        found here so that it is not reached through attribute delegation.
        """
        raise RuntimeError(
            "makefile() would give a file over the kernel's non-blocking socket, whose reads "
            "report end of file whenever no data has arrived yet. Use sock.as_stream() instead: "
            "a buffered stream whose read, readline and write are coroutines."
        )

    def fileno(self) -> int:
        return self._socket.fileno()

    # Discussion: the kernel parks a task instead of letting a call block, so the socket
    # must stay non-blocking. A blocking stdlib socket would freeze every task (and every
    # timeout) until its call returned: these two refuse rather than reach the stdlib.
    # gettimeout() is the stdlib's, and answers 0.0.

    def settimeout(self, timeout: float | None) -> None:
        """Accept only 0 (non-blocking, which the socket already is); else ``RuntimeError``."""
        if timeout is None or timeout != 0:
            raise _stays_non_blocking(f"settimeout({timeout!r})")

    def setblocking(self, flag: bool) -> None:
        """``setblocking(False)`` does nothing (the socket already is); ``True`` raises."""
        if flag:
            raise _stays_non_blocking(f"setblocking({flag!r})")

    @property
    def stdlib_socket(self) -> _stdlib.socket:
        """The wrapped stdlib socket (non-blocking: do not call its blocking methods)."""
        return self._socket

    async def _retry(self, call: Callable[[], T], event: int) -> T:
        """Try ``call``; while it would block, park until the socket is ready, then retry."""
        while True:
            try:
                return call()
            except BlockingIOError:
                await _io_wait(self._socket, event)

    # -- receiving -----------------------------------------------------------------------

    async def recv(self, maxsize: int, flags: int = 0) -> bytes:
        """Receive up to ``maxsize`` bytes; ``b""`` once the peer has closed its side.

        Discussion: after a read that came back short, the receive buffer is empty, and
        in a request/response protocol the next ``recv`` comes right after we answered:
        trying it first would fail (a wasted system call and a ``BlockingIOError``) on
        nearly every message. So after a short read it parks first. That costs nothing
        when data did arrive meanwhile: the descriptor is still registered, and the
        selector reports it ready on the next poll.

        Not for ``recv(0)``, which needs no data, nor with ``flags``: urgent data
        (``MSG_OOB``) does not make the socket readable. Parked first, those could wait
        forever. They just try, and leave ``_drained`` as it was.
        """
        if flags or maxsize <= 0:
            return await self._recv_at_once(maxsize, flags)
        if self._drained:
            await _io_wait(self._socket, EVENT_READ)
        while True:
            try:
                data = self._recv(maxsize, flags)
            except BlockingIOError:
                await _io_wait(self._socket, EVENT_READ)
            else:
                self._drained = 0 < len(data) < maxsize
                return data

    async def _recv_at_once(self, maxsize: int, flags: int) -> bytes:
        """``recv`` without parking first. (A method of its own: a lambda in ``recv`` would
        turn its arguments into closure cells, on every call, taken or not.)"""
        return await self._retry(lambda: self._recv(maxsize, flags), EVENT_READ)

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        return await self._retry(lambda: self._socket.recv_into(buffer, nbytes, flags), EVENT_READ)

    async def recvfrom(self, maxsize: int, flags: int = 0) -> tuple[bytes, Any]:
        return await self._retry(lambda: self._socket.recvfrom(maxsize, flags), EVENT_READ)

    async def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        call = self._socket.recvfrom_into
        return await self._retry(lambda: call(buffer, nbytes, flags), EVENT_READ)

    async def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> Any:
        return await self._retry(
            lambda: self._socket.recvmsg(bufsize, ancbufsize, flags), EVENT_READ
        )

    async def recvmsg_into(self, buffers: Any, ancbufsize: int = 0, flags: int = 0) -> Any:
        return await self._retry(
            lambda: self._socket.recvmsg_into(buffers, ancbufsize, flags), EVENT_READ
        )

    # -- sending -------------------------------------------------------------------------

    async def send(self, data: Any, flags: int = 0) -> int:
        while True:
            try:
                return self._send(data, flags)
            except BlockingIOError:
                await _io_wait(self._socket, EVENT_WRITE)

    async def sendall(self, data: Any, flags: int = 0) -> None:
        """Send every byte of ``data``. If cancelled part-way, the exception carries
        ``bytes_sent``: what the peer may already have."""
        sent = 0
        try:
            if type(data) is bytes:  # the common case: one call takes it all
                try:  # noqa: SIM105 -- the hot path: a try is free, a context manager is not
                    sent = self._send(data, flags)
                except BlockingIOError:
                    pass
                if sent == len(data):
                    return
            with memoryview(data) as view, _flat_bytes(view) as remaining:
                total = len(remaining)
                while sent < total:
                    try:
                        sent += self._send(remaining[sent:], flags)
                    except BlockingIOError:
                        await _io_wait(self._socket, EVENT_WRITE)
        except BaseException as error:
            error.bytes_sent = sent  # type: ignore[attr-defined]
            raise

    async def sendto(self, data: Any, *flags_and_address: Any) -> int:
        """Like the stdlib's ``sendto(data[, flags], address)``; a host name in ``address`` is
        looked up first, in a worker thread (see ``connect_ex``). Numbers go straight on."""
        if flags_and_address and _names_a_host(flags_and_address[-1]):
            *flags, address = flags_and_address
            flags_and_address = (*flags, await self._resolved(address))
        return await self._retry(lambda: self._socket.sendto(data, *flags_and_address), EVENT_WRITE)

    async def sendmsg(self, buffers: Any, *rest: Any) -> int:
        return await self._retry(lambda: self._socket.sendmsg(buffers, *rest), EVENT_WRITE)

    # -- connections ---------------------------------------------------------------------

    async def accept(self) -> tuple[Socket, Any]:
        client, address = await self._retry(self._socket.accept, EVENT_READ)
        return type(self)(client), address

    async def connect(self, address: Any) -> None:
        error = await self.connect_ex(address)
        if error:
            raise OSError(error, f"connect to {address!r}: {os.strerror(error)}")

    async def connect_ex(self, address: Any) -> int:
        """Connect; return 0 or the ``errno`` of the failure (like the stdlib's: ``EISCONN``
        for a socket that is already connected, ``EAGAIN`` for a Unix listener whose
        backlog is full).

        Discussion: given a host name, the stdlib's ``connect_ex`` resolves it in the C
        library, on the kernel's thread: every task would stand still for as long as DNS
        takes (and this asks the stdlib twice). So a name is looked up first, once, in a
        worker thread, and the stdlib only ever sees numbers.
        """
        if _names_a_host(address):
            address = await self._resolved(address)
        error = self._socket.connect_ex(address)
        if error not in _IN_PROGRESS:
            return error
        await _io_wait(self._socket, EVENT_WRITE)  # the connection attempt has an answer
        error = self._socket.getsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_ERROR)
        if error:
            return error
        # Discussion: Linux counts the socket as connected only once connect() has seen the
        # attempt through; until then the next connect() returns 0 instead of EISCONN, so
        # a second connect to another address would seem to succeed. Asking once more
        # finishes it: 0 here, EISCONN where the system already counts it connected.
        error = self._socket.connect_ex(address)
        return 0 if error == errno.EISCONN else error

    async def _resolved(self, address: tuple[Any, ...]) -> tuple[Any, ...]:
        """``address`` with its host name replaced by its first address in this socket's
        family, for ``AF_INET`` and ``AF_INET6``; another family's tuple (an interface name
        for ``AF_PACKET``, say) names no host, and stays as it is."""
        family = self._socket.family
        if family != _stdlib.AF_INET and family != _stdlib.AF_INET6:
            return address
        host = address[0]
        if type(host) is not str:  # bytes (_names_a_host let nothing else through)
            host = _host_text(host)
        return (await _bind_host(host, family), *address[1:])

    async def shutdown(self, how: int) -> None:
        self._socket.shutdown(how)

    async def close(self) -> None:
        """Close the socket; a task still waiting on it wakes with ``OSError(EBADF)``."""
        # A later recv must try, and get the stdlib's OSError(EBADF): parked first, it would
        # get the I/O table's ValueError for a closed socket instead.
        self._drained = False
        if self._socket.fileno() >= 0:
            await _io_release(self._socket)
            self._socket.close()

    def as_stream(self) -> SocketStream:
        """A buffered stream over this socket (``read``, ``readline``, ``write``...)."""
        return SocketStream(self)

    def dup(self) -> Socket:
        return type(self)(self._socket.dup())


def _names_a_host(address: Any) -> bool:
    """Whether the stdlib would resolve ``address``'s host: a ``(host, port...)`` tuple whose
    host is a name, not numbers. Cheap when it is numbers (``_is_numeric`` remembers)."""
    if type(address) is not tuple or not address:
        return False  # a Unix path, say; or no address at all, for the stdlib to refuse
    host = address[0]
    if isinstance(host, bytes | bytearray):  # the stdlib takes these too
        host = _host_text(host)
    return type(host) is str and not _is_numeric(host)


def _host_text(host: bytes | bytearray) -> str:
    """A host given as bytes, as text. (Latin-1 maps every byte to one character, so
    nothing fails here; a numeric address is ASCII, and a name is the resolver's to judge.)"""
    return bytes(host).decode("latin-1")


def _flat_bytes(view: memoryview) -> memoryview:
    """``view`` as one flat run of bytes, for ``sendall`` to slice by byte count.

    A buffer that is not C-contiguous (a strided slice, say) the stdlib refuses to send with
    a ``BufferError``; ``cast`` would say ``TypeError``. Say what the stdlib says.
    """
    if not view.c_contiguous:
        raise BufferError(
            "sendall() needs a C-contiguous buffer; copy this one first (bytes(view))"
        )
    return view.cast("B")


def _stays_non_blocking(call: str) -> RuntimeError:
    """The error for a call that would make a kernel ``Socket`` blocking."""
    return RuntimeError(
        f"{call} would make a kernel socket blocking, and its calls would then freeze every "
        f"task: it must stay non-blocking. To bound a call in time, use "
        f"kernel.timeout_after(seconds, sock.recv, ...) instead."
    )


class SSLSocket(Socket):
    """A ``Socket`` over an ``ssl.SSLSocket``.

    TLS can need the *other* direction to make progress (a read may have to send, a write
    may have to receive), so it reports ``SSLWantReadError`` / ``SSLWantWriteError`` rather
    than ``BlockingIOError``; every call here parks for whichever the TLS layer asks for.
    """

    _socket: _ssl.SSLSocket

    async def _retry(self, call: Callable[[], T], event: int) -> T:
        while True:
            try:
                return call()
            except BlockingIOError:
                await _io_wait(self._socket, event)
            except _ssl.SSLWantReadError:
                await _io_wait(self._socket, EVENT_READ)
            except _ssl.SSLWantWriteError:
                await _io_wait(self._socket, EVENT_WRITE)

    async def recv(self, maxsize: int, flags: int = 0) -> bytes:
        return await self._retry(lambda: self._recv(maxsize, flags), EVENT_READ)

    async def send(self, data: Any, flags: int = 0) -> int:
        return await self._retry(lambda: self._send(data, flags), EVENT_WRITE)

    async def sendall(self, data: Any, flags: int = 0) -> None:
        with memoryview(data) as view, _flat_bytes(view) as remaining:
            sent = 0
            try:
                while sent < len(remaining):
                    sent += await self.send(remaining[sent:], flags)
            except BaseException as error:
                error.bytes_sent = sent  # type: ignore[attr-defined]
                raise

    async def do_handshake(self) -> None:
        """Run the TLS handshake (sockets are wrapped with do_handshake_on_connect=False)."""
        await self._retry(self._socket.do_handshake, EVENT_READ)

    async def unwrap(self) -> Socket:
        """End TLS and return the plain socket underneath."""
        plain = await self._retry(self._socket.unwrap, EVENT_READ)
        return Socket(plain)


def wrap_ssl(
    sock: Socket, context: _ssl.SSLContext, *, server_side: bool, server_hostname: str | None
) -> SSLSocket:
    """Wrap a connected ``Socket`` in TLS (the handshake is ``await ssock.do_handshake()``).

    ``sock`` is used up either way: its descriptor moves to the ``SSLSocket``, or, if
    wrapping fails (a bad ``server_hostname``, say), it is closed.
    """
    raw = _stdlib.socket(fileno=sock.stdlib_socket.detach())
    try:
        wrapped = context.wrap_socket(
            raw,
            server_side=server_side,
            server_hostname=server_hostname,
            do_handshake_on_connect=False,
        )
    except BaseException:
        # ``sock`` no longer holds the descriptor, so closing ``sock`` would not close it:
        # only ``raw`` can (a no-op if wrap_socket had already taken and closed it).
        raw.close()
        raise
    return SSLSocket(wrapped)


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
    for family, type_, proto, _, sockaddr in await getaddrinfo(host, port, 0, _stdlib.SOCK_STREAM):
        sock = None
        try:
            # In the try: a family this host cannot make (EAFNOSUPPORT for IPv6 where it
            # is disabled, though the resolver returns ::1) is one more address that failed.
            sock = socket(family, type_, proto)
            if source_address:  # a name in it resolved for this address's family
                host_to_bind = await _bind_host(source_address[0], family)
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


@functools.lru_cache(maxsize=1024)
def _is_numeric(host: str) -> bool:
    """Whether the stdlib takes ``host`` without a resolver: ``""`` (every interface),
    ``"<broadcast>"``, or an address in numbers. Parsed in Python: no C resolver call, not
    even one that would only parse, can stall the kernel's thread.

    Remembered: ``sendto`` asks on every datagram, and a parse costs a third of a send.
    """
    if not host or host == "<broadcast>":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _bind_host(host: str, family: int) -> str:
    """``host`` as ``bind()``, ``connect()`` or ``sendto()`` can take it without blocking: a
    name becomes its first address in ``family``, looked up in a worker thread; a numeric
    one stays, with no thread hop.

    Discussion: ``socket.bind((name, port))`` resolves the name itself, in the C library, on
    the kernel's thread: every task would stand still for as long as DNS takes.
    """
    if _is_numeric(host):
        return host
    infos = await getaddrinfo(host, None, family, _stdlib.SOCK_STREAM)
    return str(infos[0][4][0])


# -- the resolver: blocking C calls, run in worker threads ----------------------------------


async def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo`` in a worker thread (it can block on DNS)."""
    result: list[tuple[Any, ...]] = await run_in_thread(
        _stdlib.getaddrinfo, host, port, family, type, proto, flags
    )
    return result


async def getnameinfo(sockaddr: Any, flags: int) -> tuple[str, str]:
    """``socket.getnameinfo`` in a worker thread."""
    result: tuple[str, str] = await run_in_thread(_stdlib.getnameinfo, sockaddr, flags)
    return result


async def gethostbyname(hostname: str) -> str:
    """``socket.gethostbyname`` in a worker thread."""
    result: str = await run_in_thread(_stdlib.gethostbyname, hostname)
    return result


async def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    """``socket.gethostbyname_ex`` in a worker thread."""
    result: tuple[str, list[str], list[str]] = await run_in_thread(
        _stdlib.gethostbyname_ex, hostname
    )
    return result


async def gethostbyaddr(address: str) -> tuple[str, list[str], list[str]]:
    """``socket.gethostbyaddr`` in a worker thread."""
    result: tuple[str, list[str], list[str]] = await run_in_thread(_stdlib.gethostbyaddr, address)
    return result


async def getfqdn(name: str = "") -> str:
    """``socket.getfqdn`` in a worker thread: it asks the resolver twice (a reverse lookup
    of the name's address)."""
    result: str = await run_in_thread(_stdlib.getfqdn, name)
    return result


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
