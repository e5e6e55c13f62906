"""The loop's services beyond scheduling: the executor, async generators, signals, errors.

``ServicesMixin`` gives ``EventLoop`` what asyncio's loop offers besides callbacks and
I/O: ``run_in_executor`` (a ``concurrent.futures`` pool whose results come back through
``call_soon_threadsafe``), the hooks that let ``shutdown_asyncgens`` close the async
generators a program left suspended, ``add_signal_handler`` (a Python signal handler
that queues the callback with ``call_soon_threadsafe``; the kernel's wake-up socket makes a
blocked ``select()`` return), and the exception handler API with debug mode: where an
error goes that has no one to raise it to (a failing callback, a task nobody awaited).

Read next: ``kernel/aio/network.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import logging
import signal
import threading
import warnings
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, Unpack

from .handles import Handle

if TYPE_CHECKING:
    from ..scheduler import Kernel

__all__ = ["ServicesMixin"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
logger = logging.getLogger("asyncio")  # the logger asyncio reports through


class ServicesMixin(asyncio.AbstractEventLoop):
    """``run_in_executor``, async generator hooks, signal handlers and the exception
    handler API, for ``EventLoop``."""

    # EventLoop's; declared here for the type checker.
    _kernel: Kernel
    _debug: bool
    _thread_id: int | None
    _default_executor: concurrent.futures.ThreadPoolExecutor | None
    _executor_shutdown_called: bool
    _asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]]
    _asyncgens_shutdown_called: bool
    _signal_handlers: dict[int, Handle]
    _exception_handler: Callable[[Any, dict[str, Any]], object] | None

    if TYPE_CHECKING:

        def _check_closed(self) -> None: ...
        def _check_callback(self, callback: Any, method: str) -> None: ...
        def _track_coroutine_origins(self, enabled: bool) -> None: ...

    # -- threads -------------------------------------------------------------------------------

    def run_in_executor(
        self, executor: Any, func: Callable[[Unpack[Ts]], T], *args: *Ts
    ) -> asyncio.Future[T]:
        """Run ``func(*args)`` in ``executor`` (default: a thread pool); returns a future."""
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            executor = self._default_executor
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: Any) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Wait (in a helper thread) for the default executor's threads to finish; after
        ``timeout`` seconds (None: no limit), warn and stop waiting.

        The timeout is real time, even on a loop with a virtual clock: that clock jumps
        ahead whenever only threads are busy, so a timeout on it would expire at once.
        """
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        joined = self.create_future()  # True: joined; False: the timeout came first

        def answer(outcome: bool) -> None:
            if not self.is_closed():
                self.call_soon_threadsafe(_set_result_unless_done, joined, outcome)

        def shut_down() -> None:
            try:
                executor.shutdown(wait=True)
            finally:  # (should shutdown itself fail, its thread reports it: do not hang)
                answer(True)

        thread = threading.Thread(target=shut_down, name="asyncio-executor-shutdown")
        timer = None if timeout is None else threading.Timer(timeout, answer, (False,))
        thread.start()
        if timer is not None:
            timer.start()
        try:
            finished = await joined
        finally:
            if timer is not None:
                timer.cancel()
                timer.join()
        if finished:
            thread.join()
        else:
            warnings.warn(
                f"The executor did not finishing joining its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)

    # -- asynchronous generators ---------------------------------------------------------------

    def _asyncgen_firstiter_hook(self, agen: AsyncGenerator[Any, Any]) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen: AsyncGenerator[Any, Any]) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    async def shutdown_asyncgens(self) -> None:
        """Close every asynchronous generator still open (``asyncio.run`` calls this)."""
        self._asyncgens_shutdown_called = True
        if not self._asyncgens:
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*(agen.aclose() for agen in closing), return_exceptions=True)
        for result, agen in zip(results, closing, strict=True):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": f"an error occurred during closing of asynchronous "
                        f"generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    # -- signals -------------------------------------------------------------------------------

    def add_signal_handler(
        self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: *Ts
    ) -> None:
        """Queue ``callback(*args)`` whenever signal ``sig`` arrives (main thread only)."""
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
        self._signal_handlers[sig] = Handle(callback, args, self, None)
        try:
            signal.signal(sig, self._on_signal)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise

    def _on_signal(self, sig: int, frame: object) -> None:
        """The Python-level signal handler: queue the Handle through the thread-safe path."""
        handle = self._signal_handlers.get(sig)
        if handle is not None and not self._kernel.closed:
            self._kernel.call_soon_threadsafe(handle)

    def remove_signal_handler(self, sig: int) -> bool:
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, default)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        return True

    def _check_signal(self, sig: Any) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    # -- errors --------------------------------------------------------------------------------

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log ``context`` (an error nobody else handled) to the ``asyncio`` logger."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info: Any = (
            (type(exception), exception, exception.__traceback__) if exception else False
        )
        lines = [message]
        for key in sorted(context):
            if key not in ("message", "exception"):
                lines.append(f"{key}: {context[key]!r}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Report an error that has nowhere else to go: to the handler set, or to the log."""
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            # Run the handler in the context of whatever failed (as asyncio 3.12+ does), so
            # it sees that code's context variables.
            ctx = None
            thing = context.get("task") or context.get("future") or context.get("handle")
            if thing is not None and hasattr(thing, "get_context"):
                ctx = thing.get_context()
            if ctx is not None and hasattr(ctx, "run"):
                ctx.run(self._exception_handler, self, context)
            else:
                self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling an unexpected "
                    "error in custom exception handler",
                    exc_info=True,
                )

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled
        if self._thread_id is not None:  # running (run_forever): origins from now on
            self._track_coroutine_origins(enabled)


def _set_result_unless_done(future: asyncio.Future[Any], result: Any = None) -> None:
    if not future.done():
        future.set_result(result)
