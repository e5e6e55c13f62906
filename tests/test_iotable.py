"""The I/O wait table on its own, over a real selector and a socket pair (no kernel)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from kernel import ResourceBusy
from kernel.iotable import EVENT_READ, EVENT_WRITE, IOWaitTable


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def table() -> Iterator[IOWaitTable]:
    t = IOWaitTable()
    yield t
    t.close()


def test_reader_is_returned_when_data_arrives(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    table.register(a, EVENT_READ, "reader")
    assert len(table) == 1
    assert table.select(0) == []
    b.send(b"x")
    assert table.select(1.0) == ["reader"]
    assert len(table) == 0
    assert table.waiters() == []


def test_reader_and_writer_share_a_descriptor(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    table.register(a, EVENT_READ, "reader")
    table.register(a, EVENT_WRITE, "writer")
    assert sorted(name for _, name, _ in table.waiters()) == ["read", "write"]
    assert table.select(1.0) == ["writer"]  # writable at once, nothing to read yet
    assert table.waiters() == [(a.fileno(), "read", "reader")]
    b.send(b"x")
    assert table.select(1.0) == ["reader"]
    assert len(table) == 0


def test_second_reader_is_busy(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    table.register(a, EVENT_READ, "first")
    with pytest.raises(ResourceBusy, match="already waiting to read"):
        table.register(a, EVENT_READ, "second")
    assert len(table) == 1


def test_discard_unregisters_and_is_idempotent(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    reader = table.register(a, EVENT_READ, "reader")
    writer = table.register(a, EVENT_WRITE, "writer")
    table.discard(reader)
    table.discard(reader)
    assert table.waiters() == [(a.fileno(), "write", "writer")]
    table.discard(writer)
    assert len(table) == 0
    b.send(b"x")
    assert table.select(0) == []  # nothing registered any more


def test_wakeup_socket_is_drained_and_not_reported(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    a.setblocking(False)
    table.add_wakeup(a)
    b.send(b"\0" * 10)
    assert table.select(1.0) == []
    assert table.select(0) == []  # drained: no longer readable
    assert len(table) == 0


def test_a_woken_descriptor_stays_registered_until_idle(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    table.register(a, EVENT_READ, "first")
    b.send(b"x")
    assert table.select(1.0) == ["first"]
    assert a.fileno() in table._selector.get_map()  # kept: the next wait costs no epoll_ctl
    table.register(a, EVENT_READ, "second")
    assert table.select(1.0) == ["second"]  # the byte is still unread
    assert table.select(1.0) == []  # ready, but nobody waits: dropped now
    assert a.fileno() not in table._selector.get_map()


def test_release_fails_over_the_waiters_of_a_closing_descriptor(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    table.register(a, EVENT_READ, "reader")
    table.register(a, EVENT_WRITE, "writer")
    assert table.release(a) == ["reader", "writer"]
    assert len(table) == 0 and table.waiters() == []
    assert table.release(a) == []


def test_a_reused_descriptor_number_replaces_the_stale_registration(table: IOWaitTable) -> None:
    first, peer = socket.socketpair()
    table.register(first, EVENT_READ, "old")
    table.discard((first, EVENT_READ))
    number = first.fileno()
    first.close()  # closed behind the table's back: its registration is stale
    peer.close()
    second, other = socket.socketpair()
    with second, other:
        if second.fileno() != number:
            pytest.skip("the OS did not reuse the descriptor number")
        table.register(second, EVENT_READ, "new")
        other.send(b"x")
        assert table.select(1.0) == ["new"]


def test_a_wait_on_a_bare_int_descriptor_is_unregistered_when_it_ends(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    # An int cannot tell a reused descriptor number from the old one, so nothing is kept.
    a, b = pair
    table.register(a.fileno(), EVENT_READ, "woken")
    b.send(b"x")
    assert table.select(1.0) == ["woken"]
    assert a.fileno() not in table._selector.get_map()
    handle = table.register(a.fileno(), EVENT_READ, "cancelled")
    table.discard(handle)
    assert a.fileno() not in table._selector.get_map()
