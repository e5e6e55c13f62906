"""06 -- Producer and consumers: tasks hand work to each other through a bounded Queue.

What it teaches: ``Queue(maxsize)`` makes a fast producer wait in ``put`` while the queue is
full, so work piles up no faster than it is done. Each consumer calls ``task_done()`` once
per item, and ``join()`` returns when every item put so far has been processed (so wait for
the producer first). Then the consumers, idle in ``get()``, are cancelled: a cancelled
``get`` takes no item, so none is lost.

Read next: examples/07_worker_pool.py
"""

import kernel


async def producer(queue: kernel.Queue[int], count: int) -> None:
    start = await kernel.clock()
    for item in range(count):
        await queue.put(item)  # waits while the queue holds maxsize items
    print(f"t={await kernel.clock() - start:.0f}s producer: all {count} put (it waited for room)")


async def consumer(queue: kernel.Queue[int], done: list[int]) -> None:
    while True:
        item = await queue.get()
        await kernel.sleep(1)  # one second of work per item
        done.append(item)
        queue.task_done()


async def main() -> None:
    start = await kernel.clock()
    queue: kernel.Queue[int] = kernel.Queue(maxsize=2)
    done: dict[str, list[int]] = {"c1": [], "c2": []}
    consumers = [await kernel.spawn(consumer, queue, items, name=n) for n, items in done.items()]
    feeder = await kernel.spawn(producer, queue, 6)
    await feeder.join()  # all 6 put: only now does queue.join() mean "all done"
    await queue.join()  # every item put has been marked task_done()
    print(f"t={await kernel.clock() - start:.0f}s queue.join() returned: {done}")
    for task in consumers:
        await task.cancel()  # each is parked in get(), holding no item
    print(f"consumers cancelled; {queue.qsize()} items left in the queue")


if __name__ == "__main__":
    kernel.run(main)
