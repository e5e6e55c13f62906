"""Who woke whom: an Event set by one task wakes both waiters; a released Lock is handed over.

A program for ``python -m kernel explain``; its narration is checked in
``tests/test_explain.py`` against ``event_and_lock.txt``.
"""

import kernel


async def waiter(event: kernel.Event) -> None:
    await event.wait()
    print("the event is set")


async def contender(lock: kernel.Lock) -> None:
    async with lock:
        print("got the lock")


async def main() -> None:
    event = kernel.Event()
    first = await kernel.spawn(waiter, event, name="waiter")
    await kernel.sleep(1)
    await event.set()
    await first.join()

    lock = kernel.Lock()
    async with lock:
        second = await kernel.spawn(contender, lock, name="contender")
        await kernel.sleep(1)
    await second.join()
