"""10 -- UDP: datagrams instead of a connection.

What it teaches: a UDP socket has no ``accept`` and no stream of bytes -- each
``await sock.recvfrom(n)`` returns one whole datagram and the address it came from, and
``await sock.sendto(data, address)`` answers it. ``ignore_after`` keeps a client from waiting
forever for a reply that UDP never promised to deliver.

Read next: examples/11_fetch_with_timeout.py.
"""

import kernel
from kernel import socket


async def server(sock: socket.Socket) -> None:
    while True:
        data, peer = await sock.recvfrom(1000)
        await sock.sendto(data.upper(), peer)


async def main() -> None:
    server_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    async with server_sock, client, kernel.TaskGroup(wait=None) as group:
        server_sock.bind(("127.0.0.1", 0))
        await group.spawn(server, server_sock)
        for word in ("ping", "datagram"):
            await client.sendto(word.encode(), server_sock.getsockname())
            async with kernel.ignore_after(5) as late:
                reply, _ = await client.recvfrom(1000)
                print(f"sent {word!r}, got {reply.decode()!r}")
            if late.expired:
                print(f"no reply to {word!r}")


if __name__ == "__main__":
    kernel.run(main)
