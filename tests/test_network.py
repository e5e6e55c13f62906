"""Servers and clients: tcp_server / open_connection, Unix sockets, TLS, crashing handlers.

A test that waits for loopback bytes under a timeout (``LIMIT``) runs on the real clock
(marked realtime): the virtual clock would jump to that deadline while the bytes are still in
flight. The others set no deadline while bytes travel, and run on the virtual clock, where
the server's own pauses and a handler's timeouts take no real time.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import select
import socket as stdlib_socket
import ssl
import struct
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trustme

import kernel
from kernel import resolver, socket
from kernel.servers import run_server

LIMIT = 10.0


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def echo(client: socket.Socket, address: Any) -> None:
    while data := await client.recv(1000):
        await client.sendall(data)


async def serve_tls(group: kernel.TaskGroup, context: ssl.SSLContext, handler: Any = None) -> int:
    """Start a TLS ``tcp_server`` on loopback in ``group`` (``echo`` by default); its port."""
    _, port = await group.start(
        partial(kernel.tcp_server, ssl=context), "127.0.0.1", 0, handler or echo
    )
    return int(port)


async def roundtrip(sock: socket.Socket, data: bytes, limit: float | None = LIMIT) -> bytes:
    """Send ``data`` and read as much back; each read bounded by ``limit`` (None: unbounded,
    for the virtual clock, which would jump to the deadline while the bytes travel)."""
    await sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = await kernel.timeout_after(limit, sock.recv, 1000)
        if not chunk:
            break
        received += chunk
    return received


@pytest.mark.realtime
async def test_tcp_server_and_open_connection() -> None:
    before = open_fds()
    async with kernel.TaskGroup(wait=None) as group:
        host, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, echo)
        for n in range(3):
            client = await kernel.open_connection(host, port, timeout=LIMIT)
            async with client:
                assert await roundtrip(client, b"hello %d" % n) == b"hello %d" % n
    assert open_fds() == before  # the server, its handlers and every connection closed


@pytest.mark.realtime
async def test_a_crashing_handler_is_reported_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fragile(client: socket.Socket, address: Any) -> None:
        data = await client.recv(100)
        if data == b"crash":
            raise ValueError("handler bug")
        await client.sendall(data)

    with caplog.at_level(logging.ERROR, logger="kernel"):
        async with kernel.TaskGroup(wait=None) as group:
            host, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, fragile)
            bad = await kernel.open_connection(host, port)
            async with bad:
                await bad.sendall(b"crash")
                assert await kernel.timeout_after(LIMIT, bad.recv, 100) == b""  # closed
            good = await kernel.open_connection(host, port)
            async with good:
                assert await roundtrip(good, b"fine") == b"fine"
    assert "connection handler" in caplog.text and "handler bug" in caplog.text


@pytest.mark.realtime
async def test_cancelling_the_server_cancels_its_handlers() -> None:
    cancelled: list[str] = []
    serving = kernel.Event()

    async def slow(client: socket.Socket, address: Any) -> None:
        try:
            await serving.set()
            await kernel.sleep(100)
        except kernel.TaskCancelled:
            cancelled.append("handler")
            raise

    async with kernel.TaskGroup(wait=None) as group:
        host, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, slow)
        client = await kernel.open_connection(host, port)
        await kernel.timeout_after(LIMIT, serving.wait)
    await client.close()
    assert cancelled == ["handler"]


@pytest.mark.realtime
async def test_unix_server_and_connection(tmp_path: Path) -> None:
    path = str(tmp_path / "server.sock")
    async with kernel.TaskGroup(wait=None) as group:
        await group.start(kernel.unix_server, path, echo)
        client = await kernel.open_unix_connection(path)
        async with client:
            assert await roundtrip(client, b"over unix") == b"over unix"


@pytest.fixture(scope="module")
def certificates() -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    """A throw-away CA, a server certificate for localhost signed by it, and two contexts."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    yield server_context, client_context


@pytest.mark.realtime
async def test_tls_echo(certificates: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = certificates
    async with kernel.TaskGroup(wait=None) as group:
        port = await serve_tls(group, server_context)
        client = await kernel.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost", timeout=LIMIT
        )
        async with client:
            assert isinstance(client, socket.SSLSocket)
            assert client.version() is not None  # a TLS session was negotiated
            assert await roundtrip(client, b"secret" * 1000) == b"secret" * 1000


@pytest.mark.realtime
async def test_tls_with_the_wrong_name_fails_the_handshake(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = certificates
    async with kernel.TaskGroup(wait=None) as group:
        port = await serve_tls(group, server_context)
        with pytest.raises(ssl.SSLCertVerificationError):
            await kernel.open_connection(
                "127.0.0.1",
                port,
                ssl=client_context,
                server_hostname="wrong.example",
                timeout=LIMIT,
            )


@pytest.mark.realtime
async def test_ssl_argument_is_checked_before_any_socket_exists() -> None:
    before = open_fds()
    with pytest.raises(TypeError, match=r"ssl\.SSLContext"):
        await kernel.tcp_server("127.0.0.1", 0, echo, ssl="yes")
    async with kernel.TaskGroup(wait=None) as group:
        host, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, echo)
        with pytest.raises(TypeError, match=r"ssl\.SSLContext"):
            await kernel.open_connection(host, port, ssl="yes")
    with pytest.raises(TypeError, match=r"ssl\.SSLContext"):
        await kernel.open_unix_connection("/nonexistent", ssl=42)
    assert open_fds() == before


@pytest.mark.realtime
async def test_tls_can_be_unwrapped_back_to_plain_bytes(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = certificates

    async def downgrade(client: socket.Socket, address: Any) -> None:
        assert isinstance(client, socket.SSLSocket)
        assert await client.recv(100) == b"stop tls"
        plain = await client.unwrap()  # both ends exchange close_notify
        await plain.sendall(b"plain again")
        await plain.close()

    async with kernel.TaskGroup(wait=None) as group:
        port = await serve_tls(group, server_context, downgrade)
        client = await kernel.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost", timeout=LIMIT
        )
        assert isinstance(client, socket.SSLSocket)
        await client.sendall(b"stop tls")
        plain = await kernel.timeout_after(LIMIT, client.unwrap)
        async with plain:
            assert not isinstance(plain, socket.SSLSocket)
            assert await kernel.timeout_after(LIMIT, plain.recv, 100) == b"plain again"


async def tls_pair(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext],
) -> tuple[socket.SSLSocket, socket.SSLSocket]:
    """A TLS connection over loopback, handshake done: (client, server). Small socket buffers
    (fixed: the system no longer grows them), so that a large write soon has to wait."""
    server_context, client_context = certificates
    async with kernel.tcp_server_socket("127.0.0.1", 0) as listener:
        plain_client = socket.socket()
        await plain_client.connect(listener.getsockname())
        plain_server, _ = await listener.accept()
    plain_client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    plain_server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    client = socket.wrap_ssl(
        plain_client, client_context, server_side=False, server_hostname="localhost"
    )
    server = socket.wrap_ssl(plain_server, server_context, server_side=True, server_hostname=None)
    handshake = await kernel.spawn(server.do_handshake)
    await client.do_handshake()
    await handshake.join()
    # (read first: closing with the server's session tickets unread would reset)
    await server.sendall(b"hi")
    assert await client.recv(100) == b"hi"
    return client, server


async def read_to_the_end(sock: socket.Socket) -> bytes:
    received = bytearray()
    while chunk := await sock.recv(65536):
        received += chunk
    return bytes(received)


async def send_in_calls(sock: socket.Socket, data: bytes) -> None:
    """``data`` by ``send`` calls; if one is cancelled, ``bytes_sent`` counts them all."""
    with memoryview(data) as view:
        sent = 0
        try:
            while sent < len(view):
                sent += await sock.send(view[sent:])
        except BaseException as error:
            error.bytes_sent = sent + error.bytes_sent  # type: ignore[attr-defined]
            raise


@pytest.mark.parametrize("write", ["sendall", "send"])
async def test_a_cancelled_tls_write_counts_what_tls_took_and_the_next_one_sends_its_own_bytes(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext], write: str
) -> None:
    # OpenSSL cannot take back records it has begun: a write that has to wait is finished
    # by the next one. bytes_sent must count it, and the next write must not send other
    # bytes in its place (or fail with BAD_LENGTH).
    write_all = send_in_calls if write == "send" else (lambda sock, data: sock.sendall(data))
    first, second = random.Random(1).randbytes(2 << 20), random.Random(2).randbytes(100_000)
    before = open_fds()
    client, server = await tls_pair(certificates)
    async with server:
        async with client:
            # Nobody reads yet: the write fills the buffers and waits, and the virtual clock
            # moves on to the deadline at once.
            with pytest.raises(kernel.TaskTimeout) as cancelled:
                await kernel.timeout_after(1, write_all, client, first)
            sent = cancelled.value.bytes_sent  # type: ignore[attr-defined]
            assert 0 < sent < len(first)
            reader = await kernel.spawn(read_to_the_end, server)
            await write_all(client, second)
        assert await reader.join() == first[:sent] + second
    assert open_fds() == before


async def test_a_second_cancellation_does_not_cut_the_shutdown_short() -> None:
    """Cancelled again while a handler still cleans up, the server waits for it all the same,
    and closes the listening socket, before it ends."""
    before = open_fds()
    started, cleaning = kernel.Event(), kernel.Event()
    events: list[str] = []

    async def slow_to_stop(client: socket.Socket, address: Any) -> None:
        try:
            await started.set()
            await kernel.Event().wait()  # until the server is cancelled
        except kernel.TaskCancelled:
            await cleaning.set()
            await kernel.sleep(1)  # a cleanup that takes a while (a goodbye message, say)
            events.append("handler cleaned up")
            raise

    listener = kernel.tcp_server_socket("127.0.0.1", 0)
    server = await kernel.spawn(run_server, listener, slow_to_stop)
    client = await kernel.open_connection(*listener.getsockname())
    await started.wait()
    await server.cancel(blocking=False)
    await cleaning.wait()
    await server.cancel(blocking=False)  # an enclosing timeout, a group cancelling its members
    await server.wait()
    events.append(f"server ended at {await kernel.clock()}")
    assert events == ["handler cleaned up", "server ended at 1.0"]
    assert listener.fileno() == -1  # no longer accepting
    async with client:
        assert await client.recv(100) == b""  # the handler's connection was closed
    assert open_fds() == before


@pytest.mark.parametrize(
    ("error", "served_at", "logged"),
    [(errno.EMFILE, 0.1, True), (errno.ECONNABORTED, 0.0, False)],
    ids=["EMFILE", "ECONNABORTED"],
)
async def test_an_accept_that_fails_for_now_does_not_end_the_server(
    error: int,
    served_at: float,
    logged: bool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener = kernel.tcp_server_socket("127.0.0.1", 0)
    real_accept = listener.accept

    async def fails_once() -> tuple[socket.Socket, Any]:
        monkeypatch.setattr(listener, "accept", real_accept)
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(listener, "accept", fails_once)
    times: list[float] = []

    async def timed_echo(client: socket.Socket, address: Any) -> None:
        times.append(await kernel.clock())
        await echo(client, address)

    host, port = listener.getsockname()
    with caplog.at_level(logging.INFO, logger="kernel"):
        async with kernel.TaskGroup(wait=None) as group:
            await group.start(run_server, listener, timed_echo)
            client = await kernel.open_connection(host, port)  # refused, had the server ended
            async with client:
                assert await roundtrip(client, b"still serving", limit=None) == b"still serving"
    assert times == [served_at]  # accepted after the server's pause, on the kernel's clock
    if logged:
        [record] = caplog.records
        assert record.levelno == logging.ERROR
        assert os.strerror(error) in record.getMessage()
    else:
        assert caplog.records == []


async def test_host_names_are_resolved_in_a_worker_thread_not_by_bind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked_up: list[str] = []
    resolve = socket.getaddrinfo

    async def spy(host: Any, *args: Any) -> list[tuple[Any, ...]]:
        looked_up.append(host)
        return await resolve(host, *args)

    monkeypatch.setattr(resolver, "getaddrinfo", spy)
    async with kernel.TaskGroup(wait=None) as group:
        await group.start(kernel.tcp_server, "127.0.0.1", 0, echo)
        assert looked_up == []  # a numeric address needs no resolver, nor a thread
        host, port = await group.start(kernel.tcp_server, "localhost", 0, echo)
        assert (host, looked_up) == ("127.0.0.1", ["localhost"])
        client = await kernel.open_connection(host, port, source_addr=("localhost", 0))
        async with client:
            assert client.getsockname()[0] == "127.0.0.1"
            assert await roundtrip(client, b"by name", limit=None) == b"by name"
    assert looked_up.count("localhost") == 2  # the server's address, the client's source


async def test_a_handler_that_times_out_is_reported_like_any_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def impatient(client: socket.Socket, address: Any) -> None:
        await kernel.timeout_after(5, client.recv, 100)  # the client never sends

    with caplog.at_level(logging.INFO, logger="kernel"):
        async with kernel.TaskGroup(wait=None) as group:
            host, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, impatient)
            client = await kernel.open_connection(host, port)
            async with client:
                assert await client.recv(100) == b""  # the handler gave up: closed
    # ... and the server's shutdown (a TaskCancelled in each handler) says nothing.
    [record] = caplog.records
    assert record.levelno == logging.ERROR and "crashed" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is kernel.TaskTimeout


async def test_unix_server_replaces_a_stale_socket_file_but_not_a_live_one(tmp_path: Path) -> None:
    path = str(tmp_path / "server.sock")
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    gone.bind(path)
    await gone.close()  # the file stays when the socket closes: a server that crashed
    (tmp_path / "notes.txt").write_text("not a socket")
    async with kernel.TaskGroup(wait=None) as group:
        await group.start(kernel.unix_server, path, echo)  # the stale file is replaced
        before = open_fds()
        with pytest.raises(OSError, match="a running server listens") as refused:
            await group.start(kernel.unix_server, path, echo)
        assert refused.value.errno == errno.EADDRINUSE
        with pytest.raises(OSError) as not_a_socket:  # any other file is left alone
            await group.start(kernel.unix_server, str(tmp_path / "notes.txt"), echo)
        assert not_a_socket.value.errno == errno.EADDRINUSE
        assert (tmp_path / "notes.txt").read_text() == "not a socket"
        assert open_fds() == before
        async with await kernel.open_unix_connection(path) as client:  # the first one serves on
            assert await roundtrip(client, b"still here", limit=None) == b"still here"


@pytest.mark.skipif(sys.platform != "linux", reason="the abstract namespace is Linux's")
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
async def test_unix_server_in_the_abstract_namespace(as_bytes: bool) -> None:
    name = f"\0kernel-test-network-{os.getpid()}"
    path: str | bytes = name.encode() if as_bytes else name
    async with kernel.TaskGroup(wait=None) as group:
        await group.start(kernel.unix_server, path, echo)
        client = await kernel.open_unix_connection(path)
        async with client:
            assert await roundtrip(client, b"no file", limit=None) == b"no file"


async def test_a_server_refuses_a_client_side_tls_context_up_front(tmp_path: Path) -> None:
    before = open_fds()
    hostnames_unchecked = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    hostnames_unchecked.check_hostname = False  # still a client's: the protocol says so
    for context in (ssl.create_default_context(), hostnames_unchecked):
        with pytest.raises(ValueError, match=r"ssl\.Purpose\.CLIENT_AUTH"):
            # (bounded: before the check, the server started and served forever)
            serve = partial(kernel.tcp_server, ssl=context)
            await kernel.timeout_after(LIMIT, serve, "127.0.0.1", 0, echo)
        with pytest.raises(ValueError, match=r"ssl\.Purpose\.CLIENT_AUTH"):
            serve = partial(kernel.unix_server, ssl=context)
            await kernel.timeout_after(LIMIT, serve, str(tmp_path / "server.sock"), echo)
    assert open_fds() == before


async def test_tls_arguments_that_cannot_work_are_refused_before_connecting(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "server.sock")
    async with kernel.TaskGroup(wait=None) as group:
        host, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, echo)
        await group.start(kernel.unix_server, path, echo)
        before = open_fds()
        # A name to check, but no TLS to check it: the connection would be unauthenticated.
        with pytest.raises(ValueError, match="without ssl="):
            await kernel.open_connection(host, port, server_hostname="bank.example")
        with pytest.raises(ValueError, match="without ssl="):
            await kernel.open_unix_connection(path, server_hostname="bank.example")
        # A context that checks host names, and a Unix path: no name to check.
        with pytest.raises(ValueError, match="server_hostname="):
            await kernel.open_unix_connection(path, ssl=True)
        assert open_fds() == before


async def test_a_failing_tls_start_closes_the_connection(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client_context = certificates

    def wrap_fails(*args: Any, **kwargs: Any) -> socket.SSLSocket:
        raise ssl.SSLError("wrapping failed")

    before = open_fds()
    async with kernel.TaskGroup(wait=None) as group:
        _, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, echo)
        monkeypatch.setattr(kernel.tls, "wrap_ssl", wrap_fails)
        with pytest.raises(ssl.SSLError, match="wrapping failed") as caught:
            await kernel.open_connection("127.0.0.1", port, ssl=client_context)
    assert caught.value is not None  # still held, with the frames that held the socket
    assert open_fds() == before


@pytest.mark.parametrize(
    ("failure", "server_hostname", "error"),
    [
        ("peer reset", "localhost", ConnectionResetError),
        ("name IDNA cannot encode", "a" * 64 + ".example", UnicodeError),
        ("NUL in the name", "local\0host", TypeError),
    ],
)
async def test_a_failing_wrap_ssl_closes_the_descriptor_while_its_error_is_kept(
    failure: str, server_hostname: str, error: type[Exception]
) -> None:
    # These fail after the stdlib's SSLSocket has taken the descriptor over, and (before
    # CPython's gh-113280) without it closing itself: the traceback held it open.
    before = open_fds()
    async with kernel.tcp_server_socket("127.0.0.1", 0) as listener:
        client = socket.socket()
        await client.connect(listener.getsockname())
        peer, _ = await listener.accept()
    async with peer:
        if failure == "peer reset":
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await peer.close()  # RST, not FIN
            assert select.select([client], [], [], LIMIT)[0] == [client]  # it has come
        fd = client.fileno()
        with pytest.raises(error) as failed:
            socket.wrap_ssl(
                client,
                ssl.create_default_context(),
                server_side=False,
                server_hostname=server_hostname,
            )
        assert str(fd) not in open_fds()  # closed already, not when the error goes
        del failed
    assert open_fds() == before


async def test_a_tls_server_closes_a_client_that_reset_before_the_handshake(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext], caplog: pytest.LogCaptureFixture
) -> None:
    server_context, _ = certificates
    with caplog.at_level(logging.INFO, logger="kernel"):
        async with kernel.TaskGroup(wait=None) as group:
            port = await serve_tls(group, server_context)
            before = open_fds()
            # A blocking stdlib connect (the listener's backlog completes it) and a reset,
            # before the server has run to accept the connection.
            with stdlib_socket.create_connection(("127.0.0.1", port)) as rude:
                rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            for _ in range(1000):  # the server accepts, fails to wrap it, and logs that
                if caplog.records:
                    break
                await kernel.sleep(0)
            # Closed at once: dropped instead, the half-built stdlib socket would be closed
            # by the collector, and its ResourceWarning would fail the test.
            assert open_fds() == before
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "Connection reset" in record.getMessage()


async def test_a_failed_tls_handshake_is_a_warning_not_a_crash(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext], caplog: pytest.LogCaptureFixture
) -> None:
    server_context, _ = certificates
    with caplog.at_level(logging.INFO, logger="kernel"):
        async with kernel.TaskGroup(wait=None) as group:
            port = await serve_tls(group, server_context)
            client = await kernel.open_connection("127.0.0.1", port)
            async with client:
                await client.sendall(b"GET / HTTP/1.0\r\n\r\n")  # plain text to a TLS port
                with contextlib.suppress(ConnectionResetError):  # (our bytes left unread)
                    assert await client.recv(100) == b""  # the server hung up
                address = client.getsockname()
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "TLS handshake" in record.getMessage() and repr(address) in record.getMessage()


async def test_a_client_silent_during_the_tls_handshake_is_dropped_after_the_timeout(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext], caplog: pytest.LogCaptureFixture
) -> None:
    # A client that connects and says nothing would hold a task and a descriptor forever.
    server_context, _ = certificates
    with caplog.at_level(logging.INFO, logger="kernel"):
        async with kernel.TaskGroup(wait=None) as group:
            port = await serve_tls(group, server_context)
            before = open_fds()
            client = await kernel.open_connection("127.0.0.1", port)  # plain: never shakes
            async with client:
                started = await kernel.clock()
                assert await client.recv(100) == b""  # the server hung up ...
                assert await kernel.clock() - started == kernel.servers.TLS_HANDSHAKE_TIMEOUT
                address = client.getsockname()
            assert open_fds() == before  # ... and closed its end
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "did not finish within 60.0 s" in record.getMessage()
    assert repr(address) in record.getMessage()


async def test_the_tls_handshake_timeout_can_be_set_or_lifted(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, _ = certificates
    async with kernel.TaskGroup(wait=None) as group:
        quick = partial(kernel.tcp_server, ssl=server_context, ssl_handshake_timeout=5)
        unlimited = partial(kernel.tcp_server, ssl=server_context, ssl_handshake_timeout=None)
        _, quick_port = await group.start(quick, "127.0.0.1", 0, echo)
        _, unlimited_port = await group.start(unlimited, "127.0.0.1", 0, echo)
        async with await kernel.open_connection("127.0.0.1", quick_port) as client:
            started = await kernel.clock()
            assert await client.recv(100) == b""
            assert await kernel.clock() - started == 5
        async with await kernel.open_connection("127.0.0.1", unlimited_port) as client:
            # No limit: still connected, an hour on.
            assert await kernel.ignore_after(3600, client.recv, 100, timeout_result="open")


@pytest.mark.parametrize(
    ("timeout", "error", "message"),
    [
        (0, ValueError, "positive"),
        (-1, ValueError, "positive"),
        (float("nan"), ValueError, "NaN"),
        ("5", TypeError, "number of seconds"),
        (True, TypeError, "number of seconds"),
    ],
)
async def test_a_bad_tls_handshake_timeout_is_refused_before_any_socket_exists(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext],
    tmp_path: Path,
    timeout: Any,
    error: type[Exception],
    message: str,
) -> None:
    server_context, _ = certificates
    before = open_fds()
    for serve, where in (
        (kernel.tcp_server, ("127.0.0.1", 0)),
        (kernel.unix_server, (str(tmp_path / "s"),)),
    ):
        server = partial(serve, ssl=server_context, ssl_handshake_timeout=timeout)
        with pytest.raises(error, match=message):
            await kernel.timeout_after(LIMIT, server, *where, echo)
    assert open_fds() == before


def test_a_daemon_servers_handlers_are_daemons_too(caplog: pytest.LogCaptureFixture) -> None:
    """At exit the kernel ends daemon tasks quietly; a daemon server's handlers are ended
    with it, without a warning for each open connection."""
    serving = kernel.Event()

    async def forever(client: socket.Socket, address: Any) -> None:
        await serving.set()
        await kernel.Event().wait()

    async def main() -> None:
        listener = kernel.tcp_server_socket("127.0.0.1", 0)
        await kernel.spawn(run_server, listener, forever, daemon=True)
        async with await kernel.open_connection(*listener.getsockname()):
            await serving.wait()

    with caplog.at_level(logging.WARNING, logger="kernel"):
        kernel.run(main, clock=kernel.VirtualClock())
    assert "still running when the kernel closed" not in caplog.text


@pytest.mark.parametrize(
    "kind", [socket.SOCK_DGRAM, socket.SOCK_SEQPACKET], ids=["dgram", "seqpacket"]
)
async def test_unix_server_leaves_a_live_server_of_another_socket_type_alone(
    tmp_path: Path, kind: int
) -> None:
    # The test connection, a stream one, is refused by such a server (EPROTOTYPE), not
    # taken: that refusal must not pass for the ECONNREFUSED of a file nobody is behind.
    path = str(tmp_path / "live.sock")
    async with socket.socket(socket.AF_UNIX, kind) as live:
        live.bind(path)
        if kind == socket.SOCK_SEQPACKET:
            live.listen()
        inode = os.stat(path).st_ino
        before = open_fds()
        with pytest.raises(OSError, match="another socket type") as refused:
            kernel.unix_server_socket(path)
        assert refused.value.errno == errno.EADDRINUSE
        with pytest.raises(OSError, match="another socket type") as refused:
            # (bounded: had it taken the path over, it would serve forever)
            await kernel.timeout_after(LIMIT, kernel.unix_server, path, echo)
        assert refused.value.errno == errno.EADDRINUSE
        assert open_fds() == before
        assert os.stat(path).st_ino == inode  # the live server's file, still in place ...
        async with socket.socket(socket.AF_UNIX, kind) as peer:  # ... and its address
            if kind == socket.SOCK_DGRAM:
                await peer.sendto(b"still mine", path)
                assert await live.recv(100) == b"still mine"
            else:
                await peer.connect(path)
                accepted, _ = await live.accept()
                async with accepted:
                    await peer.sendall(b"still mine")
                    assert await accepted.recv(100) == b"still mine"


@pytest.mark.parametrize(
    ("probe_errno", "stale"),
    [
        pytest.param(errno.ECONNREFUSED, True, id="ECONNREFUSED"),  # a file outliving its server
        pytest.param(errno.ENOENT, True, id="ENOENT"),  # the file went meanwhile
        pytest.param(0, False, id="connected"),  # a stream server took the test connection
        pytest.param(errno.EAGAIN, False, id="EAGAIN"),  # ... or would have: backlog full
        pytest.param(errno.EPROTOTYPE, False, id="EPROTOTYPE"),  # a datagram/seqpacket server
        pytest.param(errno.EACCES, False, id="EACCES"),  # one whose file we may not write to
        pytest.param(errno.EPERM, False, id="EPERM"),  # anything else: in doubt, it stays
    ],
)
def test_only_a_refusal_that_finds_no_socket_makes_a_socket_file_stale(
    probe_errno: int, stale: bool
) -> None:
    error = kernel.servers._in_use_error("/run/app.sock", probe_errno)
    if stale:
        assert error is None
    else:
        assert error is not None and error.errno == errno.EADDRINUSE
        assert "'/run/app.sock'" in str(error) and "serve on another path" in str(error)


async def test_unix_server_leaves_a_socket_file_it_may_not_connect_to_alone(
    tmp_path: Path,
) -> None:
    # Another user's server, as it looks from here: the test connection is refused with
    # EACCES. (Root may connect anyway: then there is nothing to test.)
    path = str(tmp_path / "theirs.sock")
    async with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as theirs:
        theirs.bind(path)
        theirs.listen()
        os.chmod(path, 0)
        async with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            if await probe.connect_ex(path) != errno.EACCES:
                pytest.skip("this user may connect to any socket file (root, say)")
        inode = os.stat(path).st_ino
        before = open_fds()
        with pytest.raises(OSError, match="EACCES") as refused:
            kernel.unix_server_socket(path)
        assert refused.value.errno == errno.EADDRINUSE
        assert os.stat(path).st_ino == inode
        assert open_fds() == before


async def strict_tls(
    sock: socket.Socket,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None = None,
    send: bytes = b"",
) -> tuple[bytes, str]:
    """TLS by hand over the plain ``sock``: handshake, send ``send``, then read to the end.

    Returns what was read and how the TLS stream ended: "close_notify", or "cut" when the
    connection closed without it. An ``ssl.SSLObject`` tells the two apart, where a socket
    wrapped with the default ``suppress_ragged_eofs=True`` reports both as ``b""``. Every
    wait for the peer is bounded by ``LIMIT``.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(
        incoming, outgoing, server_side=server_side, server_hostname=server_hostname
    )

    async def step(call: Any) -> Any:
        while True:
            try:
                result = call()
            except ssl.SSLWantReadError:
                result = None
            if pending := outgoing.read():  # (the peer may be waiting for it)
                await sock.sendall(pending)
            if result is not None:
                return result
            if data := await kernel.timeout_after(LIMIT, sock.recv, 65536):
                incoming.write(data)
            else:
                incoming.write_eof()

    def handshake() -> str:
        tls.do_handshake()
        return "done"

    await step(handshake)
    if send:
        await step(lambda: tls.write(send))
    received = b""
    try:
        while chunk := await step(partial(tls.read, 65536)):
            received += chunk
    except ssl.SSLEOFError:  # the connection closed, with no close_notify before
        return received, "cut"
    return received, "close_notify"  # read() says b"" only once the peer has sent one


@pytest.mark.realtime
async def test_a_tls_server_ends_its_connections_with_close_notify(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = certificates

    async def reply(client: socket.Socket, address: Any) -> None:
        await client.sendall(b"the whole reply")  # and return: the server closes it

    before = open_fds()
    async with kernel.TaskGroup(wait=None) as group:
        port = await serve_tls(group, server_context, reply)
        async with await kernel.open_connection("127.0.0.1", port, timeout=LIMIT) as plain:
            # This client never sends its own close_notify: the server did not wait for it.
            ending = await strict_tls(
                plain, client_context, server_side=False, server_hostname="localhost"
            )
    assert ending == (b"the whole reply", "close_notify")  # not a truncated reply
    assert open_fds() == before


@pytest.mark.realtime
async def test_a_tls_client_ends_its_connection_with_close_notify(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = certificates
    endings: list[tuple[bytes, str]] = []
    served = kernel.Event()

    async def strict_server(client: socket.Socket, address: Any) -> None:
        endings.append(await strict_tls(client, server_context, server_side=True, send=b"hi"))
        await served.set()

    before = open_fds()
    async with kernel.TaskGroup(wait=None) as group:
        _, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, strict_server)
        client = await kernel.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost", timeout=LIMIT
        )
        async with client:
            # (read first: closing with the server's session tickets unread would reset)
            assert await kernel.timeout_after(LIMIT, client.recv, 100) == b"hi"
            await client.sendall(b"goodbye")
        await kernel.timeout_after(LIMIT, served.wait)
    assert endings == [(b"goodbye", "close_notify")]
    assert open_fds() == before


@pytest.mark.realtime
async def test_mutual_tls_serves(tmp_path: Path) -> None:
    # The server asks for the client's certificate, which a PROTOCOL_TLS_SERVER context
    # verifies without a host name to check.
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    authority.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    authority.issue_cert("client.example").configure_cert(client_context)

    async def greet(client: socket.Socket, address: Any) -> None:
        [(_, name)] = client.getpeercert()["subjectAltName"]  # the certificate it showed
        await client.sendall(b"hello " + name.encode())

    before = open_fds()
    path = str(tmp_path / "server.sock")
    async with kernel.TaskGroup(wait=None) as group:
        _, port = await group.start(
            partial(kernel.tcp_server, ssl=server_context), "127.0.0.1", 0, greet
        )
        await group.start(partial(kernel.unix_server, ssl=server_context), path, greet)
        for connect in (
            partial(kernel.open_connection, "127.0.0.1", port, timeout=LIMIT),
            partial(kernel.open_unix_connection, path),
        ):
            client = await kernel.timeout_after(
                LIMIT, partial(connect, ssl=client_context, server_hostname="localhost")
            )
            async with client:
                reply = await kernel.timeout_after(LIMIT, client.recv, 100)
            assert reply == b"hello client.example"
    assert open_fds() == before


async def test_a_server_context_that_checks_host_names_is_refused_naming_the_fix() -> None:
    # The ssl module refuses to wrap a server's socket with it: every connection would fail.
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.check_hostname = True
    with pytest.raises(ValueError, match=r"check_hostname = False"):
        await kernel.tcp_server("127.0.0.1", 0, echo, ssl=server_context)


async def test_a_client_refuses_a_server_side_tls_context_up_front(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext], tmp_path: Path
) -> None:
    server_context, _ = certificates
    path = str(tmp_path / "server.sock")
    connections: list[Any] = []

    async def counted_echo(client: socket.Socket, address: Any) -> None:
        connections.append(address)
        await echo(client, address)

    async with kernel.TaskGroup(wait=None) as group:
        host, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, counted_echo)
        await group.start(kernel.unix_server, path, counted_echo)
        before = open_fds()
        with pytest.raises(ValueError, match=r"server-side context.*create_default_context\(\)"):
            await kernel.open_connection(host, port, ssl=server_context)
        with pytest.raises(ValueError, match=r"server-side context.*create_default_context\(\)"):
            await kernel.open_unix_connection(path, ssl=server_context)
        assert open_fds() == before
        # Neither server saw a connection: the next one each accepts (they accept in turn)
        # is its first.
        for client in (
            await kernel.open_connection(host, port),
            await kernel.open_unix_connection(path),
        ):
            async with client:
                assert await roundtrip(client, b"first", limit=None) == b"first"
        assert len(connections) == 2


@pytest.mark.parametrize(
    ("tls", "error"),
    [
        ({"ssl": "yes"}, TypeError),
        ({"ssl": ssl.create_default_context()}, ValueError),
        ({"ssl_handshake_timeout": 0}, ValueError),
    ],
    ids=["not-a-context", "client-context", "bad-timeout"],
)
async def test_run_server_closes_the_socket_when_its_tls_arguments_are_refused(
    tls: dict[str, Any], error: type[Exception]
) -> None:
    before = open_fds()
    listener = kernel.tcp_server_socket("127.0.0.1", 0)
    try:
        with pytest.raises(error):
            await kernel.timeout_after(LIMIT, partial(run_server, listener, echo, **tls))
        assert listener.fileno() == -1  # closed: not queueing clients nobody accepts
    finally:
        await listener.close()
    assert open_fds() == before


async def test_unix_server_and_connection_take_a_path_like(tmp_path: Path) -> None:
    path = tmp_path / "server.sock"  # a pathlib.Path, not its str
    before = open_fds()
    listener = kernel.unix_server_socket(path)
    await listener.close()  # its file stays: stale, for unix_server to replace
    assert open_fds() == before
    async with kernel.TaskGroup(wait=None) as group:
        await group.start(kernel.unix_server, path, echo)
        with pytest.raises(OSError, match="a running server listens"):
            kernel.unix_server_socket(path)
        async with await kernel.open_unix_connection(path) as client:
            assert await roundtrip(client, b"by path", limit=None) == b"by path"


@pytest.mark.realtime
async def test_sendfile_over_tls_goes_through_tls(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext], tmp_path: Path
) -> None:
    # os.sendfile would write the file to the descriptor past the TLS layer, in clear: the
    # server would see garbage where a record should be.
    server_context, client_context = certificates
    payload = bytes(range(256)) * 1024
    (tmp_path / "payload").write_bytes(payload)
    async with kernel.TaskGroup(wait=None) as group:
        port = await serve_tls(group, server_context)
        client = await kernel.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost", timeout=LIMIT
        )
        async with client:

            async def echoed() -> bytes:
                data = b""
                while len(data) < len(payload):
                    chunk = await kernel.timeout_after(LIMIT, client.recv, 65536)
                    if not chunk:
                        break
                    data += chunk
                return data

            reader = await group.spawn(echoed)
            with open(tmp_path / "payload", "rb") as file:
                assert await kernel.timeout_after(LIMIT, client.sendfile, file) == len(payload)
                assert file.tell() == len(payload)
            assert await reader.join() == payload
