"""``python -m kernel timeline``: who ran when, one row per task.

A *slice* is one run of a task: from the moment the loop takes it off the ready queue and
resumes it, to the trap that parks it (or its end). Traps the kernel answers at once
(``spawn``, ``clock``, ``cancel``...) do not end a slice: the task carries on. On the asyncio
adapter a slice is one call of a Task's ``__step`` (or ``__wakeup``), ended by what the
coroutine did: await a pending future, yield, return or raise; a callback that is no task's
step (a ``TimerHandle``, a done callback, the one that stops the loop) is a slice of the
row "callbacks".

Each slice is labelled with what ended it, as one symbol (``SYMBOLS``: ``S`` sleeps, ``W``
waits on a wait queue, ``X`` returns...), and between its slices a task's row says whether
it was ready (``-``: on the ready queue, waiting for its turn) or blocked (``.``).

Two axes:

* **ticks** (the default on the virtual clock): one column per slice, in the order the slices
  ran, grouped under the turn of the loop they ran in. Only one task runs at a time, so the
  columns read like a staircase; the time is shown where it changes.
* **time**: slices placed at the time they began. On the virtual clock a slice takes no time
  at all, so this axis shows where the program waited.

The same ``Timeline`` (``timeline_model.py``: ``build`` cuts the records into slices) is
printed as text (``timeline_text.py``: ``render_text``), drawn as a self-contained HTML page
(``timeline_html.py``), and exported as Chrome-trace JSON (``timeline_chrome.py``:
``chrome_trace``: "X" events, one thread per task, loadable in ui.perfetto.dev or
chrome://tracing). This module is the command; it also re-exports their public names, so
``from kernel.trace.timeline import build, render_text`` keeps working.

On the command line: ``python -m kernel timeline script.py [--asyncio] [--deterministic]
[--axis ticks|time] [-o timeline.html] [--chrome-trace out.json] [--width N]``.

Read next: ``kernel/trace/timeline_model.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .script import UsageError, add_script_arguments, trace
from .timeline_chrome import chrome_trace, dumps_trace
from .timeline_model import (
    BLOCKED,
    CALLBACKS,
    FILL,
    READY,
    SYMBOLS,
    Column,
    Slice,
    Timeline,
    build,
    format_seconds,
)
from .timeline_text import TICKS_AXIS, WIDTH, render_text, summary, time_step

__all__ = [
    "AXES",
    "BLOCKED",
    "CALLBACKS",
    "FILL",
    "READY",
    "SYMBOLS",
    "TICKS_AXIS",
    "Column",
    "Slice",
    "Timeline",
    "add_arguments",
    "build",
    "chrome_trace",
    "command",
    "dumps_trace",
    "format_seconds",
    "render_text",
    "summary",
    "time_step",
]

AXES = ("ticks", "time")

# -- the command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m kernel timeline``'s options."""
    add_script_arguments(parser)
    parser.add_argument(
        "--axis",
        choices=AXES,
        help="ticks: one column per slice, grouped by turn of the loop (the default with "
        "--deterministic); time: slices placed at the time they began (the default otherwise)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="timeline.html",
        type=output_file,
        help="also write the timeline as a self-contained HTML page",
    )
    parser.add_argument(
        "--chrome-trace",
        metavar="out.json",
        type=output_file,
        help="also write it as Chrome-trace JSON, for ui.perfetto.dev or chrome://tracing",
    )
    parser.add_argument(
        "--width", metavar="N", type=text_width, default=WIDTH, help="columns of text (default 100)"
    )


def command(args: argparse.Namespace) -> int:
    """``python -m kernel timeline``: run the script recorded, print (and write) its timeline."""
    traced = trace(args.script, aio=args.aio, deterministic=args.deterministic)
    timeline = build(traced.records, virtual=args.deterministic)
    axis = args.axis or ("ticks" if args.deterministic else "time")
    runner = "kernel.aio's event loop" if args.aio else "the kernel"
    what = f"{args.script} (as __main__)" if traced.as_main else f"main() of {args.script}"
    title = f"Timeline of {what} on {runner}"
    print(render_text(timeline, axis=axis, width=args.width, title=title), end="")
    if args.output:
        from .timeline_html import render_html  # only the page needs it

        _write(args.output, render_html(timeline, axis=axis, title=title))
    if args.chrome_trace:
        _write(args.chrome_trace, dumps_trace(chrome_trace(timeline, axis=axis, title=title)))
    if traced.error is not None:
        print(f"timeline: the program raised {traced.error!r}", file=sys.stderr)
        return 1
    return 0


def text_width(text: str) -> int:
    """``--width``'s value: a whole number of columns, 40 or more. (argparse names the
    option.)"""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 40:
        raise argparse.ArgumentTypeError(
            f"expected a width of at least 40 columns (a whole number), not {text!r}"
        )
    return number


def output_file(text: str) -> str:
    """The value of ``-o`` or ``--chrome-trace``: a file that can be written, checked before
    the program runs, so that a typo does not cost a run."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory: give a file name in it")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot write {text}: there is no directory {path.parent} (create it first)"
        )
    return text


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, "utf-8")
    except OSError as error:  # e.g. no permission: the chart is printed, the file is not
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    print(f"timeline: wrote {path}", file=sys.stderr)
