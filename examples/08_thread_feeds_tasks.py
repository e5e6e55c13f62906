"""08 -- Threads and tasks together: a plain thread feeds tasks through a UniversalQueue.

What it teaches: a plain thread cannot ``await``. A ``UniversalQueue`` has a face for each
side: tasks ``await q.get()`` and ``await q.put()``, threads call ``q.put_sync()`` and
``q.get_sync()``, which block that thread only. A task parked in ``get()`` is woken through
the kernel's wake-up socket, not by polling. For a single blocking call,
``await kernel.run_in_thread(f, *args)`` runs ``f`` in the kernel's worker pool instead.

Read next: examples/09_echo_server.py (and docs/sync.md, how the primitives of 06-08 work).
"""

import threading

import kernel


def sensor(numbers: kernel.UniversalQueue[int], squares: kernel.UniversalQueue[int]) -> None:
    """A plain thread: no kernel here, so only the blocking ``*_sync`` calls."""
    for n in range(1, 7):
        numbers.put_sync(n)  # waits (this thread only) while the queue is full
    got = [squares.get_sync() for _ in range(6)]  # in whatever order the tasks finish
    print(f"thread: sent 1..6, got back {sorted(got)}")


async def squarer(numbers: kernel.UniversalQueue[int], squares: kernel.UniversalQueue[int]) -> None:
    while True:
        n = await numbers.get()
        await squares.put(n * n)


async def main() -> None:
    numbers: kernel.UniversalQueue[int] = kernel.UniversalQueue(maxsize=2)
    squares: kernel.UniversalQueue[int] = kernel.UniversalQueue()
    workers = [await kernel.spawn(squarer, numbers, squares) for _ in range(2)]
    thread = threading.Thread(target=sensor, args=(numbers, squares))
    thread.start()
    # Thread.join() blocks: done in a worker thread, it leaves the kernel free to run squarers.
    await kernel.run_in_thread(thread.join)
    for task in workers:
        await task.cancel()  # parked in get(): no number is lost
    print(f"main: thread joined; {numbers.qsize()} numbers and {squares.qsize()} squares left")


if __name__ == "__main__":
    kernel.run(main)
