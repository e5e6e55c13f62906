"""Wait queues on their own: FIFO order, O(1) discard, live counts."""

from kernel.waitqueue import WaitQueue


def test_fifo_order() -> None:
    q = WaitQueue()
    for name in "abc":
        q.append(name)
    assert len(q) == 3
    assert [q.popleft(), q.popleft(), q.popleft(), q.popleft()] == ["a", "b", "c", None]
    assert len(q) == 0


def test_discard_from_the_middle() -> None:
    q = WaitQueue()
    q.append("a")
    b = q.append("b")
    q.append("c")
    q.discard(b)
    q.discard(b)
    assert len(q) == 2
    assert q.tasks() == ["a", "c"]
    assert q.popleft() == "a"
    assert q.popleft() == "c"


def test_peek_shows_the_first_live_waiter_without_removing_it() -> None:
    q = WaitQueue()
    assert q.peek() is None
    a = q.append("a")
    q.append("b")
    q.discard(a)
    assert q.peek() == "b"
    assert len(q) == 1
    assert q.popleft() == "b"


def test_discard_after_pop_is_a_no_op() -> None:
    q = WaitQueue()
    a = q.append("a")
    q.append("b")
    assert q.popleft() == "a"
    q.discard(a)
    assert len(q) == 1


def test_long_line_with_many_leavers_is_compacted() -> None:
    q = WaitQueue()
    entries = [q.append(i) for i in range(1000)]
    for entry in entries[::2] + entries[1:800:2]:
        q.discard(entry)
    assert len(q) == 100
    assert len(q._entries) < 300
    assert q.tasks() == list(range(801, 1000, 2))
    assert repr(q) == "<WaitQueue waiting=100>"
