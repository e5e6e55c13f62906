"""05 -- Task groups: spawn a set of tasks; leave the block only when all are accounted for.

What it teaches: ``TaskGroup()`` waits for every member (``wait=all``); ``wait=any`` takes
the first to finish and cancels the rest. A member that fails cancels its siblings, and the
failure leaves the ``async with`` inside an ``ExceptionGroup``, caught with ``except*``.

Read next: examples/06_producer_consumer.py
"""

import kernel


async def job(seconds: int, fail: bool = False) -> str:
    await kernel.sleep(seconds)
    if fail:
        raise ValueError(f"job{seconds} failed")
    return f"job{seconds} done"


async def main() -> None:
    start = await kernel.clock()
    async with kernel.TaskGroup() as group:  # wait=all
        for n in (2, 1):
            await group.spawn(job, n, name=f"job{n}")
    print(f"t={await kernel.clock() - start:.0f}s all: {group.results}")

    async with kernel.TaskGroup(wait=any) as group:
        for n in (2, 1):
            await group.spawn(job, n, name=f"job{n}")
    cancelled = [task.name for task in group.tasks if task.cancelled]
    print(f"t={await kernel.clock() - start:.0f}s any: {group.result!r}, {cancelled=}")

    try:
        async with kernel.TaskGroup() as group:
            await group.spawn(job, 5, name="job5")  # cancelled when its sibling fails
            await group.spawn(job, 1, True, name="job1")
    except* ValueError as failures:
        print(f"t={await kernel.clock() - start:.0f}s caught {failures.exceptions!r}")


if __name__ == "__main__":
    kernel.run(main)
