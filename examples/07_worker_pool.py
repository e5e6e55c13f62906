"""07 -- A bounded worker pool: spawn every job at once, let a Semaphore run N at a time.

What it teaches: ``Semaphore(3)`` holds three permits; ``async with pool:`` takes one on entry
and gives it back on exit, so at most three jobs are inside the block at any moment. A job
that finds no permit waits, and waiters are served in the order they arrived, so jobs start
in the order they were spawned. Spawning is cheap; the semaphore, not the spawner, limits.

Read next: examples/08_thread_feeds_tasks.py
"""

import kernel


class Gauge:
    """Jobs inside the pool now, the most there ever were, and when each job got in."""

    def __init__(self, start: float) -> None:
        self.start, self.running, self.peak = start, 0, 0
        self.started: dict[int, list[int]] = {}  # second -> jobs that got a permit then


async def job(n: int, pool: kernel.Semaphore, gauge: Gauge) -> None:
    async with pool:  # waits here while three jobs hold the permits
        gauge.running += 1
        gauge.peak = max(gauge.peak, gauge.running)
        second = round(await kernel.clock() - gauge.start)
        gauge.started.setdefault(second, []).append(n)
        await kernel.sleep(1)  # one second of work
        gauge.running -= 1


async def main() -> None:
    gauge = Gauge(await kernel.clock())
    pool = kernel.Semaphore(3)
    async with kernel.TaskGroup() as group:  # all 10 spawned at t=0
        for n in range(10):
            await group.spawn(job, n, pool, gauge)
    for second, jobs in gauge.started.items():
        print(f"t={second}s started jobs {jobs}")
    print(f"t={await kernel.clock() - gauge.start:.0f}s 10 jobs done, at most {gauge.peak} at once")


if __name__ == "__main__":
    kernel.run(main)
