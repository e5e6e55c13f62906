"""``Socket``: a stdlib socket whose calls that can block are coroutines.

``kernel.socket`` (the drop-in for the stdlib module) makes these; this module is the
object itself. Methods that never block (``bind``, ``listen``, ``setsockopt``...) are the
stdlib socket's own, reached through attribute delegation.

Every call that can block follows one pattern -- *try, park, retry*: the socket is
non-blocking, so the call either succeeds at once or raises ``BlockingIOError``; then the
task parks in the I/O wait table (the ``IO_WAIT`` trap) until the selector says the
descriptor is ready, and tries again. ``docs/io.md`` follows one ``recv`` through this path.

Invariant: a ``Socket`` closed through ``close()`` is first released from the I/O wait table
(the ``IO_RELEASE`` trap), so a task parked on it wakes with ``OSError(EBADF)`` instead of
waiting forever.

Read next: ``kernel/tls.py``, the same over TLS.
"""

from __future__ import annotations

import errno
import os
import socket as _stdlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .iotable import EVENT_READ, EVENT_WRITE
from .lifecycle import let_go_of
from .resolver import names_a_host, numeric_address
from .resource import AsyncResource
from .streams import CHUNK_SIZE, SocketStream
from .traps import IO_WAIT, _io_release, _io_wait, prepared_trap

__all__ = ["Forwarded", "Socket", "flat_bytes", "forward_names"]

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
        # recv's wait for data, built once: ``await _io_wait(sock, EVENT_READ)`` without a
        # generator and a tuple per message (see kernel.traps.PreparedTrap).
        self._wait_readable = prepared_trap(IO_WAIT, sock, EVENT_READ)

    def __repr__(self) -> str:
        sock = self.__dict__.get("_socket")  # absent in an instance made by __new__ alone
        return f"<kernel {sock!r}>" if sock is not None else "<kernel Socket, uninitialised>"

    def __del__(self) -> None:
        # Dropped without close(): the stdlib socket is left to its own fate -- kept by
        # whoever else holds it, or closed (with its ResourceWarning) -- as it would be
        # without the kernel, whose I/O table must not keep it open (IOWaitTable.forget_idle).
        sock = self.__dict__.get("_socket")
        if sock is not None:
            let_go_of(sock)

    if TYPE_CHECKING:  # (at run time, Forwarded descriptors: see forward_names below)

        def __getattr__(self, name: str) -> Any: ...

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
            await self._wait_readable
        # (Through a local: on 3.11, ``self._recv(...)`` -- a call of a function kept on
        # the instance -- takes the slow, general lookup every time; reading it does not.)
        recv = self._recv
        while True:
            try:
                data = recv(maxsize, flags)
            except BlockingIOError:
                await self._wait_readable
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
                send = self._send  # (a local, as recv's: faster on 3.11 than self._send(...))
                try:  # noqa: SIM105 -- the hot path: a try is free, a context manager is not
                    sent = send(data, flags)
                except BlockingIOError:
                    pass
                if sent == len(data):
                    return
            with memoryview(data) as view, flat_bytes(view) as remaining:
                total = len(remaining)
                while sent < total:
                    try:
                        sent += self._send(remaining[sent:], flags)
                    except BlockingIOError:
                        await _io_wait(self._socket, EVENT_WRITE)
        except BaseException as error:
            error.bytes_sent = sent  # type: ignore[attr-defined]
            raise

    async def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send ``file`` (opened in binary mode) from byte ``offset`` on, ``count`` bytes of it
        (None: to its end); return how many were sent. As the stdlib's: ``os.sendfile`` where
        it takes the file (the bytes never pass through Python), else ``file.read`` and
        ``send``; the file's position ends just past the last byte sent, on an error too. If
        cancelled part-way, the exception carries ``bytes_sent``.

        Unlike the stdlib's ``read`` fallback, which starts from the file's position when
        ``offset`` is 0, both ways start at ``offset``. A file ``os.sendfile`` cannot take is
        read on the kernel's thread: an in-memory one is fine, a pipe whose ``read`` waits
        would stall every task (use a stream's ``read`` and ``sendall`` for those).

        Discussion: ``os.sendfile`` writes to the descriptor itself, so it is used only under
        a plain stdlib socket. Under a TLS one (an ``SSLSocket``, which inherits this) it
        would put the file's bytes on the wire unencrypted: there the bytes go through the
        socket's own ``send``.
        """
        _check_sendfile(self._socket, file, count)
        seekable = _seekable(file)
        source = _sendfile_source(self._socket, file)
        sent = 0
        try:
            if source is not None:
                sock_fd = self._socket.fileno()
                while count is None or sent < count:
                    # (A gibibyte at most per call: a larger count can overflow, bpo-38319.)
                    size = _SENDFILE_MOST if count is None else min(_SENDFILE_MOST, count - sent)
                    try:
                        just_sent = os.sendfile(sock_fd, source, offset + sent, size)
                    except BlockingIOError:
                        await _io_wait(self._socket, EVENT_WRITE)
                        continue
                    except OSError:
                        if sent:
                            raise
                        break  # not a file os.sendfile takes (a pipe, say): read it instead
                    if not just_sent:
                        break  # end of file
                    sent += just_sent
                if sent:
                    return sent
            if offset or seekable:
                file.seek(offset)
            while count is None or sent < count:
                size = CHUNK_SIZE if count is None else min(CHUNK_SIZE, count - sent)
                with memoryview(file.read(size)) as data:
                    if not data:
                        break
                    done = 0
                    while done < len(data):
                        just_sent = await self.send(data[done:])
                        done += just_sent
                        sent += just_sent
            return sent
        except BaseException as error:
            error.bytes_sent = sent  # type: ignore[attr-defined]
            raise
        finally:
            if sent and seekable:
                file.seek(offset + sent)

    async def sendto(self, data: Any, *flags_and_address: Any) -> int:
        """Like the stdlib's ``sendto(data[, flags], address)``; a host name in ``address`` is
        looked up first, in a worker thread (see ``connect_ex``). Numbers go straight on."""
        if flags_and_address and names_a_host(flags_and_address[-1]):
            *flags, address = flags_and_address
            address = await numeric_address(address, self._socket.family)
            flags_and_address = (*flags, address)
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
        if names_a_host(address):
            address = await numeric_address(address, self._socket.family)
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


class Forwarded:
    """A name a ``Socket`` hands on to the socket it wraps: ``sock.bind`` is
    ``sock._socket.bind``. Set on the class for every name the wrapped type answers that
    the ``Socket`` does not define itself (``forward_names``).

    Discussion: why not ``__getattr__``, which would forward whatever is asked? On CPython
    3.11, a class with a ``__getattr__`` gets none of the interpreter's fast paths for
    attribute lookups (``sock.recv``, ``self._drained``...): every one on its instances
    takes the slow, general route -- measured, about a ninth of an echo server's Python
    work per message. A descriptor per name costs the hot path nothing. It has no
    ``__set__``, so an attribute set on the instance still wins. The price: only the
    names of the stdlib's socket type are forwarded, not those a subclass of it adds
    (``stdlib_socket`` reaches them).
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, sock: Any, owner: Any = None) -> Any:
        if sock is None:
            return self
        return getattr(sock._socket, self.name)

    def __repr__(self) -> str:
        return f"<forwarded to the wrapped socket: {self.name}>"


def forward_names(cls: type, names: Any) -> None:
    """Forward to the wrapped socket each of ``names`` that ``cls`` lacks (dunders aside)."""
    for name in names:
        if not (name.startswith("__") and name.endswith("__")) and not hasattr(cls, name):
            setattr(cls, name, Forwarded(name))


# Everything of the stdlib socket's that Socket does not define: bind, listen, family...
forward_names(Socket, dir(_stdlib.socket))


def flat_bytes(view: memoryview) -> memoryview:
    """``view`` as one flat run of bytes, for ``sendall`` to slice by byte count.

    A buffer that is not C-contiguous (a strided slice, say) the stdlib refuses to send with
    a ``BufferError``; ``cast`` would say ``TypeError``. Say what the stdlib says.
    """
    if not view.c_contiguous:
        raise BufferError(
            "sendall() needs a C-contiguous buffer; copy this one first (bytes(view))"
        )
    return view.cast("B")


# The most one os.sendfile call is asked for.
_SENDFILE_MOST = 1 << 30


def _check_sendfile(sock: _stdlib.socket, file: Any, count: int | None) -> None:
    """Refuse what the stdlib's ``sendfile`` refuses, with its errors."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type & _stdlib.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")


def _sendfile_source(sock: _stdlib.socket, file: Any) -> int | None:
    """The descriptor ``os.sendfile`` may read ``file`` from, or None: the file has none, the
    platform has no ``os.sendfile``, or ``sock`` is not a plain socket (TLS: see sendfile)."""
    if type(sock) is not _stdlib.socket or not hasattr(os, "sendfile"):
        return None
    try:
        return int(file.fileno())
    except (AttributeError, OSError, ValueError):  # (io.UnsupportedOperation is both)
        return None


def _seekable(file: Any) -> bool:
    seekable = getattr(file, "seekable", None)
    return bool(seekable()) if seekable is not None else hasattr(file, "seek")


def _stays_non_blocking(call: str) -> RuntimeError:
    """The error for a call that would make a kernel ``Socket`` blocking."""
    return RuntimeError(
        f"{call} would make a kernel socket blocking, and its calls would then freeze every "
        f"task: it must stay non-blocking. To bound a call in time, use "
        f"kernel.timeout_after(seconds, sock.recv, ...) instead."
    )
