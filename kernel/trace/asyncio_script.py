"""Run an asyncio script on asyncio's own loop, recorded: ``script.py``'s counterpart.

``trace(path)`` does for real asyncio what ``script.trace(path, aio=True)`` does for the
adapter, with a ``RecordingEventLoop`` (``asyncio_recorder.py``) in place of the kernel's
recorder: the script's ``main()`` is run with ``loop.run_until_complete(main())``, or a
script with no ``main()`` is run as ``__main__`` and handed the recording loop the first time
it asks for one. What it prints becomes ``output`` records, as on the kernel (both runners
share ``script._recorded``).

``new_event_loops(factory)`` (from ``script.py``, where the adapter's runner hands its loop
over the same way) is how a loop is handed over: while inside it, ``asyncio.new_event_loop()``,
``asyncio.run()``, ``kernel.aio.new_event_loop()`` and ``kernel.aio.run()`` get their loop from
``factory()``.

Read next: ``docs/views.md``, the views in use.
"""

from __future__ import annotations

import asyncio
import runpy
from pathlib import Path
from typing import Any

from ..clock import VirtualClock
from .asyncio_recorder import RecordingEventLoop
from .script import (
    Traced,
    _first_then,
    _main_of,
    _recorded,
    as_script,
    awaitable_of,
    new_event_loops,
)

__all__ = ["new_event_loops", "trace"]


def trace(path: str | Path, *, deterministic: bool = False, capture: bool = True) -> Traced:
    """Run an asyncio script on a ``RecordingEventLoop``; return its records and outcome.

    As ``script.trace(path, aio=True)`` does on the adapter: the script's ``main()`` is run
    with ``loop.run_until_complete(main())``; a script with no ``main()`` is run as
    ``__main__``, and the first loop it asks for -- from ``kernel.aio.new_event_loop()`` (the
    course's programs), ``asyncio.new_event_loop()`` or ``asyncio.run()`` -- is the recording
    one. With ``deterministic=True`` its clock is a ``VirtualClock``.
    """
    with as_script(path):
        main = _main_of(path, True)
        traced = Traced(str(path), True, deterministic, as_main=main is None)
        loop = RecordingEventLoop(
            clock=VirtualClock() if deterministic else None, deterministic=deterministic
        )

        def execute() -> Any:
            if main is not None:
                return loop.run_until_complete(awaitable_of(main))
            # Later loops are asyncio's own, unrecorded (asyncio.new_event_loop, taken
            # before new_event_loops replaces it).
            loops = new_event_loops(_first_then(lambda: loop, asyncio.new_event_loop))
            with loops:  # (the script's folder is on the path already: as_script)
                runpy.run_path(str(path), run_name="__main__")
            return None

        def close() -> None:
            if not loop.is_closed():
                loop.close()

        return _recorded(traced, loop, execute, close, capture)
