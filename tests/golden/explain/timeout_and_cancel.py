"""A timeout that fires, and a cancel sent by one task to another.

A program for ``python -m kernel explain``; its narration is checked in
``tests/test_explain.py`` against ``timeout_and_cancel.txt``.
"""

import kernel


async def main() -> None:
    try:
        await kernel.timeout_after(0.5, kernel.sleep, 10)
    except kernel.TaskTimeout:
        print("timed out")
    sleeper = await kernel.spawn(kernel.sleep, 10, name="sleeper")
    await kernel.sleep(1)
    await sleeper.cancel()
