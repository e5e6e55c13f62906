"""Run a script's ``main()`` on a recording kernel: the raw material of the teaching views.

``trace(path)`` imports the script (under a name of its own, so its ``if __name__ ==
"__main__":`` block does not run), then runs its ``main()``:

* by default as the main task of a kernel -- ``kernel.run(main)``;
* with ``aio=True`` on the asyncio adapter: ``main()`` is an asyncio coroutine, run as
  ``loop.run_until_complete(main())`` on a ``kernel.aio`` event loop. A script with no
  ``main()`` (the course's asyncio programs do their work at the bottom) is run as
  ``__main__`` instead, with ``kernel.aio.new_event_loop`` handing it the recording loop.

With ``deterministic=True`` the kernel gets a ``VirtualClock`` (time starts at 0 and jumps to
the next deadline when nothing else can happen) and the recorder renames what would vary
between runs, so the same script always gives the same records.

What the program prints is captured line by line as ``output`` records, in the order it
happens, unless ``capture=False``. ``asyncio_script.py`` runs a script on real asyncio's loop
the same way (``_recorded`` is their shared part).

This module is also ``python -m kernel run script.py [--asyncio] [--deterministic]
[--trace]``: run the script's ``main()`` and print what it returns; ``--trace`` writes each
record to stderr as a line of JSON as it is made. ``add_script_arguments`` holds the options
every view that runs a script shares.

Read next: ``kernel/trace/explain.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from .. import aio
from ..clock import Clock, VirtualClock
from ..scheduler import Kernel
from .records import Record, Recorder

__all__ = ["Traced", "add_arguments", "add_script_arguments", "command", "load", "run", "trace"]


@dataclass
class Traced:
    """What running a script produced: its records, and how its ``main()`` ended."""

    path: str
    aio: bool
    deterministic: bool
    as_main: bool  # run as __main__ (no main() to call)
    records: list[Record] = field(default_factory=list)
    result: Any = None
    error: BaseException | None = None


def load(path: str | Path) -> ModuleType:
    """Import the script at ``path`` as a module named after its file (not ``__main__``)."""
    path = Path(path)
    name = "_kernel_script_" + "".join(c if c.isalnum() else "_" for c in path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python script")
    module = importlib.util.module_from_spec(spec)
    with _script_folder_on_path(path):
        spec.loader.exec_module(module)
    return module


def trace(
    path: str | Path,
    *,
    aio: bool = False,
    deterministic: bool = False,
    capture: bool = True,
    on_record: Callable[[Record], object] | None = None,
) -> Traced:
    """Run the script's ``main()`` on a recording kernel; return the records and outcome."""
    recorder = Recorder(deterministic=deterministic, on_record=on_record)
    main = _main_of(path, aio)
    traced = Traced(str(path), aio, deterministic, as_main=main is None)
    kernel = Kernel(clock=VirtualClock() if deterministic else None, tracer=recorder)
    recorder.attach(kernel)
    return _recorded(
        traced, recorder, lambda: _execute(kernel, main, aio, Path(path)), kernel.close, capture
    )


class _Notes(Protocol):
    """What records a run: a ``Recorder``, or for real asyncio a ``RecordingEventLoop``."""

    def note(self, event: str, **fields: Any) -> None: ...

    def finish(self) -> list[Record]: ...


def _recorded(
    traced: Traced,
    recorder: _Notes,
    execute: Callable[[], Any],
    close: Callable[[], object],
    capture: bool,
) -> Traced:
    """Run the program (``execute()``) and keep in ``traced`` what it returns or raises, and
    the records. Unless ``capture`` is false, what it prints becomes ``output`` records; at the
    end comes a ``close`` note, then ``close()`` (the kernel's, or the loop's)."""
    output = _Output(recorder) if capture else None
    try:
        with contextlib.ExitStack() as stack:
            if output is not None:
                stack.enter_context(contextlib.redirect_stdout(output))
            try:
                traced.result = execute()
            except Exception as error:  # the program's own failure: part of the story
                traced.error = error
            finally:
                if output is not None:
                    output.flush()
                recorder.note("close")
                close()
    finally:
        traced.records = recorder.finish()
    return traced


def run(path: str | Path, *, aio: bool = False, clock: Clock | None = None) -> Any:
    """Run the script's ``main()`` on a kernel with no tracer; return what it returns."""
    main = _main_of(path, aio)
    with Kernel(clock=clock) as kernel:
        return _execute(kernel, main, aio, Path(path))


def _main_of(path: str | Path, aio: bool) -> Callable[[], Any] | None:
    """The script's ``main`` (None: an asyncio script to run as ``__main__``)."""
    main: Callable[[], Any] | None = getattr(load(path), "main", None)
    if main is None and not aio:
        raise LookupError(f"{path} has no main() to run")
    return main


def _execute(kernel: Kernel, main: Callable[[], Any] | None, aio: bool, path: Path) -> Any:
    if not aio:
        return kernel.run(main)
    if main is not None:
        return _run_until_complete(kernel, main)
    _run_as_main(kernel, path)
    return None


def _run_until_complete(kernel: Kernel, main: Callable[[], Any]) -> Any:
    loop = aio.EventLoop(kernel)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def _run_as_main(kernel: Kernel, path: Path) -> None:
    """Run the script as ``__main__``; its first ``kernel.aio.new_event_loop()`` records."""
    handed_out: list[aio.EventLoop] = []
    new_event_loop = aio.new_event_loop

    def recording_event_loop(*, clock: Clock | None = None) -> aio.EventLoop:
        if handed_out:
            return new_event_loop(clock=clock)  # only the first loop is on the recorder
        handed_out.append(aio.EventLoop(kernel))
        return handed_out[0]

    aio.new_event_loop = recording_event_loop
    try:
        with _script_folder_on_path(path):
            runpy.run_path(str(path), run_name="__main__")
    finally:
        aio.new_event_loop = new_event_loop
        for loop in handed_out:
            if not loop.is_closed():
                loop.close()


@contextlib.contextmanager
def _script_folder_on_path(path: Path) -> Iterator[None]:
    """As ``python script.py`` does: the script's folder first on ``sys.path``."""
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


class _Output(io.TextIOBase):
    """A stdout that turns each line the program prints into an ``output`` record."""

    def __init__(self, recorder: _Notes) -> None:
        super().__init__()
        self._recorder = recorder
        self._line = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._line += text
        *lines, self._line = self._line.split("\n")
        for line in lines:
            self._recorder.note("output", text=line)
        return len(text)

    def flush(self) -> None:
        if self._line:
            line, self._line = self._line, ""
            self._recorder.note("output", text=line)


# -- the command line ---------------------------------------------------------------------------


def add_script_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every view that runs a script: the script, --asyncio, --deterministic."""
    parser.add_argument("script", help="a Python file whose main() is run")
    parser.add_argument(
        "--asyncio",
        dest="aio",
        action="store_true",
        help="main() is an asyncio coroutine: run it on kernel.aio with "
        "loop.run_until_complete(main()) (a script with no main() runs as __main__)",
    )
    parser.add_argument(
        "--deterministic",
        "--virtual-clock",
        dest="deterministic",
        action="store_true",
        help="a VirtualClock (time jumps to the next deadline) and stable names: the same "
        "output on every run",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m kernel run``'s options."""
    add_script_arguments(parser)
    parser.add_argument(
        "--trace",
        action="store_true",
        help="write every scheduler decision to stderr, one JSON record per line",
    )


def command(args: argparse.Namespace) -> int:
    """``python -m kernel run``: run main(), print what it returns (if not None)."""
    try:
        if args.trace:
            traced = trace(
                args.script,
                aio=args.aio,
                deterministic=args.deterministic,
                capture=False,
                on_record=_write_record,
            )
            if traced.error is not None:
                raise traced.error
            result = traced.result
        else:
            result = run(
                args.script, aio=args.aio, clock=VirtualClock() if args.deterministic else None
            )
    except Exception:
        traceback.print_exc()
        return 1
    if result is not None:
        print(repr(result))
    return 0


def _write_record(record: Record) -> None:
    print(json.dumps(record), file=sys.stderr, flush=True)
