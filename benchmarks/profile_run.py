"""Where one workload's time goes: its garbage collections, then a cProfile listing.

When a library's cell in the table is lower than expected, this is the next step::

    python -m benchmarks.profile_run kernel.aio timers
    python -m benchmarks.profile_run asyncio timers --gc-off
    python -m benchmarks.profile_run kernel.aio tcp_echo --top 40 --sort cumulative

It runs the workload twice in this process, with the worker's own code (``worker.measure``
or ``worker.measure_echo``), so the sizes and the timing are the table's:

1. plainly, timing every collection of CPython's cyclic garbage collector per generation
   (``gc.callbacks``): the rate, and how much of the run the collector took;
2. under ``cProfile``, printing the functions with the most time.

Read the two together. cProfile adds a fixed cost to every Python-level call and none to
code written in C, so it exaggerates pure-Python libraries (kernel, kernel.aio) against C
ones (asyncio's Task and Future, uvloop): compare the *shares* of functions within one
library, not profiled totals across libraries. And it charges a collection to whichever
function happened to allocate the object that triggered it, often a cheap ``__init__``;
step 1 says how much of the time that is (``--gc-off`` shows the rate without it).

Read next: ``gc_profile.py``, the same question for spawn_scale at 10^6 tasks.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import resource
import sys
import time
from collections.abc import Sequence

from .gc_profile import CollectionTimer
from .worker import load_echo_server, load_suite, measure, measure_echo
from .workloads import ECHO_WORKLOADS, FULL, LIBRARIES, QUICK, WORKLOADS, Sizes

__all__ = ["cpu_per_message", "main", "run_once", "server_cpu"]


def run_once(library: str, workload: str, sizes: Sizes, large: bool = False) -> float:
    """Run ``workload`` on ``library`` once, as the worker does; return its rate (or B/task)."""
    tasks = sizes.tasks(workload, large)
    if workload in ECHO_WORKLOADS:
        server, runner = load_echo_server(library, workload)
        return measure_echo(server, runner, sizes, tasks)
    suite, runner = load_suite(library)
    return measure(suite, runner, workload, sizes, tasks, large)


def server_cpu(
    before: resource.struct_rusage, after: resource.struct_rusage, elapsed: float, rate: float
) -> str:
    """The echo server's CPU (this process) per message, in user and system time.

    Discussion: the two move against each other. A server whose Python got faster can
    spend more time in the kernel per message, because the client process then waits for
    replies more often and each ``send`` has to wake it up; the rate follows the sum. So
    read this line before and after a change, not the profile alone.
    """
    user = (after.ru_utime - before.ru_utime) / elapsed  # fractions of one core
    system = (after.ru_stime - before.ru_stime) / elapsed
    user_us, system_us = cpu_per_message(before, after, elapsed, rate)
    return (
        f"  this process: {user:.0%} user and {system:.0%} system time of one core; per "
        f"message {user_us:.2f} us user + {system_us:.2f} us system"
    )


def cpu_per_message(
    before: resource.struct_rusage, after: resource.struct_rusage, elapsed: float, rate: float
) -> tuple[float, float]:
    """This process's user and system CPU between two ``getrusage`` readings, in
    microseconds per message at ``rate`` messages per second over ``elapsed`` seconds."""
    messages = rate * elapsed
    return (
        (after.ru_utime - before.ru_utime) / messages * 1e6,
        (after.ru_stime - before.ru_stime) / messages * 1e6,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m benchmarks.profile_run LIB WORKLOAD``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_run",
        description="Time the garbage collections of one workload, then profile it.",
    )
    parser.add_argument("library", choices=[library.name for library in LIBRARIES])
    parser.add_argument("workload", choices=[workload.name for workload in WORKLOADS])
    parser.add_argument("--quick", action="store_true", help="use the small smoke-test sizes")
    parser.add_argument("--large", action="store_true", help="spawn_scale: the 10^6 case")
    parser.add_argument("--gc-off", action="store_true", help="switch the collector off")
    parser.add_argument("--top", type=int, default=25, metavar="N", help="functions shown (25)")
    parser.add_argument(
        "--sort", default="tottime", choices=["tottime", "cumulative", "ncalls"], help="order"
    )
    args = parser.parse_args(argv)
    if args.workload == "idle_memory":
        parser.error("idle_memory measures bytes, not time: there is nothing to profile")
    sizes = QUICK if args.quick else FULL
    unit = next(w.unit for w in WORKLOADS if w.name == args.workload)
    name = f"{args.library} {args.workload}"
    if args.gc_off:
        gc.disable()

    timer = CollectionTimer()
    gc.callbacks.append(timer)
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        value = run_once(args.library, args.workload, sizes, args.large)
    finally:
        gc.callbacks.remove(timer)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.perf_counter() - started
    collected = sum(timer.seconds)
    print(f"{name}: {value:,.0f} {unit} with the collector {'off' if args.gc_off else 'on'}")
    print(
        f"  garbage collection: {collected * 1000:.0f} ms of {elapsed * 1000:.0f} ms"
        f" ({collected / elapsed:.0%}; the run includes set-up the rate leaves out)"
    )
    for generation, (count, seconds) in enumerate(zip(timer.count, timer.seconds, strict=True)):
        print(f"  generation {generation}: {count:5d} collections, {seconds * 1000:7.1f} ms")
    if args.workload in ECHO_WORKLOADS:
        print(server_cpu(cpu_before, cpu_after, elapsed, value))
    sys.stdout.flush()

    profile = cProfile.Profile()
    profile.enable()
    try:
        value = run_once(args.library, args.workload, sizes, args.large)
    finally:
        profile.disable()
    print(f"\n{name}: {value:,.0f} {unit} under cProfile (slower: see the module's docstring)")
    stats = pstats.Stats(profile, stream=sys.stdout)
    stats.sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
