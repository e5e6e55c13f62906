"""Three tasks sleep 3, 1 and 2 seconds under asyncio.gather; they finish in deadline order.

A test program of ``python -m kernel compare`` (tests/test_compare.py): the same schedule on
asyncio's loop and on kernel.aio, three TimerHandles with different deadlines, and gather's
done callbacks.
"""

import asyncio


async def nap(name: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    print(f"{name} woke up")
    return name


async def main() -> list[str]:
    return list(await asyncio.gather(nap("a", 3), nap("b", 1), nap("c", 2)))
