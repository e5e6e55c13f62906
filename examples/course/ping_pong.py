"""Course, chapter 6 -- I/O: a task parks in the I/O wait table until select() says "readable".

What it teaches: ``await sock.recv(100)`` first just tries; when no bytes are there yet, the
task yields ``("io_wait", sock, EVENT_READ)`` and is parked in the I/O wait table, one reader
per socket. ``pong`` answers each ping on its end of a socket pair, and ``main`` sends a ping
every half second. While both wait -- ``pong`` for bytes, ``main`` for its deadline -- the
kernel blocks in ``select()`` until the deadline; once ``main`` waits for the reply and
nobody sleeps, ``select()`` waits with no time limit, and returns as soon as the bytes are
there. A second reader on the same socket gets ``ResourceBusy`` at once.

Read next: examples/course/cancel_and_timeout.py
"""

import kernel
from kernel import socket


async def pong(sock: socket.Socket) -> None:
    while data := await sock.recv(100):  # parks in the I/O table until bytes arrive
        await sock.sendall(data.replace(b"ping", b"pong"))


async def main() -> None:
    start = await kernel.clock()
    left, right = socket.socketpair()
    async with left, right:
        server = await kernel.spawn(pong, right, name="pong")
        for n in (1, 2):
            await kernel.sleep(0.5)
            await left.sendall(f"ping {n}".encode())
            reply = await left.recv(100)  # parks until pong has answered
            print(f"t={await kernel.clock() - start:.1f} main got {reply.decode()!r}")
        try:
            await right.recv(100)  # pong is already waiting to read this socket
        except kernel.ResourceBusy:
            print("a second reader of the same socket: ResourceBusy, at once")
        await server.cancel()


if __name__ == "__main__":
    kernel.run(main)
