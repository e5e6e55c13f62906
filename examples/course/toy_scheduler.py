"""Course, chapter 3 -- A toy scheduler: a ready queue, a sleeping heap and select().

What it teaches: a scheduler for generators needs three structures and one loop. Tasks are
plain generators that yield *requests*: ``("sleep", seconds)`` parks the task on a heap of
deadlines, ``("read", sock)`` parks it until ``sock`` has bytes to read. Each turn of the
loop has three phases: 1. poll I/O with ``select()`` -- blocking, when nothing is ready,
until the nearest deadline; 2. move the sleepers whose deadline has passed to the ready
queue; 3. resume each ready task once, up to its next request. This file imports nothing
of the kernel: the kernel is this loop, grown up. The clock and the ``select()`` call can
be swapped, so the tests run it on a fake clock.

Read next: docs/course/04-traps-and-the-microkernel.md, then examples/course/raw_traps.py
"""

import heapq
import itertools
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

Task = Generator[tuple[str, Any], None, None]  # yields ("sleep", seconds) or ("read", sock)
Wait = Callable[[list[socket.socket], float | None], list[socket.socket]]


def select_readable(socks: list[socket.socket], timeout: float | None) -> list[socket.socket]:
    """Block until one of ``socks`` is readable or ``timeout`` has passed (None: no limit)."""
    readable, _, _ = select.select(socks, [], [], timeout)
    return readable


class Scheduler:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, wait: Wait = select_readable
    ) -> None:
        self.ready: deque[Task] = deque()  # tasks that can run now, first in, first out
        self.sleeping: list[tuple[float, int, Task]] = []  # heap of (deadline, seq, task)
        self.reading: dict[socket.socket, Task] = {}  # socket -> the task waiting to read it
        self.seq = itertools.count()  # equal deadlines wake in the order they were set
        self.clock, self.wait = clock, wait

    def spawn(self, task: Task) -> None:
        self.ready.append(task)

    def run(self) -> None:
        while self.ready or self.sleeping or self.reading:
            # 1. Poll I/O. Block only when no task is ready: until the nearest deadline,
            #    or with no deadline at all, until a socket is readable.
            if self.ready:
                timeout: float | None = 0.0
            elif self.sleeping:
                timeout = max(0.0, self.sleeping[0][0] - self.clock())
            else:
                timeout = None
            for sock in self.wait(list(self.reading), timeout):
                self.ready.append(self.reading.pop(sock))
            # 2. Wake the sleepers whose deadline has passed.
            now = self.clock()
            while self.sleeping and self.sleeping[0][0] <= now:
                self.ready.append(heapq.heappop(self.sleeping)[2])
            # 3. Run each task that was ready when this phase began, up to its next request.
            for _ in range(len(self.ready)):
                task = self.ready.popleft()
                try:
                    request, arg = task.send(None)
                except StopIteration:
                    continue  # the task returned: it is simply dropped
                if request == "sleep":
                    heapq.heappush(self.sleeping, (self.clock() + arg, next(self.seq), task))
                elif request == "read":
                    self.reading[arg] = task
                else:
                    raise TypeError(f"unknown request {request!r}")


# -- a demo: a ticker, and a reader woken by bytes that a writer sends after a while ---------


def demo(scheduler: Scheduler) -> None:
    start = scheduler.clock()

    def say(what: str) -> None:
        print(f"t={scheduler.clock() - start:.1f} {what}")

    def ticker(count: int) -> Task:
        for n in range(1, count + 1):
            yield ("sleep", 0.2)
            say(f"tick {n}")

    def reader(sock: socket.socket) -> Task:
        say("reader waits for bytes")
        yield ("read", sock)
        say(f"reader got {sock.recv(100)!r}")

    def writer(sock: socket.socket) -> Task:
        yield ("sleep", 0.5)
        say("writer sends b'hello'")
        sock.send(b"hello")

    left, right = socket.socketpair()
    with left, right:
        for task in (ticker(3), reader(right), writer(left)):
            scheduler.spawn(task)
        scheduler.run()


if __name__ == "__main__":
    demo(Scheduler())
