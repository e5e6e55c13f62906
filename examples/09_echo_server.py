"""09 -- An echo server and its client, on raw kernel sockets.

What it teaches: ``kernel.socket`` is the stdlib socket module whose blocking calls are
coroutines (``await client.recv``, ``await client.sendall``). ``kernel.tcp_server`` runs one
handler task per connection; ``TaskGroup.start`` starts it and returns the address it bound
(port 0: any free port). While a task waits for bytes it is parked in the I/O wait table,
and other tasks run. Cancelling the group stops the server and closes every connection.

Read next: examples/10_udp_echo.py.
"""

from typing import Any

import kernel
from kernel import socket


async def echo(client: socket.Socket, address: Any) -> None:
    """One connection: send back whatever arrives, until the client closes its side."""
    while data := await client.recv(1000):
        await client.sendall(data)


async def chat(address: tuple[str, int], name: str) -> list[str]:
    client = await kernel.open_connection(*address)
    async with client:
        replies = []
        for word in ("hello", "kernel"):
            await client.sendall(f"{name}: {word}".encode())
            replies.append((await client.recv(1000)).decode())
        return replies


async def main() -> None:
    async with kernel.TaskGroup(wait=None) as group:  # wait=None: cancel the server at the end
        address = await group.start(kernel.tcp_server, "127.0.0.1", 0, echo)
        async with kernel.TaskGroup() as clients:  # two clients talk to it at the same time
            for name in ("alice", "bob"):
                await clients.spawn(chat, address, name)
        for replies in clients.results:
            print(f"echoed back: {replies}")
    print("server stopped")


if __name__ == "__main__":
    kernel.run(main)
