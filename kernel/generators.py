"""Generator-based coroutines: the historical form that this course starts from.

Before ``async``/``await`` (Python 3.5), a coroutine was a generator that used
``yield from`` to call other coroutines, marked with ``@asyncio.coroutine``. The kernel runs
those too: a plain generator that yields traps is a task, and ``@kernel.coroutine`` marks a
generator function so that it may ``yield from`` *any* kernel call (including ``async def``
ones such as ``kernel.spawn``) and may itself be awaited from ``async def`` code::

    @kernel.coroutine
    def main():
        yield from kernel.sleep(1)
        return 123

Read next: ``examples/02_sleep_then_123.py``, which runs both forms.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

if TYPE_CHECKING:
    from .traps import TrapCall

__all__ = ["coroutine"]

P = ParamSpec("P")
T = TypeVar("T")


@overload
def coroutine(func: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]: ...
@overload
def coroutine(func: Callable[P, Generator[Any, Any, T]]) -> Callable[P, TrapCall[T]]: ...
def coroutine(func: Callable[P, Any]) -> Callable[P, Any]:
    """Mark a generator function as a kernel coroutine (the analogue of ``@asyncio.coroutine``)."""
    if inspect.iscoroutinefunction(func):
        return func  # already a coroutine: nothing to do
    if not inspect.isgeneratorfunction(func):
        raise TypeError(
            f"@kernel.coroutine decorates a generator function (a def that uses `yield from`); "
            f"{func!r} is not one. For new code, write `async def` and `await` instead"
        )
    return types.coroutine(func)
