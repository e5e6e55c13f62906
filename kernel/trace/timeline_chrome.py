"""The timeline as a Chrome trace: JSON for ui.perfetto.dev or chrome://tracing.

``chrome_trace(timeline)`` gives Chrome's trace event format -- one "X" (complete) event per
slice, one thread per task -- and ``dumps_trace`` writes it one event per line, so that a diff
of two traces reads well.

Read next: ``kernel/trace/timeline_html.py``.
"""

from __future__ import annotations

import json
from typing import Any

from .timeline_model import Timeline

__all__ = ["chrome_trace", "dumps_trace"]

TICK_MICROSECONDS = 1000.0  # on the ticks axis, a slice is drawn one millisecond wide


def chrome_trace(
    timeline: Timeline, *, axis: str = "ticks", title: str = "kernel"
) -> dict[str, Any]:
    """The timeline in Chrome's trace event format: one "X" (complete) event per slice.

    Every task is a thread of one process (its name, its place); a slice is named after
    what ended it, and its ``args`` hold the rest (the call, the outcome, the turn, the
    times). Each turn of the loop is a global instant event. On the ticks axis the
    timestamps count slices, not time: slice number n begins at n ms.
    """
    tids = {row: number for number, row in enumerate(timeline.rows, 1)}
    events: list[dict[str, Any]] = [
        _metadata(0, "process_name", {"name": title}),
        _metadata(0, "thread_name", {"name": "turns of the loop"}),
    ]
    for row, tid in tids.items():
        events.append(_metadata(tid, "thread_name", {"name": row}))
        events.append(_metadata(tid, "thread_sort_index", {"sort_index": tid}))
    tick = 0
    for index, column in enumerate(timeline.columns):
        if axis == "ticks":
            start, duration = index * TICK_MICROSECONDS, TICK_MICROSECONDS
        else:
            start = round(column.start * 1e6, 3)
            duration = round((column.end - column.start) * 1e6, 3)
        if column.tick != tick:
            tick = column.tick
            turn = {"name": f"turn {tick}", "ph": "i", "s": "g", "pid": 1, "tid": 0, "ts": start}
            events.append(turn)
        slice_ = column.slice
        if slice_ is not None:
            events.append(
                {
                    "name": slice_.ended_on,
                    "cat": timeline.kinds[slice_.row],
                    "ph": "X",
                    "pid": 1,
                    "tid": tids[slice_.row],
                    "ts": start,
                    "dur": duration,
                    "args": {
                        "task": slice_.row,
                        "call": slice_.call,
                        "outcome": slice_.outcome,
                        "also": slice_.also,
                        "printed": slice_.printed,
                        "turn": slice_.tick,
                        "t_start": slice_.start,
                        "t_end": slice_.end,
                    },
                }
            )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"title": title, "axis": axis, "virtual_clock": timeline.virtual},
    }


def dumps_trace(exported: dict[str, Any]) -> str:
    """A Chrome trace as JSON text, one event per line (so that a diff reads well)."""
    events = ",\n".join(json.dumps(event) for event in exported["traceEvents"])
    rest = {key: value for key, value in exported.items() if key != "traceEvents"}
    return '{"traceEvents": [\n' + events + "\n],\n" + json.dumps(rest)[1:] + "\n"


def _metadata(tid: int, kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """A metadata event: the name of the process or of a thread, or a thread's place."""
    return {"name": kind, "ph": "M", "pid": 1, "tid": tid, "args": args}
