"""kernel.socket on loopback: the happy paths, the faults, cancellation, and no leaks.

These use real sockets, so they run on the real clock where a peer's reply is awaited;
every wait is bounded by a timeout and every loop by a count.
"""

from __future__ import annotations

import errno
import os
import socket as stdlib_socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import kernel
from kernel import ResourceBusy, TaskCancelled, resolver, socket

pytestmark = pytest.mark.realtime
LIMIT = 10.0  # seconds: no test waits longer than this for the network


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def io_waiters() -> list[Any]:
    k = kernel.current_kernel()
    assert k is not None
    return k._io.waiters()


async def parked(task: kernel.Task) -> None:
    """Let the loop turn until ``task`` waits in the I/O table (bounded by passes, not time)."""
    for _ in range(1000):
        if task.state == "IO_WAIT":
            return
        await kernel.sleep(0)
    raise AssertionError(f"{task!r} never blocked on I/O")


async def park_once(sock: socket.Socket, peer: socket.Socket, data: bytes = b"x") -> None:
    """One ``recv`` on ``sock`` that parks, then gets ``data`` from ``peer``: a short read,
    after which the registration is kept between waits (and the next ``recv`` parks first)."""
    reader = await kernel.spawn(sock.recv, 100)
    await parked(reader)
    await peer.sendall(data)
    assert await kernel.timeout_after(LIMIT, reader.join) == data


async def echo(client: socket.Socket) -> None:
    async with client:
        while data := await client.recv(65536):
            await client.sendall(data)


@asynccontextmanager
async def echo_server(
    handler: Callable[[socket.Socket], Awaitable[None]] = echo,
) -> AsyncIterator[tuple[str, int]]:
    """A TCP server on an ephemeral loopback port, cancelled with everything it spawned."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)

    async def serve() -> None:
        async with kernel.TaskGroup(wait=None) as group:
            while True:
                client, _ = await listener.accept()
                await group.spawn(handler, client)

    server = await kernel.spawn(serve)
    try:
        yield listener.getsockname()
    finally:
        await server.cancel()
        await listener.close()


async def connect(address: tuple[str, int]) -> socket.Socket:
    return await socket.create_connection(address, timeout=LIMIT)


async def test_the_module_mirrors_the_stdlib() -> None:
    assert socket.AF_INET == stdlib_socket.AF_INET
    assert socket.SOL_SOCKET == stdlib_socket.SOL_SOCKET
    assert socket.timeout is stdlib_socket.timeout
    with pytest.raises(AttributeError, match="has no attribute 'nonsense'"):
        socket.nonsense  # noqa: B018
    infos = await socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert infos[0][4] == ("127.0.0.1", 80)
    assert await socket.gethostbyname("127.0.0.1") == "127.0.0.1"


async def test_tcp_echo() -> None:
    async with echo_server() as address:
        client = await connect(address)
        async with client:
            await client.sendall(b"hello")
            assert await client.recv(100) == b"hello"
            buffer = bytearray(5)
            await client.send(b"world")
            assert await client.recv_into(buffer) == 5 and buffer == b"world"
    assert io_waiters() == []  # the server and its handlers are gone, and so are their waits


async def test_tcp_over_ipv6() -> None:
    if not stdlib_socket.has_ipv6:
        pytest.skip("no IPv6")
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        listener.bind(("::1", 0))
    except OSError:
        await listener.close()
        pytest.skip("no IPv6 loopback")
    listener.listen(1)
    async with listener:
        client = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        async with client:
            await client.connect(listener.getsockname()[:2])
            peer, _ = await listener.accept()
            async with peer:
                await client.sendall(b"six")
                assert await peer.recv(10) == b"six"


async def test_udp_echo() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    async with server, client:
        server.bind(("127.0.0.1", 0))

        async def bounce() -> None:
            data, peer = await server.recvfrom(100)
            await server.sendto(data.upper(), peer)

        task = await kernel.spawn(bounce)
        await client.sendto(b"ping", server.getsockname())
        assert await kernel.timeout_after(LIMIT, client.recvfrom, 100) == (
            b"PING",
            server.getsockname(),
        )
        await task.join()


async def test_udp_recvfrom_into() -> None:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    async with a, b:
        a.bind(("127.0.0.1", 0))
        receiver = await kernel.spawn(a.recvfrom_into, bytearray(16))
        await kernel.sleep(0)
        await b.sendto(b"into", a.getsockname())
        nbytes, sender = await kernel.timeout_after(LIMIT, receiver.join)
        assert nbytes == 4 and sender[1] == b.getsockname()[1]  # b was bound implicitly


async def test_unix_socketpair_with_recvmsg_and_sendmsg() -> None:
    a, b = socket.socketpair()
    async with a, b:
        await a.sendmsg([b"one ", b"two"])
        data, _, _, _ = await b.recvmsg(100)
        assert data == b"one two"


async def test_connect_to_a_closed_port_is_refused() -> None:
    probe = stdlib_socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    async with sock:
        assert await sock.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED
    with pytest.raises(ConnectionRefusedError):
        await connect(("127.0.0.1", port))


async def test_half_close_lets_the_peer_see_eof_and_still_answer() -> None:
    async def reply_after_eof(client: socket.Socket) -> None:
        async with client:
            received = b""
            while data := await client.recv(100):
                received += data
            await client.sendall(b"got " + received)

    async with echo_server(reply_after_eof) as address:
        client = await connect(address)
        async with client:
            await client.sendall(b"all of it")
            await client.shutdown(socket.SHUT_WR)
            assert await kernel.timeout_after(LIMIT, client.recv, 100) == b"got all of it"


async def test_a_peer_reset_surfaces_as_the_stdlib_errors() -> None:
    async def reset(client: socket.Socket) -> None:
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        await client.recv(100)
        await client.close()

    async with echo_server(reset) as address:
        client = await connect(address)
        async with client:
            await client.sendall(b"x")
            with pytest.raises((ConnectionResetError, BrokenPipeError)):
                for _ in range(100):  # the RST arrives after a short while
                    if not await kernel.timeout_after(LIMIT, client.recv, 100):
                        await client.sendall(b"more")


async def test_writing_to_a_closed_peer_raises() -> None:
    async def close_at_once(client: socket.Socket) -> None:
        await client.close()

    async with echo_server(close_at_once) as address:
        client = await connect(address)
        async with client:
            assert await kernel.timeout_after(LIMIT, client.recv, 100) == b""
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                for _ in range(100):
                    await client.sendall(b"x" * 65536)


async def test_closing_a_socket_wakes_the_task_waiting_on_it() -> None:
    a, b = socket.socketpair()
    async with b:
        reader = await kernel.spawn(a.recv, 100)
        await kernel.sleep(0)
        assert [name for _, name, _ in io_waiters()] == ["read"]
        await a.close()
        await reader.wait()
        assert isinstance(reader.exception, OSError)
        assert reader.exception.errno == errno.EBADF
        assert "was closed by" in str(reader.exception)
        assert io_waiters() == []


async def test_a_socket_closed_behind_the_kernels_back_fails_its_reader_once_reused() -> None:
    # Closed with the stdlib's close, the kernel never hears of it, and epoll drops the
    # descriptor silently. When its number comes back for a new socket, the old reader is
    # woken, retries its recv on the closed socket, and gets the stdlib's error.
    a, b = socket.socketpair()
    async with b:
        reader = await kernel.spawn(a.recv, 100)
        await parked(reader)
        number = a.fileno()
        a.stdlib_socket.close()
        c, d = socket.socketpair()
        async with c, d:
            if number not in (c.fileno(), d.fileno()):
                pytest.skip("the OS did not reuse the descriptor number")
            newcomer = c if c.fileno() == number else d
            peer = d if newcomer is c else c
            answer = await kernel.spawn(newcomer.recv, 100)
            await reader.wait()
            assert isinstance(reader.exception, OSError)
            assert reader.exception.errno == errno.EBADF
            await peer.sendall(b"for the newcomer")
            assert await kernel.timeout_after(LIMIT, answer.join) == b"for the newcomer"
    assert io_waiters() == []


@pytest.mark.parametrize("how", ["close", "detach"])
async def test_a_recv_after_the_stdlib_socket_was_closed_fails_rather_than_hangs(how: str) -> None:
    # A short read makes the next recv park first, on a registration kept from the last
    # wait; closed (or detached) behind the kernel's back since, epoll no longer watches
    # the descriptor, and that park would never end.
    a, b = socket.socketpair()
    async with b:
        await park_once(a, b)
        if how == "close":
            a.stdlib_socket.close()
        else:
            os.close(a.detach())
        with pytest.raises(ValueError, match="so it is closed"):
            await kernel.timeout_after(LIMIT, a.recv, 100)
    assert io_waiters() == []


async def test_a_socket_dropped_without_close_is_not_kept_open_by_the_kernel() -> None:
    # Its registration outlives its waits (to save epoll_ctl calls): the kernel must not be
    # what keeps it, and its descriptor, alive while the peer stays quiet.
    before = open_fds()
    a, b = socket.socketpair()
    async with b:
        await park_once(a, b, b"one message, then silence")
        k = kernel.current_kernel()
        assert k is not None and len(k._io._by_object) == 1  # still registered, idle
        with pytest.warns(ResourceWarning, match="unclosed"):
            del a  # no close(): the stdlib socket closes itself, as without the kernel
            await kernel.sleep(0)  # (the table lets go of it between task steps)
        assert len(k._io._by_object) == 0
        assert open_fds() == before | {str(b.fileno())}
    assert open_fds() == before


def test_a_socket_dropped_between_two_runs_is_not_kept_open_by_the_kernel() -> None:
    a, b = socket.socketpair()
    fd = a.fileno()
    with kernel.Kernel() as k:
        k.run(park_once, a, b)
        assert k._io.holds(a.stdlib_socket)  # kept from its wait; the kernel is not running
        with pytest.warns(ResourceWarning, match="unclosed"):
            del a
        assert len(k._io._by_object) == 0
        with pytest.raises(OSError):
            os.fstat(fd)  # closed
        k.run(b.close)


def test_a_socket_dropped_as_the_kernel_closes_is_closed_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The last reference goes in a task's cleanup as close() cancels it: the kernel is
    # running, so the table is to let go at its next turn -- which never comes. Closing
    # drops the table (and the socket with it), and that is no callback "never ran".
    a, b = socket.socketpair()
    fd = a.fileno()
    kept = [a]
    del a

    async def holder() -> None:
        try:
            await park_once(kept[0], b)
            await kernel.sleep(100)
        finally:
            kept.clear()

    async def main() -> None:
        await kernel.spawn(holder, daemon=True)
        await kernel.sleep(1)

    with pytest.warns(ResourceWarning, match="unclosed"):
        kernel.run(main, clock=kernel.VirtualClock())
    assert "never ran" not in caplog.text
    with pytest.raises(OSError):
        os.fstat(fd)  # closed
    kernel.run(b.close)


async def test_a_socket_dropped_in_a_worker_thread_is_let_go_of_by_the_kernel() -> None:
    a, b = socket.socketpair()
    async with b:
        await park_once(a, b)
        fd = a.fileno()
        held = [a]
        del a
        with pytest.warns(ResourceWarning, match="unclosed"):
            await kernel.run_in_thread(held.clear)  # the last reference goes in that thread
            await kernel.sleep(0)
        assert io_waiters() == []
        with pytest.raises(OSError):
            os.fstat(fd)  # closed


async def test_a_socket_kept_after_its_wrapper_is_dropped_stays_open_and_usable() -> None:
    a, b = socket.socketpair()
    async with b:
        kept = a.stdlib_socket
        reader = await kernel.spawn(a.recv, 100)
        await parked(reader)
        await b.sendall(b"first")
        assert await kernel.timeout_after(LIMIT, reader.join) == b"first"
        reader = None  # type: ignore[assignment]
        del a  # the wrapper goes; its owner keeps the socket
        assert kept.fileno() >= 0
        again = socket.Socket(kept)
        async with again:
            reader = await kernel.spawn(again.recv, 100)
            await parked(reader)
            await b.sendall(b"second")
            assert await kernel.timeout_after(LIMIT, reader.join) == b"second"
    assert io_waiters() == []


async def test_a_task_woken_by_io_is_ready_and_a_cancel_before_it_runs_loses_nothing() -> None:
    a, b = socket.socketpair()
    async with a, b:
        reader = await kernel.spawn(a.recv, 100)
        await parked(reader)
        await b.sendall(b"x")
        # To the back of the ready queue: the next poll wakes the reader behind us.
        await kernel.sleep(0)
        assert reader.state == "READY" and io_waiters() == []
        # Not blocked any more, so the cancel waits for its next blocking call; it makes
        # none: it runs once, and the byte is not lost.
        assert await reader.cancel() is True
        assert not reader.cancelled
        assert await reader.join() == b"x"
    assert io_waiters() == []


async def test_two_readers_on_one_socket_is_resource_busy() -> None:
    a, b = socket.socketpair()
    async with a, b:
        first = await kernel.spawn(a.recv, 100)
        await kernel.sleep(0)
        with pytest.raises(ResourceBusy):
            await a.recv(100)
        await b.sendall(b"for the first")
        assert await first.join() == b"for the first"


class TestCancellation:
    """A task cancelled in any blocking call leaves no fd and no I/O table entry behind."""

    async def cancel_while_blocked(self, blocked: Callable[[], Awaitable[Any]]) -> None:
        task = await kernel.spawn(blocked)
        await parked(task)
        await task.cancel()
        assert isinstance(task.exception, TaskCancelled)
        assert io_waiters() == []

    async def test_recv(self) -> None:
        before = open_fds()
        a, b = socket.socketpair()
        async with a, b:
            await self.cancel_while_blocked(lambda: a.recv(100))
        assert open_fds() == before

    async def test_accept(self) -> None:
        before = open_fds()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        async with listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            await self.cancel_while_blocked(listener.accept)
        assert open_fds() == before

    async def test_connect(self) -> None:
        # A listener whose backlog is full does not answer new connections (they wait in
        # SYN_SENT), which keeps connect() blocked long enough to cancel it.
        before = open_fds()
        listener = stdlib_socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        try:
            for _ in range(8):
                filler = stdlib_socket.socket()
                filler.setblocking(False)
                filler.connect_ex(listener.getsockname())
                fillers.append(filler)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            async with sock:
                await self.cancel_while_blocked(lambda: sock.connect(listener.getsockname()))
        finally:
            for filler in fillers:
                filler.close()
            listener.close()
        assert open_fds() == before

    async def test_sendall(self) -> None:
        before = open_fds()
        a, b = socket.socketpair()
        async with a, b:  # nobody reads b: a's buffers fill up and sendall blocks
            task = await kernel.spawn(a.sendall, b"x" * 10_000_000)
            await parked(task)  # the buffers are full: it has sent some, and waits
            await task.cancel()
            assert isinstance(task.exception, TaskCancelled)
            assert 0 < task.exception.bytes_sent < 10_000_000  # type: ignore[attr-defined]
            assert io_waiters() == []
        assert open_fds() == before


async def test_a_thousand_connect_close_cycles_leak_no_fd() -> None:
    async with echo_server() as address:
        before = open_fds()
        for _ in range(1000):
            client = await connect(address)
            await client.sendall(b"x")
            assert await client.recv(1) == b"x"
            await client.close()
        for _ in range(1000):  # the server's handlers see EOF and close their ends
            if open_fds() == before:
                break
            await kernel.sleep(0)
        assert open_fds() == before


@pytest.mark.timeout(60)
async def test_a_thousand_concurrent_connections_each_echo_a_hundred_messages() -> None:
    connections, messages = 1000, 100

    async def client(n: int) -> int:
        sock = await connect(address)
        async with sock:
            for i in range(messages):
                line = f"{n}:{i};".encode()
                await sock.sendall(line)
                received = b""
                while len(received) < len(line):
                    received += await sock.recv(len(line) - len(received))
                assert received == line  # every byte back, in order
        return n

    async with echo_server() as address:
        async with kernel.TaskGroup() as group:
            for n in range(connections):
                await group.spawn(client, n)
        assert sorted(group.results) == list(range(connections))


def test_ctrl_c_during_a_blocking_recv_cancels_cleanly() -> None:
    import signal
    import threading

    before = open_fds()
    parked = threading.Event()
    log: list[str] = []

    def press_ctrl_c() -> None:
        parked.wait(LIMIT)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    async def main() -> None:
        a, b = socket.socketpair()
        async with a, b:
            parked.set()
            try:
                await a.recv(100)  # nothing ever arrives: only Ctrl-C ends this
            except TaskCancelled:
                log.append("recv cancelled; sockets closed by async with")
                raise

    thread = threading.Thread(target=press_ctrl_c)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            kernel.run(main)
    finally:
        thread.join()
    assert log == ["recv cancelled; sockets closed by async with"]
    assert open_fds() == before


async def test_after_a_short_read_recv_waits_before_trying() -> None:
    a, b = socket.socketpair()
    async with a, b:
        calls: list[int] = []
        real_recv = a._recv

        def counting_recv(maxsize: int, flags: int = 0) -> bytes:
            calls.append(maxsize)
            return real_recv(maxsize, flags)

        a._recv = counting_recv
        await b.sendall(b"short")
        assert await a.recv(100) == b"short"  # short: the buffer is now empty
        reader = await kernel.spawn(a.recv, 100)
        await kernel.sleep(0)
        assert calls == [100]  # parked without a doomed try
        await b.sendall(b"next")
        assert await kernel.timeout_after(LIMIT, reader.join) == b"next"
        assert calls == [100, 100]
        await b.sendall(b"already here")
        assert await a.recv(100) == b"already here"  # waiting first costs one poll, no more


async def test_sendall_counts_bytes_not_items() -> None:
    import array

    numbers = array.array("i", range(1000))
    a, b = socket.socketpair()
    async with a, b:
        await a.sendall(memoryview(numbers))
        received = b""
        while len(received) < numbers.itemsize * len(numbers):
            received += await kernel.timeout_after(LIMIT, b.recv, 65536)
        assert received == numbers.tobytes()


def closed_port() -> int:
    """A loopback TCP port that nobody listens on (bound a moment ago, then let go)."""
    probe = stdlib_socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


async def test_settimeout_and_setblocking_refuse_to_make_the_socket_blocking() -> None:
    a, b = socket.socketpair()
    async with a, b:
        for timeout in (10, None):  # None: blocking without a limit
            with pytest.raises(RuntimeError, match=r"must stay non-blocking.*timeout_after"):
                a.settimeout(timeout)
        with pytest.raises(RuntimeError, match=r"setblocking\(True\).*must stay non-blocking"):
            a.setblocking(True)
        a.settimeout(0.0)  # what it already is: accepted, and nothing changes
        a.setblocking(False)
        assert a.gettimeout() == 0.0
        assert not a.stdlib_socket.getblocking()
        # Still non-blocking, so a bounded recv times out instead of freezing the kernel.
        with pytest.raises(kernel.TaskTimeout):
            await kernel.timeout_after(0.01, a.recv, 100)


async def test_connect_ex_to_a_unix_listener_with_a_full_backlog_is_eagain() -> None:
    # On Linux a non-blocking connect to a Unix listener whose backlog is full fails at once
    # with EAGAIN: nothing was started, so there is nothing to wait for.
    listener = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    listener.bind("")  # an address in the abstract namespace: no file to clean up
    listener.listen(0)
    fillers: list[stdlib_socket.socket] = []
    try:
        for _ in range(8):
            filler = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
            filler.setblocking(False)
            fillers.append(filler)
            if filler.connect_ex(listener.getsockname()) == errno.EAGAIN:
                break
        else:
            pytest.skip("the listener's backlog never filled up")
        for _ in range(2):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            async with sock:
                connect_ex = kernel.timeout_after(LIMIT, sock.connect_ex, listener.getsockname())
                assert await connect_ex == errno.EAGAIN
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        async with sock:
            with pytest.raises(OSError) as info:
                await kernel.timeout_after(LIMIT, sock.connect, listener.getsockname())
            assert info.value.errno == errno.EAGAIN
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_connecting_a_connected_socket_again_is_eisconn() -> None:
    first = socket.create_server(("127.0.0.1", 0))
    second = socket.create_server(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    async with first, second, client:
        await kernel.timeout_after(LIMIT, client.connect, first.getsockname())
        assert await client.connect_ex(second.getsockname()) == errno.EISCONN
        with pytest.raises(OSError) as info:
            await client.connect(second.getsockname())
        assert info.value.errno == errno.EISCONN
        assert client.getpeername() == first.getsockname()


async def test_after_a_short_read_recv_0_does_not_wait() -> None:
    a, b = socket.socketpair()
    async with a, b:
        await b.sendall(b"short")
        assert await a.recv(100) == b"short"  # short: the next recv would park first
        assert await kernel.timeout_after(LIMIT, a.recv, 0) == b""  # ...but needs no data


async def test_after_a_short_read_recv_of_urgent_data_does_not_wait() -> None:
    import select

    listener = socket.create_server(("127.0.0.1", 0))
    async with listener:
        client = await connect(listener.getsockname())
        peer, _ = await kernel.timeout_after(LIMIT, listener.accept)
        async with client, peer:
            await client.sendall(b"normal")
            assert await kernel.timeout_after(LIMIT, peer.recv, 100) == b"normal"  # short
            await client.send(b"!", socket.MSG_OOB)
            # Urgent data makes the socket "exceptional", never readable: a recv parked on
            # EVENT_READ would not wake for it. Make sure it has arrived (on loopback it
            # has, as send returns), then recv must take it at once.
            assert select.select([], [], [peer], LIMIT)[2] == [peer]
            assert await kernel.timeout_after(LIMIT, peer.recv, 1, socket.MSG_OOB) == b"!"


@pytest.mark.parametrize("last_read", [100, 1000], ids=["full", "short"])
async def test_recv_on_a_closed_socket_is_the_stdlibs_ebadf(last_read: int) -> None:
    a, b = socket.socketpair()
    async with b:
        await b.sendall(b"x" * 100)
        assert len(await a.recv(last_read)) == 100
        await a.close()
        with pytest.raises(OSError) as info:
            await a.recv(10)
        assert info.type is OSError and info.value.errno == errno.EBADF


class TestCreateConnection:
    """``create_connection`` tries each resolved address, like the stdlib's, and leaks none."""

    @pytest.fixture
    def resolves_to(self, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
        """Make ``create_connection`` see these (family, address) pairs for any host."""

        def resolve(*answers: tuple[int, Any]) -> None:
            async def getaddrinfo(*_: Any) -> list[tuple[Any, ...]]:
                return [(f, socket.SOCK_STREAM, 0, "", address) for f, address in answers]

            monkeypatch.setattr(resolver, "getaddrinfo", getaddrinfo)

        return resolve

    async def test_when_every_address_refuses_it_raises_the_last_error(
        self, resolves_to: Callable[..., None]
    ) -> None:
        first, last = ("127.0.0.1", closed_port()), ("127.0.0.1", closed_port())
        resolves_to((socket.AF_INET, first), (socket.AF_INET, last))
        before = open_fds()
        with pytest.raises(ConnectionRefusedError) as info:
            await socket.create_connection(("service.test", 80), timeout=LIMIT)
        assert info.value.errno == errno.ECONNREFUSED
        assert repr(last) in str(info.value)
        with pytest.raises(ExceptionGroup) as group:
            await socket.create_connection(("service.test", 80), timeout=LIMIT, all_errors=True)
        errors = group.value.exceptions
        assert [type(error) for error in errors] == [ConnectionRefusedError] * 2
        assert repr(first) in str(errors[0]) and repr(last) in str(errors[1])
        assert open_fds() == before

    async def test_an_address_family_the_host_cannot_make_is_skipped(
        self, resolves_to: Callable[..., None]
    ) -> None:
        unsupported = 255  # no such address family: socket() fails with EAFNOSUPPORT
        async with echo_server() as address:
            resolves_to((unsupported, ("::1", 80)), (socket.AF_INET, address))
            before = open_fds()
            sock = await socket.create_connection(("service.test", 80), timeout=LIMIT)
            async with sock:
                assert sock.getpeername() == address
            for _ in range(1000):  # the server's handler sees EOF and closes its end
                if open_fds() == before:
                    break
                await kernel.sleep(0)
            assert open_fds() == before


async def test_wrap_ssl_that_fails_closes_the_descriptor() -> None:
    import ssl

    before = open_fds()
    a, b = socket.socketpair()
    fd = a.fileno()
    async with b:
        context = ssl.create_default_context()  # checks host names, so it needs one
        with pytest.raises(ValueError, match="server_hostname") as info:
            socket.wrap_ssl(a, context, server_side=False, server_hostname=None)
        # The error's traceback keeps wrap_ssl's frame alive, and what it held: the
        # descriptor must be closed by now, not left to the garbage collector.
        with pytest.raises(OSError) as closed:
            os.fstat(fd)
        assert closed.value.errno == errno.EBADF
        del info
        await a.close()  # nothing left to close
    assert open_fds() == before


def test_a_kernel_task_and_asyncio_code_share_a_socket() -> None:
    """A kernel task reads a socket (naming it by object) while asyncio code writes to it
    through the adapter (naming it by number): one descriptor, and both directions work."""
    import asyncio

    import kernel.aio

    async def main() -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        a, b = stdlib_socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        payload = b"x" * (4 * 1024 * 1024)  # more than the buffers hold: sendall must wait

        async def kernel_reader() -> bytes:
            data: bytes = await socket.Socket(a).recv(10)
            return data

        async def drain_then_answer() -> int:
            got = 0
            while got < len(payload):
                got += len(await loop.sock_recv(b, 65536))
            await loop.sock_sendall(b, b"done")
            return got

        with a, b:
            reader = asyncio.ensure_future(kernel.aio.run_kernel(kernel_reader))
            for _ in range(3):
                await asyncio.sleep(0)  # the kernel task parks, reading
            peer = asyncio.ensure_future(drain_then_answer())
            await asyncio.wait_for(loop.sock_sendall(a, payload), LIMIT)
            return await asyncio.wait_for(peer, LIMIT), await asyncio.wait_for(reader, LIMIT)

    assert kernel.aio.run(main()) == (4 * 1024 * 1024, b"done")


async def test_create_connection_resolves_a_source_name_off_the_kernel_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bind() would resolve a name in the C library, on the kernel's thread: the name goes
    through the worker-thread resolver first, in the family of the address tried."""
    looked_up: list[tuple[Any, int]] = []
    resolve = socket.getaddrinfo

    async def spy(host: Any, port: Any, family: int = 0, *args: Any) -> list[tuple[Any, ...]]:
        looked_up.append((host, family))
        return await resolve(host, port, family, *args)

    async with socket.create_server(("127.0.0.1", 0)) as listener:
        monkeypatch.setattr(resolver, "getaddrinfo", spy)
        client = await socket.create_connection(
            listener.getsockname(), source_address=("localhost", 0)
        )
        async with client:
            assert client.getsockname()[0] == "127.0.0.1"
    assert ("localhost", stdlib_socket.AF_INET) in looked_up


async def test_send_fds_and_recv_fds_are_async_and_pass_descriptors() -> None:
    """The stdlib's helpers would call the Socket's sendmsg/recvmsg and use a coroutine as
    their result: the module's own are coroutines, with the stdlib's return values."""
    import inspect

    assert inspect.iscoroutinefunction(socket.send_fds)
    assert inspect.iscoroutinefunction(socket.recv_fds)
    assert {"send_fds", "recv_fds"} <= set(socket.__all__)
    a, b = socket.socketpair()
    r, w = os.pipe()
    received: list[int] = []
    try:
        async with a, b:
            receiver = await kernel.spawn(socket.recv_fds, b, 100, 2)
            await parked(receiver)  # nothing sent yet: it waits, it does not fail
            assert await socket.send_fds(a, [b"fd", b"s"], [r, w]) == 3
            data, received, msg_flags, address = await kernel.timeout_after(LIMIT, receiver.join)
            assert (data, len(received), msg_flags) == (b"fds", 2, 0)
            assert address is None
            assert not {r, w} & set(received)  # new descriptors, for the same pipe
            os.write(received[1], b"through")
            assert os.read(r, 100) == b"through"
            # flags are passed on (the stdlib's send_fds drops them)
            await socket.send_fds(a, [b"x"], [r], socket.MSG_DONTWAIT)
            data, more, _, _ = await kernel.timeout_after(LIMIT, socket.recv_fds, b, 100, 1)
            received += more
            assert data == b"x" and len(more) == 1
    finally:
        for fd in (r, w, *received):
            os.close(fd)


async def test_makefile_is_refused_in_favour_of_as_stream() -> None:
    a, b = socket.socketpair()
    async with a, b:
        for mode in ("r", "rb", "wb"):
            with pytest.raises(RuntimeError, match=r"non-blocking.*sock\.as_stream\(\)"):
                a.makefile(mode)


async def test_copy_and_pickle_refuse_like_the_stdlib_and_do_not_recurse() -> None:
    import copy
    import pickle

    a, b = socket.socketpair()
    async with a, b:
        for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError, match="cannot pickle 'Socket' object"):
                duplicate(a)
        assert a.fileno() >= 0 and a.getblocking() is False  # delegation still works
    blank = socket.Socket.__new__(socket.Socket)  # no __init__: no _socket
    with pytest.raises(AttributeError, match="_socket"):
        blank.family  # noqa: B018 -- the lookup is the test
    assert not hasattr(blank, "getsockname")
    assert "uninitialised" in repr(blank)


async def test_sendall_of_a_non_contiguous_buffer_is_the_stdlibs_buffer_error() -> None:
    import ssl

    strided = memoryview(bytearray(b"abcdef"))[::2]
    x, y = stdlib_socket.socketpair()
    with x, y, pytest.raises(BufferError):
        x.sendall(strided)  # what the stdlib says
    a, b = socket.socketpair()
    async with b:
        with pytest.raises(BufferError):
            await a.sendall(strided)
        # Contiguous, even 2-D, is fine.
        await a.sendall(memoryview(bytearray(b"abcdef")).cast("B", (2, 3)))
        assert await kernel.timeout_after(LIMIT, b.recv, 100) == b"abcdef"
        # The TLS socket slices the same way (refused before any TLS record is made).
        context = ssl.create_default_context()
        tls = socket.wrap_ssl(a, context, server_side=False, server_hostname="localhost")
        async with tls:
            with pytest.raises(BufferError):
                await tls.sendall(strided)


def test_star_import_gives_the_stdlibs_names_and_the_kernels_versions() -> None:
    names: dict[str, Any] = {}
    exec("from kernel.socket import *", names)
    assert set(stdlib_socket.__all__) <= names.keys()
    assert names["AF_INET"] == stdlib_socket.AF_INET
    assert names["timeout"] is stdlib_socket.timeout
    for own in ("socket", "socketpair", "create_connection", "getaddrinfo", "send_fds"):
        assert names[own] is getattr(socket, own) is not getattr(stdlib_socket, own)
    assert names["Socket"] is socket.Socket
    assert len(socket.__all__) == len(set(socket.__all__))


class TestNamesAreResolvedOffTheKernelThread:
    """``connect``/``connect_ex``/``sendto`` given a host name: the stdlib would resolve it
    in the C library, on the kernel's thread (``connect_ex`` twice). The name goes through
    the worker-thread ``getaddrinfo`` once, and the stdlib sees only numbers."""

    @pytest.fixture
    def looked_up(self, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, int]]:
        calls: list[tuple[Any, int]] = []
        resolve = socket.getaddrinfo

        async def spy(host: Any, port: Any, family: int = 0, *args: Any) -> list[tuple[Any, ...]]:
            calls.append((host, family))
            return await resolve(host, port, family, *args)

        monkeypatch.setattr(resolver, "getaddrinfo", spy)
        return calls

    class Recording(stdlib_socket.socket):
        """A stdlib socket that notes the addresses its connect_ex and sendto are given."""

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.addresses: list[Any] = []

        def connect_ex(self, address: Any) -> int:
            self.addresses.append(address)
            return super().connect_ex(address)

        def sendto(self, data: Any, *flags_and_address: Any) -> int:
            self.addresses.append(flags_and_address[-1])
            return super().sendto(data, *flags_and_address)

    @pytest.mark.parametrize("call", ["connect", "connect_ex"])
    async def test_connect(self, looked_up: list[tuple[Any, int]], call: str) -> None:
        stdlib_sock = self.Recording(socket.AF_INET, socket.SOCK_STREAM)
        async with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            async with socket.Socket(stdlib_sock) as client:
                result = await kernel.timeout_after(
                    LIMIT, getattr(client, call), ("localhost", port)
                )
                assert result in (None, 0)
                assert client.getpeername() == ("127.0.0.1", port)
        assert looked_up == [("localhost", socket.AF_INET)]
        assert stdlib_sock.addresses
        assert set(stdlib_sock.addresses) == {("127.0.0.1", port)}

    async def test_a_host_given_as_bytes(self, looked_up: list[tuple[Any, int]]) -> None:
        """The stdlib takes ``(b"localhost", port)`` too, and would resolve it the same way."""
        stdlib_sock = self.Recording(socket.AF_INET, socket.SOCK_STREAM)
        async with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            async with socket.Socket(stdlib_sock) as client:
                await kernel.timeout_after(LIMIT, client.connect, (bytearray(b"localhost"), port))
                assert client.getpeername() == ("127.0.0.1", port)
        assert looked_up == [(b"localhost", socket.AF_INET)]  # as given, as the stdlib would
        assert set(stdlib_sock.addresses) == {("127.0.0.1", port)}
        sender = self.Recording(socket.AF_INET, socket.SOCK_DGRAM)
        async with socket.Socket(sender) as kernel_sender:
            assert await kernel_sender.sendto(b"numbers", (b"127.0.0.1", port)) == 7
        assert len(looked_up) == 1  # numbers need no resolver, in bytes either
        assert sender.addresses == [(b"127.0.0.1", port)]

    async def test_a_name_in_bytes_reaches_the_resolver_as_it_is(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Not decoded and encoded again: UTF-8 bytes read as Latin-1 would be another name."""
        asked: list[Any] = []

        async def answer(host: Any, port: Any, family: int = 0, *args: Any) -> list[Any]:
            asked.append(host)
            return [(family, socket.SOCK_STREAM, 0, "", ("127.0.0.1", 0))]

        monkeypatch.setattr(resolver, "getaddrinfo", answer)
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        name = "bücher.example".encode()
        async with receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            assert await sender.sendto(b"x", (name, port)) == 1
            data, _ = await kernel.timeout_after(LIMIT, receiver.recvfrom, 10)
            assert data == b"x"
        assert asked == [name]

    async def test_sendto(self, looked_up: list[tuple[Any, int]]) -> None:
        stdlib_sock = self.Recording(socket.AF_INET, socket.SOCK_DGRAM)
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        async with receiver, socket.Socket(stdlib_sock) as sender:
            assert await sender.sendto(b"name", ("localhost", port)) == 4
            assert await sender.sendto(b"flags", 0, ("localhost", port)) == 5
            assert looked_up == [("localhost", socket.AF_INET)] * 2
            assert await sender.sendto(b"numbers", ("127.0.0.1", port)) == 7
            assert len(looked_up) == 2  # numbers need no resolver
            assert set(stdlib_sock.addresses) == {("127.0.0.1", port)}
            for expected in (b"name", b"flags", b"numbers"):
                data, _ = await kernel.timeout_after(LIMIT, receiver.recvfrom, 100)
                assert data == expected

    async def test_a_name_that_does_not_resolve_is_the_stdlibs_gaierror(
        self, looked_up: list[tuple[Any, int]]
    ) -> None:
        async with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            with pytest.raises(socket.gaierror):
                await kernel.timeout_after(LIMIT, client.connect, ("no.such.host.invalid", 80))
        assert looked_up == [("no.such.host.invalid", socket.AF_INET)]


@pytest.mark.parametrize(("name", "args"), [("gethostbyname_ex", ("localhost",)), ("getfqdn", ())])
async def test_resolver_helpers_run_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch, name: str, args: tuple[Any, ...]
) -> None:
    import threading

    threads: list[int] = []
    real = getattr(stdlib_socket, name)

    def spy(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(stdlib_socket, name, spy)
    result = await kernel.timeout_after(LIMIT, getattr(socket, name), *args)
    assert result == real(*args)
    assert threads and threads[0] != threading.get_ident()
    assert name in socket.__all__


async def test_a_socket_closed_behind_the_kernels_back_with_a_dup_open_does_not_spin_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # epoll watches the open file: with a dup() keeping it open, the closed number stayed in
    # epoll's set, reported ready on every poll while the dup had unread data, and an idle
    # loop went round (and round) at full speed.
    a, b = socket.socketpair()
    async with b, a.dup() as dup:
        await park_once(a, b)  # a's registration is kept between waits
        a.stdlib_socket.close()  # behind the kernel's back
        await b.sendall(b"unread, for the dup")
        k = kernel.current_kernel()
        assert k is not None
        selects: list[float | None] = []
        real_select = k._io.select

        def counting_select(timeout: float | None) -> list[Any]:
            selects.append(timeout)
            return real_select(timeout)

        monkeypatch.setattr(k._io, "select", counting_select)
        await kernel.sleep(0.05)  # every task idle: a poll or two, each until the deadline
        assert len(selects) < 10, f"the loop polled {len(selects)} times in 0.05 s"
        assert await dup.recv(100) == b"unread, for the dup"


# -- sendfile ----------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: more than a socket pair's buffers hold


async def received(sock: socket.Socket, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := await sock.recv(65536)):
        data += chunk
    return data


@pytest.fixture
def payload_file(tmp_path: Any) -> Any:
    path = tmp_path / "payload"
    path.write_bytes(PAYLOAD)
    return path


async def test_sendfile_sends_a_file_with_os_sendfile_and_moves_its_position(
    payload_file: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_sendfile = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        calls.append(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", spy)
    a, b = socket.socketpair()
    async with a, b:
        with open(payload_file, "rb") as file:
            reader = await kernel.spawn(received, b, len(PAYLOAD))
            assert await kernel.timeout_after(LIMIT, a.sendfile, file) == len(PAYLOAD)
            assert await kernel.timeout_after(LIMIT, reader.join) == PAYLOAD
            assert file.tell() == len(PAYLOAD)
            assert len(calls) > 1  # it parked while the peer's buffer was full, then went on
            reader = await kernel.spawn(received, b, 1000)
            assert await kernel.timeout_after(LIMIT, a.sendfile, file, 10, 1000) == 1000
            assert await kernel.timeout_after(LIMIT, reader.join) == PAYLOAD[10:1010]
            assert file.tell() == 1010


async def test_sendfile_reads_what_os_sendfile_cannot_take() -> None:
    import io

    a, b = socket.socketpair()
    read_end, write_end = os.pipe()
    async with a, b:
        memory = io.BytesIO(PAYLOAD)
        memory.seek(12345)  # (from offset, like os.sendfile: not from the position)
        reader = await kernel.spawn(received, b, len(PAYLOAD) - 5)
        assert await kernel.timeout_after(LIMIT, a.sendfile, memory, 5) == len(PAYLOAD) - 5
        assert await kernel.timeout_after(LIMIT, reader.join) == PAYLOAD[5:]
        assert memory.tell() == len(PAYLOAD)
        os.write(write_end, b"through a pipe")
        os.close(write_end)
        with open(read_end, "rb") as pipe:  # a descriptor, which os.sendfile refuses
            assert await kernel.timeout_after(LIMIT, a.sendfile, pipe) == 14
        assert await b.recv(100) == b"through a pipe"


async def test_sendfile_refuses_what_the_stdlibs_refuses(payload_file: Any) -> None:
    a, b = socket.socketpair()
    datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    async with a, b, datagram:
        with open(payload_file) as text, pytest.raises(ValueError, match="binary mode"):
            await a.sendfile(text)
        with open(payload_file, "rb") as file:
            with pytest.raises(ValueError, match="positive integer"):
                await a.sendfile(file, 0, 0)
            with pytest.raises(ValueError, match="SOCK_STREAM"):
                await datagram.sendfile(file)
            assert file.tell() == 0


async def test_a_cancelled_sendfile_carries_bytes_sent_and_the_file_says_where_it_stopped(
    payload_file: Any,
) -> None:
    before = open_fds()
    a, b = socket.socketpair()
    async with a, b:  # nobody reads b: the buffers fill up and sendfile parks
        with open(payload_file, "rb") as file:
            task = await kernel.spawn(a.sendfile, file)
            await parked(task)
            await task.cancel()
            assert isinstance(task.exception, TaskCancelled)
            sent = task.exception.bytes_sent  # type: ignore[attr-defined]
            assert 0 < sent < len(PAYLOAD)
            assert file.tell() == sent
            assert io_waiters() == []
            assert await kernel.timeout_after(LIMIT, received, b, sent) == PAYLOAD[:sent]
    assert open_fds() == before


async def test_the_stdlib_sockets_other_names_are_handed_on_to_it() -> None:
    a, b = socket.socketpair()
    async with a, b:
        # (Descriptors on the class, not __getattr__: with one, 3.11 looks up every
        # attribute of every Socket the slow way, recv and sendall included.)
        assert "__getattr__" not in vars(socket.Socket)
        assert a.family == stdlib_socket.AF_UNIX and a.fileno() == a.stdlib_socket.fileno()
        a.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 65536)
        assert a.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF) > 0
        a.family = "shadowed"  # type: ignore[attr-defined]  # an instance attribute still wins
        assert a.family == "shadowed" and b.family == stdlib_socket.AF_UNIX
        with pytest.raises(AttributeError, match="no_such_thing"):
            a.no_such_thing  # noqa: B018
