"""04 -- Timeouts: put a deadline on a call or on a block, and nest them.

What it teaches: ``timeout_after(s, f, *args)`` or ``async with timeout_after(s):`` cancels
the work with ``TaskTimeout`` after ``s`` seconds; ``ignore_after`` swallows it and sets
``.expired``. If an *outer* deadline passes first, the inner block gets
``TimeoutCancellationError`` and the outer one ``TaskTimeout``.

Read next: examples/05_taskgroup.py
"""

import kernel


async def main() -> None:
    start = await kernel.clock()

    async def say(what: str) -> None:
        print(f"t={await kernel.clock() - start:.0f}s {what}")

    try:
        await kernel.timeout_after(1, kernel.sleep, 10)
    except kernel.TaskTimeout:
        await say("timeout_after(1) raised TaskTimeout")
    async with kernel.ignore_after(1) as block:
        await kernel.sleep(10)
    await say(f"ignore_after(1) returned quietly, expired={block.expired}")

    try:
        async with kernel.timeout_after(1):  # outer: its deadline comes first
            try:
                async with kernel.timeout_after(2):  # inner
                    await kernel.sleep(10)
            except kernel.TimeoutCancellationError:
                await say("inner block: TimeoutCancellationError")
                raise
    except kernel.TaskTimeout:
        await say("outer block: TaskTimeout")


if __name__ == "__main__":
    kernel.run(main)
