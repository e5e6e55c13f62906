"""15 -- Sleep, then return 123, written for asyncio and run on the kernel.

What it teaches: the asyncio twin of examples/02_sleep_then_123.py. The program is plain
asyncio; only the loop is chosen differently -- ``kernel.aio.new_event_loop()`` instead of
``asyncio.new_event_loop()``. ``run_until_complete`` wraps ``main()`` in a ``Task`` and puts
its first step on the kernel's ready queue. ``asyncio.sleep(1)`` makes a ``Future`` and a
``TimerHandle`` on the kernel's sleeping queue; the task parks on the future. One second later
the timer's callback sets the future's result, the future's done callback queues the task's
next step, and ``main`` returns 123. Compare with 02: the same three structures, reached
through Futures and callbacks instead of traps.

Read next: examples/16_kernel_task_result.py
"""

import asyncio

import kernel.aio


async def main() -> int:
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(1)
    print(f"main woke up after {loop.time() - start:.1f}s")
    return 123


if __name__ == "__main__":
    loop = kernel.aio.new_event_loop()  # the one change: asyncio.new_event_loop() before
    print(loop.run_until_complete(main()))
    loop.close()
