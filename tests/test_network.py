"""Servers and clients: tcp_server / open_connection, Unix sockets, TLS, crashing handlers."""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trustme

import kernel
from kernel import socket

pytestmark = pytest.mark.realtime
LIMIT = 10.0


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def echo(client: socket.Socket, address: Any) -> None:
    while data := await client.recv(1000):
        await client.sendall(data)


async def roundtrip(sock: socket.Socket, data: bytes) -> bytes:
    await sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = await kernel.timeout_after(LIMIT, sock.recv, 1000)
        if not chunk:
            break
        received += chunk
    return received


async def test_tcp_server_and_open_connection() -> None:
    before = open_fds()
    async with kernel.TaskGroup(wait=None) as group:
        host, port = await group.start(kernel.tcp_server, "127.0.0.1", 0, echo)
        for n in range(3):
            client = await kernel.open_connection(host, port, timeout=LIMIT)
            async with client:
                assert await roundtrip(client, b"hello %d" % n) == b"hello %d" % n
    assert open_fds() == before  # the server, its handlers and every connection closed


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


async def test_tls_echo(certificates: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = certificates
    async with kernel.TaskGroup(wait=None) as group:
        _, port = await group.start(
            partial(kernel.tcp_server, ssl=server_context), "127.0.0.1", 0, echo
        )
        client = await kernel.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost", timeout=LIMIT
        )
        async with client:
            assert isinstance(client, socket.SSLSocket)
            assert client.version() is not None  # a TLS session was negotiated
            assert await roundtrip(client, b"secret" * 1000) == b"secret" * 1000


async def test_tls_with_the_wrong_name_fails_the_handshake(
    certificates: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = certificates
    async with kernel.TaskGroup(wait=None) as group:
        _, port = await group.start(
            partial(kernel.tcp_server, ssl=server_context), "127.0.0.1", 0, echo
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            await kernel.open_connection(
                "127.0.0.1",
                port,
                ssl=client_context,
                server_hostname="wrong.example",
                timeout=LIMIT,
            )


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
        serve_tls = partial(kernel.tcp_server, ssl=server_context)
        _, port = await group.start(serve_tls, "127.0.0.1", 0, downgrade)
        client = await kernel.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost", timeout=LIMIT
        )
        assert isinstance(client, socket.SSLSocket)
        await client.sendall(b"stop tls")
        plain = await kernel.timeout_after(LIMIT, client.unwrap)
        async with plain:
            assert not isinstance(plain, socket.SSLSocket)
            assert await kernel.timeout_after(LIMIT, plain.recv, 100) == b"plain again"
