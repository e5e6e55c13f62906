"""Course, chapter 5 -- Sleeping: deadlines on a heap, and select() waiting for the nearest.

What it teaches: four tasks are spawned in the order c, a, b, d and sleep 3, 1, 2 and 1
seconds. They wake in the order of their deadlines -- a, d, b, c -- not in the order they
started; a and d have the same deadline and wake in the order they went to sleep. While
they sleep nothing is ready, so the kernel blocks in ``select()`` with a timeout that
reaches the nearest deadline. The whole program takes 3 seconds, the longest sleep, not 7.

Read next: examples/course/ping_pong.py
"""

import kernel


async def sleeper(name: str, seconds: int, start: float) -> None:
    await kernel.sleep(seconds)
    print(f"t={await kernel.clock() - start:.0f}s {name} wakes (slept {seconds}s)")


async def main() -> None:
    start = await kernel.clock()
    tasks = [
        await kernel.spawn(sleeper, name, seconds, start, name=name)
        for name, seconds in (("c", 3), ("a", 1), ("b", 2), ("d", 1))
    ]
    for task in tasks:
        await task.join()
    print(f"t={await kernel.clock() - start:.0f}s all four are done")


if __name__ == "__main__":
    kernel.run(main)
