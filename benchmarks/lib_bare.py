"""The TCP echo server with no framework: one epoll object and a loop, written out by hand.

This is the ceiling of the ``tcp_echo`` row: the system calls every server must make
(``epoll_wait``, ``recv``, ``send``) and nothing else -- no tasks, no coroutines, no wait
table. What a library's server costs beyond it is the price of its abstractions.

``tcp_echo`` is an ``async def`` only to have the ``EchoServer`` shape that every other
library has; it never awaits. Its first step therefore runs it to the end, which is all
``run`` does, so the worker treats this column like the others.

Read next: ``lib_kernel.py``'s ``tcp_echo``, the same server written with kernel's sockets.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .workloads import ECHO_BACKLOG, ECHO_BUFSIZE, ECHO_HOST

__all__ = ["run", "tcp_echo"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never awaits: one ``send(None)`` takes it to its end."""
    try:
        main.send(None)
    except StopIteration as finished:
        result: T = finished.value
        return result
    main.close()
    raise RuntimeError("a bare server awaited something; it has no event loop to await on")


async def tcp_echo(connections: int, started: Callable[[int], None]) -> None:
    """Echo every byte on ``connections`` connections, then return (``EchoServer``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener, select.epoll() as poller:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((ECHO_HOST, 0))
        listener.listen(ECHO_BACKLOG)
        listener.setblocking(False)
        started(listener.getsockname()[1])
        poller.register(listener.fileno(), select.EPOLLIN)
        clients: dict[int, socket.socket] = {}  # fd -> connection
        try:
            _serve(listener, poller, clients, connections)
        finally:
            for client in clients.values():
                client.close()


def _serve(
    listener: socket.socket,
    poller: select.epoll,
    clients: dict[int, socket.socket],
    connections: int,
) -> None:
    unsent: dict[int, memoryview] = {}  # fd -> echo the send buffer had no room for yet
    accepted = closed = 0
    while closed < connections:
        for fd, _events in poller.poll():
            if fd == listener.fileno():
                client, _address = listener.accept()
                client.setblocking(False)
                clients[client.fileno()] = client
                poller.register(client.fileno(), select.EPOLLIN)
                accepted += 1
                if accepted == connections:
                    poller.unregister(fd)
                continue
            client = clients[fd]
            if fd in unsent:
                # Registered for EPOLLOUT only: finish the echo before reading more, so a
                # client that sends faster than it reads is slowed down, not buffered for.
                rest = unsent.pop(fd)
                sent = _send(client, rest)
                if sent < len(rest):
                    unsent[fd] = rest[sent:]
                else:
                    poller.modify(fd, select.EPOLLIN)
                continue
            try:
                data = client.recv(ECHO_BUFSIZE)
            except BlockingIOError:
                continue
            if not data:
                poller.unregister(fd)
                clients.pop(fd).close()
                closed += 1
                continue
            sent = _send(client, data)
            if sent < len(data):
                unsent[fd] = memoryview(data)[sent:]
                poller.modify(fd, select.EPOLLOUT)


def _send(client: socket.socket, data: bytes | memoryview) -> int:
    """Send what the socket takes now; return how many bytes that was."""
    try:
        return client.send(data)
    except BlockingIOError:
        return 0
