"""Clocks: where the kernel's idea of "now" comes from.

The kernel never calls ``time.monotonic()`` itself; it asks its clock. Two clocks exist:

* ``MonotonicClock`` -- real time, the default.
* ``VirtualClock`` -- test time. It starts at 0.0 and only moves when every task is blocked:
  instead of letting ``select()`` sleep until the next deadline, the kernel polls for I/O
  and, if nothing happened, the clock *jumps* to that deadline. A test that sleeps for an
  hour finishes at once and can assert exact times (``await clock() == 3600.0``).

A clock has three methods, used only by the run loop:

``now()``                 the current time in seconds;
``real_timeout(t)``       how long ``select()`` may really block when the nearest deadline is
                          ``t`` seconds away (``None``: no deadline at all);
``idle(deadline)``        ``select()`` returned nothing; the nearest deadline is ``deadline``.

Read next: ``kernel/task.py``.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

__all__ = ["Clock", "MonotonicClock", "VirtualClock"]


class Clock(Protocol):
    """What the kernel needs from a clock."""

    def now(self) -> float: ...

    def real_timeout(self, timeout: float | None) -> float | None: ...

    def idle(self, deadline: float) -> None: ...


class MonotonicClock:
    """Real time from ``time.monotonic()``."""

    def __init__(self) -> None:
        self.now = time.monotonic  # the method *is* the OS call: no wrapper in the hot path

    def real_timeout(self, timeout: float | None) -> float | None:
        return timeout

    def idle(self, deadline: float) -> None:
        pass


class VirtualClock:
    """Test time that jumps to the next deadline whenever every task is blocked.

    ``autojump_threshold`` is how long (in real seconds) the kernel lets ``select()`` wait for
    real I/O or threads before jumping; the default 0 jumps at once.
    """

    def __init__(self, start: float = 0.0, autojump_threshold: float = 0.0) -> None:
        if not (math.isfinite(autojump_threshold) and autojump_threshold >= 0):
            raise ValueError(
                f"autojump_threshold is a number of real seconds, 0 or more; got "
                f"{autojump_threshold!r}"
            )
        if not math.isfinite(start):
            raise ValueError(f"a VirtualClock starts at a finite time; got start={start!r}")
        self._now = float(start)
        self.autojump_threshold = autojump_threshold

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (tasks due by then wake on the kernel's next pass)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards: advance({seconds!r})")
        if not math.isfinite(seconds):
            raise ValueError(f"advance() takes a finite number of seconds, not {seconds!r}")
        self._now += seconds

    def real_timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return None  # no deadline to jump to: wait for real I/O or a thread
        return min(timeout, self.autojump_threshold)

    def idle(self, deadline: float) -> None:
        if deadline > self._now:
            self._now = deadline
