"""``python -m kernel explain``: the scheduler's decisions, told as a numbered walk-through.

The narration is built from the records of a live run (``kernel/trace/records.py``), not from
canned text: each step says what the kernel decided and why, in the words of the structure
it touched. A few records make one step when they are one decision for a reader -- a trap
and where it parked the task; a timer that came due and the task it woke; a task's end and
the joiners it woke.

Two vocabularies:

* **kernel** (the default): tasks, traps, the ready queue, the sleeping queue, the I/O wait
  table, and the loop's three phases (poll I/O, wake sleepers, run what is ready);
* **asyncio** (``--asyncio``): the same decisions on the adapter, named as asyncio names
  them -- ``_run_once``, ``_ready``, ``_scheduled``, ``TimerHandle``, ``selector.select``,
  ``Task.__step`` and ``__wakeup``, ``call_soon``, ``Future.set_result``, done callbacks,
  and ``_run_until_complete_cb``, the callback that stops the loop.

After each step that changed them, the three structures are shown.

On the command line: ``python -m kernel explain script.py [--asyncio] [--task NAME]
[--limit N] [--deterministic] [--json]`` (``--json``: the records of the steps shown).

The walk over the records is ``narrator.py``; what each record becomes is told in
``narrator_kernel.py`` (the loop, tasks and traps) and ``narrator_asyncio.py`` (the adapter's
callbacks).

Read next: ``kernel/__main__.py`` (the command line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from .narrator import Step, _deadline, _t, _wrap
from .narrator_asyncio import _AsyncioNarrator
from .narrator_kernel import _KernelNarrator
from .records import Record
from .script import UsageError, add_script_arguments, trace

__all__ = ["Step", "add_arguments", "command", "narrate", "render", "select", "steps"]


def narrate(
    records: list[Record],
    *,
    asyncio: bool = False,
    virtual: bool = False,
    task: str | None = None,
    limit: int | None = None,
    title: str | None = None,
) -> str:
    """The whole narration: an introduction, then the steps (filtered, limited)."""
    chosen = select(steps(records, asyncio=asyncio, virtual=virtual), task=task, limit=limit)
    lines = [] if title is None else [*_wrap(title, indent=""), ""]
    lines += [*_introduction(asyncio, virtual), ""]
    lines += render(chosen, asyncio=asyncio)
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m kernel explain``'s options."""
    add_script_arguments(parser)
    parser.add_argument("--task", metavar="NAME", help="only the steps that involve this task")
    parser.add_argument("--limit", metavar="N", type=step_count, help="stop after N steps")
    parser.add_argument(
        "--json", action="store_true", help="print the records of those steps as JSON instead"
    )


def command(args: argparse.Namespace) -> int:
    """``python -m kernel explain``: run the script recorded, print the narration."""
    traced = trace(args.script, aio=args.aio, deterministic=args.deterministic)
    # (A step involves the task if one of its records does: the records tell, unnarrated.)
    if args.task is not None and not any(_involves(r, args.task) for r in traced.records):
        tasks = sorted({r["task"] for r in traced.records if r.get("task")})
        raise UsageError(
            f"--task {args.task!r} matches no task of this run; give a task's name, label "
            f"or id: {', '.join(map(repr, tasks)) or 'it spawned none'}"
        )
    if args.json:
        chosen = select(steps(traced.records, asyncio=args.aio), task=args.task, limit=args.limit)
        print(json.dumps([record for step in chosen for record in step.records], indent=1))
    else:
        runner = "kernel.aio's event loop" if args.aio else "the kernel"
        what = f"{args.script} (as __main__)" if traced.as_main else f"main() of {args.script}"
        title = f"How {runner} runs {what}, decision by decision."
        print(
            narrate(
                traced.records,
                asyncio=args.aio,
                virtual=args.deterministic,
                task=args.task,
                limit=args.limit,
                title=title,
            ),
            end="",
        )
    if traced.error is not None:
        print(f"explain: the program raised {traced.error!r}", file=sys.stderr)
        return 1
    return 0


def step_count(text: str) -> int:
    """``--limit``'s value: a whole number of steps, 1 or more. (argparse names the option.)"""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of steps, 1 or more, not {text!r}"
        )
    return number


def select(all_steps: list[Step], *, task: str | None, limit: int | None) -> list[Step]:
    """The steps that involve ``task`` (by name, label or id), at most ``limit`` of them."""
    chosen = [s for s in all_steps if task is None or any(_involves(r, task) for r in s.records)]
    return chosen if limit is None else chosen[:limit]


def steps(records: list[Record], *, asyncio: bool = False, virtual: bool = False) -> list[Step]:
    """Turn records into numbered steps."""
    return _Narrator(records, asyncio, virtual).run()


def render(chosen: Iterable[Step], *, asyncio: bool = False) -> list[str]:
    """Format steps as text: turn headers, numbered steps, and the structures when changed."""
    lines: list[str] = []
    shown_state = None
    last_header = None
    for step in chosen:
        if step.header is not None and step.header != last_header:
            lines += ["", step.header]
            last_header = step.header
        lines += _wrap(f"step {step.number} — {step.text}")
        state = step.state
        if state is not None and state != shown_state:
            lines += _wrap(_structures(state, asyncio), indent="    ", first="    ")
            shown_state = state
    return lines


def _introduction(asyncio: bool, virtual: bool) -> list[str]:
    if asyncio:
        text = [
            "kernel.aio keeps asyncio's structures in the kernel's: _ready is the kernel's "
            "ready queue, _scheduled (the TimerHandles) its sleeping queue, and the selector "
            "its I/O wait table. One turn of the kernel's loop is one _run_once: "
            "selector.select(timeout), then the TimerHandles that are due move to _ready, "
            "then every callback that was in _ready runs once.",
        ]
    else:
        text = [
            "Each turn of the loop has three phases: 1. poll I/O with select(), blocking if "
            "no task is ready; 2. move the tasks whose deadline has passed from the sleeping "
            "queue to the ready queue; 3. run each task that is ready, until it yields its "
            "next trap.",
        ]
    text.append(
        "After each step that changes them, the three structures are shown: "
        + ("_ready, _scheduled and the selector." if asyncio else "ready, sleeping and I/O.")
    )
    if virtual:
        text.append(
            "The clock is virtual: it starts at 0 and, when every task is blocked, jumps to the "
            "next deadline, so the times are exact and nothing really waits."
        )
    lines: list[str] = []
    for paragraph in text:
        lines += [*_wrap(paragraph, indent=""), ""]
    return lines[:-1]


def _structures(state: dict[str, Any], asyncio: bool) -> str:
    ready = ", ".join(state["ready"])
    sleeping = ", ".join(
        f"{_deadline(e)} {'for ever' if e['until'] is None else 'at ' + _t(e['until'])}"
        for e in state["sleeping"]
    )
    io = ", ".join(f"{e['fd']} ({e['for']}): {e['who']}" for e in state["io"])
    if asyncio:
        return f"_ready: [{ready}] · _scheduled: [{sleeping}] · selector: [{io}]"
    return f"ready: [{ready}] · sleeping: [{sleeping}] · I/O: [{io}]"


def _involves(record: Record, name: str) -> bool:
    """Does ``record`` concern the task called ``name`` (a name, a label, or a task id)?"""
    values = [record.get(key) for key in ("task", "by", "on", "future", "who", "callback")]
    values += record.get("ready") or []
    if record.get("nearest"):
        values.append(record["nearest"]["who"])
    return any(isinstance(v, str) and _mentions(v, name) for v in values)


def _mentions(label: str, name: str) -> bool:
    return (
        label == name
        or label.startswith((f"{name} (task ", f"{name}.", f"{name}("))
        or label.endswith(f"(task {name})")
        or f"({name})" in label
        or f"({name}," in label
    )


class _Narrator(_KernelNarrator, _AsyncioNarrator):
    """Walks the records once, turning each decision into a step, in either vocabulary."""
