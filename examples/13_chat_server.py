"""13 -- A chat server: every line a client sends goes to every other client.

What it teaches: many connections, one task each, sharing state (who is in the room)
without a lock -- between two ``await``s a task cannot be interrupted, so adding, removing
and iterating the members are safe. A client that leaves is removed in ``finally``.

Read next: examples/14_subprocess_pipeline.py.
"""

from typing import Any

import kernel
from kernel import socket


class ChatRoom:
    def __init__(self, expected: int) -> None:
        self.members: dict[str, kernel.SocketStream] = {}
        self.expected = expected
        self.everyone_here = kernel.Event()  # only so the demo's transcript never varies

    async def member(self, client: socket.Socket, address: Any) -> None:
        stream = client.as_stream()
        name = (await stream.readline()).decode().strip()
        self.members[name] = stream
        if len(self.members) == self.expected:
            await self.everyone_here.set()
        try:
            async for line in stream:
                for other, peer in list(self.members.items()):
                    if other != name:
                        await peer.write(f"{name}: ".encode() + line)
        finally:
            del self.members[name]


async def join(room: ChatRoom, address: tuple[str, int], name: str, says: str) -> list[str]:
    sock = await kernel.open_connection(*address)
    async with sock:
        stream = sock.as_stream()
        await stream.write(f"{name}\n".encode())
        await room.everyone_here.wait()
        await stream.write(f"{says}\n".encode())
        return [(await stream.readline()).decode().strip() for _ in range(2)]


async def main() -> None:
    room = ChatRoom(expected=3)
    async with kernel.TaskGroup(wait=None) as server:
        address = await server.start(kernel.tcp_server, "127.0.0.1", 0, room.member)
        async with kernel.TaskGroup() as people:
            for name, says in (("ann", "hi all"), ("bo", "hello"), ("cy", "hey")):
                await people.spawn(join, room, address, name, says)
        for name, heard in zip(("ann", "bo", "cy"), people.results, strict=True):
            print(f"{name} heard {sorted(heard)}")


if __name__ == "__main__":
    kernel.run(main)
