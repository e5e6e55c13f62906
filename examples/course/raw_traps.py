"""Course, chapter 4 -- Traps: the tuples a task yields, and the kernel's answers.

What it teaches: every kernel call ends in a *trap*, a tuple whose first element names the
request: ``kernel.sleep(0.5)`` is a tiny generator that yields ``("sleep", 0.5)``, and
``kernel.sleep(0)`` yields ``("schedule",)``. ``main`` below is a plain generator that yields
the tuples itself, no kernel function called. Some traps park the task (``sleep``,
``wait_task``); others are answered at once with a value sent back into the task (``clock``
sends the time, ``spawn`` the new ``Task``). Anything that is not a trap gets a
``TypeError`` thrown back in: the task's mistake, and the kernel carries on.

Read next: examples/course/sleepers.py
"""

from collections.abc import Generator
from typing import Any

import kernel
from kernel.traps import Trap


def child(seconds: float) -> Generator[Trap, Any, str]:
    yield ("sleep", seconds)  # what `await kernel.sleep(seconds)` yields
    return f"child slept {seconds}s"


def main() -> Generator[Any, Any, None]:
    start = yield ("clock",)  # answered at once: the kernel sends the time back
    task = yield ("spawn", child(0.5), False, "child")  # answered at once: the new Task
    print(f"spawned {task.name!r}, task {task.id}; main goes on")
    yield ("wait_task", task)  # parks main until child has ended
    now = yield ("clock",)
    print(f"t={now - start:.1f} {task.result!r}")
    try:
        yield "not a trap"
    except TypeError as error:
        print(f"TypeError: {error}")


if __name__ == "__main__":
    calls: list[tuple[str, Generator[Trap, Any, Any]]] = [
        ("kernel.sleep(0.5)", kernel.sleep(0.5)),
        ("kernel.clock()", kernel.clock()),
        ("kernel.sleep(0)", kernel.sleep(0)),
    ]
    for text, call in calls:
        print(f"{text} yields {call.send(None)!r}")  # start it by hand: what does it yield?
    kernel.run(main)
