"""Run an asyncio script on asyncio's own loop, recorded: ``script.py``'s counterpart.

``trace(path)`` does for real asyncio what ``script.trace(path, aio=True)`` does for the
adapter, with a ``RecordingEventLoop`` (``asyncio_recorder.py``) in place of the kernel's
recorder: the script's ``main()`` is run with ``loop.run_until_complete(main())``, or a
script with no ``main()`` is run as ``__main__`` and handed the recording loop the first time
it asks for one. What it prints becomes ``output`` records, as on the kernel (both runners
share ``script._recorded``).

``new_event_loops(factory)`` is how a loop is handed over: while inside it,
``asyncio.new_event_loop()``, ``asyncio.run()`` and ``kernel.aio.new_event_loop()`` get their
loop from ``factory()``. ``compare.py`` uses it the other way round too, to give an asyncio
program kernel.aio's loop.

Read next: ``docs/views.md``, the views in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import runpy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .. import aio
from ..clock import VirtualClock
from .asyncio_recorder import RecordingEventLoop
from .script import Traced, _main_of, _recorded, _script_folder_on_path

__all__ = ["new_event_loops", "trace"]


def trace(path: str | Path, *, deterministic: bool = False, capture: bool = True) -> Traced:
    """Run an asyncio script on a ``RecordingEventLoop``; return its records and outcome.

    As ``script.trace(path, aio=True)`` does on the adapter: the script's ``main()`` is run
    with ``loop.run_until_complete(main())``; a script with no ``main()`` is run as
    ``__main__``, and the first loop it asks for -- from ``kernel.aio.new_event_loop()`` (the
    course's programs), ``asyncio.new_event_loop()`` or ``asyncio.run()`` -- is the recording
    one. With ``deterministic=True`` its clock is a ``VirtualClock``.
    """
    main = _main_of(path, True)
    traced = Traced(str(path), True, deterministic, as_main=main is None)
    loop = RecordingEventLoop(
        clock=VirtualClock() if deterministic else None, deterministic=deterministic
    )

    def execute() -> Any:
        if main is not None:
            return loop.run_until_complete(main())
        loops = new_event_loops(_first_then(loop, asyncio.new_event_loop))
        with loops, _script_folder_on_path(Path(path)):
            runpy.run_path(str(path), run_name="__main__")
        return None

    def close() -> None:
        if not loop.is_closed():
            loop.close()

    return _recorded(traced, loop, execute, close, capture)


@contextlib.contextmanager
def new_event_loops(
    factory: Callable[[], asyncio.AbstractEventLoop], *, kernel_aio: bool = True
) -> Iterator[None]:
    """While inside: ``asyncio.new_event_loop()`` and ``asyncio.run()`` (which asks
    ``asyncio.events.new_event_loop``) -- and ``kernel.aio.new_event_loop()`` unless
    ``kernel_aio`` is false -- get their loop from ``factory()``. (A ``clock=`` argument to
    ``kernel.aio.new_event_loop`` is ignored.)"""

    def new_event_loop(*_: Any, **__: Any) -> asyncio.AbstractEventLoop:
        return factory()

    places: list[tuple[object, str]] = [
        (asyncio, "new_event_loop"),
        (asyncio.events, "new_event_loop"),
    ]
    if kernel_aio:
        places.append((aio, "new_event_loop"))
    saved = [getattr(module, name) for module, name in places]
    for module, name in places:
        setattr(module, name, new_event_loop)
    try:
        yield
    finally:
        for (module, name), value in zip(places, saved, strict=True):
            setattr(module, name, value)


def _first_then(
    first: asyncio.AbstractEventLoop, then: Callable[[], asyncio.AbstractEventLoop]
) -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory that hands out ``first`` once, then what ``then()`` makes."""
    handed_out: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        if handed_out:
            return then()
        handed_out.append(first)
        return first

    return factory
