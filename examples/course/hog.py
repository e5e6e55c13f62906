"""Course, chapter 10 -- Cooperative scheduling: a task gives up the kernel only at an await.

What it teaches: the kernel cannot take the processor away from a task (no *preemption*):
a task runs until it yields a trap that parks it. ``hog`` does all its work in one go, so
the ticker beside it waits, ready but not running, until the hog has finished. ``polite``
does the same work in three chunks with ``await kernel.sleep(0)`` between them -- "let the
others run" -- and the ticker ticks between the chunks. Nothing here depends on how fast
the machine is: the order is the order of the yields.

Read next: examples/20_blocking_call.py, where the work is a blocking call, and the kernel
names the task that held it up.
"""

import kernel


def work(chunk: int) -> int:
    return sum(i * i for i in range(chunk * 10_000, (chunk + 1) * 10_000))


async def ticker() -> None:
    for n in (1, 2, 3):
        print(f"  tick {n}")
        await kernel.sleep(0)  # back of the ready queue: the others get a turn


async def hog() -> None:
    total = sum(work(chunk) for chunk in range(3))  # no await: nobody else runs meanwhile
    print(f"  hog: all three chunks done ({total})")


async def polite() -> None:
    total = 0
    for chunk in range(3):
        total += work(chunk)
        print(f"  polite: chunk {chunk + 1} done")
        await kernel.sleep(0)  # a place where the ticker can run
    print(f"  polite: all three chunks done ({total})")


async def main() -> None:
    for worker in (hog, polite):
        print(f"{worker.__name__} beside a ticker:")
        tasks = [
            await kernel.spawn(ticker, name="ticker"),
            await kernel.spawn(worker, name=worker.__name__),
        ]
        for task in tasks:
            await task.join()


if __name__ == "__main__":
    kernel.run(main)
