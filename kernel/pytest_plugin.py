"""A pytest plugin (registered by entry point): ``async def`` tests run under the kernel.

Every ``async def test_*`` runs as the main task of a fresh kernel whose clock is a
``VirtualClock``, so sleeps and timeouts take no real time and tests can assert exact times::

    async def test_timeout(virtual_clock):
        with pytest.raises(kernel.TaskTimeout):
            await kernel.timeout_after(5, kernel.sleep, 10)
        assert virtual_clock.now() == 5.0

Request the ``virtual_clock`` fixture to read or advance that clock. Mark a test
``@pytest.mark.realtime`` to run it on the real monotonic clock instead.

Read next: ``tests/`` -- the project's own tests use this plugin.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

import pytest

from .clock import Clock, MonotonicClock, VirtualClock
from .scheduler import run

__all__ = ["pytest_configure", "pytest_pyfunc_call", "virtual_clock"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realtime: run this async test on the real clock instead of a virtual one"
    )


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """The virtual clock of the kernel that runs this test (time starts at 0.0)."""
    return VirtualClock()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None  # not ours: let pytest call it
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    # The test's virtual_clock, however it came: a parameter, another fixture that uses it,
    # usefixtures, autouse -- pytest makes one value per test, and it must be the kernel's.
    requested = "virtual_clock" in pyfuncitem.fixturenames
    realtime = pyfuncitem.get_closest_marker("realtime") is not None
    if realtime and requested:
        raise pytest.UsageError(
            f"{pyfuncitem.nodeid} is marked realtime but asks for the virtual_clock fixture "
            f"(directly or through another fixture)"
        )
    clock: Clock = MonotonicClock()
    if not realtime:
        clock = cast(Clock, pyfuncitem.funcargs["virtual_clock"]) if requested else VirtualClock()
    run(func(**kwargs), clock=clock)
    return True
