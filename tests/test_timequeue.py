"""The sleeping queue on its own: no kernel, no clock."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.timequeue import SleepingQueue


def pop_all_due(q: SleepingQueue, now: float) -> list[tuple[Any, str]]:
    due = []
    while (entry := q.pop_due(now)) is not None:
        due.append(entry)
    return due


def test_pops_in_deadline_order_and_fifo_among_equal_deadlines() -> None:
    q = SleepingQueue()
    q.push(2.0, "c")
    q.push(1.0, "a")
    q.push(1.0, "b")
    q.push(3.0, "d", kind="timeout")
    assert len(q) == 4
    assert q.next_deadline() == 1.0
    assert pop_all_due(q, 2.0) == [("a", "sleep"), ("b", "sleep"), ("c", "sleep")]
    assert pop_all_due(q, 2.5) == []
    assert pop_all_due(q, 3.0) == [("d", "timeout")]
    assert len(q) == 0
    assert q.next_deadline() is None


def test_discard_leaves_a_tombstone_that_is_skipped() -> None:
    q = SleepingQueue()
    first = q.push(1.0, "a")
    q.push(2.0, "b")
    q.discard(first)
    q.discard(first)  # twice is harmless
    assert len(q) == 1
    assert q.next_deadline() == 2.0
    assert pop_all_due(q, 10.0) == [("b", "sleep")]


def test_an_entry_due_later_in_the_same_pass_can_still_be_discarded() -> None:
    q = SleepingQueue()
    q.push(1.0, "timeout of task", kind="timeout")
    sleep = q.push(1.0, "sleep of the same task")
    assert q.pop_due(1.0) == ("timeout of task", "timeout")
    q.discard(sleep)  # handling the timeout cancels the sleep, which is also due
    assert q.pop_due(1.0) is None
    assert len(q) == 0


def test_discarding_a_popped_entry_does_not_corrupt_the_count() -> None:
    q = SleepingQueue()
    entry = q.push(1.0, "a")
    q.push(5.0, "b")
    assert pop_all_due(q, 1.0) == [("a", "sleep")]
    q.discard(entry)
    assert len(q) == 1


def test_many_discards_compact_the_heap() -> None:
    q = SleepingQueue()
    entries = [q.push(float(i), i) for i in range(1000)]
    for entry in entries[:900]:
        q.discard(entry)
    assert len(q) == 100
    assert len(q._heap) < 250  # rebuilt without most tombstones
    assert [item for item, _ in pop_all_due(q, 2000.0)] == list(range(900, 1000))


def test_items_lists_live_entries_in_due_order() -> None:
    q = SleepingQueue()
    q.push(2.0, "b")
    gone = q.push(1.5, "x")
    q.push(1.0, "a", kind="timeout")
    q.discard(gone)
    assert q.items() == [(1.0, "a", "timeout"), (2.0, "b", "sleep")]


# A model of the queue as a plain list, kept sorted by (deadline, insertion order).
operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 50)),
        st.tuples(st.just("discard"), st.integers(0, 200)),
        st.tuples(st.just("pop"), st.integers(0, 50)),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_matches_a_sorted_list_model(ops: list[tuple[str, int]]) -> None:
    queue = SleepingQueue()
    model: list[tuple[float, int, Any]] = []  # (deadline, seq, item), kept sorted
    handles: list[tuple[list[Any], tuple[float, int, Any]]] = []
    seq = 0
    for op, n in ops:
        if op == "push":
            item = f"item{seq}"
            handle = queue.push(float(n), item)
            row = (float(n), seq, item)
            model.append(row)
            model.sort()
            handles.append((handle, row))
            seq += 1
        elif op == "discard" and handles:
            handle, row = handles[n % len(handles)]
            queue.discard(handle)
            if row in model:
                model.remove(row)
        elif op == "pop":
            due = [row for row in model if row[0] <= n]
            assert pop_all_due(queue, float(n)) == [(item, "sleep") for _, _, item in due]
            model = [row for row in model if row[0] > n]
        assert len(queue) == len(model)
        assert queue.next_deadline() == (model[0][0] if model else None)


def test_a_deadline_of_infinity_is_no_deadline() -> None:
    # sleep(math.inf) never wakes: a virtual clock jumping to "the next deadline" must not
    # jump there (every later deadline would then have passed), and the deadlock check must
    # not count on it.
    q = SleepingQueue()
    q.push(math.inf, "forever")
    assert q.next_deadline() is None
    assert len(q) == 1  # still parked there, for a cancel to find
    q.push(5.0, "soon")
    assert q.next_deadline() == 5.0
    assert pop_all_due(q, 10.0) == [("soon", "sleep")]
    assert q.next_deadline() is None
