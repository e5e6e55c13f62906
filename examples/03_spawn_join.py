"""03 -- Spawn and join: several tasks share one thread, taking turns at their traps.

What it teaches: ``await kernel.spawn(f, *args)`` puts a new task at the back of the ready
queue and returns its ``Task`` at once; the caller keeps running. ``await task.join()`` waits
for the task and returns its result. If the task failed, ``join()`` raises ``TaskError``
and the task's own exception is its ``__cause__``.

Read next: examples/04_timeouts.py
"""

import kernel


async def nap(seconds: int) -> str:
    await kernel.sleep(seconds)
    return f"slept {seconds}s"


async def broken() -> None:
    raise ValueError("no such file")


async def main() -> None:
    start = await kernel.clock()
    tasks = [await kernel.spawn(nap, n, name=f"nap-{n}") for n in (1, 2, 3)]
    for task in tasks:  # they nap at the same time: 3 seconds in all, not 6
        result = await task.join()
        print(f"t={await kernel.clock() - start:.0f}s id={task.id} {task.name}: {result}")
    print("results kept on the tasks:", [task.result for task in tasks])

    failing = await kernel.spawn(broken)
    try:
        await failing.join()
    except kernel.TaskError as error:
        print(f"join raised TaskError, caused by {error.__cause__!r}")


if __name__ == "__main__":
    kernel.run(main)
