"""What a share of the bare loop's TCP echo rate asks of a server, in CPU per message.

The ``tcp_echo`` row reports each server's rate as a fraction of ``bare``'s, the epoll loop
with no framework. A fraction hides what it takes. This measures it: it runs the bare
server as it is, then with a do-nothing Python loop of ``N`` turns added to every message
(wrapped around ``lib_bare._send``, put back afterwards), then the kernel's server, and
prints for each the rate, its share of plain bare's, and the server's CPU per message::

    python -m benchmarks.echo_headroom --work 100,200,300 --repeat 2

Read it as a curve: the user time per message each server spent, and the rate that bought.
The kernel's row can then be placed on the bare loop's curve -- whether it sits on it (its
deficit is its Python time) or below it (something else costs it too).

The runs take turns, round by round (``--repeat``), and each configuration keeps its best
round, like the main table: this machine drifts between a faster and a slower state over
minutes, and a comparison is fair only between runs made close together. They run in this
process, one after another, as ``profile_run`` runs them.

Read next: ``profile_run.py``, which says where one server's time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from . import lib_bare
from .profile_run import cpu_per_message, run_once
from .workloads import FULL, QUICK, Sizes

__all__ = ["Point", "extra_work", "main", "measure"]


@dataclass(frozen=True)
class Point:
    """One run of one server: its rate and its CPU per message."""

    label: str
    rate: float  # round trips per second, as the client counted them
    user: float  # the server's user CPU per message, in microseconds
    system: float  # ... and its system CPU per message


@contextlib.contextmanager
def extra_work(turns: int) -> Iterator[None]:
    """Make the bare server run a Python loop of ``turns`` turns before each echo."""
    plain = lib_bare._send
    work = range(turns)

    def send(client: socket.socket, data: bytes | memoryview) -> int:
        for _ in work:
            pass
        return plain(client, data)

    lib_bare._send = send
    try:
        yield
    finally:
        lib_bare._send = plain


def measure(label: str, library: str, sizes: Sizes) -> Point:
    """Run ``library``'s tcp_echo server once; its rate and CPU per message.

    The CPU is this process's over the whole run, set-up included, spread over the
    messages at the counted rate (as ``profile_run.server_cpu`` does): a slight
    overestimate, the same for every server.
    """
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF)
    rate = run_once(library, "tcp_echo", sizes)
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = cpu_per_message(before, after, time.perf_counter() - started, rate)
    return Point(label, rate, user, system)


def _turns(text: str) -> list[int]:
    """``--work``'s value: loop sizes, comma-separated, each a whole number above 0."""
    try:
        turns = [int(part) for part in text.split(",")]
    except ValueError:
        turns = []
    if not turns or min(turns) < 1:
        raise argparse.ArgumentTypeError(
            f"expected loop sizes such as 100,200,300 (whole numbers above 0), got {text!r}"
        )
    return turns


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m benchmarks.echo_headroom``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.echo_headroom",
        description="The bare echo server with added work per message, beside the kernel's.",
    )
    parser.add_argument(
        "--work",
        type=_turns,
        default=[100, 200, 300],
        metavar="N,N,...",
        help="turns of the do-nothing loop added per message, one run each (100,200,300)",
    )
    parser.add_argument("--repeat", type=int, default=2, metavar="N", help="rounds (2)")
    parser.add_argument("--quick", action="store_true", help="use the small smoke-test sizes")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    sizes = QUICK if args.quick else FULL

    best: dict[str, Point] = {}
    for _ in range(args.repeat):
        points = [measure("bare", "bare", sizes)]
        for turns in args.work:
            with extra_work(turns):
                points.append(measure(f"bare + {turns} turns", "bare", sizes))
        points.append(measure("kernel", "kernel", sizes))
        for point in points:
            if point.label not in best or point.rate > best[point.label].rate:
                best[point.label] = point

    plain = best["bare"].rate
    print(f"{'server':<20} {'msgs/s':>9} {'of bare':>8} {'user/msg':>9} {'system/msg':>11}")
    for point in best.values():
        print(
            f"{point.label:<20} {point.rate:>9,.0f} {point.rate / plain:>8.2f}"
            f" {point.user:>6.2f} us {point.system:>8.2f} us"
        )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
