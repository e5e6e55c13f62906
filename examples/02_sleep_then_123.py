"""02 -- Sleep, then return 123: the program the asyncio walk-through follows, on the kernel.

What it teaches: ``await kernel.sleep(1)`` yields the trap ``("sleep", 1)``. The kernel parks
the task on its sleeping queue; with nothing ready, ``select()`` blocks until the deadline;
the task moves back to the ready queue, is resumed with ``send(None)`` and returns 123,
which ``kernel.run`` returns. ``main_generator`` is the same program in the historical,
pre-``async`` form: a generator marked ``@kernel.coroutine`` that uses ``yield from``.

Read next: examples/03_spawn_join.py
"""

from collections.abc import Generator
from typing import Any

import kernel


async def main() -> int:
    start = await kernel.clock()
    await kernel.sleep(1)
    print(f"main woke up after {await kernel.clock() - start:.1f}s")
    return 123


@kernel.coroutine
def main_generator() -> Generator[Any, Any, int]:
    # mypy sees kernel.sleep() only as an Awaitable, not as the generator it also is.
    yield from kernel.sleep(1)
    print("main_generator woke up")
    return 123


if __name__ == "__main__":
    print(kernel.run(main_generator))
    print(kernel.run(main))
