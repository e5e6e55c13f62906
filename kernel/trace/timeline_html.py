"""The timeline as one self-contained HTML page: inline SVG, CSS and script, nothing to fetch.

``render_html(timeline)`` draws what ``timeline_text.py`` prints as text: one row per task, its
name at the left; each slice a rectangle coloured by how it ended, with its symbol in it;
between slices, a thin band (ready: waiting for its turn) or a line (blocked). Above the
rows, the axis: the turns of the loop and the time where it changes (ticks axis), or a time
ruler (time axis). Below, the legend.

Hovering a slice (or focusing it with the keyboard) shows a tooltip -- an HTML element,
``#tooltip``, not an SVG ``<title>``, so a test can read it -- naming the task, the trap that
ended the slice with its arguments, where that left the task, the traps answered on the way,
what the program printed, and when the slice began and ended (turn and time).

The page runs no code from outside and loads nothing: every value from the trace is escaped,
and the script only reads ``data-`` attributes and sets ``textContent``. When the script has
set up the page it marks ``<body data-ready="yes">``.

Read next: ``tests/test_timeline_browser.py``, which opens the page in a real headless
browser.
"""

from __future__ import annotations

from html import escape

from .timeline_model import (
    BLOCKED,
    CALLBACKS,
    FILL,
    READY,
    SYMBOLS,
    Column,
    Timeline,
    format_seconds,
)
from .timeline_text import TICKS_AXIS, summary, time_step

__all__ = ["render_html"]

ROW = 26  # height of a row, in pixels
BAR = 18  # height of a slice's rectangle
AXIS = 46  # height of the axis above the rows
COLUMN = 24  # width of a column on the ticks axis
TIME_WIDTH = 960  # width of the chart on the time axis
MIN_SLICE = 6  # a slice of no duration is still this wide, so it can be hovered
CHAR = 7.8  # width of a character of the labels' monospace font, to size the names

# Fill colour of a slice, by symbol: waits are cool colours, ends are greys and red.
COLOURS = {
    "S": "#4e79a7",
    "I": "#2f8f5b",
    "W": "#d9731a",
    "J": "#8e5ea2",
    "F": "#3a8f8a",
    "Y": "#b8960c",
    "X": "#5f6b73",
    "E": "#c8313b",
    "C": "#8c5a3c",
    "T": "#7a7f9a",
    "*": "#a05d8c",
    "?": "#e0457b",
}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2327; }
h1 { font-size: 1.25em; margin: 0 0 .3em; }
p.summary { margin: 0 0 1em; max-width: 70em; }
.chart { display: flex; align-items: flex-start; border: 1px solid #d0d5da; }
.scroll { overflow-x: auto; flex: 1; }
svg text { font: 12px ui-monospace, monospace; fill: #1d2327; }
.names { background: #f6f8fa; border-right: 1px solid #d0d5da; flex: none; }
.axis-label { fill: #57606a; }
.grid { stroke: #d8dee4; stroke-width: 1; }
.row-band:nth-of-type(even) { fill: #fafbfc; }
.row-band { fill: #ffffff; }
.state.ready { fill: #9cc5e8; }
.state.blocked { fill: #b6bdc4; }
.slice { stroke: #1d2327; stroke-opacity: .35; cursor: pointer; }
.slice:hover, .slice:focus { stroke-opacity: 1; stroke-width: 2; outline: none; }
.symbol { fill: #ffffff; font-weight: bold; pointer-events: none; text-anchor: middle; }
#tooltip { position: fixed; z-index: 10; max-width: 36em; padding: .5em .7em;
  background: #1d2327; color: #f6f8fa; border-radius: 4px; font-size: 13px;
  box-shadow: 0 2px 8px rgba(0,0,0,.3); pointer-events: none; }
#tooltip .tip-task { font-weight: bold; }
#tooltip .tip-trap { font-family: ui-monospace, monospace; }
#tooltip .tip-more { color: #c9d1d9; }
.legend { list-style: none; padding: 0; margin: 1em 0; }
.legend li { margin: .2em 0; }
.swatch { display: inline-block; width: 1.4em; text-align: center; color: #fff;
  font: bold 12px ui-monospace, monospace; border-radius: 3px; margin-right: .5em; }
.swatch.ready { background: #9cc5e8; color: #1d2327; }
.swatch.blocked { background: #b6bdc4; color: #1d2327; }
"""

# Fills the tooltip from the data- attributes of the slice under the pointer (or focused).
SCRIPT = """
(function () {
  "use strict";
  const tip = document.getElementById("tooltip");
  function line(cls, text) {
    const div = document.createElement("div");
    div.className = cls;
    div.textContent = text;
    return div;
  }
  function place(x, y) {
    const left = Math.min(x + 14, window.innerWidth - tip.offsetWidth - 8);
    const top = Math.min(y + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = Math.max(4, left) + "px";
    tip.style.top = Math.max(4, top) + "px";
  }
  function show(slice, x, y) {
    const d = slice.dataset;
    const lines = [line("tip-task", d.task)];
    lines.push(line("tip-trap", "ended on " + d.trap + ": " + d.call));
    if (d.outcome) lines.push(line("tip-more", d.outcome));
    if (d.also) lines.push(line("tip-more", "on the way: " + d.also));
    if (d.printed) lines.push(line("tip-more", "printed: " + d.printed));
    lines.push(line("tip-more", d.when));
    tip.replaceChildren(...lines);
    tip.hidden = false;
    place(x, y);
  }
  function hide() { tip.hidden = true; }
  for (const slice of document.querySelectorAll(".slice")) {
    slice.addEventListener("mouseenter", (e) => show(slice, e.clientX, e.clientY));
    slice.addEventListener("mousemove", (e) => place(e.clientX, e.clientY));
    slice.addEventListener("mouseleave", hide);
    slice.addEventListener("focus", () => {
      const box = slice.getBoundingClientRect();
      show(slice, box.right, box.bottom);
    });
    slice.addEventListener("blur", hide);
  }
  document.body.dataset.ready = "yes";
})();
"""


def render_html(timeline: Timeline, *, axis: str = "ticks", title: str = "Timeline") -> str:
    """The whole page, as one string."""
    chart = _Chart(timeline, axis)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="summary">{escape(summary(timeline))} {escape(_axis_help(axis))}</p>',
            '<div class="chart">',
            chart.names(),
            f'<div class="scroll">{chart.lanes()}</div>',
            "</div>",
            _legend(timeline),
            '<div id="tooltip" role="tooltip" hidden></div>',
            f"<script>{SCRIPT}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _axis_help(axis: str) -> str:
    if axis == "ticks":
        return TICKS_AXIS
    return (
        f"Each slice spans the time it ran, and is at least {MIN_SLICE} pixels wide, so that "
        "one that took (almost) no time can still be hovered."
    )


class _Chart:
    """Positions on the chosen axis, and the two SVGs: the names, and the rows (lanes)."""

    def __init__(self, timeline: Timeline, axis: str) -> None:
        self.timeline = timeline
        self.axis = axis
        self.height = AXIS + ROW * len(timeline.rows) + 4
        self.row_of = {row: index for index, row in enumerate(timeline.rows)}
        span = timeline.duration or 1.0
        self.scale = TIME_WIDTH / span  # pixels per second, on the time axis
        count = len(timeline.columns)
        self.width = COLUMN * count + 8 if axis == "ticks" else TIME_WIDTH + 16

    def x(self, index: int, column: Column) -> tuple[float, float]:
        """Left edge and width of a column's slice."""
        if self.axis == "ticks":
            return index * COLUMN + 2, COLUMN - 2
        left = column.start * self.scale
        return left + 4, max(MIN_SLICE, (column.end - column.start) * self.scale)

    def top(self, row: str) -> int:
        return AXIS + ROW * self.row_of[row]

    def names(self) -> str:
        longest = max((len(row) for row in self.timeline.rows), default=4)
        width = int(max(longest, 5) * CHAR) + 20
        parts = [f'<svg class="names" width="{width}" height="{self.height}">']
        headers = ("turn", "t (s)") if self.axis == "ticks" else ("", "t (s)")
        for baseline, header in zip((18, 38), headers, strict=True):
            parts.append(f'<text class="axis-label" x="10" y="{baseline}">{header}</text>')
        for row in self.timeline.rows:
            y = self.top(row) + ROW / 2 + 4
            kind = escape(self.timeline.kinds[row])
            parts.append(
                f'<text class="row-label" x="10" y="{y}" data-row="{escape(row)}" '
                f'data-kind="{kind}">{escape(row)}</text>'
            )
        parts.append("</svg>")
        return "\n".join(parts)

    def lanes(self) -> str:
        parts = [f'<svg class="lanes" width="{self.width}" height="{self.height}">']
        for row in self.timeline.rows:
            parts.append(
                f'<rect class="row-band" x="0" y="{self.top(row)}" width="{self.width}" '
                f'height="{ROW}"></rect>'
            )
        parts += self._axis()
        parts += self._states()
        parts += self._slices()
        parts.append("</svg>")
        return "\n".join(parts)

    def _axis(self) -> list[str]:
        """Gridlines and labels: each turn and each new time (ticks), or a time ruler."""
        parts = []
        columns = self.timeline.columns
        if self.axis == "ticks":
            turn_end = time_end = -1.0
            for index, column in enumerate(columns):
                left = index * COLUMN + 2.0
                before = columns[index - 1] if index else None
                if before is None or column.tick != before.tick:
                    parts.append(_gridline(left - 1, self.height))
                    if left >= turn_end:
                        parts.append(_axis_label(left, 18, str(column.tick)))
                        turn_end = left + CHAR * len(str(column.tick)) + 4
                if before is None or column.start != before.start:
                    text = format_seconds(column.start)
                    if left >= time_end:
                        parts.append(_axis_label(left, 38, text))
                        time_end = left + CHAR * len(text) + 4
            return parts
        span = self.timeline.duration or 1.0
        step = time_step(span, TIME_WIDTH / 8)  # a label every 80 pixels or more
        for k in range(int(span / step + 1e-9) + 1):
            x = k * step * self.scale + 4
            parts.append(_gridline(x, self.height))
            parts.append(_axis_label(x + 2, 38, format_seconds(k * step, 6)))
        return parts

    def _states(self) -> list[str]:
        """Between slices: a band where a task is ready, a line where it is blocked."""
        parts = []
        columns = self.timeline.columns
        for index, column in enumerate(columns):
            if self.axis == "ticks":
                left, width = index * COLUMN * 1.0, float(COLUMN)
            else:  # from the end of this column to the start of the next
                following = columns[index + 1].start if index + 1 < len(columns) else column.end
                left = column.end * self.scale + 4
                width = max(0.0, (following - column.end) * self.scale)
            for row, state in column.states.items():
                if column.slice is not None and column.slice.row == row and self.axis == "ticks":
                    continue
                thickness = 8 if state == READY else 2
                y = self.top(row) + (ROW - thickness) / 2
                parts.append(
                    f'<rect class="state {state}" x="{left:.1f}" y="{y:.1f}" '
                    f'width="{width:.1f}" height="{thickness}"></rect>'
                )
        return parts

    def _slices(self) -> list[str]:
        parts = []
        for index, column in enumerate(self.timeline.columns):
            slice_ = column.slice
            if slice_ is None:
                continue
            left, width = self.x(index, column)
            y = self.top(slice_.row) + (ROW - BAR) / 2
            when = _when(slice_.tick, slice_.start, slice_.end, self.timeline.virtual)
            data = {
                "task": slice_.row,
                "trap": slice_.ended_on,
                "call": slice_.call,
                "outcome": slice_.outcome,
                "also": ", ".join(slice_.also),
                "printed": " / ".join(slice_.printed),
                "when": when,
            }
            attributes = " ".join(f'data-{key}="{escape(value)}"' for key, value in data.items())
            colour = COLOURS.get(slice_.symbol, COLOURS["?"])
            kind = "callback" if slice_.row == CALLBACKS else "task"
            parts.append(
                f'<rect class="slice {kind}" tabindex="0" x="{left:.1f}" y="{y:.1f}" '
                f'width="{width:.1f}" height="{BAR}" rx="3" fill="{colour}" {attributes}></rect>'
            )
            if width >= 10:
                centre = left + width / 2
                parts.append(
                    f'<text class="symbol" x="{centre:.1f}" y="{y + BAR - 5:.1f}">'
                    f"{escape(slice_.symbol)}</text>"
                )
        return parts


def _gridline(x: float, height: int) -> str:
    return f'<line class="grid" x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height}"></line>'


def _axis_label(x: float, y: int, text: str) -> str:
    return f'<text class="axis-label" x="{x:.1f}" y="{y}">{escape(text)}</text>'


def _when(tick: int, start: float, end: float, virtual: bool) -> str:
    """When a slice ran: its turn, and its times (with how long it took, in real time)."""
    if virtual:  # a slice takes no time on the virtual clock
        return f"turn {tick}, t={format_seconds(start)} s"
    took = format_seconds((end - start) * 1e6, 0)
    began, ended = format_seconds(start, 6), format_seconds(end, 6)
    return f"turn {tick}, t={began} s to t={ended} s ({took} µs)"


def _legend(timeline: Timeline) -> str:
    """The symbols in use, with the traps each stood for, and the two states between slices."""
    seen = timeline.endings()
    items = []
    for symbol, meaning in SYMBOLS.items():
        if symbol in seen:
            colour = COLOURS[symbol]
            items.append(
                f'<li><span class="swatch" style="background:{colour}">{escape(symbol)}</span>'
                f"{escape(meaning)} ({escape(', '.join(seen[symbol]))})</li>"
            )
    for state, meaning in (
        (READY, "ready: on the ready queue, waiting for its turn"),
        (BLOCKED, "blocked: parked until something wakes it"),
    ):
        items.append(
            f'<li><span class="swatch {state}">{escape(FILL[state])}</span>'
            f"between slices, {escape(meaning)}</li>"
        )
    heading = "<p>Each slice is coloured by how it ended; hover over one for its details.</p>"
    return heading + '\n<ul class="legend">\n' + "\n".join(items) + "\n</ul>"
