"""A producer and a consumer sharing an asyncio.Queue of two places.

A test program of ``python -m kernel compare`` (tests/test_compare.py): ``put`` waits while
the queue is full and ``get`` while it is empty, so the two tasks hand the turn back and forth
through the futures the Queue makes -- the same schedule on asyncio and on kernel.aio.
"""

import asyncio


async def producer(queue: asyncio.Queue[int | None]) -> None:
    for item in range(4):
        await queue.put(item)
        print(f"put {item}")
    await queue.put(None)


async def consumer(queue: asyncio.Queue[int | None]) -> int:
    total = 0
    while (item := await queue.get()) is not None:
        await asyncio.sleep(0.5)
        print(f"got {item}")
        total += item
    return total


async def main() -> int:
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=2)
    _, total = await asyncio.gather(producer(queue), consumer(queue))
    return total
