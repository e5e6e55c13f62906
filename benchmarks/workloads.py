"""What the benchmarks measure: the libraries, the workloads, their sizes, and shared helpers.

Everything the harness (``__main__.py``), the worker (``worker.py``) and the per-library
modules (``lib_*.py``) must agree on lives here, once: the library list, the workload names
and units, the full and ``--quick`` sizes, the seeded sleep durations of the timer workload,
and the two helpers of the memory workload.

The contract every ``lib_*.py`` module fulfils is the ``Suite`` protocol below: one
coroutine function per workload, with the same names and arguments. Each one does only the
work; the worker times it from outside (see ``worker.timed``), so the timing code is written
once. The TCP echo workloads are the exception: their servers follow the ``EchoServer``
protocol, and the load client in another process (``echo_client.py``) does the counting.

Read next: ``worker.py``, then any ``lib_*.py``.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "ADAPTER_LIBRARIES",
    "ADAPTER_WORKLOADS",
    "ECHO_BACKLOG",
    "ECHO_BUFSIZE",
    "ECHO_HOST",
    "ECHO_WORKLOADS",
    "FRAMEWORKS",
    "FULL",
    "LIBRARIES",
    "ON_REQUEST",
    "QUICK",
    "TIMER_SEED",
    "WORKLOADS",
    "EchoServer",
    "IdleCount",
    "Library",
    "Runner",
    "Sizes",
    "Suite",
    "Workload",
    "memory_added_since",
    "memory_mark",
    "thread_work",
    "timer_delays",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Library:
    """One column of the table: a library and how the worker reaches it."""

    name: str  # as shown in the table and given to --only
    module: str  # the module that must import, else the column says "not installed"
    max_tasks: int | None = None  # if set, no workload runs more tasks than this at once
    distribution: str | None = None  # the package whose version to show, if not ``module``


LIBRARIES: tuple[Library, ...] = (
    Library("kernel", "kernel"),
    Library("asyncio", "asyncio"),
    Library("uvloop", "uvloop"),
    # This project's asyncio adapter: asyncio's own workload code (lib_asyncio.py, as for
    # asyncio and uvloop) on the event loop of kernel.aio.new_event_loop().
    Library("kernel.aio", "kernel.aio", distribution="kernel"),
    # The kernel with a tracer attached that does nothing: what tracing costs when it is on.
    # Beside the plain kernel column it shows that the cost is all in the traced kernel
    # (install_tracer swaps wrappers in); the plain kernel runs none of that code. Run only
    # when asked for: --only kernel,kernel+tracer.
    Library("kernel+tracer", "kernel", distribution="kernel"),
    # curio 1.6 asserts that a task it puts on the ready queue is not already there, a scan of
    # the whole queue, so N tasks made ready at once cost O(N^2): idle_memory alone would take
    # minutes, spawn_scale at 10^6 hours. It is capped, and the table marks the capped cells.
    Library("curio", "curio", max_tasks=20_000),
    Library("trio", "trio"),
    # No framework at all: an epoll loop written out by hand (lib_bare.py). It serves the TCP
    # echo workload only, as the ceiling a Python server can reach on this machine.
    Library("bare", "select"),
)

# The libraries with tasks.
FRAMEWORKS = ("kernel", "kernel+tracer", "asyncio", "uvloop", "kernel.aio", "curio", "trio")

# Libraries a plain run leaves out (``--only`` names them).
ON_REQUEST = ("kernel+tracer",)

# The comparison of the asyncio adapter (issue 5), what ``--aio`` runs: the same asyncio code
# on asyncio's default loop, on uvloop's and on the adapter's, for these workloads.
ADAPTER_LIBRARIES = ("asyncio", "uvloop", "kernel.aio")
ADAPTER_WORKLOADS = ("spawn_join", "switch", "timers", "queue", "tcp_echo")


@dataclass(frozen=True)
class Workload:
    """One workload: its name (also the function name in each ``lib_*.py``) and its unit."""

    name: str
    unit: str  # what one measured value counts
    higher_is_better: bool
    summary: str  # a template filled in from ``Sizes`` for the table's legend
    libraries: tuple[str, ...] = FRAMEWORKS  # the columns it runs in; the others show "-"


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "spawn_join",
        "tasks/s",
        True,
        "main spawns {spawn_join_tasks:,} tasks that return at once, then joins them all",
    ),
    Workload(
        "switch",
        "switches/s",
        True,
        "{switch_tasks:,} tasks each call sleep(0) {switch_rounds:,} times",
    ),
    Workload(
        "timers",
        "sleeps/s",
        True,
        "{timer_tasks:,} tasks each sleep {timer_sleeps} times for 0-10 ms (same seeded"
        " durations for every library)",
    ),
    Workload(
        "idle_memory",
        "B/task",
        False,
        "tracemalloc bytes per task for {idle_tasks:,} tasks blocked in sleep(1000)"
        " (lower is better)",
    ),
    Workload(
        "spawn_scale",
        "tasks/s",
        True,
        "spawn tasks that each sleep(0) once and exit, then join them; {scale_small:,} alive"
        " at once (in batches, {scale_total:,} in all) vs {scale_large:,} alive at once",
    ),
    Workload(
        "queue",
        "items/s",
        True,
        "a producer puts {queue_items:,} ints into a queue of maxsize {queue_maxsize}"
        " (trio: a memory channel) and a consumer gets them all",
    ),
    Workload(
        "lock_pingpong",
        "acquires/s",
        True,
        "two tasks each run `async with lock: await sleep(0)` {lock_rounds:,} times, so they"
        " take turns",
    ),
    Workload(
        "event_fanout",
        "waiters/s",
        True,
        "spawn {event_waiters:,} tasks that wait on one Event, set it, join them all",
    ),
    Workload(
        "thread_roundtrip",
        "calls/s",
        True,
        "{thread_calls:,} sequential awaits of a do-nothing function run in a worker thread",
    ),
    Workload(
        "tcp_echo",
        "msgs/s",
        True,
        "a client process keeps {echo_connections} loopback connections busy, each sending a"
        " {echo_size}-byte message and waiting for its echo; round trips per second over"
        " {echo_seconds:g} s after {echo_warmup:g} s of warm-up; bare is an epoll loop with no"
        " framework",
        libraries=(*FRAMEWORKS, "bare"),
    ),
    Workload(
        "tcp_echo_lines",
        "msgs/s",
        True,
        "the same client, its messages now lines, echoed by a server that reads them with its"
        " library's stream readline (trio has none)",
        libraries=("kernel", "asyncio", "uvloop", "kernel.aio", "curio"),
    ),
)

# The workloads whose server runs in the worker and whose client runs in a process of its own.
ECHO_WORKLOADS = ("tcp_echo", "tcp_echo_lines")


@dataclass(frozen=True)
class Sizes:
    """The sizes of every workload; ``FULL`` is the default run, ``QUICK`` the smoke test."""

    spawn_join_tasks: int
    switch_tasks: int
    switch_rounds: int  # sleep(0) calls per switch task
    timer_tasks: int
    timer_sleeps: int  # sleeps per timer task
    idle_tasks: int
    scale_small: int  # tasks alive at once, small case
    scale_large: int  # tasks alive at once, large case
    scale_total: int  # the small case repeats batches until it has spawned this many in all
    queue_items: int  # items through the queue, producer to consumer
    queue_maxsize: int
    lock_rounds: int  # lock acquisitions per ping-pong task (two tasks)
    event_waiters: int  # tasks waiting on the one event
    thread_calls: int  # sequential round trips to a worker thread
    echo_connections: int  # connections the echo client keeps busy at once
    echo_size: int  # bytes per message, newline included
    echo_warmup: float  # seconds of traffic before the client starts counting
    echo_seconds: float  # seconds the client counts round trips for

    def tasks(self, workload: str, large: bool = False) -> int:
        """How many tasks ``workload`` has alive at once (``large``: spawn_scale's big case)."""
        if workload == "spawn_scale":
            return self.scale_large if large else self.scale_small
        counts = {
            "spawn_join": self.spawn_join_tasks,
            "switch": self.switch_tasks,
            "timers": self.timer_tasks,
            "idle_memory": self.idle_tasks,
            "queue": 2,  # producer and consumer
            "lock_pingpong": 2,
            "event_fanout": self.event_waiters,
            "thread_roundtrip": 1,
            "tcp_echo": self.echo_connections,  # one handler task per connection
            "tcp_echo_lines": self.echo_connections,
        }
        return counts[workload]

    def scale_batches(self, large: bool) -> int:
        """How many batches of tasks one spawn_scale measurement runs: one for the large case,
        enough for ``scale_total`` tasks in all for the small one."""
        return 1 if large else max(1, self.scale_total // self.scale_small)


FULL = Sizes(
    spawn_join_tasks=50_000,
    switch_tasks=100,
    switch_rounds=2_000,
    timer_tasks=10_000,
    timer_sleeps=5,
    idle_tasks=100_000,
    scale_small=1_000,
    scale_large=1_000_000,
    scale_total=100_000,
    queue_items=200_000,
    queue_maxsize=100,
    lock_rounds=50_000,
    event_waiters=10_000,
    thread_calls=5_000,
    echo_connections=8,
    echo_size=100,
    echo_warmup=0.3,
    echo_seconds=2.0,
)

QUICK = Sizes(
    spawn_join_tasks=5_000,
    switch_tasks=20,
    switch_rounds=500,
    timer_tasks=1_000,
    timer_sleeps=5,
    idle_tasks=5_000,
    scale_small=1_000,
    scale_large=10_000,
    scale_total=10_000,
    queue_items=10_000,
    queue_maxsize=100,
    lock_rounds=2_000,
    event_waiters=1_000,
    thread_calls=200,
    echo_connections=8,
    echo_size=100,
    echo_warmup=0.1,
    echo_seconds=0.3,
)

TIMER_SEED = 20_240_601  # any constant: what matters is that every library gets the same delays
TIMER_MAX_DELAY = 0.010  # seconds


def timer_delays(tasks: int, sleeps: int) -> list[tuple[float, ...]]:
    """The sleep durations of the timer workload: one tuple per task, identical every run."""
    rng = random.Random(TIMER_SEED)
    return [tuple(rng.uniform(0.0, TIMER_MAX_DELAY) for _ in range(sleeps)) for _ in range(tasks)]


def thread_work() -> None:
    """What thread_roundtrip runs in a worker thread: nothing, so only the round trip counts."""


class IdleCount:
    """How many tasks have reached the call they block in (idle_memory, event_fanout).

    The main task waits until this reaches N before it reads the memory (idle_memory) or sets
    the event (event_fanout), so that every task has run to its blocking call whatever order
    the library runs new tasks in.
    """

    def __init__(self) -> None:
        self.value = 0


def memory_mark() -> int:
    """Bytes traced by tracemalloc now, after freeing any garbage cycles.

    The worker starts tracemalloc only for idle_memory, so it never slows the other workloads.
    """
    gc.collect()
    current, _peak = tracemalloc.get_traced_memory()
    return current


def memory_added_since(mark: int) -> int:
    """Bytes traced since ``memory_mark`` returned ``mark``; then stop tracing.

    Tracing triples the cost of every allocation, and the clean-up after the measurement
    (cancelling N tasks) need not be traced.
    """
    added = memory_mark() - mark
    tracemalloc.stop()
    return added


ECHO_HOST = "127.0.0.1"  # loopback only; every server binds port 0 and reports the port it got
ECHO_BUFSIZE = 65536  # the most bytes one recv asks for
ECHO_BACKLOG = 100  # listen() backlog, larger than any number of connections used here


class Suite(Protocol):
    """What every ``lib_*.py`` module provides: the workloads, written for one library.

    Each is a coroutine function to be run by that library's runner. All but idle_memory
    return nothing; idle_memory returns the traced bytes its N sleeping tasks added.
    """

    async def spawn_join(self, n: int) -> None: ...

    async def switch(self, tasks: int, rounds: int) -> None: ...

    async def timers(self, delays: Sequence[Sequence[float]]) -> None: ...

    async def idle_memory(self, n: int) -> int: ...

    async def spawn_scale(self, alive: int, batches: int) -> None: ...

    async def queue(self, items: int, maxsize: int) -> None: ...

    async def lock_pingpong(self, rounds: int) -> None: ...

    async def event_fanout(self, waiters: int) -> None: ...

    async def thread_roundtrip(self, calls: int) -> None: ...


class EchoServer(Protocol):
    """A TCP echo server, as each ``lib_*.py`` writes ``tcp_echo`` (and ``tcp_echo_lines``).

    It listens on ``ECHO_HOST`` at a port the system picks, calls ``started(port)`` once it
    listens (the worker then starts the client), accepts ``connections`` connections, echoes
    every byte (or line) each one sends, and returns when the client has closed them all.
    A failure in any handler must leave the server with that exception.
    """

    def __call__(
        self, connections: int, started: Callable[[int], None]
    ) -> Coroutine[Any, Any, None]: ...


class Runner(Protocol):
    """A library's entry point: runs one coroutine to completion and returns its result."""

    def __call__(self, main: Coroutine[Any, Any, T]) -> T: ...
