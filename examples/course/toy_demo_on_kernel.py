"""Course, chapter 3 -- The toy scheduler's demo, on the kernel: the same six lines.

What it teaches: the three tasks of ``demo`` in examples/course/toy_scheduler.py, written
for the kernel: ``await kernel.sleep(0.2)`` where the toy's tasks yield ``("sleep", 0.2)``,
and ``await sock.recv(100)`` where they yield ``("read", sock)`` and then call ``recv``.
The kernel runs them in the same order and prints the same lines, because its loop has the
toy's three phases. ``python -m kernel timeline`` shows who ran in which turn.

Read next: docs/course/04-traps-and-the-microkernel.md, then examples/course/raw_traps.py
"""

import kernel
from kernel import socket


async def main() -> None:
    start = await kernel.clock()

    async def say(what: str) -> None:
        print(f"t={await kernel.clock() - start:.1f} {what}")

    async def ticker(count: int) -> None:
        for n in range(1, count + 1):
            await kernel.sleep(0.2)
            await say(f"tick {n}")

    async def reader(sock: socket.Socket) -> None:
        await say("reader waits for bytes")
        data = await sock.recv(100)
        await say(f"reader got {data!r}")

    async def writer(sock: socket.Socket) -> None:
        await kernel.sleep(0.5)
        await say("writer sends b'hello'")
        await sock.sendall(b"hello")

    left, right = socket.socketpair()
    async with left, right, kernel.TaskGroup() as group:
        await group.spawn(ticker, 3, name="ticker")
        await group.spawn(reader, right, name="reader")
        await group.spawn(writer, left, name="writer")


if __name__ == "__main__":
    kernel.run(main)
