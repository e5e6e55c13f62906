"""The benchmark worker: runs one workload on one library, in its own fresh process.

The harness (``__main__.py``) starts one worker per library, workload and repeat, so that no
run inherits another's heap, caches or event-loop state::

    python -m benchmarks.worker asyncio spawn_join --json
    python -m benchmarks.worker trio spawn_scale --large --quick --json

With ``--json`` it prints a single JSON object on its last line of output (see ``Result``);
without it, one readable line. It never fails with a traceback for a missing or broken
library: the status says "not installed", "import error" or "error", with the detail.

A library with a ``max_tasks`` cap (curio) runs each workload with at most that many tasks;
``Result.tasks`` says how many were used, so the table can mark capped cells.

Timing happens here, once, around the library's own coroutine (``timed``), so every
library is timed the same way and loop start-up and shutdown are left out. tracemalloc runs
only for idle_memory.

The TCP echo workloads (``measure_echo``) are timed elsewhere: the worker runs the library's
server, which starts the load client in a second process (``echo_client.py``) once it
listens, and the rate is the client's count of round trips. A watchdog thread ends the
worker if the server has not returned a few seconds after the client ended, so a hung
server costs seconds, not the harness's ten-minute limit.

Read next: ``__main__.py``, which collects these results into the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.metadata
import json
import os
import platform
import sys
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from .echo_client import ClientProcess
from .workloads import (
    ECHO_WORKLOADS,
    FULL,
    LIBRARIES,
    QUICK,
    WORKLOADS,
    EchoServer,
    Library,
    Runner,
    Sizes,
    Suite,
    timer_delays,
)

__all__ = [
    "Result",
    "load_echo_server",
    "load_suite",
    "main",
    "measure",
    "measure_echo",
    "run_worker",
    "timed",
]

OK = "ok"
NOT_INSTALLED = "not installed"
IMPORT_ERROR = "import error"
ERROR = "error"

ECHO_GRACE = 5.0  # seconds the echo server may take to return after its client has ended
HUNG = 3  # exit status of a worker whose echo server never returned


@dataclass(frozen=True)
class Result:
    """What one worker run reports; ``value`` is set only when ``status`` is "ok"."""

    library: str
    workload: str
    status: str  # "ok", "not installed", "import error" or "error"
    value: float | None = None  # a rate in units per second, or bytes per task
    unit: str = ""
    tasks: int = 0  # tasks alive at once in this run
    version: str | None = None  # the library's version, when installed
    detail: str = ""  # why the status is not "ok"


async def timed(work: Awaitable[object]) -> float:
    """Await ``work`` inside the library's own loop and return the seconds it took.

    Every library here runs plain ``async def`` coroutines, so this one wrapper times them all.
    """
    start = time.perf_counter()
    await work
    return time.perf_counter() - start


def load_suite(name: str) -> tuple[Suite, Runner]:
    """Import the workloads written for library ``name`` and the function that runs them."""
    if name == "kernel":
        from . import lib_kernel

        return lib_kernel, lib_kernel.run
    if name == "kernel+tracer":
        from . import lib_kernel

        return lib_kernel, lib_kernel.run_traced
    if name == "asyncio":
        from . import lib_asyncio

        return lib_asyncio, lib_asyncio.run
    if name == "uvloop":
        from . import lib_asyncio

        return lib_asyncio, lib_asyncio.run_uvloop
    if name == "kernel.aio":
        from . import lib_asyncio

        return lib_asyncio, lib_asyncio.run_kernel_aio
    if name == "curio":
        from . import lib_curio

        return lib_curio, lib_curio.run
    if name == "trio":
        from . import lib_trio

        return lib_trio, lib_trio.run
    raise ValueError(f"no workloads written for library {name!r}")


def load_echo_server(name: str, workload: str) -> tuple[EchoServer, Runner]:
    """The TCP echo server (``tcp_echo`` or ``tcp_echo_lines``) of library ``name``."""
    lines = workload == "tcp_echo_lines"
    if name == "bare" and not lines:
        from . import lib_bare

        return lib_bare.tcp_echo, lib_bare.run
    if name == "kernel":
        from . import lib_kernel

        return (lib_kernel.tcp_echo_lines if lines else lib_kernel.tcp_echo), lib_kernel.run
    if name in ("asyncio", "uvloop", "kernel.aio"):
        from . import lib_asyncio

        server = lib_asyncio.tcp_echo_lines if lines else lib_asyncio.tcp_echo
        return server, load_suite(name)[1]
    if name == "curio":
        from . import lib_curio

        return (lib_curio.tcp_echo_lines if lines else lib_curio.tcp_echo), lib_curio.run
    if name == "trio" and not lines:
        from . import lib_trio

        return lib_trio.tcp_echo, lib_trio.run
    raise ValueError(f"no {workload} server written for library {name!r}")


def measure_echo(server: EchoServer, runner: Runner, sizes: Sizes, connections: int) -> float:
    """Run ``server`` against the load client; return the client's round trips per second.

    The client process is started by the server itself, through the ``started`` callback,
    once it listens; it is killed on the way out whatever happened, so none outlives us.
    """
    client = ClientProcess(connections, sizes)
    server_done = threading.Event()
    watchdog = threading.Thread(
        target=_watchdog,
        args=(server_done, client, client.max_seconds + ECHO_GRACE),
        name="echo watchdog",
        daemon=True,
    )
    watchdog.start()
    try:
        runner(server(connections, client.start))
        return client.rate()
    finally:
        server_done.set()
        client.kill()


def _watchdog(server_done: threading.Event, client: ClientProcess, seconds: float) -> None:
    """End the whole process if the echo server has not returned in time: within ``seconds``,
    and within ``ECHO_GRACE`` of its client ending (a server must return once its
    connections are closed; a client that gave up on a silent server ends by itself).

    A hung event loop cannot be interrupted from another thread in a way all seven libraries
    honour, and the harness would otherwise wait ten minutes. ``os._exit`` skips clean-up,
    so the client is killed first; the harness reports the exit status and this message.
    """
    deadline = time.monotonic() + seconds
    while not server_done.wait(0.5):
        if client.ended():
            deadline = min(deadline, time.monotonic() + ECHO_GRACE)
        if time.monotonic() >= deadline:
            client.kill()
            print("the echo server did not return after its client ended", file=sys.stderr)
            sys.stderr.flush()
            os._exit(HUNG)


def measure(
    suite: Suite, runner: Runner, workload: str, sizes: Sizes, tasks: int, large: bool = False
) -> float:
    """Run ``workload`` once with ``tasks`` tasks; return its rate per second, or B/task.

    ``large`` picks spawn_scale's big case, which runs a single batch.
    """
    if workload == "spawn_join":
        return tasks / runner(timed(suite.spawn_join(tasks)))
    if workload == "switch":
        rounds = sizes.switch_rounds
        return tasks * rounds / runner(timed(suite.switch(tasks, rounds)))
    if workload == "timers":
        delays = timer_delays(tasks, sizes.timer_sleeps)
        return tasks * sizes.timer_sleeps / runner(timed(suite.timers(delays)))
    if workload == "idle_memory":
        tracemalloc.start()  # the workload stops it once it has read the memory
        try:
            added = runner(suite.idle_memory(tasks))
        finally:
            if tracemalloc.is_tracing():
                tracemalloc.stop()
        return added / tasks
    if workload == "spawn_scale":
        batches = sizes.scale_batches(large)
        return tasks * batches / runner(timed(suite.spawn_scale(tasks, batches)))
    if workload == "queue":
        items = sizes.queue_items
        return items / runner(timed(suite.queue(items, sizes.queue_maxsize)))
    if workload == "lock_pingpong":
        rounds = sizes.lock_rounds
        return 2 * rounds / runner(timed(suite.lock_pingpong(rounds)))
    if workload == "event_fanout":
        return tasks / runner(timed(suite.event_fanout(tasks)))
    if workload == "thread_roundtrip":
        calls = sizes.thread_calls
        return calls / runner(timed(suite.thread_roundtrip(calls)))
    raise ValueError(f"unknown workload {workload!r}")


def _library(name: str) -> Library:
    for library in LIBRARIES:
        if library.name == name:
            return library
    raise ValueError(f"unknown library {name!r}")


def _version(library: Library) -> str | None:
    if library.module in sys.stdlib_module_names:  # asyncio, and select for bare
        return platform.python_version()
    try:
        return importlib.metadata.version(library.distribution or library.module)
    except importlib.metadata.PackageNotFoundError:
        return None


def _import_problem(library: Library) -> tuple[str, str] | None:
    """Return (status, detail) if ``library`` cannot be used, else None."""
    try:
        module = importlib.import_module(library.module)
    except ModuleNotFoundError as exc:
        if exc.name == library.module:
            return NOT_INSTALLED, f"no module named {library.module!r}"
        return IMPORT_ERROR, f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        return IMPORT_ERROR, f"{type(exc).__name__}: {exc}"
    # A folder without __init__.py imports as an empty namespace package: that is a library
    # still being written (the kernel early on), not a working one. (Not "has no __file__":
    # a module compiled into the interpreter has none either -- select, on Debian's Python.)
    if module.__spec__ is not None and module.__spec__.origin is None:
        return NOT_INSTALLED, f"{library.module!r} is an empty namespace package"
    return None


def run_worker(library_name: str, workload: str, quick: bool, large: bool) -> Result:
    """Measure ``workload`` on ``library_name`` in this process and describe the outcome."""
    library = _library(library_name)
    unit = next(w.unit for w in WORKLOADS if w.name == workload)
    sizes = QUICK if quick else FULL
    tasks = sizes.tasks(workload, large)
    if library.max_tasks is not None:
        tasks = min(tasks, library.max_tasks)
    base = Result(library=library.name, workload=workload, status=OK, unit=unit, tasks=tasks)
    problem = _import_problem(library)
    if problem is not None:
        status, detail = problem
        return dataclasses.replace(base, status=status, detail=detail)
    version = _version(library)
    try:
        if workload in ECHO_WORKLOADS:
            server, runner = load_echo_server(library.name, workload)
            value = measure_echo(server, runner, sizes, tasks)
        else:
            suite, runner = load_suite(library.name)
            value = measure(suite, runner, workload, sizes, tasks, large)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return dataclasses.replace(base, status=ERROR, version=version, detail=detail)
    return dataclasses.replace(base, value=value, version=version)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m benchmarks.worker LIB WORKLOAD [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.worker",
        description="Run one benchmark workload on one library and print the result.",
    )
    parser.add_argument("library", choices=[library.name for library in LIBRARIES])
    parser.add_argument("workload", choices=[workload.name for workload in WORKLOADS])
    parser.add_argument("--quick", action="store_true", help="use the small smoke-test sizes")
    parser.add_argument("--large", action="store_true", help="spawn_scale: the 10^6 case")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    result = run_worker(args.library, args.workload, args.quick, args.large)
    if args.json:
        print(json.dumps(dataclasses.asdict(result)))
    elif result.status == OK:
        print(f"{result.library} {result.workload}: {result.value:,.0f} {result.unit}")
    else:
        print(f"{result.library} {result.workload}: {result.status} ({result.detail})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
