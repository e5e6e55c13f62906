"""Course, chapter 1 -- Generators and ``yield``: a function that can pause.

What it teaches: calling a generator function runs none of its body; it builds a generator
object. ``next(gen)`` (or ``gen.send(value)``) runs the body up to its next ``yield``: the
value after ``yield`` comes out of that call, and the value sent in becomes the value of the
``yield`` expression inside. ``return x`` ends the generator with ``StopIteration(x)``. A
paused generator keeps its local variables and its place, so a loop that resumes several
generators in turn already runs them "at the same time" -- the idea every scheduler in this
course is built on. The last part hands the same generators to the kernel.

Read next: examples/course/yield_from_to_await.py
"""

from collections import deque
from collections.abc import Generator
from typing import Any

import kernel


def pausing() -> Generator[str, int, str]:
    print("  the body starts only now")
    first = yield "paused at the first yield"
    print(f"  resumed with {first}")
    second = yield "paused at the second yield"
    return f"returned {first + second}"


def show_a_pausing_function() -> None:
    gen = pausing()
    print(f"pausing() made a {type(gen).__name__}; none of its body has run")
    print(f"next(gen)    -> {next(gen)!r}")
    print(f"gen.send(1)  -> {gen.send(1)!r}")
    try:
        gen.send(2)
    except StopIteration as stop:
        print(f"gen.send(2)  -> StopIteration, carrying {stop.value!r}")


def countdown(name: str, n: int) -> Generator[tuple[str], None, str]:
    while n > 0:
        print(f"{name}: {n}")
        yield ("schedule",)  # a place to pause: "let the others have a turn"
        n -= 1
    return f"{name} done"


def round_robin(*generators: Generator[Any, None, str]) -> list[str]:
    """Resume each generator in turn until every one has returned: a scheduler in 10 lines."""
    ready = deque(generators)
    results = []
    while ready:
        gen = ready.popleft()
        try:
            next(gen)  # run it up to its next yield
        except StopIteration as stop:
            results.append(stop.value)  # it returned: drop it
        else:
            ready.append(gen)  # it paused: to the back of the line
    return results


async def main() -> None:
    # The kernel runs a plain generator as a task: ("schedule",) is the request it knows
    # as "let the others run" (chapter 4 lists them all).
    a = await kernel.spawn(countdown("a", 2), name="a")
    b = await kernel.spawn(countdown("b", 3), name="b")
    print(f"the kernel: {[await a.join(), await b.join()]}")


if __name__ == "__main__":
    show_a_pausing_function()
    print(f"round_robin: {round_robin(countdown('a', 2), countdown('b', 3))}")
    kernel.run(main)
