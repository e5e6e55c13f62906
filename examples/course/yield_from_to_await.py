"""Course, chapter 2 -- From ``yield from`` to ``async``/``await``: one protocol, two spellings.

What it teaches: ``yield from sub`` runs a sub-generator inside a generator: whatever
``sub`` yields goes straight out to whoever drives the outer one, whatever is sent in goes
straight to ``sub``, and ``sub``'s return value becomes the value of the ``yield from``.
``await`` is the same thing for coroutines: an ``async def`` function that awaits a
``@types.coroutine`` generator hands that generator's yields to its driver, unchanged. A
plain generator cannot be awaited; ``@types.coroutine`` (or ``@kernel.coroutine``) is the
mark that allows it. So a request yielded three calls deep reaches the scheduler as it was
written -- which is all the kernel needs.

Read next: examples/course/toy_scheduler.py
"""

import types
from collections.abc import Coroutine, Generator
from typing import Any

import kernel


@types.coroutine
def request(what: str, arg: float) -> Generator[tuple[str, float], Any, Any]:
    """The bottom of every call chain: yield a request, return the scheduler's answer."""
    answer = yield (what, arg)
    return answer


def old_style() -> Generator[tuple[str, float], Any, str]:
    answer = yield from request("sleep", 1.0)  # before Python 3.5
    return f"old_style got {answer!r}"


async def new_style() -> str:
    answer = await request("sleep", 1.0)  # the same, spelled with async/await
    return f"new_style got {answer!r}"


def drive(coro: Generator[Any, Any, str] | Coroutine[Any, Any, str]) -> None:
    """Play the scheduler: start the coroutine, answer its one request with "ok"."""
    print(f"  it yields {coro.send(None)!r}")
    try:
        coro.send("ok")
    except StopIteration as stop:
        print(f"  it returns {stop.value!r}")


def plain() -> Generator[str, None, None]:
    yield "I am a plain generator"


async def awaits_a_plain_generator() -> None:
    await plain()  # type: ignore[misc]  # (the mistake this shows)


@kernel.coroutine
def fetch(name: str) -> Generator[Any, Any, str]:
    yield from kernel.sleep(0.5)  # an old-style coroutine calling the kernel
    return f"{name} fetched"


async def main() -> None:
    start = await kernel.clock()
    print(await fetch("first"))  # async def awaiting an old-style coroutine
    await kernel.sleep(0.5)
    print(f"main is done after {await kernel.clock() - start:.1f}s")


if __name__ == "__main__":
    print("old_style(), driven by hand:")
    drive(old_style())
    print("new_style(), driven by hand:")
    drive(new_style())
    try:
        awaits_a_plain_generator().send(None)
    except TypeError as error:
        print(f"await plain(): TypeError: {error}")
    kernel.run(main)
