"""Course, chapter 7 -- Cancellation and timeouts: an exception thrown in at a blocking trap.

What it teaches: ``task.cancel()`` interrupts nothing. It leaves a ``TaskCancelled`` pending
on the task, and the kernel throws it in -- ``coro.throw(exc)`` instead of ``coro.send()`` --
at the task's next *blocking* trap, or at once if the task is already parked there. So
``worker``, cancelled before it ever ran, still runs its first lines, up to its first
``sleep``; its ``finally`` block runs too. A timeout is the same thing with a deadline:
``timeout_after`` puts an entry of kind "timeout" on the sleeping queue, and when it comes
due the kernel cancels the task with ``TaskTimeout``. A block that ends in time withdraws
its entry.

Read next: examples/05_taskgroup.py (and examples/04_timeouts.py for nested timeouts)
"""

import kernel


async def worker(start: float) -> None:
    print("worker: runs up to its first blocking call")
    try:
        await kernel.sleep(10)  # the pending cancel is thrown in here
    finally:
        print(f"worker: cleanup at t={await kernel.clock() - start:.1f}")


async def main() -> None:
    start = await kernel.clock()
    task = await kernel.spawn(worker, start, name="worker")
    await task.cancel()  # worker has not run yet: the cancel waits for its first trap
    print(f"main: worker cancelled={task.cancelled}")

    try:
        async with kernel.timeout_after(0.5):
            await kernel.sleep(10)
    except kernel.TaskTimeout:
        print(f"main: TaskTimeout at t={await kernel.clock() - start:.1f}")

    async with kernel.timeout_after(5):  # ends in time: its deadline is withdrawn
        await kernel.sleep(0.25)
    print(f"main: done at t={await kernel.clock() - start:.2f}")


if __name__ == "__main__":
    kernel.run(main)
