"""kernel.aio.Future: asyncio's Future semantics, and asyncio's own functions accepting it.

Plain ``def`` tests: each drives an adapter loop (the ``aio_loop`` fixture, on a
``VirtualClock``) itself. "One turn" is asyncio's idiom ``loop.stop(); loop.run_forever()``:
everything queued before it runs, in order, and nothing queued during it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import gc
import sys
import threading
from collections.abc import Generator
from typing import Any

import pytest

import kernel.aio
from kernel.aio import EventLoop, Future


def run_once(loop: EventLoop) -> None:
    """Run one turn of ``loop``: the callbacks queued so far."""
    loop.stop()
    loop.run_forever()


def new_future(loop: EventLoop) -> asyncio.Future[Any]:
    """A kernel.aio Future, typed as asyncio's (whose protocol it follows) for asyncio's API."""
    return loop.create_future()


# -- reading and completing ------------------------------------------------------------------------


def test_a_pending_future_has_no_result_yet(aio_loop: EventLoop) -> None:
    future = new_future(aio_loop)
    assert not future.done()
    assert not future.cancelled()
    assert future.get_loop() is aio_loop
    with pytest.raises(asyncio.InvalidStateError, match="Result is not ready"):
        future.result()
    with pytest.raises(asyncio.InvalidStateError, match="Exception is not set"):
        future.exception()
    assert repr(future) == "<Future pending>"


def test_set_result(aio_loop: EventLoop) -> None:
    future = new_future(aio_loop)
    future.set_result(42)
    assert future.done()
    assert not future.cancelled()
    assert future.result() == 42
    assert future.exception() is None
    assert repr(future) == "<Future finished result=42>"


def test_set_exception_instance_and_class(aio_loop: EventLoop) -> None:
    error = ValueError("boom")
    future = new_future(aio_loop)
    future.set_exception(error)
    assert future.done()
    assert future.exception() is error
    with pytest.raises(ValueError, match="boom") as raised:
        future.result()
    assert raised.value is error

    from_class = new_future(aio_loop)
    from_class.set_exception(KeyError)  # a class is instantiated, as asyncio does
    assert type(from_class.exception()) is KeyError


def test_result_raised_twice_keeps_the_same_traceback(aio_loop: EventLoop) -> None:
    future = new_future(aio_loop)
    try:
        raise ValueError("boom")
    except ValueError as error:
        future.set_exception(error)
    depths = []
    for _ in range(2):
        with pytest.raises(ValueError) as raised:
            future.result()
        tb = raised.value.__traceback__
        depth = 0
        while tb is not None:
            depth += 1
            tb = tb.tb_next
        depths.append(depth)
    assert depths[0] == depths[1]


def test_a_done_future_cannot_be_completed_again(aio_loop: EventLoop) -> None:
    future = new_future(aio_loop)
    future.set_result(1)
    with pytest.raises(asyncio.InvalidStateError):
        future.set_result(2)
    with pytest.raises(asyncio.InvalidStateError):
        future.set_exception(ValueError())
    assert future.cancel() is False
    assert future.result() == 1

    cancelled = new_future(aio_loop)
    cancelled.cancel()
    with pytest.raises(asyncio.InvalidStateError):
        cancelled.set_result(2)


def test_stop_iteration_cannot_be_set_as_an_exception(aio_loop: EventLoop) -> None:
    # Raised out of __await__, StopIteration would look like the awaiting coroutine returning.
    future = new_future(aio_loop)
    stop = StopIteration("done")
    future.set_exception(stop)
    error = future.exception()
    assert type(error) is RuntimeError
    assert "StopIteration" in str(error)
    assert error.__cause__ is stop


# -- cancellation ----------------------------------------------------------------------------------


def test_cancel_with_a_message(aio_loop: EventLoop) -> None:
    future = new_future(aio_loop)
    assert future.cancel("no longer needed") is True
    assert future.cancelled()
    assert future.done()
    assert future.cancel() is False  # already done
    with pytest.raises(asyncio.CancelledError) as raised:
        future.result()
    assert raised.value.args == ("no longer needed",)
    with pytest.raises(asyncio.CancelledError, match="no longer needed"):
        future.exception()
    assert repr(future) == "<Future cancelled>"


def test_cancel_without_a_message(aio_loop: EventLoop) -> None:
    future = new_future(aio_loop)
    future.cancel()
    with pytest.raises(asyncio.CancelledError) as raised:
        future.result()
    assert repr(raised.value) == "CancelledError()"  # as asyncio's: no empty message


def test_awaiting_a_cancelled_future_raises_cancelled_error_with_the_message(
    aio_loop: EventLoop,
) -> None:
    future = new_future(aio_loop)

    async def waiter() -> str:
        try:
            await future
        except asyncio.CancelledError as error:
            return f"caught {error.args!r}"
        return "not cancelled"

    task = aio_loop.create_task(waiter())
    aio_loop.call_later(1, future.cancel, "stop waiting")
    assert aio_loop.run_until_complete(task) == "caught ('stop waiting',)"
    assert aio_loop.time() == 1.0


# -- done callbacks --------------------------------------------------------------------------------


def test_done_callbacks_go_through_call_soon_in_the_order_added(aio_loop: EventLoop) -> None:
    log: list[str] = []
    future = new_future(aio_loop)
    future.add_done_callback(lambda f: log.append(f"first {f.result()}"))
    future.add_done_callback(lambda f: log.append(f"second {f.result()}"))
    aio_loop.call_soon(log.append, "queued before set_result")
    future.set_result(7)
    assert log == []  # never called on the spot
    aio_loop.call_soon(log.append, "queued after set_result")
    run_once(aio_loop)
    assert log == ["queued before set_result", "first 7", "second 7", "queued after set_result"]


def test_a_callback_added_to_a_done_future_is_scheduled_not_called(aio_loop: EventLoop) -> None:
    log: list[object] = []
    future = new_future(aio_loop)
    future.set_result("ok")
    future.add_done_callback(log.append)
    assert log == []
    run_once(aio_loop)
    assert log == [future]


def test_cancel_and_set_exception_schedule_the_callbacks_too(aio_loop: EventLoop) -> None:
    log: list[str] = []
    cancelled = new_future(aio_loop)
    failed = new_future(aio_loop)
    cancelled.add_done_callback(lambda f: log.append(f"cancelled={f.cancelled()}"))
    failed.add_done_callback(lambda f: log.append(f"exception={f.exception()!r}"))
    cancelled.cancel()
    failed.set_exception(ValueError("x"))
    run_once(aio_loop)
    assert log == ["cancelled=True", "exception=ValueError('x')"]


def test_a_done_callback_runs_in_its_context(aio_loop: EventLoop) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="default")
    seen: list[str] = []
    context = contextvars.copy_context()
    context.run(var.set, "from the context")
    future = new_future(aio_loop)
    future.add_done_callback(lambda f: seen.append(var.get()), context=context)
    var.set("where it was added")
    future.add_done_callback(lambda f: seen.append(var.get()))  # a copy of the current one
    var.set("changed afterwards")
    future.set_result(None)
    run_once(aio_loop)
    assert seen == ["from the context", "where it was added"]


def test_remove_done_callback_counts_every_registration(aio_loop: EventLoop) -> None:
    log: list[str] = []

    def one(future: asyncio.Future[Any]) -> None:
        log.append("one")

    def two(future: asyncio.Future[Any]) -> None:
        log.append("two")

    future = new_future(aio_loop)
    future.add_done_callback(one)
    future.add_done_callback(two)
    future.add_done_callback(one)
    assert future.remove_done_callback(one) == 2
    assert future.remove_done_callback(one) == 0
    future.set_result(None)
    run_once(aio_loop)
    assert log == ["two"]


# -- an exception nobody looked at -----------------------------------------------------------------


def test_an_exception_never_retrieved_is_reported_when_the_future_is_collected(
    aio_loop: EventLoop,
) -> None:
    reports: list[dict[str, Any]] = []
    aio_loop.set_exception_handler(lambda loop, context: reports.append(context))
    future = new_future(aio_loop)
    error = ValueError("nobody looked")
    future.set_exception(error)
    del future
    gc.collect()
    assert len(reports) == 1
    assert reports[0]["message"] == "Future exception was never retrieved"
    assert reports[0]["exception"] is error


@pytest.mark.parametrize("look", ["result", "exception", "cancel"])
def test_an_exception_looked_at_is_not_reported(aio_loop: EventLoop, look: str) -> None:
    reports: list[dict[str, Any]] = []
    aio_loop.set_exception_handler(lambda loop, context: reports.append(context))
    future = new_future(aio_loop)
    future.set_exception(ValueError("seen"))
    if look == "result":
        with pytest.raises(ValueError):
            future.result()
    else:
        getattr(future, look)()
    del future
    gc.collect()
    assert reports == []


# -- asyncio accepts it ----------------------------------------------------------------------------


def test_asyncio_recognises_it_as_a_future(aio_loop: EventLoop) -> None:
    future = aio_loop.create_future()
    assert isinstance(future, Future)
    assert asyncio.isfuture(future)
    assert not isinstance(future, asyncio.Future)  # asyncio's is in C: ours is a twin
    assert asyncio.ensure_future(future) is future
    assert Future[int] is not None  # subscriptable for annotations


def test_future_without_a_loop_belongs_to_the_running_one(aio_loop: EventLoop) -> None:
    async def make() -> Future[Any]:
        return Future()

    assert aio_loop.run_until_complete(make()).get_loop() is aio_loop


def test_future_without_a_running_loop_raises_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(RuntimeError, match="no running event loop"):
        Future()
    gc.collect()
    assert [repr(u.exc_value) for u in unraisable] == []


def test_yield_from_a_future_in_a_generator_based_coroutine(aio_loop: EventLoop) -> None:
    future = new_future(aio_loop)

    @kernel.aio.coroutine
    def waiter() -> Generator[Any, Any, str]:
        value = yield from future
        return f"got {value}"

    aio_loop.call_later(2, future.set_result, "it")
    assert aio_loop.run_until_complete(waiter()) == "got it"
    assert aio_loop.time() == 2.0


def test_wrap_future_of_a_concurrent_future_set_in_a_thread(aio_loop: EventLoop) -> None:
    source: concurrent.futures.Future[str] = concurrent.futures.Future()
    wrapped = asyncio.wrap_future(source, loop=aio_loop)
    assert isinstance(wrapped, Future)  # made with loop.create_future()
    assert asyncio.wrap_future(wrapped) is wrapped  # already a future: returned as it is
    thread = threading.Thread(target=source.set_result, args=("from a thread",))

    async def main() -> str:
        thread.start()
        return await wrapped

    assert aio_loop.run_until_complete(main()) == "from a thread"
    thread.join()


def test_gather(aio_loop: EventLoop) -> None:
    first, second, failing = (new_future(aio_loop) for _ in range(3))
    aio_loop.call_later(2, first.set_result, "one")
    aio_loop.call_later(1, second.set_result, "two")
    aio_loop.call_later(3, failing.set_exception, ValueError("three"))

    async def main() -> tuple[list[Any], list[Any]]:
        both = await asyncio.gather(first, second)
        at = aio_loop.time()
        with_error = await asyncio.gather(first, failing, return_exceptions=True)
        return [*both, at], list(with_error)

    both, with_error = aio_loop.run_until_complete(main())
    assert both == ["one", "two", 2.0]  # in argument order, not completion order
    assert with_error[0] == "one"
    assert repr(with_error[1]) == "ValueError('three')"
    assert aio_loop.time() == 3.0


def test_gather_propagates_the_first_error(aio_loop: EventLoop) -> None:
    ok, failing = new_future(aio_loop), new_future(aio_loop)
    aio_loop.call_later(1, failing.set_exception, ValueError("first error"))
    with pytest.raises(ValueError, match="first error"):
        aio_loop.run_until_complete(asyncio.gather(ok, failing))
    assert not ok.done()
    ok.cancel()


def test_shield(aio_loop: EventLoop) -> None:
    inner = new_future(aio_loop)

    async def main() -> str:
        outer = asyncio.shield(inner)
        aio_loop.call_later(1, outer.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await outer
        assert not inner.cancelled()  # the shielded future is left alone
        aio_loop.call_later(1, inner.set_result, "still arrives")
        result: str = await inner
        return result

    assert aio_loop.run_until_complete(main()) == "still arrives"
    assert aio_loop.time() == 2.0


def test_wait_for_times_out_and_cancels_the_future(aio_loop: EventLoop) -> None:
    slow, quick = new_future(aio_loop), new_future(aio_loop)
    aio_loop.call_later(0.5, quick.set_result, "quick")

    async def main() -> str:
        assert await asyncio.wait_for(quick, 1) == "quick"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow, 1)
        return f"timed out at {aio_loop.time()}"

    assert aio_loop.run_until_complete(main()) == "timed out at 1.5"
    assert slow.cancelled()


def test_wait_first_completed_and_all_completed(aio_loop: EventLoop) -> None:
    futures = [new_future(aio_loop) for _ in range(3)]
    for delay, future in zip((3, 1, 2), futures, strict=True):
        aio_loop.call_later(delay, future.set_result, delay)

    async def main() -> None:
        done, pending = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
        assert done == {futures[1]} and pending == {futures[0], futures[2]}
        assert aio_loop.time() == 1.0
        done, pending = await asyncio.wait(futures)
        assert done == set(futures) and not pending
        assert aio_loop.time() == 3.0

    aio_loop.run_until_complete(main())


def test_as_completed_yields_in_completion_order(aio_loop: EventLoop) -> None:
    futures = [new_future(aio_loop) for _ in range(3)]
    for delay, future in zip((3, 1, 2), futures, strict=True):
        aio_loop.call_later(delay, future.set_result, f"after {delay}")

    async def main() -> list[tuple[Any, float]]:
        return [(await next_one, aio_loop.time()) for next_one in asyncio.as_completed(futures)]

    assert aio_loop.run_until_complete(main()) == [
        ("after 1", 1.0),
        ("after 2", 2.0),
        ("after 3", 3.0),
    ]
