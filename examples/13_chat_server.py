"""13 -- A chat server: every line a client sends goes to every other client.

What it teaches: connections sharing state (the members) without a lock -- between two
``await``s a task cannot be interrupted. A sender only puts lines in outboxes: each member
has a bounded ``Queue`` and one writer task, so lines arrive whole and in order, and a slow
reader delays only itself (when its outbox is full, it is disconnected). A connection's
reader and writer share a ``TaskGroup(wait=any)``: when one ends, so does the other, and
``finally`` removes exactly this member. A client's first line is its name; "_" is added to
a name in use. Try it: ``python examples/13_chat_server.py 8000``, then ``nc localhost 8000``
in two terminals. Without a port it plays a demo: three clients, one line each.

Read next: examples/14_subprocess_pipeline.py.
"""

import contextlib
import sys
from typing import Any, NamedTuple

import kernel
from kernel import socket


class Member(NamedTuple):
    name: str
    task: kernel.Task  # its connection's handler: cancelling it disconnects the member
    outbox: kernel.Queue[bytes]  # lines on their way to it


class ChatRoom:
    def __init__(self, expected: int = 0) -> None:
        self.members: dict[str, Member] = {}
        self.expected = expected
        self.everyone_here = kernel.Event()  # only so the demo's transcript never varies

    async def say(self, text: str, sender: Member | None = None) -> None:
        """Put a line in every other member's outbox; never wait for any of them."""
        data, too_slow = text.encode(), []
        for member in self.members.values():  # no await in this loop: nobody comes or goes
            if member is not sender:
                try:
                    member.outbox.put_nowait(data)
                except kernel.QueueFull:
                    too_slow.append(member)
        # Waiting for a slow reader would stall the sender and then the whole room; keeping
        # its lines forever would use up memory. So, like IRC servers, we hang up on it.
        for member in too_slow:  # all removed before saying so, which may find more of them
            del self.members[member.name]
        for member in too_slow:
            await member.task.cancel(blocking=False)
            await self.say(f"* {member.name} is too slow to keep up: disconnected\n")

    async def member(self, client: socket.Socket, address: Any) -> None:
        stream = client.as_stream()
        if not (line := await stream.readline()):
            return  # gone before saying a name
        wanted = name = line.decode(errors="replace").strip() or "guest"
        while name in self.members:  # taken: add "_" until it is unique, as IRC clients do
            name += "_"
        if name != wanted:
            await stream.write(f"* {wanted} is taken: you are {name}\n".encode())
        me = self.members[name] = Member(name, await kernel.current_task(), kernel.Queue(100))
        if len(self.members) == self.expected:
            await self.everyone_here.set()
        try:
            async with kernel.TaskGroup(wait=any) as connection:  # one ends: both end
                await connection.spawn(self.listen, stream, me)
                await connection.spawn(self.deliver, stream, me.outbox)
        finally:
            if self.members.get(name) is me:  # not removed already for being too slow
                del self.members[name]
                await self.say(f"* {name} left\n")

    async def listen(self, stream: kernel.SocketStream, me: Member) -> None:
        with contextlib.suppress(OSError):  # a connection reset is one more way to leave
            async for line in stream:
                await self.say(f"{me.name}: {line.decode(errors='replace').rstrip()}\n", me)
                await kernel.sleep(0)  # let the writers take it: a burst is not a slow reader

    async def deliver(self, stream: kernel.SocketStream, outbox: kernel.Queue[bytes]) -> None:
        with contextlib.suppress(OSError):  # so is a broken pipe: a write to someone gone
            while True:  # the only task writing to this stream: lines go out whole, in order
                await stream.write(await outbox.get())


async def join(room: ChatRoom, address: tuple[str, int], name: str, says: str) -> list[str]:
    async with await kernel.open_connection(*address) as sock:
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
    if len(sys.argv) > 1:  # serve a room on this port until Ctrl-C
        kernel.run(kernel.tcp_server, "127.0.0.1", int(sys.argv[1]), ChatRoom().member)
    else:
        kernel.run(main)
