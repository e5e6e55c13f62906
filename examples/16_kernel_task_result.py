"""16 -- Observe a task finishing: the kernel's way, the twin of examples 17 and 18.

What it teaches: asyncio hears that a task is done through a callback (17:
``task.add_done_callback(got_result)``, then ``run_until_complete(task)``; 18: the callback
also calls ``loop.stop()``). The kernel has no done callbacks: whoever wants the result waits
for the task. ``await task.join()`` parks main on the task's list of joiners; when
``slow_operation`` returns, the kernel moves main back to the ready queue, and the code that
was a callback in asyncio is just the next line. ``kernel.run(main)`` returning is what
``run_until_complete`` returning (17), or ``loop.stop()`` (18), does there.

Read next: examples/17_asyncio_done_callback.py
"""

import kernel


async def slow_operation() -> str:
    await kernel.sleep(1)
    return "Future is done!"


def got_result(task: kernel.Task) -> None:
    print(f"got_result: {task.result}")


async def main() -> None:
    start = await kernel.clock()
    task = await kernel.spawn(slow_operation)  # asyncio: loop.create_task(slow_operation())
    await task.join()  # asyncio: loop.run_until_complete(task)
    got_result(task)  # asyncio: the loop calls it, through task.add_done_callback(got_result)
    print(f"main saw it finish after {await kernel.clock() - start:.0f}s")


if __name__ == "__main__":
    kernel.run(main)
