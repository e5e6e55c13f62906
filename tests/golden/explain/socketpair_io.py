"""Waiting for I/O: a task parks in the I/O wait table until bytes arrive on its socket.

A program for ``python -m kernel explain``; its narration is checked in
``tests/test_explain.py`` against ``socketpair_io.txt``.
"""

import kernel
from kernel import socket


async def reader(sock: socket.Socket) -> None:
    data = await sock.recv(100)
    print(f"reader got {data!r}")


async def main() -> None:
    left, right = socket.socketpair()
    task = await kernel.spawn(reader, right, name="reader")
    await kernel.sleep(0.5)
    await left.sendall(b"hello")
    await task.join()
    await left.close()
    await right.close()
