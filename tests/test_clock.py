"""The clocks on their own (no kernel): what select() may wait, and when virtual time jumps."""

import time

from kernel import MonotonicClock, VirtualClock


def test_monotonic_clock_is_real_time_and_never_jumps() -> None:
    clock = MonotonicClock()
    before = time.monotonic()
    assert before <= clock.now() <= time.monotonic()
    assert clock.real_timeout(2.5) == 2.5
    assert clock.real_timeout(None) is None
    now = clock.now()
    clock.idle(now + 1000)  # nothing happens: real time cannot be skipped
    assert clock.now() < now + 1000


def test_virtual_clock_jumps_to_the_deadline_when_idle() -> None:
    clock = VirtualClock()
    assert clock.real_timeout(10.0) == 0.0  # do not really wait: poll, then jump
    clock.idle(10.0)
    assert clock.now() == 10.0
    clock.idle(3.0)  # a deadline in the past never moves time backwards
    assert clock.now() == 10.0
    assert repr(clock) == "VirtualClock(now=10.0)"


def test_virtual_clock_with_no_deadline_waits_for_real_events() -> None:
    assert VirtualClock().real_timeout(None) is None


def test_autojump_threshold_lets_real_io_arrive_first() -> None:
    clock = VirtualClock(autojump_threshold=0.25)
    assert clock.real_timeout(10.0) == 0.25
    assert clock.real_timeout(0.1) == 0.1


def test_a_virtual_clock_refuses_times_that_are_not_finite() -> None:
    import math

    import pytest

    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="starts at a finite time"):
            VirtualClock(start=bad)
        with pytest.raises(ValueError, match="autojump_threshold is a number of real seconds"):
            VirtualClock(autojump_threshold=bad)
        with pytest.raises(ValueError, match="advance\\(\\) takes a finite number"):
            VirtualClock().advance(bad)
