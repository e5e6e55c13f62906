"""The toy scheduler of chapter 3 (examples/course/toy_scheduler.py) does what the chapter says.

It imports nothing of the kernel, and neither do these tests: they start no kernel. The toy
takes its clock and its ``select()`` as arguments, so most tests give it ``VirtualTime``, which
polls the real sockets without ever blocking and, where the toy would block, jumps to the end
of the timeout instead -- the kernel's ``VirtualClock`` idea in ten lines. Times are then
exact (the tests use deadlines that are exact in binary). One test runs it on the real clock.
"""

from __future__ import annotations

import importlib.util
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

TOY = Path(__file__).resolve().parent.parent / "examples" / "course" / "toy_scheduler.py"


def load_toy() -> ModuleType:
    """Import the example from its path (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("toy_scheduler", TOY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import toy_scheduler as toy  # mypy checks examples/ too, so it knows the module
else:
    toy = load_toy()


class VirtualTime:
    """A clock that moves only where the toy would block, and then by the whole timeout."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timeouts: list[float | None] = []  # every timeout the toy asked select() for
        self.outside: list[Callable[[], object]] = []  # done "by another program" if stuck

    def clock(self) -> float:
        return self.now

    def wait(self, socks: list[socket.socket], timeout: float | None) -> list[socket.socket]:
        self.timeouts.append(timeout)
        readable = toy.select_readable(socks, 0.0)  # polls; never blocks
        if readable:
            return readable
        if timeout is None:  # only I/O can wake the toy now: let the outside world act
            assert self.outside, "the toy would block forever"
            self.outside.pop(0)()
            return toy.select_readable(socks, 0.0)
        self.now += timeout
        return []


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


def test_ready_tasks_take_turns_first_in_first_out(vtime: VirtualTime) -> None:
    log: list[str] = []

    def polite(name: str, turns: int) -> toy.Task:
        for n in range(turns):
            log.append(f"{name}{n}")
            yield ("sleep", 0)  # nothing to wait for: back in line at the next turn

    sched = toy.Scheduler(clock=vtime.clock, wait=vtime.wait)
    for name, turns in (("a", 3), ("b", 1), ("c", 2)):
        sched.spawn(polite(name, turns))
    sched.run()
    assert log == ["a0", "b0", "c0", "a1", "c1", "a2"]
    assert vtime.now == 0.0  # no time passed: the toy never had to wait
    assert not (sched.ready or sched.sleeping or sched.reading)


def test_sleepers_wake_by_deadline_and_equal_deadlines_in_order(vtime: VirtualTime) -> None:
    woke: list[tuple[str, float]] = []

    def sleeper(name: str, seconds: float) -> toy.Task:
        yield ("sleep", seconds)
        woke.append((name, vtime.now))

    sched = toy.Scheduler(clock=vtime.clock, wait=vtime.wait)
    for name, seconds in (("c", 3.0), ("a", 1.0), ("b", 2.0), ("d", 1.0)):
        sched.spawn(sleeper(name, seconds))
    sched.run()
    assert woke == [("a", 1.0), ("d", 1.0), ("b", 2.0), ("c", 3.0)]


def test_select_blocks_only_when_nothing_is_ready_and_until_the_nearest_deadline(
    vtime: VirtualTime,
) -> None:
    def sleeper(seconds: float) -> toy.Task:
        yield ("sleep", seconds)

    sched = toy.Scheduler(clock=vtime.clock, wait=vtime.wait)
    sched.spawn(sleeper(0.5))
    sched.spawn(sleeper(1.25))
    sched.run()
    # turn 1: tasks are ready, so select() must not block; turn 2: nothing is ready, the
    # nearest deadline is 0.5 s away; turn 3: the other one is 0.75 s further.
    assert vtime.timeouts == [0.0, 0.5, 0.75]
    assert vtime.now == 1.25


def test_a_reader_wakes_when_bytes_arrive_on_a_socketpair(vtime: VirtualTime) -> None:
    log: list[str] = []
    left, right = socket.socketpair()
    with left, right:

        def reader() -> toy.Task:
            log.append("reader parks")
            yield ("read", right)
            log.append(f"reader got {right.recv(100)!r} at t={vtime.now}")

        def writer() -> toy.Task:
            yield ("sleep", 0.75)
            log.append("writer sends")
            left.send(b"hello")

        sched = toy.Scheduler(clock=vtime.clock, wait=vtime.wait)
        sched.spawn(reader())
        sched.spawn(writer())
        sched.run()
        assert log == ["reader parks", "writer sends", "reader got b'hello' at t=0.75"]
        # While it waited, the reader sat in the I/O table and was never resumed: select()
        # was asked to block until the writer's deadline; then, with no deadline left, to
        # block with no limit -- and it found the socket readable at once.
        assert vtime.timeouts == [0.0, 0.75, None]


def test_with_no_deadline_select_waits_for_io_alone(vtime: VirtualTime) -> None:
    left, right = socket.socketpair()
    with left, right:
        got: list[bytes] = []

        def reader() -> toy.Task:
            yield ("read", right)
            got.append(right.recv(100))

        sched = toy.Scheduler(clock=vtime.clock, wait=vtime.wait)
        sched.spawn(reader())
        assert right not in sched.reading
        vtime.outside.append(lambda: left.send(b"from outside"))
        sched.run()
        assert got == [b"from outside"]
        assert vtime.timeouts == [0.0, None]  # None: select() with no time limit
        assert sched.reading == {}


def test_an_unknown_request_is_an_error(vtime: VirtualTime) -> None:
    def confused() -> toy.Task:
        yield ("fly", 1)

    sched = toy.Scheduler(clock=vtime.clock, wait=vtime.wait)
    sched.spawn(confused())
    with pytest.raises(TypeError, match="unknown request 'fly'"):
        sched.run()


DEMO_OUTPUT = """\
t=0.0 reader waits for bytes
t=0.2 tick 1
t=0.4 tick 2
t=0.5 writer sends b'hello'
t=0.5 reader got b'hello'
t=0.6 tick 3
"""


def test_the_demo_on_virtual_time(vtime: VirtualTime, capsys: pytest.CaptureFixture[str]) -> None:
    toy.demo(toy.Scheduler(clock=vtime.clock, wait=vtime.wait))
    assert capsys.readouterr().out == DEMO_OUTPUT
    assert vtime.now == pytest.approx(0.6)


def test_the_demo_on_the_real_clock(capsys: pytest.CaptureFixture[str]) -> None:
    """The defaults: time.monotonic and a real, blocking select() (the demo takes 0.6 s)."""
    started = time.monotonic()
    toy.demo(toy.Scheduler())
    elapsed = time.monotonic() - started
    # The same events, in the same order, each no earlier than on virtual time: a loaded
    # machine may wake a little late (t=0.1 for t=0.0), never early. The exact times are
    # the virtual-time test's.
    got = [line.split(" ", 1) for line in capsys.readouterr().out.splitlines()]
    expected = [line.split(" ", 1) for line in DEMO_OUTPUT.splitlines()]
    assert [event for _, event in got] == [event for _, event in expected]
    for (at, _), (due, _) in zip(got, expected, strict=True):
        assert float(due[2:]) <= float(at[2:]) < float(due[2:]) + 1.0
    # It slept through the deadlines rather than spinning or oversleeping: the last tick is
    # due at 0.6 s; the margin is for a loaded machine.
    assert 0.6 <= elapsed < 2.0


def test_the_toy_stands_alone() -> None:
    source = TOY.read_text(encoding="utf-8")
    assert "import kernel" not in source and "from kernel" not in source
    # About fifty lines of scheduler: from select_readable to the end of Scheduler.run.
    body = source.split("def select_readable", 1)[1].split("# -- a demo", 1)[0]
    assert len(body.strip().splitlines()) <= 55
