"""11 -- Ask several servers at once, and give up on the slow ones.

What it teaches: a client that fetches from three servers concurrently, one task each in a
``TaskGroup``, each bounded by ``ignore_after``: the fast answers arrive, the slow server is
abandoned after 0.5 s, and the whole fetch takes as long as the timeout -- not the sum of
the waits. The slow server's handler is cancelled with the server.

Read next: examples/12_stream_echo.py.
"""

from functools import partial
from typing import Any

import kernel
from kernel import socket


async def answer(delay: float, client: socket.Socket, address: Any) -> None:
    await kernel.sleep(delay)  # a server that takes its time
    await client.sendall(f"answer after {delay}s".encode())


async def fetch(address: tuple[str, int]) -> str:
    async with kernel.ignore_after(0.5, timeout_result="gave up after 0.5s") as deadline:
        sock = await kernel.open_connection(*address)
        async with sock:
            return (await sock.recv(100)).decode()
    result: str = deadline.result
    return result


async def main() -> None:
    start = await kernel.clock()
    async with kernel.TaskGroup(wait=None) as servers:
        addresses = [
            await servers.start(kernel.tcp_server, "127.0.0.1", 0, partial(answer, delay))
            for delay in (0.1, 0.2, 3.0)
        ]
        async with kernel.TaskGroup() as fetches:
            for address in addresses:
                await fetches.spawn(fetch, address)
        for result in fetches.results:
            print(result)
    elapsed = await kernel.clock() - start
    print(f"took about the timeout, not the 3.3s of all the waits: {elapsed < 1.5}")


if __name__ == "__main__":
    kernel.run(main)
