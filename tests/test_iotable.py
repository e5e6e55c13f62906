"""The I/O wait table on its own, over a real poller and a socket pair (no kernel).

Every test runs twice: over epoll, driven by the table itself (the default on Linux), and
over a stdlib ``selectors`` selector (the fallback elsewhere). ``watched`` asks the operating
system, not the table, which descriptors the poller has registered.
"""

from __future__ import annotations

import os
import select
import selectors
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kernel import ResourceBusy
from kernel.iotable import EVENT_READ, EVENT_WRITE, IOWaitTable
from kernel.poller import EpollPoller, SelectorPoller


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture(params=["epoll", "selectors"])
def table(request: pytest.FixtureRequest) -> Iterator[IOWaitTable]:
    t = IOWaitTable() if request.param == "epoll" else IOWaitTable(selectors.PollSelector())
    yield t
    t.close()


def watched(table: IOWaitTable) -> dict[int, int]:
    """What the table's poller watches, as the OS (or the selector) says: fd -> EVENT_*."""
    poller = table._poller
    if isinstance(poller, SelectorPoller):
        return {key.fd: key.events for key in poller.selector.get_map().values()}
    assert isinstance(poller, EpollPoller)
    info = Path(f"/proc/self/fdinfo/{poller._epoll.fileno()}").read_text()
    found = {}
    for line in info.splitlines():
        if line.startswith("tfd:"):  # "tfd: 7 events: 19 data: ..." (events in hex)
            fields = line.split()
            mask = int(fields[3], 16)
            found[int(fields[1])] = (EVENT_READ if mask & select.EPOLLIN else 0) | (
                EVENT_WRITE if mask & select.EPOLLOUT else 0
            )
    return found


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
    table.register(a, EVENT_READ, "reader")
    table.register(a, EVENT_WRITE, "writer")
    table.discard((a, EVENT_READ))
    table.discard((a, EVENT_READ))
    assert table.waiters() == [(a.fileno(), "write", "writer")]
    table.discard(("io_wait", a, EVENT_WRITE))  # the kernel's handle: the trap itself
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
    assert a.fileno() in watched(table)  # kept: the next wait costs no epoll_ctl
    table.register(a, EVENT_READ, "second")
    assert table.select(1.0) == ["second"]  # the byte is still unread
    assert table.select(1.0) == []  # ready, but nobody waits: dropped now
    assert a.fileno() not in watched(table)


def test_release_fails_over_the_waiters_of_a_closing_descriptor(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    table.register(a, EVENT_READ, "reader")
    table.register(a, EVENT_WRITE, "writer")
    assert table.release(a) == ["reader", "writer"]
    assert len(table) == 0 and table.waiters() == []
    assert table.release(a) == []


@contextmanager
def reused_number(
    table: IOWaitTable, reader: str
) -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """Park ``reader`` on a socket, close it behind the table's back, then open a new pair
    whose first end reuses its descriptor number; yields (the old socket, the new one, its
    peer). Skips the test if the OS picks another number."""
    first, peer = socket.socketpair()
    table.register(first, EVENT_READ, reader)
    number = first.fileno()
    first.close()  # closed behind the table's back: its registration is stale
    peer.close()
    second, other = socket.socketpair()
    with second, other:
        if second.fileno() != number:
            pytest.skip("the OS did not reuse the descriptor number")
        yield first, second, other


def test_a_reused_descriptor_number_replaces_the_stale_registration(table: IOWaitTable) -> None:
    with reused_number(table, "old") as (first, second, other):
        table.discard((first, EVENT_READ))  # the old wait had ended (a cancel)
        table.register(second, EVENT_READ, "new")
        other.send(b"x")
        assert table.select(1.0) == ["new"]


def test_a_task_parked_on_a_stale_registration_is_woken_not_lost(table: IOWaitTable) -> None:
    # Its socket was closed behind the table's back and the number reused: the task cannot
    # be reported ready any more, so the table wakes it, and its retried call gets the error.
    with reused_number(table, "old reader") as (_, second, other):
        table.register(second, EVENT_READ, "new reader")
        assert len(table) == 2  # the orphan still counts: something will wake it
        assert table.select(None) == ["old reader"]  # at once: it does not block
        assert len(table) == 1
        assert table.waiters() == [(second.fileno(), "read", "new reader")]
        other.send(b"x")
        assert table.select(1.0) == ["new reader"]
        assert len(table) == 0


@pytest.mark.parametrize("how", ["close", "detach"])
def test_a_kept_registration_of_an_object_closed_since_is_refused_not_waited_on(
    table: IOWaitTable, how: str
) -> None:
    # The socket parked once (its registration is kept), then was closed or detached through
    # the stdlib object. epoll has dropped the descriptor: a wait would never end. The
    # table refuses it as it refuses any closed object, and forgets the stale entry.
    a, b = socket.socketpair()
    with b:
        table.register(a, EVENT_READ, "reader")
        b.send(b"x")
        assert table.select(1.0) == ["reader"]
        assert watched(table).get(a.fileno()) == EVENT_READ  # kept between waits
        if how == "close":
            a.close()
        else:
            socket.socket(fileno=a.detach()).close()
        with pytest.raises(ValueError, match="closed"):
            table.register(a, EVENT_READ, "reader again")
        assert table.waiters() == [] and len(table) == 0
        assert a not in table._by_object


def test_a_cancelled_orphan_is_not_woken(table: IOWaitTable) -> None:
    with reused_number(table, "old reader") as (first, second, _):
        table.register(second, EVENT_WRITE, "writer")
        table.discard((first, EVENT_READ))  # what a cancel does
        assert len(table) == 1
        assert table.select(1.0) == ["writer"]
        assert len(table) == 0


def test_two_names_for_one_descriptor_share_its_registration(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    """A kernel task names a socket by object, asyncio code (the adapter) by number: one
    descriptor, one registration -- neither name evicts the other as if it were stale."""
    a, b = pair
    table.register(a, EVENT_READ, "task reading the socket")
    table.watch(a.fileno(), EVENT_WRITE, "asyncio writer's callback")
    assert watched(table) == {a.fileno(): EVENT_READ | EVENT_WRITE}
    assert table.select(1.0) == ["asyncio writer's callback"]  # writable, and still watched
    b.send(b"x")
    assert sorted(table.select(1.0)) == ["asyncio writer's callback", "task reading the socket"]
    with pytest.raises(ResourceBusy, match="already waiting to write"):
        table.register(a, EVENT_WRITE, "a task writing under the other name")


def test_a_second_reader_under_another_name_is_busy(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    table.register(a.fileno(), EVENT_READ, "reader by number")
    # (The message names the descriptor: the two names share it.)
    with pytest.raises(
        ResourceBusy, match=f"already waiting to read from descriptor {a.fileno()} "
    ):
        table.register(a, EVENT_READ, "reader by object")
    table.discard((a.fileno(), EVENT_READ))
    table.register(a, EVENT_READ, "reader by object")  # free again
    assert table.waiters() == [(a.fileno(), "read", "reader by object")]


def test_releasing_a_descriptor_forgets_all_its_names(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    table.register(a, EVENT_READ, "task")
    table.watch(a.fileno(), EVENT_WRITE, "callback")
    assert table.release(a) == ["task"]
    assert (len(table), table.waiters(), watched(table)) == (0, [], {})
    table.register(a.fileno(), EVENT_WRITE, "after")  # a fresh registration, no leftover
    assert table.select(1.0) == ["after"]


def test_bad_descriptors_are_refused_with_a_reason(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    closed = socket.socket()
    closed.close()
    with pytest.raises(ValueError, match="descriptor is -1, so it is closed"):
        table.register(closed, EVENT_READ, "reader")
    with pytest.raises(ValueError, match="an object with a fileno"):
        table.register(object(), EVENT_READ, "reader")
    table.add_wakeup(a)
    with pytest.raises(ValueError, match="wake-up socket"):
        table.register(a.fileno(), EVENT_READ, "reader")
    assert len(table) == 0 and table.waiters() == []


def test_a_file_epoll_cannot_watch_leaves_no_entry(tmp_path: Path) -> None:
    table = IOWaitTable()
    try:
        with open(tmp_path / "plain", "wb") as plain:
            with pytest.raises(PermissionError):  # epoll refuses regular files
                table.register(plain, EVENT_READ, "reader")
            assert len(table) == 0 and watched(table) == {}
            assert table.release(plain) == []
    finally:
        table.close()


def test_a_hang_up_wakes_the_reader(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    table.register(a, EVENT_READ, "reader")
    b.close()
    assert table.select(1.0) == ["reader"]
    assert a.recv(1) == b""


def test_an_idle_writer_registration_is_dropped_but_the_reader_kept(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    table.register(a, EVENT_READ, "reader")
    table.register(a, EVENT_WRITE, "writer")
    assert table.select(1.0) == ["writer"]
    assert watched(table)[a.fileno()] == EVENT_READ | EVENT_WRITE
    assert table.select(0) == []  # writable with nobody to write: stop watching that
    assert watched(table)[a.fileno()] == EVENT_READ
    b.send(b"x")
    assert table.select(1.0) == ["reader"]  # ... but the reader's registration stayed
    assert watched(table)[a.fileno()] == EVENT_READ


def test_a_wait_on_a_bare_int_descriptor_is_unregistered_when_it_ends(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    # An int cannot tell a reused descriptor number from the old one, so nothing is kept.
    a, b = pair
    table.register(a.fileno(), EVENT_READ, "woken")
    b.send(b"x")
    assert table.select(1.0) == ["woken"]
    assert a.fileno() not in watched(table)
    table.register(a.fileno(), EVENT_READ, "cancelled")
    table.discard((a.fileno(), EVENT_READ))
    assert a.fileno() not in watched(table)


# -- a socket closed behind the table's back while a dup() keeps its file open -------------
# (epoll's trouble: a poll selector keeps nothing between polls, and passes these as it is.)


def test_a_socket_closed_behind_the_tables_back_with_a_dup_open_is_not_polled_forever(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    # epoll watches the open file, and drops it only when its last descriptor closes: with
    # the dup open, the closed number stays in epoll's set, where no epoll_ctl can reach it,
    # and it is reported ready on every poll while the dup has unread data.
    a, b = pair
    wakeup, wakeup_peer = socket.socketpair()  # (the rebuilt poller watches it too)
    wakeup.setblocking(False)
    table.add_wakeup(wakeup)
    with wakeup, wakeup_peer, a.dup() as dup:
        table.register(a, EVENT_READ, "reader")
        b.send(b"x")
        assert table.select(1.0) == ["reader"]  # its registration is kept
        number = a.fileno()
        a.close()  # behind the table's back; dup keeps the file open
        b.send(b"unread, for the dup")
        assert table.select(0) == []  # ready, nobody waits: dropped
        assert watched(table) == {wakeup.fileno(): EVENT_READ}  # gone from the OS's set too
        assert number not in table._by_fd and len(table) == 0
        assert dup.recv(100) == b"xunread, for the dup"


def test_a_reused_number_is_not_woken_by_the_duplicate_of_the_file_it_had(
    table: IOWaitTable,
) -> None:
    first, peer = socket.socketpair()
    with peer, first.dup():
        table.register(first, EVENT_READ, "old reader")
        peer.send(b"x")
        assert table.select(1.0) == ["old reader"]  # kept
        number = first.fileno()
        first.close()  # behind the table's back
        second, other = socket.socketpair()
        if second.fileno() != number:  # (the OS gave it another): move it there
            os.dup2(second.fileno(), number)
            second.close()
            second = socket.socket(fileno=number)
        with second, other:
            table.register(second, EVENT_READ, "new reader")
            peer.send(b"for the dup, not for the new socket")
            assert table.select(0) == []
            other.send(b"y")
            assert table.select(1.0) == ["new reader"]
            assert second.recv(100) == b"y"


def test_a_number_the_poller_reports_but_the_table_does_not_know_is_dropped(
    table: IOWaitTable, pair: tuple[socket.socket, socket.socket]
) -> None:
    # However it got there, a registration the table has no entry for would be reported on
    # every poll, and never cleared: the table makes a new poller without it.
    a, b = pair
    table.register(b, EVENT_READ, "reader")
    table._poller.register(a.fileno(), EVENT_WRITE)  # writable at once, and stays so
    assert table.select(0) == []
    assert watched(table) == {b.fileno(): EVENT_READ}  # the reader's survives
    a.send(b"x")
    assert table.select(1.0) == ["reader"]
