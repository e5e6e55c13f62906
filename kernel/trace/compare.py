"""``python -m kernel compare``: one asyncio program, on asyncio's own loop and on kernel.aio.

The program runs twice, each time recorded: on a ``RecordingEventLoop`` -- asyncio's own
selector loop, listened to (``asyncio_recorder.py``) -- and on the adapter, through the
kernel's tracer (``script.trace(path, aio=True)``). Both give records in one vocabulary
(``records.py``), and this module reads from each the level both loops share: the *schedule*,
the callbacks that ran, in order, turn by turn -- a step of Task-1 (``Task-1.__step``), a
wake-up (``Task-1.__wakeup(Future-1)``), a ``TimerHandle`` (with its deadline), a done
callback, ``_run_until_complete_cb`` -- and what each did that shapes the schedule: the timers
it set (their delays) and whether it called ``loop.stop()``.

Aligning the two schedules:

* names are renumbered in order of appearance on each side (``Task-57`` of a long-lived
  process and ``Task-1`` of a fresh one are the same task if they appear at the same place),
  and times are counted from the start of each run;
* the order is strict: the first callback that differs -- by what it calls, the delays of the
  timers it sets, a ``loop.stop()``, and on the virtual clock the time it ran -- is *the
  divergence*, reported with its turn and position on each side, a few callbacks of context
  from both, and an explanation when it is a known difference of the two loops;
* turn boundaries are tolerant: where the order is the same but the turns are cut
  differently, the report says "same order, different turn boundaries" and why that can be.

What differs between the loops without changing the schedule is left out, and said: the
adapter queues a Task itself where asyncio queues a fresh Handle per step; the kernel skips
``select()`` when callbacks are ready and nothing is watched; asyncio's self-pipe reader runs
as a callback, the kernel's wake-up socket does not.

``--deterministic`` runs both on a ``VirtualClock`` (time jumps to the next deadline instead
of passing), which makes both runs exact and repeatable -- and brings out one difference a
real clock hides: timers with *equal* deadlines (see ``_HEAP_TIES`` in ``compare_align.py``).

The pieces: ``compare_align.py`` reads each run's schedule from its records, aligns the two and
explains the first difference; ``compare_report.py`` writes the comparison out. This module runs
the program on both loops (``asyncio_script.py`` records it on asyncio's own) and is the
command; it re-exports the public names of both.

Read next: ``kernel/trace/compare_align.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import asyncio_script
from .compare_align import ADAPTER, ASYNCIO, Comparison, Ran, Run, Turn, _run, align, schedule
from .compare_report import as_json, render
from .script import script_file
from .script import trace as trace_adapter

__all__ = [
    "Comparison",
    "Ran",
    "Run",
    "Turn",
    "add_arguments",
    "align",
    "as_json",
    "command",
    "compare",
    "render",
    "schedule",
]


def compare(path: str | Path, *, deterministic: bool = False) -> Comparison:
    """Run the asyncio program at ``path`` on both loops, recorded; align the schedules."""
    # A program with no main() is run as __main__ by both, and the first loop it asks for
    # (asyncio.run(), asyncio.new_event_loop(), kernel.aio.new_event_loop()) is the recording
    # one: asyncio's own, then kernel.aio's.
    on_asyncio = asyncio_script.trace(path, deterministic=deterministic)
    on_adapter = trace_adapter(path, aio=True, deterministic=deterministic)
    runs = (_run(ASYNCIO, on_asyncio), _run(ADAPTER, on_adapter))
    return Comparison(str(path), deterministic, runs).judge()


# -- the command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m kernel compare``'s options."""
    parser.add_argument(
        "script",
        type=script_file,
        help="an asyncio program: its main() is run, or the script",
    )
    parser.add_argument(
        "--deterministic",
        "--virtual-clock",
        dest="deterministic",
        action="store_true",
        help="a VirtualClock on both loops (time jumps to the next deadline) and stable "
        "names: the same output on every run",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the comparison and both schedules as JSON"
    )


def command(args: argparse.Namespace) -> int:
    """``python -m kernel compare``: 0 if the schedules have the same order, 1 if not (or if
    the program failed on either loop)."""
    comparison = compare(args.script, deterministic=args.deterministic)
    if args.json:
        print(json.dumps(as_json(comparison), indent=1))
    else:
        print(render(comparison), end="")
    failed = [run for run in comparison.runs if run.traced.error is not None]
    for run in failed:
        print(f"compare: on {run.loop} the program raised {run.traced.error!r}", file=sys.stderr)
    return 1 if comparison.verdict == "diverge" or failed else 0
