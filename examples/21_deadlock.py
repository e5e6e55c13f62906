"""21 -- Deadlock: two tasks take the same two locks in opposite orders.

What it teaches: alice takes lock ``a`` and then wants ``b``; bob takes ``b`` and then wants
``a``. Each waits for a lock the other holds, so neither can ever go on -- and main waits
for both. Once every task is blocked and no timer, I/O, thread or signal handler is left to
wake one, nothing will ever happen again: rather than hang, the kernel raises
``kernel.Deadlock`` in the main task, where it waits. Its message is the wait-for chain:
task -> the lock it waits for -> the task holding it -> ... back to the start. The task
group cancels alice and bob on the way out. The cure is one agreed order for the locks.

Read next: docs/diagnostics.md
"""

import kernel


async def transfer(first: kernel.Lock, second: kernel.Lock) -> None:
    async with first:
        await kernel.sleep(0)  # meanwhile, the other task takes its first lock
        async with second:
            pass


async def main() -> None:
    a, b = kernel.Lock(), kernel.Lock()
    try:
        async with kernel.TaskGroup() as group:
            await group.spawn(transfer, a, b, name="alice")
            await group.spawn(transfer, b, a, name="bob")
    except kernel.Deadlock as deadlock:
        print(f"kernel.Deadlock: {deadlock}")

    async with kernel.TaskGroup() as group:  # the cure: both take a, then b
        await group.spawn(transfer, a, b, name="alice")
        await group.spawn(transfer, a, b, name="bob")
    print("same order: both transfers done")


if __name__ == "__main__":
    kernel.run(main)
