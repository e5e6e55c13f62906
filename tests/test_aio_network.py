"""The adapter loop's network half (kernel/aio/network.py, transports.py) over loopback.

Every test runs once per loop in ``LOOP_FACTORIES``: asyncio's own selector loop with
``NetworkMixin`` mixed in front of its network methods, and the kernel's adapter loop as
soon as its class includes the mixin. Tests wait for conditions (a future a protocol
callback sets, a task parked on its socket), never for time; each is bounded by ``LIMIT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import importlib
import io
import logging
import os
import socket
import ssl
import struct
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import trustme

import kernel.aio
from kernel.aio.datagram_transport import DatagramTransport
from kernel.aio.network import NetworkMixin, Server
from kernel.aio.transports import SocketTransport

# Real sockets on the real clock. Nothing waits for time to pass: LIMIT only turns a hang
# into a failure, and no test comes near it (the file runs in about a second per loop).
pytestmark = pytest.mark.realtime
LIMIT = 10.0
T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


# typeshed says create_server returns asyncio's own Server class; ours is an AbstractServer.
class SelectorNetworkLoop(NetworkMixin, asyncio.SelectorEventLoop):  # type: ignore[misc]
    """asyncio's selector loop, its network methods replaced by ours."""


def _kernel_loop_factory() -> LoopFactory | None:
    """``kernel.aio.new_event_loop`` once the adapter loop includes ``NetworkMixin``."""
    try:
        aio: Any = importlib.import_module("kernel.aio")
    except ImportError:
        return None
    loop_cls = getattr(aio, "EventLoop", None)
    factory = getattr(aio, "new_event_loop", None)
    if factory is None or not (isinstance(loop_cls, type) and issubclass(loop_cls, NetworkMixin)):
        return None
    return factory  # type: ignore[no-any-return]


LOOP_FACTORIES: list[LoopFactory] = [SelectorNetworkLoop]
if (_factory := _kernel_loop_factory()) is not None:
    LOOP_FACTORIES.append(_factory)


class Run(Protocol):
    def __call__(self, coro: Coroutine[Any, Any, T]) -> T: ...


@pytest.fixture(params=LOOP_FACTORIES, ids=lambda factory: factory.__qualname__)
def run(request: pytest.FixtureRequest) -> Run:
    """Run a coroutine to completion on a fresh loop of the parametrised kind."""
    factory: LoopFactory = request.param

    def run(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(asyncio.wait_for(coro, LIMIT))

    return run


@pytest.fixture(scope="module")
def certs() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) for a certificate naming localhost and 127.0.0.1."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    before = set(os.listdir("/proc/self/fd"))
    yield
    assert set(os.listdir("/proc/self/fd")) <= before


class Recorder(asyncio.Protocol):
    """A protocol that records what its transport tells it, with futures to wait on."""

    def __init__(self, keep_open: bool = False) -> None:
        loop = net_loop()
        self.keep_open = keep_open
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.made: asyncio.Future[None] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.events: list[str] = []
        self._want = 0
        self._enough: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self._enough is not None and len(self.data) >= self._want:
            self._enough.set_result(None)
            self._enough = None

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)

    async def received(self, n: int) -> bytes:
        """Wait until ``n`` bytes have arrived in all; return them."""
        if len(self.data) < n:
            self._want = n
            self._enough = asyncio.get_running_loop().create_future()
            await self._enough
        return bytes(self.data)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def net_loop() -> NetworkMixin:
    """The running loop, typed (and checked) as one with our network methods."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, NetworkMixin)
    return loop


async def listening(server: Server | asyncio.Server) -> tuple[str, int]:
    host, port = server.sockets[0].getsockname()[:2]
    return host, port


async def parked() -> None:
    """Let tasks started just now run up to their first wait (a yield, not a sleep)."""
    for _ in range(3):
        await asyncio.sleep(0)


P = TypeVar("P", bound=asyncio.BaseProtocol)


async def connected_to_plain_peer(
    factory: Callable[[], P],
) -> tuple[asyncio.Transport, P, socket.socket]:
    """A transport running ``factory()``'s protocol, its peer a plain socket the test drives."""
    loop = net_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        connecting = loop.create_task(loop.create_connection(factory, *listener.getsockname()[:2]))
        peer, _ = await loop.sock_accept(listener)
        transport, protocol = await connecting
    return transport, protocol, peer


def recorded(served: list[Recorder]) -> Recorder:
    """A protocol factory for servers that keeps every protocol it makes in ``served``."""
    served.append(Recorder())
    return served[-1]


def exception_contexts(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda loop, context: contexts.append(context))
    return contexts


# -- streams and protocols -------------------------------------------------------------


def test_streams_echo_over_our_transports(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                writer.write(line.upper())
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        host, port = await listening(server)
        reader, writer = await asyncio.open_connection(host, port)
        for word in (b"hello\n", b"kernel\n"):
            writer.write(word)
            assert await reader.readline() == word.upper()
        assert writer.get_extra_info("peername") == (host, port)
        assert isinstance(writer.transport, SocketTransport)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_protocol_calls_and_extra_info(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        host, port = await listening(server)
        transport, client = await loop.create_connection(Recorder, host, port)
        # create_connection returns once connection_made has run.
        assert client.made.done() and client.transport is transport
        sock = transport.get_extra_info("socket")
        assert sock.family == socket.AF_INET and sock.fileno() >= 0
        assert transport.get_extra_info("peername") == (host, port)
        assert transport.get_extra_info("sockname") == sock.getsockname()
        assert transport.get_extra_info("nonesuch", 42) == 42
        assert transport.get_protocol() is client and transport.is_reading()
        transport.write(b"abc")
        transport.writelines([b"d", bytearray(b"e"), memoryview(b"f")])
        assert await client.received(6) == b"abcdef"
        transport.close()
        assert transport.is_closing() and not transport.is_reading()
        assert await client.lost is None
        assert client.events == ["made", "lost"]
        server.close()
        await server.wait_closed()

    run(main())


def test_buffered_protocol_gets_its_own_buffer_filled(run: Run, no_fd_leak: None) -> None:
    class Collector(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(7)  # small: the payload takes many reads
            self.data = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.data += self.buffer[:nbytes]

        def eof_received(self) -> None:
            self.done.set_result(bytes(self.data))

    async def main() -> None:
        loop = net_loop()
        payload = bytes(range(256)) * 40
        transport, collector, peer = await connected_to_plain_peer(Collector)
        with peer:
            await loop.sock_sendall(peer, payload)
            peer.shutdown(socket.SHUT_WR)
            assert await collector.done == payload
        transport.close()

    run(main())


def test_a_slow_reader_pauses_the_writers_protocol(run: Run, no_fd_leak: None) -> None:
    """Above the high-water mark the writer is paused; below the low one, resumed."""

    class Flooder(asyncio.Protocol):
        def __init__(self) -> None:
            loop = net_loop()
            self.paused = loop.create_future()
            self.resumed = loop.create_future()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            transport.set_write_buffer_limits(high=64 * 1024)
            assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
            transport.write(b"x" * (8 * 1024 * 1024))  # far more than the socket buffers

        def pause_writing(self) -> None:
            assert self.transport.get_write_buffer_size() > 64 * 1024
            self.paused.set_result(None)

        def resume_writing(self) -> None:
            assert self.transport.get_write_buffer_size() <= 16 * 1024
            self.resumed.set_result(None)
            self.transport.close()  # closes once the rest is sent

    async def main() -> None:
        loop = net_loop()
        flooders: list[Flooder] = []

        def make() -> Flooder:
            flooders.append(Flooder())
            return flooders[-1]

        server = await loop.create_server(make, "127.0.0.1", 0)
        transport, reader = await loop.create_connection(
            lambda: Recorder(), *(await listening(server))
        )
        transport.pause_reading()
        while not flooders:
            await asyncio.sleep(0)
        await flooders[0].paused
        assert not flooders[0].resumed.done()
        with pytest.raises(ValueError):
            flooders[0].transport.set_write_buffer_limits(high=1, low=2)
        transport.resume_reading()
        await flooders[0].resumed
        await reader.eof
        assert len(reader.data) == 8 * 1024 * 1024
        transport.close()
        server.close()
        await server.wait_closed()

    run(main())


class KeepChunks(asyncio.Protocol):
    """Keeps every object data_received is given, as it was given."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.arrived: asyncio.Queue[None] = asyncio.Queue()

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.arrived.put_nowait(None)


def test_each_read_gives_the_protocol_bytes_of_its_own(run: Run, no_fd_leak: None) -> None:
    # A loop's transports all read into one buffer (transports.read_scratch) and copy out
    # what arrived: a chunk a protocol keeps must survive the next read, on its own
    # connection and on another one.
    async def main() -> None:
        first, kept_first, first_peer = await connected_to_plain_peer(KeepChunks)
        second, kept_second, second_peer = await connected_to_plain_peer(KeepChunks)
        with first_peer, second_peer:
            for peer, protocol, byte in (
                (first_peer, kept_first, b"A"),
                (second_peer, kept_second, b"B"),
                (first_peer, kept_first, b"C"),
            ):
                peer.sendall(byte * 100)
                await protocol.arrived.get()
            first.close()
            second.close()
        assert kept_first.chunks == [b"A" * 100, b"C" * 100]
        assert kept_second.chunks == [b"B" * 100]
        assert {type(chunk) for chunk in kept_first.chunks + kept_second.chunks} == {bytes}

    run(main())


def test_a_read_larger_than_one_recv_arrives_whole(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        transport, protocol, peer = await connected_to_plain_peer(Recorder)
        payload = os.urandom(3 * 256 * 1024 + 1)  # more than three reads of MAX_READ
        with peer:
            sending = asyncio.get_running_loop().sock_sendall(peer, payload)
            received, _ = await asyncio.gather(protocol.received(len(payload)), sending)
        assert received == payload
        transport.close()

    run(main())


def test_write_eof_half_closes_and_eof_received_may_keep_it_open(
    run: Run, no_fd_leak: None
) -> None:
    class Answer(Recorder):
        def eof_received(self) -> bool:
            assert self.transport is not None
            self.transport.write(b"answer to " + bytes(self.data))
            self.transport.close()
            return True

    async def main() -> None:
        loop = net_loop()
        server = await loop.create_server(Answer, "127.0.0.1", 0)
        transport, client = await loop.create_connection(
            lambda: Recorder(keep_open=True), *(await listening(server))
        )
        assert transport.can_write_eof()
        transport.write(b"question")
        transport.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            transport.write(b"more")
        await client.eof
        assert bytes(client.data) == b"answer to question"
        # We kept our side open: still usable until we close it.
        assert not transport.is_closing() and not client.lost.done()
        transport.close()
        assert await client.lost is None
        server.close()
        await server.wait_closed()

    run(main())


def test_eof_received_returning_false_closes_the_transport(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        transport, client, peer = await connected_to_plain_peer(Recorder)
        with peer:
            peer.shutdown(socket.SHUT_WR)
            assert await client.lost is None
        assert client.events == ["made", "eof", "lost"]
        assert transport.is_closing()

    run(main())


def test_a_peer_reset_reaches_connection_lost_and_not_the_handler(
    run: Run, no_fd_leak: None
) -> None:
    async def main() -> None:
        loop = net_loop()
        contexts = exception_contexts(loop)
        served: list[Recorder] = []
        server = await loop.create_server(functools.partial(recorded, served), "127.0.0.1", 0)
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, await listening(server))
        while not served:
            await asyncio.sleep(0)
        await served[0].made
        # Linger with timeout 0: close() sends RST instead of FIN.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        assert isinstance(await served[0].lost, ConnectionResetError)
        assert contexts == []  # the peer's doing, not a bug: asyncio does not report it
        server.close()
        await server.wait_closed()

    run(main())


def test_connection_refused(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        with socket.socket() as bound:  # bound, not listening: connecting is refused
            bound.bind(("127.0.0.1", 0))
            address = bound.getsockname()
            with pytest.raises(ConnectionRefusedError):
                await loop.create_connection(asyncio.Protocol, *address)
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection(*address)
            with socket.socket() as sock:
                sock.setblocking(False)
                with pytest.raises(ConnectionRefusedError):
                    await loop.sock_connect(sock, address)

    run(main())


def test_a_protocol_that_raises_is_reported_and_loses_its_connection(
    run: Run, no_fd_leak: None
) -> None:
    class Buggy(Recorder):
        def data_received(self, data: bytes) -> None:
            raise ZeroDivisionError("protocol bug")

    async def main() -> None:
        loop = net_loop()
        contexts = exception_contexts(loop)
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        transport, client = await loop.create_connection(Buggy, *(await listening(server)))
        transport.write(b"ping")
        exc = await client.lost
        assert isinstance(exc, ZeroDivisionError)
        [context] = contexts
        assert context["message"] == "Fatal error: protocol.data_received() call failed."
        assert context["exception"] is exc and context["transport"] is transport
        server.close()
        await server.wait_closed()

    run(main())


def test_abort_drops_the_buffer_and_later_writes_are_ignored(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        transport, client, peer = await connected_to_plain_peer(Recorder)
        with peer:
            transport.write(b"x" * (8 * 1024 * 1024))  # the peer reads none of it
            assert transport.get_write_buffer_size() > 0
            transport.abort()
            assert transport.get_write_buffer_size() == 0
            assert await client.lost is None
            transport.write(b"into the void")  # dropped, as asyncio does
            transport.abort()  # a second abort changes nothing
            await parked()
            assert client.events == ["made", "lost"]

    run(main())


def test_connect_with_local_addr_or_an_existing_socket(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        address = await listening(server)
        transport, _ = await loop.create_connection(Recorder, *address, local_addr=("127.0.0.1", 0))
        assert transport.get_extra_info("sockname")[0] == "127.0.0.1"
        transport.close()
        sock = socket.create_connection(address)
        transport, client = await loop.create_connection(Recorder, sock=sock)
        transport.write(b"via sock=")
        assert await client.received(9) == b"via sock="
        transport.close()
        await client.lost
        with pytest.raises(ValueError, match="can not be specified"):
            await loop.create_connection(Recorder, *address, sock=sock)
        with pytest.raises(ValueError, match="server_hostname is only meaningful"):
            await loop.create_connection(Recorder, *address, server_hostname="x")
        server.close()
        await server.wait_closed()

    run(main())


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[str, int]]:
    """An echo server on the running loop; yields its address."""
    server = await net_loop().create_server(Echo, "127.0.0.1", 0)
    try:
        yield await listening(server)
    finally:
        server.close()
        await server.wait_closed()


@contextlib.contextmanager
def refused_address() -> Iterator[tuple[str, int]]:
    """An address that refuses connections: a socket bound there that does not listen."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()


@contextlib.contextmanager
def unanswered_address() -> Iterator[tuple[str, int]]:
    """An address whose connects hang: a listener with a full accept queue drops SYNs."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # room for one connection, which `filler` takes
        filler.connect(listener.getsockname())
        yield listener.getsockname()


def resolving_to(loop: NetworkMixin, answers: list[Any]) -> None:
    """Make ``loop.getaddrinfo`` answer ``answers`` (TCP over IPv4) for service.test."""

    async def resolve(host: Any, port: Any, **kwargs: Any) -> list[Any]:
        assert host == "service.test"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a) for a in answers]

    loop.getaddrinfo = resolve  # type: ignore[method-assign]


async def connects_to(expected: tuple[str, int], **options: Any) -> None:
    """``create_connection`` to service.test ends up connected to ``expected``."""
    transport, client = await net_loop().create_connection(Recorder, "service.test", 80, **options)
    assert transport.get_extra_info("peername") == expected
    transport.close()
    await client.lost


def test_connect_tries_each_resolved_address_in_turn(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        async with echo_server() as good:
            with refused_address() as refused:
                resolving_to(loop, [refused, good])
                await connects_to(good)
                resolving_to(loop, [refused, refused])
                with pytest.raises(ConnectionRefusedError):  # the same error twice: raised once
                    await loop.create_connection(Recorder, "service.test", 80, interleave=1)
                with pytest.raises(ExceptionGroup) as group:
                    await loop.create_connection(Recorder, "service.test", 80, all_errors=True)
                assert len(group.value.exceptions) == 2
                resolving_to(loop, [])
                with pytest.raises(OSError, match="getaddrinfo"):
                    await loop.create_connection(Recorder, "service.test", 80)

    run(main())


def test_happy_eyeballs_races_a_hanging_address(run: Run, no_fd_leak: None) -> None:
    # Tried one after another, the first address would hang until LIMIT; with a delay the
    # second starts while the first still hangs, wins, and the loser's socket is closed.
    async def main() -> None:
        async with echo_server() as good:
            with unanswered_address() as hanging:
                resolving_to(net_loop(), [hanging, good])
                await connects_to(good, happy_eyeballs_delay=0.01)

    run(main())


def test_happy_eyeballs_moves_on_at_once_when_an_attempt_fails(run: Run, no_fd_leak: None) -> None:
    # A delay far beyond LIMIT: only starting the next attempt as soon as the first fails
    # (connection refused) lets this finish.
    async def main() -> None:
        loop = net_loop()
        async with echo_server() as good:
            with refused_address() as refused:
                resolving_to(loop, [refused, good])
                await connects_to(good, happy_eyeballs_delay=10 * LIMIT)
                resolving_to(loop, [refused, refused])
                with pytest.raises(ExceptionGroup) as group:
                    await loop.create_connection(
                        Recorder, "service.test", 80, happy_eyeballs_delay=0.01, all_errors=True
                    )
                assert [type(e) for e in group.value.exceptions] == [ConnectionRefusedError] * 2

    run(main())


def test_cancelling_a_happy_eyeballs_race_closes_every_attempt(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        started: asyncio.Queue[None] = asyncio.Queue()
        connect = loop.sock_connect

        async def counted_connect(sock: socket.socket, address: Any) -> None:
            started.put_nowait(None)
            await connect(sock, address)

        loop.sock_connect = counted_connect  # type: ignore[method-assign]
        with unanswered_address() as first, unanswered_address() as second:
            resolving_to(loop, [first, second])
            racing = asyncio.ensure_future(
                loop.create_connection(Recorder, "service.test", 80, happy_eyeballs_delay=0.01)
            )
            await started.get()
            await started.get()  # both attempts are in flight
            racing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await racing

    run(main())


def test_connect_accepted_socket(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        with theirs:
            transport, protocol = await loop.connect_accepted_socket(Recorder, ours)
            await loop.sock_sendall(theirs, b"knock")
            assert await protocol.received(5) == b"knock"
            transport.close()
            await protocol.lost
            assert await loop.sock_recv(theirs, 10) == b""

    run(main())


# -- servers ---------------------------------------------------------------------------


def test_server_close_and_wait_closed(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        assert server.is_serving() and server.get_loop() is loop
        transport, client = await loop.create_connection(Recorder, *(await listening(server)))
        transport.write(b"x")
        await client.received(1)  # the server has accepted and is serving us
        # Waiting from before close(): on every Python, that waits for the connection too
        # (a wait begun after close() does not on 3.11: see the next test).
        waiting = loop.create_task(server.wait_closed())
        await parked()
        server.close()
        assert not server.is_serving() and server.sockets == ()
        await parked()
        assert not waiting.done()  # closed, but a connection is still up
        transport.close()
        await waiting
        await server.wait_closed()  # returns at once from now on
        server.close()  # a second close changes nothing

    run(main())


async def wait_closed_outcomes() -> dict[str, bool]:
    """Which waits for a server's end are over while one of its clients is still connected.

    Written with asyncio's streams and nothing of ours, so that the same scenario runs on
    asyncio's own loop: the test holds the adapter's ``Server`` to what the running
    Python's asyncio does, as well as to the expectation it spells out.
    """
    loop = asyncio.get_running_loop()
    accepted: asyncio.Queue[None] = asyncio.Queue()
    finished: asyncio.Queue[None] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(None)
        await reader.read()  # until the client closes
        writer.close()
        await writer.wait_closed()
        finished.put_nowait(None)

    async def leave(server: asyncio.AbstractServer) -> None:
        async with server:
            pass

    outcomes: dict[str, bool] = {}
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    no_client_yet = loop.create_task(server.wait_closed())
    await parked()
    outcomes["open, no client"] = no_client_yet.done()
    _, writer = await asyncio.open_connection(host, port)
    await accepted.get()
    before_close = loop.create_task(server.wait_closed())
    await parked()  # it is waiting
    server.close()
    after_close = loop.create_task(server.wait_closed())
    leaving = loop.create_task(leave(server))
    await parked()
    outcomes["begun before close"] = before_close.done()
    outcomes["begun after close"] = after_close.done()
    outcomes["async with, closed"] = leaving.done()
    writer.close()
    await writer.wait_closed()
    await finished.get()
    await asyncio.gather(no_client_yet, before_close, after_close, leaving)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, start_serving=False)
    serving = loop.create_task(server.serve_forever())
    await parked()
    _, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    await accepted.get()
    serving.cancel()
    await parked()
    outcomes["serve_forever cancelled"] = serving.done()
    writer.close()
    await writer.wait_closed()
    await finished.get()
    with pytest.raises(asyncio.CancelledError):
        await serving
    return outcomes


def test_wait_closed_means_what_the_running_pythons_asyncio_means(
    run: Run, no_fd_leak: None
) -> None:
    if sys.version_info < (3, 12):
        # Closed is enough: the connections are not waited for.
        expected = {
            "open, no client": False,
            "begun before close": False,
            "begun after close": True,
            "async with, closed": True,
            "serve_forever cancelled": True,
        }
    elif sys.version_info < (3, 12, 1):
        # No connection is enough, closed or not.
        expected = {
            "open, no client": True,
            "begun before close": False,
            "begun after close": False,
            "async with, closed": False,
            "serve_forever cancelled": False,
        }
    else:
        # Closed and no connection left, both.
        expected = dict.fromkeys(
            [
                "open, no client",
                "begun before close",
                "begun after close",
                "async with, closed",
                "serve_forever cancelled",
            ],
            False,
        )
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        assert runner.run(asyncio.wait_for(wait_closed_outcomes(), LIMIT)) == expected
    assert run(wait_closed_outcomes()) == expected


def test_server_close_clients_and_abort_clients(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        address = await listening(server)
        clients = [await loop.create_connection(Recorder, *address) for _ in range(2)]
        for transport, client in clients:
            transport.write(b"x")
            await client.received(1)
        server.close_clients()
        for _, client in clients:
            await client.eof
        more = [await loop.create_connection(Recorder, *address) for _ in range(2)]
        for transport, client in more:
            transport.write(b"x")
            await client.received(1)
        server.abort_clients()
        for _, client in more:
            await client.lost  # reset or EOF, depending on timing
        for transport, _ in clients + more:
            transport.close()
        server.close()
        await server.wait_closed()

    run(main())


def test_serve_forever_until_cancelled(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
        assert not server.is_serving()
        serving = loop.create_task(server.serve_forever())
        await parked()
        assert server.is_serving()
        with pytest.raises(RuntimeError, match="already being awaited"):
            await server.serve_forever()
        transport, client = await loop.create_connection(Recorder, *(await listening(server)))
        transport.write(b"ping")
        assert await client.received(4) == b"ping"
        transport.close()
        await client.lost
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
        assert not server.is_serving() and server.sockets == ()
        with pytest.raises(RuntimeError, match="is closed"):
            await server.serve_forever()

    run(main())


def test_server_as_async_context_manager(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        async with await loop.create_server(Echo, "127.0.0.1", 0) as server:
            assert server.is_serving()
        assert not server.is_serving()

    run(main())


def test_server_argument_errors(run: Run) -> None:
    async def main() -> None:
        loop = net_loop()
        with pytest.raises(TypeError, match="SSLContext"):
            await loop.create_server(Echo, "127.0.0.1", 0, ssl=True)
        with pytest.raises(ValueError, match="Neither host/port nor sock"):
            await loop.create_server(Echo)
        with socket.socket(type=socket.SOCK_DGRAM) as udp, pytest.raises(ValueError):
            await loop.create_server(Echo, sock=udp)

    run(main())


async def bind_failures() -> dict[str, tuple[int | None, str]]:
    """The errno and message of each way a bind to an address in use fails, the address
    written as ``(ADDRESS)``. Plain asyncio calls, so they run on asyncio's own loop too."""
    loop = asyncio.get_running_loop()
    failures: dict[str, tuple[int | None, str]] = {}
    with socket.create_server(("127.0.0.1", 0)) as taken:
        address = taken.getsockname()
        with pytest.raises(OSError) as serving:
            await loop.create_server(asyncio.Protocol, *address)
        with pytest.raises(OSError) as connecting:
            await loop.create_connection(asyncio.Protocol, *address, local_addr=address)
    for name, error in (("create_server", serving.value), ("local_addr", connecting.value)):
        failures[name] = (error.errno, str(error).replace(repr(address), "(ADDRESS)"))
    return failures


def test_a_failed_bind_is_worded_as_the_running_pythons_asyncio_words_it(
    run: Run, no_fd_leak: None
) -> None:
    in_use = errno.EADDRINUSE
    reason = os.strerror(in_use).lower()
    if sys.version_info >= (3, 12, 5):  # CPython's gh-121913: str(error), errno and all
        reason = f"[errno {in_use}] {reason}"
    message = f"[Errno {in_use}] error while attempting to bind on address (ADDRESS): {reason}"
    expected = {"create_server": (in_use, message), "local_addr": (in_use, message)}
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        assert runner.run(asyncio.wait_for(bind_failures(), LIMIT)) == expected
    assert run(bind_failures()) == expected


def test_unix_sockets(run: Run, tmp_path: Path, no_fd_leak: None) -> None:
    path = str(tmp_path / "echo.sock")

    async def main() -> None:
        loop = net_loop()
        server = await loop.create_unix_server(Echo, path, cleanup_socket=True)
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"over a unix socket\n")
        assert await reader.readline() == b"over a unix socket\n"
        writer.close()
        await writer.wait_closed()
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        transport, client = await loop.create_unix_connection(Recorder, sock=sock)
        transport.write(b"sock=")
        assert await client.received(5) == b"sock="
        transport.close()
        await client.lost
        server.close()
        await server.wait_closed()
        assert not os.path.exists(path)  # cleanup_socket removed the file we bound

    run(main())


# -- datagrams -------------------------------------------------------------------------


class DatagramRecorder(asyncio.DatagramProtocol):
    def __init__(self, echo: bool = False) -> None:
        loop = net_loop()
        self.echo = echo
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.echo:
            self.transport.sendto(data.upper(), addr)
        self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.errors.put_nowait(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


def test_udp_echo(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        server_t, server = await loop.create_datagram_endpoint(
            lambda: DatagramRecorder(echo=True), local_addr=("127.0.0.1", 0)
        )
        address = server_t.get_extra_info("sockname")
        client_t, client = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=address
        )
        assert isinstance(client_t, DatagramTransport)
        assert client_t.get_extra_info("peername") == address
        client_t.sendto(b"ping")
        assert await client.queue.get() == (b"PING", address)
        client_t.sendto(memoryview(b"pong"), address)
        assert (await client.queue.get())[0] == b"PONG"
        with pytest.raises(ValueError, match="Invalid address"):
            client_t.sendto(b"elsewhere", ("127.0.0.1", 1))
        with pytest.raises(TypeError, match="bytes-like"):
            client_t.sendto("text")  # type: ignore[arg-type]
        for transport, protocol in ((client_t, client), (server_t, server)):
            transport.close()
            assert await protocol.lost is None

    run(main())


def test_a_kept_datagram_is_not_overwritten_by_the_next(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        server_t, server = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0)
        )
        client_t, _ = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=server_t.get_extra_info("sockname")
        )
        client_t.sendto(b"first")
        client_t.sendto(b"second!")
        first = await server.queue.get()
        second = await server.queue.get()  # read after first, into the same loop buffer
        assert (first[0], second[0]) == (b"first", b"second!")
        assert type(first[0]) is bytes
        client_t.close()
        server_t.close()

    run(main())


def test_udp_errors_go_to_error_received(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        with socket.socket(type=socket.SOCK_DGRAM) as closed_port:
            closed_port.bind(("127.0.0.1", 0))
            address = closed_port.getsockname()
        # Nobody listens there now: the ICMP "port unreachable" comes back to a connected
        # UDP socket as ECONNREFUSED, and the endpoint carries on.
        transport, protocol = await loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=address
        )
        transport.sendto(b"anyone?")
        assert isinstance(await protocol.errors.get(), ConnectionRefusedError)
        assert not transport.is_closing()
        transport.close()
        await protocol.lost

    run(main())


@contextlib.asynccontextmanager
async def datagram_blocked_by_its_peer() -> AsyncIterator[
    tuple[DatagramTransport, DatagramRecorder, socket.socket, int]
]:
    """A datagram transport whose next ``sendto`` would block, and the peer it sends to.

    The peer is a plain Unix datagram socket that reads nothing until the test does: the
    transport's socket filled its receive queue before the transport got it, so what it
    sends now waits in the transport's queue. Yields the transport, its protocol, the peer
    and the number of datagrams waiting in the peer's queue.
    """
    loop = net_loop()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as peer:
        peer.bind("")  # Linux: an address of its own in the abstract namespace
        peer.setblocking(False)
        ours = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            ours.connect(peer.getsockname())
            ours.setblocking(False)
            waiting = 0
            with contextlib.suppress(BlockingIOError):
                while True:
                    ours.send(b"f")
                    waiting += 1
            transport, protocol = await loop.create_datagram_endpoint(DatagramRecorder, sock=ours)
        except BaseException:
            ours.close()
            raise
        assert isinstance(transport, DatagramTransport)
        try:
            yield transport, protocol, peer, waiting
        finally:
            transport.abort()
            await protocol.lost


@pytest.mark.skipif(sys.platform != "linux", reason="binds in Linux's abstract namespace")
def test_abort_with_only_empty_datagrams_queued_removes_the_writer(
    run: Run, no_fd_leak: None
) -> None:
    async def main() -> None:
        loop = net_loop()
        async with datagram_blocked_by_its_peer() as (transport, protocol, _, _):
            transport.sendto(b"")  # would block: queued, with no payload bytes
            assert transport.get_write_buffer_size() == 0
            fd = transport.get_extra_info("socket").fileno()
            transport.abort()
            assert await protocol.lost is None
            # The writer went before the socket closed: a later socket that gets the same
            # descriptor number is not left with a stale watcher that swallows its events.
            assert loop.remove_writer(fd) is False

    run(main())


@pytest.mark.skipif(sys.platform != "linux", reason="binds in Linux's abstract namespace")
def test_close_sends_queued_empty_datagrams_before_connection_lost(
    run: Run, no_fd_leak: None
) -> None:
    async def main() -> None:
        loop = net_loop()
        async with datagram_blocked_by_its_peer() as (transport, protocol, peer, waiting):
            fd = transport.get_extra_info("socket").fileno()
            transport.sendto(b"")
            transport.close()
            await parked()
            assert not protocol.lost.done()  # the empty datagram still waits to be sent
            for _ in range(waiting):
                assert peer.recv(10) == b"f"  # room again: the writer sends the rest
            assert await protocol.lost is None
            assert peer.recv(10) == b""  # it arrived, and before connection_lost
            assert loop.remove_writer(fd) is False

    run(main())


def test_datagram_endpoint_argument_errors(run: Run) -> None:
    async def main() -> None:
        loop = net_loop()
        with socket.socket(type=socket.SOCK_DGRAM) as udp, pytest.raises(ValueError):
            await loop.create_datagram_endpoint(
                DatagramRecorder, sock=udp, local_addr=("127.0.0.1", 0)
            )
        with pytest.raises(ValueError, match="unexpected address family"):
            await loop.create_datagram_endpoint(DatagramRecorder)
        with pytest.raises(ValueError, match="reuse_address"):
            await loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1", 0), reuse_address=True
            )

    run(main())


# -- sock_* ------------------------------------------------------------------------------


async def connected_pair() -> tuple[socket.socket, socket.socket]:
    """A TCP connection over loopback made with sock_connect and sock_accept."""
    loop = net_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        accepting = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        server, address = await accepting
    assert address == client.getsockname() and server.gettimeout() == 0
    return client, server


def test_sock_stream_round_trip(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        client, server = await connected_pair()
        with client, server:
            receiving = loop.create_task(loop.sock_recv(server, 100))
            await parked()  # parked on the socket: the data arrives while it waits
            await loop.sock_sendall(client, b"hello")
            assert await receiving == b"hello"
            big = os.urandom(4 * 1024 * 1024)  # does not fit the socket buffers
            sending = loop.create_task(loop.sock_sendall(client, big))
            buf = bytearray(len(big))
            view = memoryview(buf)
            got = 0
            while got < len(big):
                got += await loop.sock_recv_into(server, view[got:])
            await sending
            assert buf == big
            client.shutdown(socket.SHUT_WR)
            assert await loop.sock_recv(server, 100) == b""

    run(main())


def test_sock_datagram_round_trip(run: Run, no_fd_leak: None) -> None:
    async def main() -> None:
        loop = net_loop()
        with socket.socket(type=socket.SOCK_DGRAM) as a, socket.socket(type=socket.SOCK_DGRAM) as b:
            for sock in (a, b):
                sock.bind(("127.0.0.1", 0))
                sock.setblocking(False)
            receiving = loop.create_task(loop.sock_recvfrom(b, 100))
            await parked()
            assert await loop.sock_sendto(a, b"one", b.getsockname()) == 3
            assert await receiving == (b"one", a.getsockname())
            await loop.sock_sendto(a, b"two", b.getsockname())
            buf = bytearray(10)
            assert await loop.sock_recvfrom_into(b, buf) == (3, a.getsockname())
            assert buf[:3] == b"two"

    run(main())


def test_cancelled_sock_operations_leave_nothing_registered(run: Run, no_fd_leak: None) -> None:
    async def cancelled(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> None:
        task = loop.create_task(coro)
        await parked()
        assert not task.done()  # waiting on its socket
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def main() -> None:
        loop = net_loop()
        client, server = await connected_pair()
        with client, server, socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            buf = bytearray(10)
            for fd, coro in [
                (server.fileno(), loop.sock_recv(server, 10)),
                (server.fileno(), loop.sock_recv_into(server, buf)),
                (server.fileno(), loop.sock_recvfrom(server, 10)),
                (server.fileno(), loop.sock_recvfrom_into(server, buf)),
                (listener.fileno(), loop.sock_accept(listener)),
            ]:
                await cancelled(loop, coro)
                assert loop.remove_reader(fd) is False  # nothing was left registered
            # Fill the send buffer so that sock_sendall has to wait.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            try:
                while True:
                    client.send(b"x" * 65536)
            except BlockingIOError:
                pass
            await cancelled(loop, loop.sock_sendall(client, b"y" * 65536))
            assert loop.remove_writer(client.fileno()) is False

            # The racing case: a recv cancelled, and a new one on the same socket started
            # before the cancelled one has cleaned up. The new one must still be woken.
            first = loop.create_task(loop.sock_recv(client, 10))
            await parked()
            first.cancel()
            second = loop.create_task(loop.sock_recv(client, 10))
            await parked()
            server.send(b"for second")
            assert await second == b"for second"
            assert first.cancelled()

    run(main())


def test_sock_methods_refuse_blocking_and_tls_sockets(run: Run) -> None:
    async def main() -> None:
        loop = net_loop()
        with socket.socket() as blocking:
            with pytest.raises(ValueError, match="non-blocking"):
                await loop.sock_recv(blocking, 1)
            with pytest.raises(ValueError, match="non-blocking"):
                await loop.sock_connect(blocking, ("127.0.0.1", 1))
            tls = ssl.create_default_context().wrap_socket(
                blocking, server_hostname="localhost", do_handshake_on_connect=False
            )
            with tls, pytest.raises(TypeError, match="SSLSocket"):
                await loop.sock_sendall(tls, b"x")

    run(main())


def test_sock_sendfile_native_and_fallback(run: Run, tmp_path: Path, no_fd_leak: None) -> None:
    content = os.urandom(600 * 1024)
    path = tmp_path / "payload"
    path.write_bytes(content)

    async def receive(sock: socket.socket, n: int) -> bytes:
        loop = net_loop()
        data = b""
        while len(data) < n:
            data += await loop.sock_recv(sock, 65536)
        return data

    async def main() -> None:
        loop = net_loop()
        client, server = await connected_pair()
        with client, server, path.open("rb") as file:
            receiving = loop.create_task(receive(server, len(content)))
            assert await loop.sock_sendfile(client, file) == len(content)
            assert await receiving == content
            assert file.tell() == len(content)
            # offset and count; the file position ends after what was sent
            receiving = loop.create_task(receive(server, 1000))
            assert await loop.sock_sendfile(client, file, 5000, 1000) == 1000
            assert await receiving == content[5000:6000] and file.tell() == 6000
            # Not a real file: no os.sendfile, so read + send (or an error if not allowed)
            memory = io.BytesIO(content)
            with pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sock_sendfile(client, memory, fallback=False)
            receiving = loop.create_task(receive(server, len(content) - 10))
            assert await loop.sock_sendfile(client, memory, 10) == len(content) - 10
            assert await receiving == content[10:]
            with pytest.raises(ValueError, match="non-negative"):
                await loop.sock_sendfile(client, file, -1)

    run(main())


# -- TLS ---------------------------------------------------------------------------------


def test_tls_echo_with_streams(
    run: Run, certs: tuple[ssl.SSLContext, ssl.SSLContext], no_fd_leak: None
) -> None:
    server_ctx, client_ctx = certs

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(100):
                writer.write(data[::-1])
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        host, port = await listening(server)
        reader, writer = await asyncio.open_connection(
            host, port, ssl=client_ctx, ssl_handshake_timeout=LIMIT
        )
        writer.write(b"secret")
        assert await reader.readexactly(6) == b"terces"
        ssl_object = writer.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject) and ssl_object.version() is not None
        assert writer.get_extra_info("sslcontext") is client_ctx
        assert writer.get_extra_info("peercert")["subjectAltName"]
        assert writer.get_extra_info("cipher") is not None
        assert writer.get_extra_info("peername") == (host, port)  # from our transport below
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_tls_refused_certificate(
    run: Run, certs: tuple[ssl.SSLContext, ssl.SSLContext], no_fd_leak: None
) -> None:
    server_ctx, _ = certs

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0, ssl=server_ctx)
        untrusting = ssl.create_default_context()  # does not know our CA
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(*(await listening(server)), ssl=untrusting)
        server.close()
        await server.wait_closed()

    run(main())


def test_start_tls_upgrades_a_plain_connection(
    run: Run, certs: tuple[ssl.SSLContext, ssl.SSLContext], no_fd_leak: None
) -> None:
    server_ctx, client_ctx = certs

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"go ahead\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            writer.write(b"now encrypted: " + await reader.readline())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*(await listening(server)))
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"go ahead\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"hello\n")
        assert await reader.readline() == b"now encrypted: hello\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

        loop = net_loop()
        with pytest.raises(TypeError, match="SSLContext"):
            await loop.start_tls(writer.transport, Echo(), None)  # type: ignore[arg-type]

    run(main())


# -- sendfile over transports --------------------------------------------------------------


def test_loop_sendfile_over_plain_and_tls_transports(
    run: Run,
    certs: tuple[ssl.SSLContext, ssl.SSLContext],
    tmp_path: Path,
    no_fd_leak: None,
) -> None:
    server_ctx, client_ctx = certs
    content = os.urandom(300 * 1024)
    path = tmp_path / "payload"
    path.write_bytes(content)

    async def main() -> None:
        loop = net_loop()
        for ctx_server, ctx_client in ((None, None), (server_ctx, client_ctx)):
            served: list[Recorder] = []
            make = functools.partial(recorded, served)
            server = await loop.create_server(make, "127.0.0.1", 0, ssl=ctx_server)
            transport, client = await loop.create_connection(
                Recorder,
                *(await listening(server)),
                ssl=ctx_client,
                server_hostname="localhost" if ctx_client else None,
            )
            with path.open("rb") as file:
                transport.write(b"head:")
                assert await loop.sendfile(transport, file) == len(content)
            transport.write(b":tail")
            await served[0].received(len(content) + 10)
            assert bytes(served[0].data) == b"head:" + content + b":tail"
            # The real protocol is back and reading resumed.
            assert transport.get_protocol() is client and transport.is_reading()
            served[0].transport.write(b"reply")  # type: ignore[union-attr]
            assert await client.received(5) == b"reply"
            transport.close()
            await client.lost
            server.close()
            await server.wait_closed()

    run(main())


def test_loop_sendfile_refuses_unsuitable_transports(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "payload"
    path.write_bytes(b"data")

    async def main() -> None:
        loop = net_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0)
        )
        with path.open("rb") as file:
            # (typed: sendfile wants a WriteTransport; refusing the others is the point)
            with pytest.raises(RuntimeError, match="not supported"):
                await loop.sendfile(transport, file)  # type: ignore[arg-type]
            transport.close()
            with pytest.raises(RuntimeError, match="closing"):
                await loop.sendfile(transport, file)  # type: ignore[arg-type]
        await protocol.lost

    run(main())


# -- name resolution ---------------------------------------------------------------------


def test_getaddrinfo_and_getnameinfo(run: Run) -> None:
    async def main() -> None:
        loop = net_loop()
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert infos[0][4] == ("127.0.0.1", 80)
        flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        assert await loop.getnameinfo(("127.0.0.1", 80), flags) == ("127.0.0.1", "80")

    run(main())


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/fd")
def test_the_fd_leak_check_notices_a_leak() -> None:
    # The no_fd_leak fixture is only worth something if it can fail.
    before = set(os.listdir("/proc/self/fd"))
    with socket.socket():
        assert not set(os.listdir("/proc/self/fd")) <= before


def test_what_asyncio_logs_goes_to_the_asyncio_logger(caplog: pytest.LogCaptureFixture) -> None:
    # So that the usual way to quiet asyncio -- raising its logger's level -- works here
    # too: writes to a lost connection are warned about as "socket.send() raised exception."
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.transport.abort()  # the peer goes away

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.read()  # the connection is lost
        for _ in range(7):
            writer.write(b"ignored")
        writer.close()
        server.close()
        await server.wait_closed()

    with caplog.at_level(logging.WARNING):
        kernel.aio.run(main())
    warnings = [r for r in caplog.records if "socket.send() raised" in r.getMessage()]
    assert warnings and {r.name for r in warnings} == {"asyncio"}
