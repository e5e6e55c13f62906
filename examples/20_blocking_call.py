"""20 -- A blocking call stops every task: this is what "cooperative" means.

What it teaches: a task runs until it awaits something that makes it wait; until then no
other task runs, and neither does the kernel. ``fetch_blocking`` calls ``time.sleep`` --
standing for any blocking call: a synchronous HTTP client, a database driver, a long
computation -- and the ticker beside it cannot tick once. ``fetch_in_thread`` makes the same
call through ``await kernel.run_in_thread(...)``: the call blocks a worker thread instead,
the task waits parked, and the ticker ticks on. Run as a script, the kernel is started with
``slow_task_threshold=0.1`` and names the task that kept it for too long.

Read next: examples/21_deadlock.py
"""

import logging
import sys
import time

import kernel

CALL = 0.4  # real seconds the slow call takes (a blocking call blocks real time, on any clock)


async def fetch_blocking() -> None:
    time.sleep(CALL)  # blocks the whole kernel: no other task can run meanwhile


async def fetch_in_thread() -> None:
    await kernel.run_in_thread(time.sleep, CALL)  # blocks a worker thread; this task waits


async def ticks_during(fetch: kernel.Task) -> int:
    """How often a ticker, started with ``fetch``, ticks before ``fetch`` is done."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(2):
            await kernel.sleep(0.05)
            ticks += 1

    clock = await kernel.spawn(ticker, name="ticker")
    await fetch.join()
    during = ticks
    await clock.join()
    return during


async def main() -> None:
    ticked = await ticks_during(await kernel.spawn(fetch_blocking, name="fetch"))
    print(f"fetch blocked the kernel: the ticker ticked {ticked} times during the call")
    ticked = await ticks_during(await kernel.spawn(fetch_in_thread, name="fetch"))
    print(f"fetch waited in a thread: the ticker ticked {ticked} times during the call")


if __name__ == "__main__":
    # The kernel reports on its "kernel" logger; show the report on stdout, with the rest.
    logging.basicConfig(stream=sys.stdout, format="%(name)s: %(message)s")
    kernel.run(main, slow_task_threshold=0.1)
