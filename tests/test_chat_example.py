"""examples/13_chat_server.py under stress: a slow reader, long lines, leavers, one name twice.

tests/test_examples.py runs the example's demo; these run its server against clients that
misbehave. Each reproduces a bug of the example's first version, whose handlers wrote each
line straight to every other member's socket (each of these tests failed against it):

* ``test_a_slow_member_delays_only_itself``: one member that did not read stalled everyone
  who talked;
* ``test_lines_arrive_whole_and_in_order``: a short line said while another sender's long
  line was half-written to a member went into the middle of it -- or, the stream refusing a
  second writer, its sender got ``ResourceBusy`` and was disconnected;
* ``test_a_member_gone_mid_line_affects_nobody``: a member gone mid-line crashed the handler
  of the member writing to it (``ECONNRESET``, ``EBADF``): disconnected, it went unheard;
* ``test_two_members_with_one_name``: the first leaving removed the second from the room, and
  the second leaving crashed on ``KeyError``.

Loopback bytes take real time: the tests run on the real clock, each bounded by ``LIMIT``.
Nothing sleeps to synchronise: a test waits for what a client hears, or for a handler to end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import kernel
from kernel import socket

LIMIT = 10.0
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "13_chat_server.py"
# Longer than the buffers between the server and a client that reads 64 KiB of it and stops
# (Linux lets a send buffer grow to 4 MiB by default): whoever writes it waits mid-line.
LONG = b"." * (8 * 1024 * 1024)
LINE = b"." * 65536

pytestmark = pytest.mark.realtime


class Chat:
    """The example's chat server on loopback, and the clients a test connects to it."""

    def __init__(self) -> None:
        spec = importlib.util.spec_from_file_location("example_13_chat_server", EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.module: Any = module
        self.clients: list[socket.Socket] = []
        self.ended: kernel.Queue[Any] = kernel.Queue()  # a client's address, its handler done

    async def handler(self, client: socket.Socket, address: Any) -> None:
        try:
            await self.room.member(client, address)
        finally:
            self.ended.put_nowait(address)

    async def join(self, name: str, rcvbuf: int = 0) -> socket.Socket:
        """Connect (with a small receive buffer if ``rcvbuf``) and say the name."""
        client = socket.socket()
        self.clients.append(client)
        if rcvbuf:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await client.connect(self.address)
        await client.sendall(f"{name}\n".encode())
        return client

    async def handler_ended(self, address: Any) -> None:
        """Wait until the handler of the client that was at ``address`` has returned."""
        while await self.ended.get() != address:
            pass

    @contextlib.asynccontextmanager
    async def serving(self, expected: int) -> AsyncIterator[Chat]:
        self.room = self.module.ChatRoom(expected=expected)
        try:
            async with kernel.timeout_after(LIMIT), kernel.TaskGroup(wait=None) as server:
                self.address = await server.start(kernel.tcp_server, "127.0.0.1", 0, self.handler)
                yield self
        finally:
            for client in self.clients:
                await client.close()


async def hear(stream: kernel.SocketStream) -> bytes:
    """The next line someone said (the room's notices, starting with "* ", are skipped)."""
    while (line := await stream.readline()).startswith(b"* "):
        pass
    return line


async def drain(client: socket.Socket) -> None:
    while await client.recv(1 << 20):
        pass


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_slow_member_delays_only_itself(caplog: pytest.LogCaptureFixture) -> None:
    async with Chat().serving(expected=4) as chat:
        slow = await chat.join("slow")  # never reads
        talkers = {"y": await chat.join("y"), "w": await chat.join("w")}
        z = (await chat.join("z")).as_stream()
        await chat.room.everyone_here.wait()
        said: list[bytes] = []
        notices: list[bytes] = []
        async with kernel.TaskGroup(wait=None) as background:
            for talker in talkers.values():
                await background.spawn(drain, talker)  # y and w hear each other
            # Two senders take turns; z hears each line, whole, before the next is sent.
            # slow's buffers fill, then its outbox: it is disconnected; y and w talk on.
            for i in range(1000):
                name = "yw"[i % 2]
                await talkers[name].sendall(f"{i} ".encode() + LINE + b"\n")
                said.append(f"{name}: {i} ".encode() + LINE + b"\n")
                while (line := await z.readline()).startswith(b"* "):
                    notices.append(line)
                assert line == said[-1]
                if notices:
                    break
        assert notices == [b"* slow is too slow to keep up: disconnected\n"]
        assert sorted(chat.room.members) == ["w", "y", "z"]
        # What slow got before it was cut off: whole lines, in order, then part of one.
        *lines, rest = (await slow.as_stream().readall()).split(b"\n")
        assert [line + b"\n" for line in lines] == said[: len(lines)]
        assert said[len(lines)].startswith(rest)
    assert errors_logged(caplog) == []


async def test_lines_arrive_whole_and_in_order(caplog: pytest.LogCaptureFixture) -> None:
    async with Chat().serving(expected=3) as chat:
        late = await chat.join("late", rcvbuf=65536)
        y = await chat.join("y")
        z = await chat.join("z")
        await chat.room.everyone_here.wait()
        async with kernel.TaskGroup(wait=None) as background:
            await background.spawn(drain, z)
            await background.spawn(y.sendall, LONG + b"\n")
            start = await late.recv(65536)  # y's long line is on its way to late...
            assert start.startswith(b"y: ")
            await z.sendall(b"short\n")  # ... when z says a short one
            assert await hear(y.as_stream()) == b"z: short\n"
            stream = late.as_stream()
            heard = [start + await hear(stream), await hear(stream)]
        assert heard == [b"y: " + LONG + b"\n", b"z: short\n"]
    assert errors_logged(caplog) == []


async def test_a_member_gone_mid_line_affects_nobody(caplog: pytest.LogCaptureFixture) -> None:
    async with Chat().serving(expected=3) as chat:
        x = await chat.join("x", rcvbuf=65536)
        y = await chat.join("y")
        z = (await chat.join("z")).as_stream()
        await chat.room.everyone_here.wait()
        async with kernel.TaskGroup(wait=None) as background:
            await background.spawn(y.sendall, LONG + b"\n")
            assert (await x.recv(65536)).startswith(b"y: ")  # y's long line is on its way...
            x_address = x.getsockname()
            x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await x.close()  # ... when x is gone: its connection reset
            await y.sendall(b"after\n")
            assert await hear(z) == b"y: " + LONG + b"\n"
            assert await hear(z) == b"y: after\n"
        await chat.handler_ended(x_address)
        assert sorted(chat.room.members) == ["y", "z"]
    assert errors_logged(caplog) == []


async def test_two_members_with_one_name(caplog: pytest.LogCaptureFixture) -> None:
    async with Chat().serving(expected=2) as chat:
        ann = await chat.join("ann")
        bo = await chat.join("bo")
        await chat.room.everyone_here.wait()
        second_ann = await chat.join("ann")
        await second_ann.sendall(b"here\n")
        assert (await hear(bo.as_stream())).endswith(b": here\n")  # the second ann is in
        first, second = ann.getsockname(), second_ann.getsockname()
        await ann.close()  # the first ann leaves
        await chat.handler_ended(first)
        await bo.sendall(b"hello\n")
        assert await hear(second_ann.as_stream()) == b"bo: hello\n"  # the second still hears
        await second_ann.close()
        await chat.handler_ended(second)
        assert list(chat.room.members) == ["bo"]
    assert errors_logged(caplog) == []


async def test_a_burst_of_lines_is_not_a_slow_reader(caplog: pytest.LogCaptureFixture) -> None:
    # Not a bug of the first version: a guard on this one, whose sender yields after each
    # line so that the writers keep up. Without that, a paste longer than an outbox would
    # fill every outbox at once and disconnect everyone who reads.
    async with Chat().serving(expected=2) as chat:
        paster = await chat.join("paster")
        reader = (await chat.join("reader")).as_stream()
        await chat.room.everyone_here.wait()
        await paster.sendall(b"".join(b"line %d\n" % i for i in range(1000)))
        heard = [await hear(reader) for _ in range(1000)]
        assert heard == [b"paster: line %d\n" % i for i in range(1000)]
        assert sorted(chat.room.members) == ["paster", "reader"]
    assert errors_logged(caplog) == []
