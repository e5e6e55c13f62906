"""Shared test helpers. The kernel's pytest plugin (kernel.pytest_plugin) runs async tests."""

from __future__ import annotations

import faulthandler
import signal
from collections.abc import Iterator

import pytest

import kernel
import kernel.aio

pytest_plugins = ["pytester"]


@pytest.fixture
def no_timeout_signal() -> Iterator[None]:
    """For a test whose kernel must be able to see a deadlock (``kernel/diagnostics.py``).

    The kernel stays silent while a Python signal handler could still wake a task, and
    pytest-timeout's SIGALRM handler is one. This takes it down for the test and arms
    faulthandler's watchdog instead -- a C thread, no handler -- which prints every thread's
    stack (to file descriptor 2: pytest may have replaced sys.stderr) and ends the run, should
    the test hang after all.
    """
    signal.setitimer(signal.ITIMER_REAL, 0)
    previous = signal.signal(signal.SIGALRM, signal.SIG_DFL)
    faulthandler.dump_traceback_later(60, exit=True, file=2)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        if previous is not None:  # None: a handler installed outside Python, not ours to put back
            signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def aio_loop() -> Iterator[kernel.aio.EventLoop]:
    """An asyncio adapter loop on a fresh kernel with a ``VirtualClock`` (time starts at 0.0).

    The adapter tests are plain ``def`` tests (the plugin would run an ``async def`` test as
    a kernel task): they drive this loop themselves, with ``run_until_complete``.
    """
    loop = kernel.aio.new_event_loop(clock=kernel.VirtualClock())
    try:
        yield loop
    finally:
        loop.close()
