"""A pytest plugin (registered by entry point): ``async def`` tests run under the kernel.

Every ``async def test_*`` runs as the main task of a fresh kernel whose clock is a
``VirtualClock``, so sleeps and timeouts take no real time and tests can assert exact times::

    async def test_timeout(virtual_clock):
        with pytest.raises(kernel.TaskTimeout):
            await kernel.timeout_after(5, kernel.sleep, 10)
        assert virtual_clock.now() == 5.0

Request the ``virtual_clock`` fixture to read or advance that clock. Mark a test
``@pytest.mark.realtime`` to run it on the real monotonic clock instead.

Async fixtures -- ``async def``, or an async generator whose ``yield`` hands over the value
and whose rest is the teardown -- run in the same kernel, in the test's main task: set up
in dependency order before the test, torn down in reverse after it, even if it failed. A
kernel lives for one test, so they are function-scoped; only async tests can use them.

Discussion: pytest resolves fixtures before it calls the test, when no kernel runs yet.
So an async fixture is set up in two halves. pytest's half gives it a placeholder, a
``_Pending`` that holds the fixture's function and arguments (pytest-trio works the same
way); the test's kernel then runs the function and puts the value where the placeholder
was.

Read next: ``tests/`` -- the project's own tests use this plugin.
"""

from __future__ import annotations

import contextlib
import inspect
import types
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, cast

import pytest

from .clock import Clock, MonotonicClock, VirtualClock
from .scheduler import run

__all__ = ["pytest_configure", "pytest_fixture_setup", "pytest_pyfunc_call", "virtual_clock"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realtime: run this async test on the real clock instead of a virtual one"
    )


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """The virtual clock of the kernel that runs this test (time starts at 0.0)."""
    return VirtualClock()


class _Pending:
    """An async fixture that pytest has resolved but no kernel has run yet: its function and
    its arguments (among which may be other ``_Pending`` fixtures)."""

    def __init__(self, name: str, func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        self.name = name
        self.func = func
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"<async fixture {self.name!r}, not set up: only an async test can use it>"


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """pytest's half of an async fixture: its value is a ``_Pending`` (see the docstring)."""
    func = fixturedef.func
    if not (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)):
        _refuse_async_arguments(fixturedef, request)
        return (yield)
    name = fixturedef.argname
    if fixturedef.scope != "function":
        pytest.fail(
            f"async fixture {name!r} has scope {fixturedef.scope!r}: with the kernel's plugin "
            f"an async fixture runs in the test's own kernel, which lives for one test -- "
            f"make it function-scoped, or a plain (sync) fixture",
            pytrace=False,
        )
    resolved = _fixture_function(fixturedef, request)  # (bound to the test's instance)
    # (pytest types ``func`` as final, but its own setup is what we want run, with this.)
    fixturedef.func = lambda **kwargs: _Pending(name, resolved, kwargs)  # type: ignore[misc]
    try:
        return (yield)  # pytest's own setup calls it, and caches what it returns
    finally:
        fixturedef.func = func  # type: ignore[misc]


def _refuse_async_arguments(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    """A sync fixture would get an async one's placeholder, not its value: say so."""
    for argname in fixturedef.argnames:
        if argname != "request" and isinstance(request.getfixturevalue(argname), _Pending):
            pytest.fail(
                f"fixture {fixturedef.argname!r} is not async, but uses the async fixture "
                f"{argname!r}, whose value exists only in the test's kernel: make "
                f"{fixturedef.argname!r} an async def too",
                pytrace=False,
            )


def _fixture_function(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Callable[..., Any]:
    """The fixture's function as pytest would call it (a method bound to the test class's
    instance), by pytest's own rule where this pytest has it."""
    with contextlib.suppress(ImportError):
        from _pytest.fixtures import resolve_fixture_function

        return cast("Callable[..., Any]", resolve_fixture_function(fixturedef, request))
    return fixturedef.func


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    func = pyfuncitem.obj
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    # Every async fixture the test uses, in pytest's order: its arguments, and those it
    # does not take (autouse, usefixtures), which must be set up all the same.
    pending = {
        name: value
        for name in pyfuncitem.fixturenames
        if isinstance(value := pyfuncitem.funcargs.get(name), _Pending)
    }
    if not inspect.iscoroutinefunction(func):
        if pending:
            pytest.fail(
                f"{pyfuncitem.nodeid} is not async, but uses the async fixture "
                f"{next(iter(pending))!r} (as an argument, autouse or usefixtures), which only "
                f"a kernel can set up: make the test `async def`",
                pytrace=False,
            )
        return None  # not ours: let pytest call it
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
    if pending:
        main = cast(
            "types.CoroutineType[Any, Any, None]", _with_async_fixtures(func, kwargs, pending)
        )
        main.__name__, main.__qualname__ = func.__name__, func.__qualname__  # the task's name
        run(main, clock=clock)
    else:
        run(func(**kwargs), clock=clock)
    return True


async def _with_async_fixtures(
    test: Callable[..., Any], kwargs: dict[str, Any], pending: dict[str, _Pending]
) -> None:
    """The test's main task: set up its async fixtures (``pending``, in pytest's order), run
    it, tear them down."""
    async with contextlib.AsyncExitStack() as teardowns:
        values: dict[int, Any] = {}  # id(pending) -> its value: one set-up per fixture
        for value in pending.values():
            await _set_up(value, values, teardowns)
        for name, value in kwargs.items():
            kwargs[name] = await _set_up(value, values, teardowns)  # (set up: looked up)
        await test(**kwargs)


async def _set_up(value: Any, values: dict[int, Any], teardowns: contextlib.AsyncExitStack) -> Any:
    """The value of a fixture argument: a ``_Pending`` is set up (its own ``_Pending``
    arguments first), once however many use it; anything else is already a value."""
    if not isinstance(value, _Pending):
        return value
    if id(value) in values:
        return values[id(value)]
    kwargs = {name: await _set_up(arg, values, teardowns) for name, arg in value.kwargs.items()}
    if inspect.isasyncgenfunction(value.func):
        result = await teardowns.enter_async_context(_yielded(value.name, value.func(**kwargs)))
    else:
        result = await value.func(**kwargs)
    values[id(value)] = result
    return result


@contextlib.asynccontextmanager
async def _yielded(name: str, agen: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    """An async generator fixture as a context: what it yields, then the rest of it."""
    try:
        value = await agen.__anext__()
    except StopAsyncIteration:
        raise ValueError(f"async fixture {name!r} did not yield a value") from None
    try:
        yield value
    finally:
        try:
            await agen.__anext__()
        except StopAsyncIteration:
            pass
        else:
            await agen.aclose()
            pytest.fail(f"async fixture {name!r} yielded more than once", pytrace=False)
