"""Four tasks sleep one second each: four TimerHandles with the same deadline.

A test program of ``python -m kernel compare`` (tests/test_compare.py). On the virtual clock
the four deadlines are exactly equal, and the two loops break the tie differently: asyncio's
``_scheduled`` is a heap, which does not keep the order equal items came in; the kernel's
sleeping queue does. The schedules diverge, and compare says why.
"""

import asyncio


async def nap(name: str) -> str:
    await asyncio.sleep(1)
    print(f"{name} woke up")
    return name


async def main() -> list[str]:
    return list(await asyncio.gather(nap("a"), nap("b"), nap("c"), nap("d")))
