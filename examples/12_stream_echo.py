"""12 -- The echo server again, with streams: lines instead of chunks.

What it teaches: ``recv`` returns whatever bytes have arrived -- half a line, or three. A
``SocketStream`` (``sock.as_stream()``) buffers them, so ``await stream.readline()`` returns
exactly one line and ``async for line in stream`` iterates over them. The handler is the
same loop as in 09, one level up.

Read next: examples/13_chat_server.py.
"""

from typing import Any

import kernel
from kernel import socket


async def echo_lines(client: socket.Socket, address: Any) -> None:
    stream = client.as_stream()
    async for line in stream:  # one line at a time, however the bytes were cut
        await stream.write(b"echo: " + line)


async def main() -> None:
    async with kernel.TaskGroup(wait=None) as group:
        address = await group.start(kernel.tcp_server, "127.0.0.1", 0, echo_lines)
        client = await kernel.open_connection(*address)
        async with client:
            stream = client.as_stream()
            await client.sendall(b"first line\nsecond ")  # one send, one and a half lines
            await client.sendall(b"line\n")
            for _ in range(2):
                print((await stream.readline()).decode().rstrip())


if __name__ == "__main__":
    kernel.run(main)
