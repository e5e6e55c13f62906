"""Run a script's ``main()`` on a recording kernel: the raw material of the teaching views.

``trace(path)`` imports the script (under a name of its own, so its ``if __name__ ==
"__main__":`` block does not run), then runs its ``main()``:

* by default as the main task of a kernel -- ``kernel.run(main)``;
* with ``aio=True`` on the asyncio adapter: ``main()`` is an asyncio coroutine, run as
  ``loop.run_until_complete(main())`` on a ``kernel.aio`` event loop. A script with no
  ``main()`` (the course's asyncio programs do their work at the bottom) is run as
  ``__main__`` instead, and the first loop it asks for -- ``kernel.aio.new_event_loop()``,
  ``asyncio.new_event_loop()``, ``asyncio.run()``, ``kernel.aio.run()`` -- is the recording
  one (``new_event_loops``).

Whether a script has a ``main()`` is read from its source (``_defines_main``), not found by
importing it: a script with no ``main()`` runs once, as ``__main__``, and never before that.

With ``deterministic=True`` the kernel gets a ``VirtualClock`` (time starts at 0 and jumps to
the next deadline when nothing else can happen) and the recorder renames what would vary
between runs, so the same script always gives the same records.

What the program prints is captured line by line as ``output`` records, in the order it
happens, unless ``capture=False``. ``asyncio_script.py`` runs a script on real asyncio's loop
the same way (``_recorded`` is their shared part).

This module is also ``python -m kernel run script.py [--asyncio] [--deterministic]
[--trace]``: run the script's ``main()`` and print what it returns; ``--trace`` writes each
record to stderr as a line of JSON as it is made. ``add_script_arguments`` holds the options
every view that runs a script shares; a mistake in them (a script that is not there, no
``main()`` without ``--asyncio``) is a ``UsageError``, told in one line, not a traceback.

Read next: ``kernel/trace/explain.py``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import codecs
import contextlib
import importlib.util
import inspect
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
from ..aio import runners as aio_runners
from ..clock import Clock, VirtualClock
from ..processes import SCRIPT_MODULE_PREFIX
from ..scheduler import Kernel
from .records import Record, Recorder

__all__ = [
    "Traced",
    "UsageError",
    "add_arguments",
    "add_script_arguments",
    "as_script",
    "command",
    "load",
    "new_event_loops",
    "run",
    "script_file",
    "trace",
]


class UsageError(Exception):
    """A mistake in how a view was asked to run a script -- not the program's own failure.

    ``python -m kernel`` tells it in one line on stderr, with exit status 2 (as argparse does
    a bad option), where an exception raised by the program keeps its traceback."""


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
    name = SCRIPT_MODULE_PREFIX + "".join(c if c.isalnum() else "_" for c in path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python script")
    module = importlib.util.module_from_spec(spec)
    # In sys.modules, as an imported module is: dataclasses, typing.get_type_hints and
    # pickle look a class's module up there by name.
    sys.modules[name] = module
    try:
        with _script_folder_on_path(path):
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
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
    with as_script(path):
        recorder = Recorder(deterministic=deterministic, on_record=on_record)
        main = _main_of(path, aio)
        traced = Traced(str(path), aio, deterministic, as_main=main is None)
        kernel = Kernel(clock=VirtualClock() if deterministic else None, tracer=recorder)
        recorder.attach(kernel)
        return _recorded(
            traced,
            recorder,
            lambda: _execute(kernel, main, aio, Path(path)),
            kernel.close,
            capture,
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
    end comes a ``close`` note, then ``close()`` (the kernel's, or the loop's).

    ``sys.exit(n)`` is kept like an exception, so that the views still show the run up to
    it; ``sys.exit()`` or ``sys.exit(0)`` is a normal end."""
    lines = _Lines(recorder) if capture else None
    try:
        with contextlib.ExitStack() as stack:
            if lines is not None:
                stack.enter_context(contextlib.redirect_stdout(_text_over(lines)))
            try:
                traced.result = execute()
            except UsageError:
                raise  # how the view was asked to run it: not part of the story
            except Exception as error:  # the program's own failure: part of the story
                traced.error = error
            except SystemExit as exit:
                if exit.code not in (None, 0):
                    traced.error = exit
            finally:
                if lines is not None:
                    sys.stdout.flush()  # (the text layer's: redirect_stdout has it there)
                    lines.finish()
                recorder.note("close")
                close()
    finally:
        traced.records = recorder.finish()
    return traced


def run(path: str | Path, *, aio: bool = False, clock: Clock | None = None) -> Any:
    """Run the script's ``main()`` on a kernel with no tracer; return what it returns."""
    with as_script(path):
        main = _main_of(path, aio)
        with Kernel(clock=clock) as kernel:
            return _execute(kernel, main, aio, Path(path))


def _main_of(path: str | Path, aio: bool) -> Callable[[], Any] | None:
    """The script's ``main`` (None: an asyncio script to run as ``__main__``).

    The script is imported -- its top level run -- only if it has a ``main()`` to call: one
    with none is run later, as ``__main__``, and must not run twice."""
    path = Path(path)
    if path.suffix != ".py":
        raise ImportError(f"cannot load {path} as a Python script")
    if not _defines_main(path):
        if not aio:
            raise UsageError(
                f"{path} has no main() to run: define main(), or pass --asyncio to run an "
                "asyncio script as __main__"
            )
        return None
    main: Callable[[], Any] | None = getattr(load(path), "main", None)
    if main is None:  # e.g. a def under an ``if`` that did not hold: the script has run
        raise UsageError(f"{path} has no main() once imported: it defines one only sometimes")
    return main


def _defines_main(path: Path) -> bool:
    """Does the script bind ``main`` in its own namespace -- a ``def``, an assignment, an
    import -- other than in its ``if __name__ == "__main__":`` block?"""
    finder = _MainFinder()
    finder.visit(ast.parse(path.read_bytes(), filename=str(path)))
    return finder.found


class _MainFinder(ast.NodeVisitor):
    """Looks for a binding of the name ``main`` in a module's own scope (see
    ``_defines_main``): not inside functions, classes, lambdas or comprehensions, which have
    scopes of their own, nor under ``if __name__ == "__main__":``, which importing skips.
    (What ``from module import *`` brings in is not known without running it: not looked at.)"""

    found = False

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.found |= node.name == "main"

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.found |= node.name == "main"

    def _own_scope(self, node: ast.AST) -> None:
        pass  # a name bound in there is not the module's: do not visit it

    visit_Lambda = visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _own_scope

    def visit_Name(self, node: ast.Name) -> None:
        self.found |= node.id == "main" and isinstance(node.ctx, ast.Store)

    def visit_alias(self, node: ast.alias) -> None:  # import main, from x import y as main
        self.found |= (node.asname or node.name.partition(".")[0]) == "main"

    def visit_If(self, node: ast.If) -> None:
        if _is_main_guard(node.test):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)


def _is_main_guard(test: ast.expr) -> bool:
    """Is ``test`` ``__name__ == "__main__"`` (either way round)?"""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    sides = {ast.dump(test.left), ast.dump(test.comparators[0])}
    return isinstance(test.ops[0], ast.Eq) and sides == {
        ast.dump(ast.Name("__name__", ast.Load())),
        ast.dump(ast.Constant("__main__")),
    }


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
        return loop.run_until_complete(awaitable_of(main))
    finally:
        loop.close()


def awaitable_of(main: Callable[[], Any]) -> Any:
    """What ``main()`` returns, for ``run_until_complete``: it must be awaitable."""
    started = main()
    if not inspect.isawaitable(started):
        raise UsageError(
            f"an asyncio script's main() must be an async def (its coroutine is run with "
            f"loop.run_until_complete); this one returned {started!r}. A main() that calls "
            f"asyncio.run() itself: call it under 'if __name__ == \"__main__\":' and name it "
            f"otherwise, and the script is run as __main__, its loop recorded"
        )
    return started


def _run_as_main(kernel: Kernel, path: Path) -> None:
    """Run the script as ``__main__``. The first event loop it asks for, however it asks
    (``new_event_loops``), is a ``kernel.aio`` loop on the recording kernel; a later one is a
    loop of its own, unrecorded."""
    made: list[aio.EventLoop] = []

    def recording_loop() -> aio.EventLoop:
        made.append(aio.EventLoop(kernel))
        return made[0]

    unrecorded = aio.new_event_loop  # taken now: new_event_loops replaces it
    try:
        loops = new_event_loops(_first_then(recording_loop, unrecorded))
        with loops:  # (the script's folder is on the path already: as_script)
            runpy.run_path(str(path), run_name="__main__")
    finally:
        for loop in made:
            if not loop.is_closed():
                loop.close()


@contextlib.contextmanager
def new_event_loops(
    factory: Callable[[], asyncio.AbstractEventLoop], *, kernel_aio: bool = True
) -> Iterator[None]:
    """While inside: ``asyncio.new_event_loop()`` and ``asyncio.run()`` (which asks
    ``asyncio.events.new_event_loop``) -- and ``kernel.aio.new_event_loop()`` and
    ``kernel.aio.run()`` unless ``kernel_aio`` is false -- get their loop from ``factory()``.
    (A ``clock=`` argument to ``kernel.aio.new_event_loop`` is ignored.)"""

    def new_event_loop(*_: Any, **__: Any) -> asyncio.AbstractEventLoop:
        return factory()

    places: list[tuple[object, str]] = [
        (asyncio, "new_event_loop"),
        (asyncio.events, "new_event_loop"),
    ]
    if kernel_aio:
        places += [(aio, "new_event_loop"), (aio_runners, "new_event_loop")]
    saved = [getattr(module, name) for module, name in places]
    for module, name in places:
        setattr(module, name, new_event_loop)
    try:
        yield
    finally:
        for (module, name), value in zip(places, saved, strict=True):
            setattr(module, name, value)


def _first_then(
    first: Callable[[], asyncio.AbstractEventLoop], then: Callable[[], asyncio.AbstractEventLoop]
) -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory that hands out the loop ``first()`` makes once, then what ``then()``
    makes each time."""
    handed_out = False

    def factory() -> asyncio.AbstractEventLoop:
        nonlocal handed_out
        if handed_out:
            return then()
        handed_out = True
        return first()

    return factory


@contextlib.contextmanager
def as_script(path: str | Path) -> Iterator[None]:
    """While inside, the world looks to the script as it would to ``python script.py``:
    ``sys.argv`` is ``[script]`` (not ``python -m kernel``'s arguments), and the script's
    folder is first on ``sys.path`` -- for the whole run, since ``main()`` may import too."""
    saved_argv = sys.argv
    sys.argv = [str(path)]
    try:
        with _script_folder_on_path(Path(path)):
            yield
    finally:
        sys.argv = saved_argv


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


def _text_over(lines: _Lines) -> io.TextIOWrapper:
    """A stdout that turns each line the program prints into an ``output`` record.

    A real text stream over a binary one, like ``sys.stdout``: a program that writes bytes
    to ``sys.stdout.buffer`` or asks for ``sys.stdout.encoding`` behaves as it does in a
    terminal. Nothing is buffered (``write_through``), so text and bytes keep their order."""
    return io.TextIOWrapper(
        lines,  # type: ignore[arg-type]  # (a raw stream: write-through needs no buffer)
        encoding="utf-8",
        errors="backslashreplace",
        write_through=True,
    )


class _Lines(io.RawIOBase):
    """The bytes under ``_text_over``'s stream, cut into lines, each an ``output`` record."""

    def __init__(self, recorder: _Notes) -> None:
        super().__init__()
        self._recorder = recorder
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line = ""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        with memoryview(data) as view:
            self._line += self._decoder.decode(view)
            size = view.nbytes
        *lines, self._line = self._line.split("\n")
        for line in lines:
            self._recorder.note("output", text=line)
        return size

    def finish(self) -> None:
        """The program has ended: a line it left unfinished is a record too. (Not on
        ``flush()``: ``print(..., end="", flush=True)`` does not end a line.)"""
        rest, self._line = self._line + self._decoder.decode(b"", final=True), ""
        if rest:
            self._recorder.note("output", text=rest)


# -- the command line ---------------------------------------------------------------------------


def add_script_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every view that runs a script: the script, --asyncio, --deterministic."""
    parser.add_argument("script", type=script_file, help="a Python file whose main() is run")
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


def script_file(text: str) -> str:
    """The ``script`` argument, checked as argparse reads it: a Python file that is there."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text} (give the path of a .py file)")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file (give the path of a .py file)")
    if path.suffix != ".py":
        raise argparse.ArgumentTypeError(
            f"{text} is not a Python script (give the path of a .py file)"
        )
    return text


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
    except UsageError:
        raise  # how the command was called, not the program: python -m kernel says it
    except Exception:
        traceback.print_exc()
        return 1
    if result is not None:
        print(repr(result))
    return 0


def _write_record(record: Record) -> None:
    print(json.dumps(record), file=sys.stderr, flush=True)
