"""The comparison written out: the verdict, the schedule or the divergence, the notes.

``render(comparison)`` is the text ``python -m kernel compare`` prints: if the schedules match,
the schedule once, turn by turn; if they diverge, where (turn and position on each side), a few
callbacks of context from both and the explanation; if only the turns are cut differently,
the callbacks around the first such cut. Then what differs between the loops without changing
the schedule, and what the program printed and how it ended on each. ``as_json`` gives the same
as plain data, with both schedules.

Read next: ``kernel/trace/asyncio_recorder.py``, the loop that records real asyncio.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .compare_align import Comparison, Ran, Run, Turn, _nth
from .narrator import _names, _t, _wrap  # the narration's way of writing times and text

__all__ = ["as_json", "render"]

CONTEXT = 3  # callbacks of context shown on each side of a divergence


def render(comparison: Comparison) -> str:
    """The comparison as text: the verdict, the schedule or the divergence, the notes."""
    asyncio_run = comparison.runs[0]
    virtual = comparison.deterministic
    how = "run as __main__" if asyncio_run.traced.as_main else "main() run to completion"
    clock = "a virtual clock" if virtual else "the real clock"
    lines = _wrap(
        f"compare: {comparison.program} ({how}) on asyncio's own event loop (a recording "
        f"SelectorEventLoop) and on kernel.aio, both on {clock}.",
        indent="",
    )
    lines.append("")
    count = len(asyncio_run.schedule)
    if comparison.verdict == "match":
        turns = len({r.turn for r in asyncio_run.schedule})
        lines += _wrap(
            f"The schedules match: {count} callbacks in {turns} turns, in the same order and "
            "the same turns.",
            indent="",
        )
        lines += ["", "The schedule, on both loops:"]
        lines += _listing(asyncio_run.schedule, asyncio_run.turns, virtual)
    elif comparison.verdict == "turns":
        lines += _turns_report(comparison)
    else:
        lines += _divergence_report(comparison)
    lines += _notes(comparison)
    lines += _outcomes(comparison)
    return "\n".join(lines) + "\n"


def _listing(
    ran: list[Ran], turns: list[Turn], virtual: bool, mark: int | None = None
) -> list[str]:
    """Callbacks under their turn headers; ``mark`` (a number) is flagged with ``>``."""
    lines: list[str] = []
    began = {turn.number: turn for turn in turns}
    last = None
    for entry in ran:
        if entry.turn != last:
            lines.append(
                f"  turn {entry.turn}{_turn_header(entry, began.get(entry.turn), virtual)}"
            )
            last = entry.turn
        first = "  > " if entry.number == mark else "    "
        lines += _wrap(
            f"{entry.number:>3}. {_describe(entry, virtual)}", first=first, indent=" " * 9
        )
    return lines


def _turn_header(entry: Ran, turn: Turn | None, virtual: bool) -> str:
    """``, t=1.000, after select() waited 1.000 s``: when the turn ran its callbacks."""
    text = f", {_t(entry.t)}" if virtual else ""
    if turn is not None and turn.selected and turn.timeout != 0:
        waited = "for I/O" if turn.timeout is None else f"{turn.timeout:.3f} s"
        text += f", after select() waited {waited}"
    return text


def _describe(entry: Ran, virtual: bool) -> str:
    text = entry.what
    if entry.due is not None and virtual:
        text += f", due at {_t(entry.due)}"
    if entry.did:
        text += ": " + "; ".join(entry.did)
    return text


def _divergence_report(comparison: Comparison) -> list[str]:
    asyncio_run, adapter_run = comparison.runs
    virtual = comparison.deterministic
    at = comparison.at
    assert at is not None
    a, b = _nth(asyncio_run, at), _nth(adapter_run, at)
    where = "; ".join(
        f"{run.loop}: turn {entry.turn}, position {entry.position}"
        for run, entry in ((asyncio_run, a), (adapter_run, b))
        if entry is not None
    )
    lines = _wrap(f"The schedules diverge at callback {at + 1} ({where}).", indent="")
    for run, entry in ((asyncio_run, a), (adapter_run, b)):
        ran = "nothing more" if entry is None else entry.what
        lines += _wrap(f"{run.loop + ' ran':<15}{ran}", first="  ", indent=" " * 17)
    before = asyncio_run.schedule[max(0, at - CONTEXT) : at]
    if before:
        lines += ["", "Before it, both loops ran:"]
        lines += _listing(before, asyncio_run.turns, virtual)
    for run in comparison.runs:
        after = run.schedule[at : at + CONTEXT]
        lines += ["", f"Then, on {run.loop}:"]
        lines += _listing(after, run.turns, virtual, mark=at + 1) if after else ["    nothing more"]
    lines += ["", *_wrap(f"Why: {comparison.why}", indent="")]
    return lines


def _turns_report(comparison: Comparison) -> list[str]:
    asyncio_run = comparison.runs[0]
    virtual = comparison.deterministic
    at = comparison.at
    assert at is not None
    counts = [len({r.turn for r in run.schedule}) for run in comparison.runs]
    entry = asyncio_run.schedule[at]
    lines = _wrap(
        f"Same order, different turn boundaries: the {len(asyncio_run.schedule)} callbacks ran "
        f"in the same order, in {counts[0]} turns on asyncio and {counts[1]} on kernel.aio. "
        f"The first difference is callback {at + 1}, {entry.what}:",
        indent="",
    )
    for run in comparison.runs:
        mine, previous = run.schedule[at], run.schedule[at - 1]
        shares = "in the same turn as" if mine.turn == previous.turn else "in the turn after"
        lines += _wrap(
            f"on {run.loop} it ran in turn {mine.turn}, {shares} callback {at}.",
            first="  ",
            indent="    ",
        )
    for run in comparison.runs:
        lines += ["", f"Around it, on {run.loop}:"]
        window = run.schedule[max(0, at - CONTEXT) : at + CONTEXT]
        lines += _listing(window, run.turns, virtual, mark=at + 1)
    lines += ["", *_wrap(f"Why: {comparison.why}", indent="")]
    return lines


def _notes(comparison: Comparison) -> list[str]:
    """What differs between the loops without changing the schedule."""
    asyncio_run, adapter_run = comparison.runs
    notes = []
    if any(r.kind == "step" for r in asyncio_run.schedule):
        notes.append(
            "kernel.aio puts a Task itself on the ready queue for each step, where asyncio "
            "queues a new Handle for it (loop.call_soon of a TaskStepMethWrapper): the entry "
            "takes the same place in the queue, so the order is the same."
        )
    skipped = [
        turn.number
        for turn, theirs in zip(adapter_run.turns, asyncio_run.turns, strict=False)
        if not turn.selected and theirs.selected
    ]
    if skipped:
        turns = _names([str(number) for number in skipped])
        notes.append(
            f"asyncio called selector.select(0) in {_count(len(skipped), 'turn')} ({turns}) "
            "where the kernel called no select(): callbacks were ready and nothing was "
            "watched, so select() could have found nothing."
        )
    if asyncio_run.plumbing:
        notes.append(
            f"asyncio ran its self-pipe reader (_read_from_self) "
            f"{_count(asyncio_run.plumbing, 'time')}: another thread woke the loop with "
            "call_soon_threadsafe. The kernel reads its wake-up socket inside select(); "
            "left out of the comparison."
        )
    if adapter_run.plumbing:
        notes.append(
            "kernel.aio ran an empty entry to turn a loop stopped before run_forever() once, "
            "as asyncio does without one; left out of the comparison."
        )
    lines = ["", "Differences that do not change the schedule:"] if notes else []
    for note in notes:
        lines += _wrap(note, first="  - ", indent="    ")
    return lines


def _outcomes(comparison: Comparison) -> list[str]:
    """What the program printed and how it ended, on each loop."""
    asyncio_run, adapter_run = comparison.runs
    lines = [""]
    if asyncio_run.printed == adapter_run.printed:
        lines += _wrap(
            f"Both runs printed the same output ({_count(len(asyncio_run.printed), 'line')}).",
            indent="",
        )
    else:
        pairs = zip([*asyncio_run.printed, ""], [*adapter_run.printed, ""], strict=False)
        number, (mine, theirs) = next(
            (i, pair) for i, pair in enumerate(pairs, 1) if pair[0] != pair[1]
        )
        lines += _wrap(
            f"The runs printed different lines: line {number} is {mine!r} on asyncio and "
            f"{theirs!r} on kernel.aio.",
            indent="",
        )
    ends = [_end(run) for run in comparison.runs]
    if ends[0] == ends[1]:
        lines += _wrap(f"On both loops, {ends[0]}.", indent="")
    else:
        lines += _wrap(f"On asyncio, {ends[0]}; on kernel.aio, {ends[1]}.", indent="")
    return lines


def _end(run: Run) -> str:
    traced = run.traced
    what = "the program" if traced.as_main else "main()"
    if traced.error is not None:
        return f"{what} raised {traced.error!r}"
    if traced.as_main:
        return "the program ran to its end"
    return f"{what} returned {traced.result!r}"


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def as_json(comparison: Comparison) -> dict[str, Any]:
    """The comparison as plain data: the verdict, the difference and both schedules."""
    return {
        "program": comparison.program,
        "deterministic": comparison.deterministic,
        "verdict": comparison.verdict,
        "at": comparison.at,
        "why": comparison.why,
        "runs": {
            run.loop: {
                "schedule": [asdict(entry) for entry in run.schedule],
                "turns": [asdict(turn) for turn in run.turns],
                "printed": run.printed,
                "error": None if run.traced.error is None else repr(run.traced.error),
                "result": None if run.traced.as_main else repr(run.traced.result),
            }
            for run in comparison.runs
        },
    }
