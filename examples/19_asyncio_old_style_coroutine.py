"""19 -- The pre-``async`` version of 17: ``@coroutine`` and ``yield from``.

What it teaches: before ``async def`` (Python 3.5), a coroutine was a generator marked
``@asyncio.coroutine`` that waited with ``yield from``. asyncio removed the decorator in
Python 3.11; ``kernel.aio.coroutine`` brings it back, so the old programs run with one changed
import. ``yield from asyncio.sleep(1)`` passes the sleep's future up to the Task, exactly as
``await`` does; the rest is examples/17_asyncio_done_callback.py line for line. The kernel
has the same form for its own coroutines: ``main_generator`` in
examples/02_sleep_then_123.py.

Read next: kernel/aio/futures.py, the Future that every one of these programs waits on.
"""

import asyncio
from collections.abc import Generator
from typing import Any

import kernel.aio
from kernel.aio import coroutine  # the one-line change: was asyncio.coroutine


@coroutine
def slow_operation() -> Generator[Any, None, str]:
    # mypy cannot know that @coroutine makes `yield from` of a coroutine legal here.
    yield from asyncio.sleep(1)  # type: ignore[misc]
    return "Future is done!"


def got_result(future: asyncio.Future[str]) -> None:
    print(f"got_result: {future.result()}")


if __name__ == "__main__":
    loop = kernel.aio.new_event_loop()  # and the loop: asyncio.new_event_loop() before
    task = loop.create_task(slow_operation())
    task.add_done_callback(got_result)
    loop.run_until_complete(task)
    print("run_until_complete returned")
    loop.close()
