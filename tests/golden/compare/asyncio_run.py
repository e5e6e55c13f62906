"""A plain asyncio program, run with ``asyncio.run()`` at the bottom.

A test program of ``python -m kernel compare`` (tests/test_compare.py): with no ``main()`` to
call, compare runs the script as ``__main__`` on both loops, and ``asyncio.run()`` gets the
recording loop each time. Its coroutine is not called ``main`` on purpose.
"""

import asyncio


async def ping(n: int) -> None:
    for i in range(n):
        await asyncio.sleep(0)
        print(f"ping {i}")


async def amain() -> None:
    task = asyncio.create_task(ping(2))
    await asyncio.sleep(0.25)
    await task
    print("done")


if __name__ == "__main__":
    asyncio.run(amain())
