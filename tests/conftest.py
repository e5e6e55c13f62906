"""Shared test helpers. The kernel's pytest plugin (kernel.pytest_plugin) runs async tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import kernel
import kernel.aio

pytest_plugins = ["pytester"]


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
