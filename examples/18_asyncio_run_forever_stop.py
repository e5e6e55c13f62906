"""18 -- The same program with run_forever(), stopped from inside the callback.

What it teaches: ``run_forever()`` turns the loop until someone calls ``loop.stop()``; here
that someone is the done callback. ``stop()`` does not interrupt anything: the turn in which
it is called finishes, then ``run_forever()`` returns. That is all ``run_until_complete``
(examples/17_asyncio_done_callback.py) does for you: it adds a done callback that calls
``stop()``. On the kernel, ``run_forever()`` is the kernel's run loop with no main task,
turning until the turn in which ``stop()`` was called is over. The kernel-native version is
examples/16_kernel_task_result.py.

Read next: examples/19_asyncio_old_style_coroutine.py
"""

import asyncio

import kernel.aio


async def slow_operation() -> str:
    await asyncio.sleep(1)
    return "Future is done!"


def got_result(future: asyncio.Future[str]) -> None:
    print(f"got_result: {future.result()}")
    loop.stop()


if __name__ == "__main__":
    loop = kernel.aio.new_event_loop()  # the one change: asyncio.new_event_loop() before
    task = loop.create_task(slow_operation())
    task.add_done_callback(got_result)
    try:
        loop.run_forever()
        print("run_forever returned")
    finally:
        loop.close()
