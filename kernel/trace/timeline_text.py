"""The timeline as text: a summary, the chart, the legend.

``render_text(timeline)`` prints one row per task, each slice as its symbol, the gaps between a
task's slices as ``-`` (ready) or ``.`` (blocked), on one of two axes:

* **ticks**: one column per slice (``CELL`` characters wide), in the order the slices ran,
  under the number of the turn they ran in, and the time where it changes; a chart wider than
  the page is cut into bands;
* **time**: one character per interval of time (``time_step`` picks a round step for the
  ruler); a slice is drawn where it began.

``summary`` and ``TICKS_AXIS`` are also the page's words (``timeline_html.py``).

Read next: ``kernel/trace/timeline_chrome.py``.
"""

from __future__ import annotations

import math
import textwrap
import unicodedata

from .timeline_model import BLOCKED, FILL, READY, SYMBOLS, Column, Timeline, format_seconds

__all__ = ["TICKS_AXIS", "render_text", "summary", "time_step"]

WIDTH = 100
LABEL_MAX = 24  # a longer task name is cut, so that the chart keeps its room
CELL = 2  # characters per column on the ticks axis: the symbol and a space


def render_text(
    timeline: Timeline, *, axis: str = "ticks", width: int = WIDTH, title: str | None = None
) -> str:
    """The timeline as text: a summary, the chart (in bands if it is wide), the legend."""
    lines = [] if title is None else [*_wrap(title, width), ""]
    how = TICKS_AXIS if axis == "ticks" else _TIME_AXIS
    lines += [*_wrap(f"{summary(timeline)} {how}", width), ""]
    lines += _ticks_chart(timeline, width) if axis == "ticks" else _time_chart(timeline, width)
    lines += ["", *_legend(timeline, width)]
    return "\n".join(lines) + "\n"


def summary(timeline: Timeline) -> str:
    """What the chart holds, in one sentence."""
    clock = "on the virtual clock" if timeline.virtual else "in real time"
    return (
        f"{_count(timeline.turns, 'turn')} of the loop, {_count(len(timeline.slices), 'slice')}, "
        f"{format_seconds(timeline.duration, _digits(timeline.duration, 2))} s {clock}."
    )


TICKS_AXIS = (
    "One column per slice, in the order they ran, under the number of the turn they ran in; "
    "the time (t, in seconds) is shown where it changes."
)

_TIME_AXIS = "Each slice is drawn where it began (the last one, if several begin in one column)."


def _ticks_chart(timeline: Timeline, width: int) -> list[str]:
    """One column per slice; as many bands of columns as the width needs."""
    label_width = _label_width(timeline)
    room = width - label_width
    per_band = max(1, room // CELL)
    columns = timeline.columns
    lines: list[str] = []
    for first in range(0, len(columns), per_band):
        band = columns[first : first + per_band]
        # A turn's number, and the time, are written where they change (and at the left).
        turns, times = [], []
        for i, column in enumerate(band):
            before = columns[first + i - 1] if i else None
            if before is None or column.tick != before.tick:
                turns.append((i * CELL, str(column.tick)))
            if before is None or column.start != before.start:
                times.append((i * CELL, format_seconds(column.start)))
        if first:
            lines.append("")
        lines.append(_ruler("turn", label_width, turns, room))
        lines.append(_ruler("t", label_width, times, room))
        for row in timeline.rows:
            cells = [_cell(column, row) for column in band]
            if any(cell != " " for cell in cells):
                lines.append((_label(row, label_width) + " ".join(cells)).rstrip())
    return lines


def _cell(column: Column, row: str) -> str:
    if column.slice is not None and column.slice.row == row:
        return column.slice.symbol
    return FILL.get(column.states.get(row, ""), " ")


def _time_chart(timeline: Timeline, width: int) -> list[str]:
    """One character per interval of time; a slice is drawn where it began."""
    label_width = _label_width(timeline)
    room = max(10, width - label_width)
    span = timeline.duration or 1.0

    def at(seconds: float) -> int:
        return min(room - 1, int(seconds / span * room))

    step = time_step(span, room)
    digits = _digits(step, 1)
    count = int(span / step + 1e-9) + 1
    marks = [(at(k * step), format_seconds(k * step, digits)) for k in range(count)]
    lines = [_ruler("t", label_width, marks, room)]
    for row in timeline.rows:
        symbols: dict[int, str] = {}
        state_from: dict[int, str] = {}  # cell -> the row's state after what began there
        for column in timeline.columns:
            cell = at(column.start)
            if column.slice is not None and column.slice.row == row:
                symbols[cell] = column.slice.symbol
            state_from[cell] = FILL.get(column.states.get(row, ""), " ")
        cells, state = [], " "
        for cell in range(room):
            state = state_from.get(cell, state)
            cells.append(symbols.get(cell, state))
        if any(cell != " " for cell in cells):
            lines.append((_label(row, label_width) + "".join(cells)).rstrip())
    return lines


def _digits(seconds: float, significant: int) -> int:
    """How many decimals show ``seconds`` with that many significant digits: 3 (a
    millisecond) unless it is shorter -- a program that ran for 80 µs is not "0 s" long."""
    if seconds <= 0 or seconds >= 0.001:
        return 3
    return -math.floor(math.log10(seconds)) + significant - 1


def time_step(span: float, room: float) -> float:
    """1, 2 or 5 times a power of ten: the step of a time ruler ``room`` cells long that
    puts a label every 10 cells or more."""
    wanted = span * 10 / room
    power = 10.0 ** math.floor(math.log10(wanted))
    return next(power * m for m in (1, 2, 5, 10) if power * m >= wanted - 1e-12)


def _ruler(name: str, label_width: int, marks: list[tuple[int, str]], room: int) -> str:
    """A line of labels at their positions, each dropped if it would touch the one before."""
    chars = [" "] * room
    end = -1
    for position, text in marks:
        if position >= end + 1 and position + len(text) <= room:
            chars[position : position + len(text)] = text
            end = position + len(text)
    return (_label(name, label_width) + "".join(chars)).rstrip()


def _label_width(timeline: Timeline) -> int:
    widest = max((_columns(_printable(row)) for row in timeline.rows), default=4)
    return min(widest, LABEL_MAX) + 2


def _label(text: str, width: int) -> str:
    """A row's name in ``width`` columns; a long one is cut, keeping its "(task n)"."""
    text = _printable(text)
    if _columns(text) > width - 2:
        name, task, number = text.rpartition(" (task ")
        suffix = task + number if name else ""
        text = _cut(name or text, width - 4 - _columns(suffix)) + ".." + suffix
    return text + " " * (width - _columns(text))


def _printable(text: str) -> str:
    """``text`` with control characters written as escapes: a task named ``"a\\nb"`` must not
    break its row in two."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _columns(text: str) -> int:
    """How many columns of a terminal ``text`` takes: a wide character (CJK ideographs,
    fullwidth forms) takes two, a combining mark (an accent drawn over the letter before it)
    none. ``len()`` counts characters, which would push the chart out of line."""
    return sum(_char_columns(char) for char in text)


def _char_columns(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _cut(text: str, columns: int) -> str:
    """The start of ``text`` that fits in ``columns`` columns."""
    used = 0
    for index, char in enumerate(text):
        used += _char_columns(char)
        if used > columns:
            return text[:index]
    return text


def _legend(timeline: Timeline, width: int) -> list[str]:
    """The symbols the chart uses, each with the traps (or outcomes) it stood for."""
    seen = timeline.endings()
    lines = ["Each slice is shown by how it ended:"]
    for symbol, meaning in SYMBOLS.items():
        if symbol in seen:
            text = f"  {symbol}  {meaning} ({', '.join(seen[symbol])})"
            lines += _wrap(text, width, indent=" " * 5)
    lines += _wrap(
        f"Between its slices a task is  {FILL[READY]}  ready (on the ready queue, waiting for "
        f"its turn)  or  {FILL[BLOCKED]}  blocked.",
        width,
    )
    return lines


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"
