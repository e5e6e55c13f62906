"""The load client of the TCP echo workloads, and the handle the worker starts it with.

Run as a program, it is the client, the same for every server::

    python -m benchmarks.echo_client PORT --connections 8 --size 100 --warmup 0.3 --seconds 2

It opens the connections to ``ECHO_HOST:PORT``, and on each one plays ping-pong: send one
message (``size - 1`` bytes of ``x`` and a newline, so a line-based server can echo it too),
wait until the whole message has come back, check it, send it again. One message is in
flight per connection, so the server always has ``connections`` requests to answer. The
client counts the round trips completed between the end of the warm-up and ``seconds``
later, and prints one JSON line: ``{"messages": ..., "seconds": ..., "rate": ...}``.

It is plain stdlib: blocking sockets with ``TCP_NODELAY`` (so no reply waits on Nagle's
algorithm) and one ``epoll`` object that says which connection has a reply to read. A
message of 100 bytes always fits in an empty send buffer, so ``sendall`` never blocks.

It always stops by itself:

- at the end it sends nothing new, reads the replies still in flight, then closes every
  connection. A socket closed with unread data sends a reset, which a server would report
  as an error; an empty one sends an end-of-file, on which every server returns;
- every wait has a timeout (``IDLE_TIMEOUT``), so a server that stops answering makes the
  client exit with status 1 and the reason on stderr rather than hang.

Imported, it provides ``ClientProcess``, which the worker uses to start this program, read
its report, and kill it if the server fails.

Read next: ``lib_bare.py``, the server with no framework.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .workloads import ECHO_HOST, Sizes

__all__ = ["IDLE_TIMEOUT", "ClientProcess", "Report", "main", "message", "ping_pong"]

IDLE_TIMEOUT = 5.0  # seconds without a single reply (or to connect) before the client gives up
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Report:
    """What one client run measured: round trips completed in the counted interval."""

    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def message(size: int) -> bytes:
    """The message every connection sends: ``size`` bytes, the last one a newline."""
    return b"x" * (size - 1) + b"\n"


def ping_pong(port: int, connections: int, size: int, warmup: float, seconds: float) -> Report:
    """Drive ``connections`` ping-pong connections to ``port``; count the middle ``seconds``."""
    ping = message(size)
    socks = [
        socket.create_connection((ECHO_HOST, port), timeout=IDLE_TIMEOUT)
        for _ in range(connections)
    ]
    try:
        with select.epoll() as poller:
            return _play(socks, poller, ping, warmup, seconds)
    finally:
        for sock in socks:
            sock.close()


def _play(
    socks: list[socket.socket], poller: select.epoll, ping: bytes, warmup: float, seconds: float
) -> Report:
    size = len(ping)
    by_fd: dict[int, socket.socket] = {}
    partial: dict[int, bytes] = {}  # the start of a reply that came in more than one piece
    for sock in socks:
        sock.settimeout(None)  # blocking: epoll says when a recv has something to return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        by_fd[sock.fileno()] = sock
        partial[sock.fileno()] = b""
        poller.register(sock.fileno(), select.EPOLLIN)
    for sock in socks:
        sock.sendall(ping)

    in_flight = len(socks)
    done = 0  # round trips completed so far
    now = time.perf_counter()
    count_from, count_until = now + warmup, now + warmup + seconds
    first: tuple[int, float] | None = None  # (done, time) when counting started
    last: tuple[int, float] | None = None  # (done, time) when it stopped
    while in_flight:
        ready = poller.poll(IDLE_TIMEOUT)
        if not ready:
            raise TimeoutError(f"no reply from the server for {IDLE_TIMEOUT:g} s")
        # The clock is read once per poll, not per message: a poll returns within
        # microseconds, far finer than the seconds being counted.
        now = time.perf_counter()
        if first is None:
            if now >= count_from:
                first = (done, now)
        elif last is None and now >= count_until:
            last = (done, now)  # never in the poll that set first: the interval is not empty
        for fd, _events in ready:
            sock = by_fd[fd]
            start = partial[fd]
            data = sock.recv(size - len(start))
            if not data:
                raise ConnectionError("the server closed a connection in mid-run")
            if start:
                data = start + data
            if len(data) < size:
                partial[fd] = data
                continue
            partial[fd] = b""
            if data != ping:
                raise ValueError(f"the server echoed {data[:20]!r}..., not the message sent")
            done += 1
            if last is None:
                sock.sendall(ping)
            else:
                in_flight -= 1  # stopping: this connection is now quiet, safe to close
    assert first is not None and last is not None  # the loop ran until last was set
    return Report(messages=last[0] - first[0], seconds=last[1] - first[1])


class ClientProcess:
    """The client as the worker sees it: started once the server listens, read at the end.

    ``start`` is the ``started`` callback an ``EchoServer`` calls with its port. ``kill`` is
    safe to call at any time, more than once, started or not.
    """

    def __init__(self, connections: int, sizes: Sizes) -> None:
        self.connections = connections
        self.sizes = sizes
        self.process: subprocess.Popen[str] | None = None

    @property
    def max_seconds(self) -> float:
        """The longest a healthy run can take: the traffic, plus a timeout for starting up,
        for connecting and for the last replies."""
        return self.sizes.echo_warmup + self.sizes.echo_seconds + 3 * IDLE_TIMEOUT

    def start(self, port: int) -> None:
        """Start the client against ``port`` (it runs while the server serves)."""
        if self.process is not None:
            raise RuntimeError("the echo client was already started")
        sizes = self.sizes
        command = [
            sys.executable,
            "-m",
            "benchmarks.echo_client",
            str(port),
            f"--connections={self.connections}",
            f"--size={sizes.echo_size}",
            f"--warmup={sizes.echo_warmup}",
            f"--seconds={sizes.echo_seconds}",
        ]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def rate(self) -> float:
        """Wait for the client to end; return its round trips per second, or raise why not."""
        if self.process is None:
            raise RuntimeError("the echo server returned without starting the client")
        try:
            out, err = self.process.communicate(timeout=self.max_seconds)
        except subprocess.TimeoutExpired:
            raise RuntimeError("the echo client did not finish in time") from None
        if self.process.returncode != 0:
            reason = (err.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"echo client exited with {self.process.returncode}: {reason}")
        rate: float = json.loads(out)["rate"]
        return rate

    def ended(self) -> bool:
        """Whether the client was started and has ended, successfully or not."""
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """Make sure the client is gone (a no-op once it has ended)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m benchmarks.echo_client PORT [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.echo_client",
        description="Ping-pong load on a TCP echo server; prints round trips per second.",
    )
    parser.add_argument("port", type=int)
    parser.add_argument("--connections", type=int, default=8, metavar="N")
    parser.add_argument("--size", type=int, default=100, metavar="BYTES", help="per message")
    parser.add_argument("--warmup", type=float, default=0.3, metavar="S", help="not counted")
    parser.add_argument("--seconds", type=float, default=2.0, metavar="S", help="counted")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.size < 1 or args.warmup < 0 or args.seconds <= 0:
        parser.error("--connections and --size must be positive, --warmup >= 0, --seconds > 0")
    try:
        report = ping_pong(args.port, args.connections, args.size, args.warmup, args.seconds)
    except (OSError, ValueError) as exc:
        print(f"echo client: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"messages": report.messages, "seconds": report.seconds, "rate": report.rate}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
