"""The narrator's walk: records in, numbered steps out, and the words every view shares.

``explain.py`` tells a trace as steps (``Step``); the walk that makes them is here.
``_NarratorBase.run`` takes the records in order and hands each untold one to the method named
after its event (``_trap`` for a ``trap`` record...), which returns the text of a step, or
None. A method may *fold* the records that follow into its step (``_fold``: a trap and where it
parked the task are one decision for a reader); a folded record is not told again. Key
invariant: every record is told at most once, in the step of the decision it belongs to.

The methods that tell the events are in two vocabularies: ``narrator_kernel.py`` (the loop,
tasks, traps) and ``narrator_asyncio.py`` (the adapter's callbacks); ``explain.py`` puts them
together.

The small functions below -- times as ``t=1.000``, lists of names as "a, b and c", text wrapped
to the page -- are also how ``compare.py`` writes.

Read next: ``kernel/trace/narrator_kernel.py``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .records import Record

__all__ = ["Step"]

WIDTH = 100


@dataclass
class Step:
    """One numbered step of the narration: one decision, made of one or more records."""

    number: int
    text: str
    records: list[Record] = field(default_factory=list)
    header: str | None = None  # a turn begins here

    @property
    def state(self) -> dict[str, Any] | None:
        for record in reversed(self.records):
            if record.get("state") is not None:
                return record["state"]  # type: ignore[no-any-return]
        return None


def _wrap(text: str, indent: str = "    ", first: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _deadline(entry: dict[str, Any]) -> str:
    """What a sleeping-queue entry is: a sleeper, a timeout, or a callback (TimerHandle)."""
    return f"the timeout of {entry['who']}" if entry["kind"] == "timeout" else str(entry["who"])


def _t(seconds: float | None) -> str:
    return "t=?" if seconds is None else f"t={seconds:.3f}"


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def _names(labels: list[str]) -> str:
    if not labels:
        return "nobody"
    if len(labels) == 1:
        return labels[0]
    return ", ".join(labels[:-1]) + " and " + labels[-1]


class _NarratorBase:
    """Walks the records once, turning each decision into a step (the telling is in
    subclasses: a method per event)."""

    def __init__(self, records: list[Record], asyncio: bool, virtual: bool) -> None:
        self.records = records
        self.asyncio = asyncio
        self.virtual = virtual
        self.steps: list[Step] = []
        self.used: set[int] = set()  # indexes of records already told
        self.header: str | None = None
        self.main: str | None = None  # the main task (kernel.run's)
        self.joiners: list[Record] = []  # join wake-ups, told with the task's end
        self.finished: set[str] = set()  # asyncio tasks whose end has been told
        self._folded: list[Record] = []  # records told as part of the step being made
        self.waited = -1  # the last turn whose select() could block
        self.skipped = False  # has a turn without select() been told yet?
        self.completing = False  # inside run_until_complete

    def run(self) -> list[Step]:
        for index, record in enumerate(self.records):
            if index in self.used:
                continue
            self.used.add(index)
            tell: Callable[[int, Record], str | None] | None = getattr(
                self, "_" + record["event"], None
            )
            text = tell(index, record) if tell is not None else None
            if text is not None:
                self._step(text, [record, *self._folded])
            self._folded = []
        return self.steps

    def _step(self, text: str, records: list[Record]) -> None:
        self.steps.append(Step(len(self.steps) + 1, text, records, self.header))

    def _fold(self, index: int) -> Record:
        """Tell record ``index`` as part of the current step."""
        self.used.add(index)
        self._folded = [*self._folded, self.records[index]]
        return self.records[index]

    def _next(self, index: int, *events: str, task: str | None = None) -> int | None:
        """The index of the next untold record, if it is one of ``events`` (about ``task``)."""
        for later in range(index + 1, len(self.records)):
            if later in self.used:
                continue
            record = self.records[later]
            if record["event"] in events and (task is None or record["task"] == task):
                return later
            return None
        return None

    def _following(self, index: int, event: str) -> list[int]:
        """The untold records of ``event`` right after ``index``."""
        found = []
        while (later := self._next(index, event)) is not None:
            found.append(later)
            index = later
        return found
