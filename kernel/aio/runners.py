"""Entry points: run asyncio programs on the kernel, and pass work between the two worlds.

``run(main())``                 ``asyncio.run`` with the adapter loop (it *is* asyncio's
                                ``Runner``, given ``new_event_loop`` as its loop factory).
``new_event_loop()``            a fresh ``EventLoop`` on a fresh kernel; pass it to
                                ``asyncio.Runner(loop_factory=...)`` or ``asyncio.run``.
``EventLoopPolicy``             for code that creates loops through the policy.
``coroutine``                   the old ``@asyncio.coroutine``: generator-based coroutines
                                that ``yield from`` futures, for the course's older programs.

Between kernel tasks and asyncio code (one scheduler underneath, so no threads involved):

``await future``                in a kernel task: waits for an asyncio future or task of the
                                adapter loop (the kernel's ``FUTURE_WAIT`` trap).
``await run_asyncio(coro)``     in a kernel task: run asyncio code as an asyncio Task on this
                                kernel's loop and wait for its result.
``await run_kernel(f, *args)``  in asyncio code: run ``f(*args)`` as a kernel task on the
                                same kernel and wait for its result.
``wrap_kernel_task(task)``      an asyncio future that completes when a kernel task ends.

Read next: ``docs/aio.md``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
from asyncio import events as _asyncio_events
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

from ..clock import Clock
from ..errors import TaskCancelled, TaskTimeout, TimeoutCancellationError
from ..scheduler import Kernel
from ..task import Task as KernelTask
from ..traps import _get_kernel
from .events import EventLoop, _open_loop_of

__all__ = [
    "EventLoopPolicy",
    "coroutine",
    "new_event_loop",
    "run",
    "run_asyncio",
    "run_kernel",
    "wrap_kernel_task",
]

T = TypeVar("T")


def new_event_loop(*, clock: Clock | None = None) -> EventLoop:
    """A new adapter event loop, on a new kernel (whose clock is ``clock``, if given)."""
    return EventLoop(clock=clock)


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """``asyncio.set_event_loop_policy(kernel.aio.EventLoopPolicy())`` makes asyncio create
    adapter loops wherever it creates loops through the policy."""

    _loop_factory = EventLoop


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """``asyncio.run(main)`` on the kernel: a new loop, run ``main`` to completion, cancel
    what is left, shut down async generators and the default executor, close the loop."""
    if _asyncio_events._get_running_loop() is not None:
        # Checked before the Runner makes a loop that would then be left behind.
        raise RuntimeError("kernel.aio.run() cannot be called from a running event loop")
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)


def coroutine(func: Callable[..., Any]) -> Callable[..., Any]:
    """The old ``@asyncio.coroutine`` (removed from asyncio in 3.11), for generator-based
    coroutines that ``yield from`` futures and other coroutines.

    ``import asyncio`` + ``from kernel.aio import coroutine`` and the old programs run.
    """
    if inspect.iscoroutinefunction(func):
        return func
    if inspect.isgeneratorfunction(func):
        generator_function = func
    else:
        # A plain function marked as a coroutine: await whatever it returns, if awaitable.
        @functools.wraps(func)
        def generator_function(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            result = func(*args, **kwargs)
            if inspect.isawaitable(result) or inspect.isgenerator(result):
                result = yield from _await(result)
            return result

    wrapper = types.coroutine(generator_function)
    # What asyncio.iscoroutinefunction() looks for on a decorated function.
    wrapper._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return wrapper


def _await(awaitable: Any) -> Generator[Any, Any, Any]:
    if inspect.isgenerator(awaitable):
        return (yield from awaitable)
    return (yield from awaitable.__await__())


def wrap_kernel_task(task: KernelTask, loop: EventLoop | None = None) -> asyncio.Future[Any]:
    """An asyncio future of ``loop`` (default: the running one) that ends as ``task`` ends.

    Cancelling the future cancels the kernel task. The task's outcome becomes the future's,
    with one difference from a kernel ``join()``: a kernel timeout that escaped the task
    (``TaskTimeout``, not caught where it was set) is not a cancellation of the future --
    nobody cancelled the asyncio side -- but its failure, a ``TimeoutError`` whose
    ``__cause__`` is the ``TaskTimeout``, as asyncio code expects of a timeout. Only a
    cancellation of the task itself (``TaskCancelled``) cancels the future.
    """
    if loop is None:
        loop = _running_adapter_loop("wrap_kernel_task")
    future = loop.create_future()

    def on_exit(task: KernelTask) -> None:
        if future.done() or loop.is_closed():
            # A closed loop runs no callback: nobody can be waiting. The task's error is
            # left unlooked-at, so that the kernel reports it.
            return
        error = task.exception  # looked at: its outcome is passed on, nothing to report
        if isinstance(error, TaskTimeout | TimeoutCancellationError):
            timeout = TimeoutError(f"{task!r} timed out ({type(error).__name__})")
            timeout.__cause__ = error
            future.set_exception(timeout)
        elif task.cancelled:
            future.cancel()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(task.result)

    def on_done(future: asyncio.Future[Any]) -> None:
        if future.cancelled() and not task.done:
            loop._kernel.cancel_task(task, TaskCancelled("the asyncio future was cancelled"))

    if not task.done:
        future.add_done_callback(on_done)
    task.add_exit_callback(on_exit)  # called at once if the task has ended
    return future


def run_kernel(corofunc: Any, *args: Any, name: str | None = None) -> asyncio.Future[Any]:
    """From asyncio code on the adapter: run ``corofunc(*args)`` as a kernel task on the same
    kernel; ``await`` the returned future for its result.

    Like an asyncio task, one still running when the loop closes is cancelled quietly and
    its cleanup runs before the loop closes. A ``TaskTimeout`` escaping it is raised here as
    ``TimeoutError`` (see ``wrap_kernel_task``).
    """
    loop = _running_adapter_loop("run_kernel")
    task = loop._start_kernel_task(corofunc, args, name)
    return wrap_kernel_task(task, loop)


async def run_asyncio(coro: Coroutine[Any, Any, T]) -> T:
    """From a kernel task: run asyncio code as an asyncio Task on this kernel and wait for it.

    It runs on the kernel's adapter loop: the one that runs the kernel
    (``kernel.aio.run``, ``new_event_loop``), the one made with ``EventLoop(kernel)``, or
    else one made on first use and closed with the kernel. Inside ``coro``,
    ``asyncio.get_running_loop()`` is that loop.
    """
    kernel = await _get_kernel()
    loop = _hosted_loop(kernel)
    task = loop.create_task(coro)
    return await task  # a kernel task awaiting an asyncio future: the FUTURE_WAIT trap


def _hosted_loop(kernel: Kernel) -> EventLoop:
    """The open adapter loop living on ``kernel``; made if it has none (closed with the
    kernel). While the kernel runs, it is asyncio's running loop, so that asyncio code
    finds it (``EventLoop._running_with_kernel``)."""
    loop = _open_loop_of(kernel)
    if loop is None:
        loop = EventLoop(kernel)
        # The kernel's close() is this loop's asyncio.run ending: once the kernel tasks have
        # ended, the asyncio side is wound down with the kernel still turning ...
        kernel.add_shutdown_step(functools.partial(_wind_down, loop))
        # ... then the loop is closed, with the kernel's resources (or, if the kernel
        # failed, after its tasks were abandoned: nothing can turn then).
        kernel.add_close_callback(loop._shut_down)
    return loop


# asyncio.run (3.12 on) waits this long for the default executor's threads, then warns.
EXECUTOR_JOIN_TIMEOUT = 300.0


def _wind_down(loop: EventLoop) -> None:
    """What ``asyncio.run`` does before it closes its loop, for a loop made by
    ``run_asyncio``: cancel the asyncio tasks still pending and let their cleanup run, and
    wait for the default executor's threads. (Not ``shutdown_asyncgens``: such a loop does
    not track async generators; the kernel's own hooks do -- see docs/aio.md.)

    A task whose cleanup fails is reported through the loop's exception handler. Skipped if
    the loop was closed already, or if the kernel cannot turn here (closed from inside
    another running loop or kernel).
    """
    if loop.is_closed() or not loop._can_turn_here():
        return
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for task in pending:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "an asyncio task left running when its kernel closed failed "
                    "while it was being cancelled",
                    "exception": task.exception(),
                    "task": task,
                }
            )
    loop.run_until_complete(loop.shutdown_default_executor(EXECUTOR_JOIN_TIMEOUT))


def _running_adapter_loop(caller: str) -> EventLoop:
    loop = _asyncio_events._get_running_loop()
    if not isinstance(loop, EventLoop):
        raise RuntimeError(
            f"{caller}() needs the kernel.aio event loop, but the running loop is {loop!r}; "
            f"start the program with kernel.aio.run(main()) (or "
            f"asyncio.Runner(loop_factory=kernel.aio.new_event_loop))"
        )
    return loop
