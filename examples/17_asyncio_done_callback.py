"""17 -- A Task, a done callback and run_until_complete: asyncio's way, on the kernel.

What it teaches: ``loop.create_task`` wraps the coroutine in a ``Task`` and queues its first
step; ``add_done_callback(got_result)`` asks the loop to call ``got_result(task)`` once the
task is done; ``run_until_complete(task)`` adds one more done callback of its own, which stops
the loop, and runs it. When ``slow_operation`` returns, the task hands both callbacks to
``call_soon`` in the order they were added: ``got_result`` prints, then the loop stops. The
kernel-native version of this program is examples/16_kernel_task_result.py.

Read next: examples/18_asyncio_run_forever_stop.py
"""

import asyncio

import kernel.aio


async def slow_operation() -> str:
    await asyncio.sleep(1)
    return "Future is done!"


def got_result(future: asyncio.Future[str]) -> None:
    print(f"got_result: {future.result()}")


if __name__ == "__main__":
    loop = kernel.aio.new_event_loop()  # the one change: asyncio.new_event_loop() before
    task = loop.create_task(slow_operation())
    task.add_done_callback(got_result)
    loop.run_until_complete(task)
    print("run_until_complete returned")
    loop.close()
