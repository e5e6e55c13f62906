"""Signals: ``SignalEvent`` and ``SignalQueue``, Unix signals turned into things tasks await.

A signal handler is a strange place to run code: Python calls it in the main thread between
two bytecodes of whatever was running -- perhaps the kernel in the middle of moving a task
between its queues. So the handler installed here does the least it can. It appends the
signal number to the catcher's ``_arrived`` deque (an atomic operation) and, if a task is
waiting for a signal there, asks the kernel, through ``Kernel.call_threadsafe`` (another
deque append, plus one byte written to the kernel's wake-up socket, which makes a blocking
``select()`` return), to run ``_collect`` soon. ``_collect`` runs in the kernel's loop
between two task steps, where it is safe to update the event or the queue and wake the
tasks parked on it. With no task waiting, the kernel is left alone: the next ``wait()`` or
``get()`` collects what arrived itself.

Handlers are Python-level and process-wide, so both classes must be created (and closed) in
the main thread. Several catchers may watch one signal: the handler installed for a signal
is a ``_Dispatcher`` that hands each arrival to all of them. When the last one closes, the
handler that was there before is put back -- unless someone else has installed theirs on top
in the meantime, which is then left alone.

Invariant: between its creation and ``close()``, every arrival of a watched signal reaches
the catcher once, in order. (The operating system itself merges a standard signal that
arrives again while the first is still pending: two quick SIGUSR1s may be seen as one.)

Ctrl-C: while ``kernel.run()`` is running with Python's default SIGINT handler in place, the
kernel installs its own (which cancels the main task). A catcher of ``SIGINT`` replaces it
for as long as it is open -- Ctrl-C is then the program's to handle -- and puts it back when
closed.

Read next: ``docs/io.md``, which follows one ``recv`` through the I/O wait table.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Self

from .scheduler import current_kernel
from .traps import _wait_on
from .waitqueue import WaitQueue

if TYPE_CHECKING:
    from .scheduler import Kernel

__all__ = ["SignalEvent", "SignalQueue"]

_CLOSED = object()  # the wake-up value of tasks parked on a catcher that was closed
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers


def _require_main_thread(what: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            f"{what} must be called in the main thread: Python runs signal handlers only "
            f"there, and only there may they be installed or removed"
        )


class _Dispatcher:
    """The handler installed for one signal: passes each arrival to every open catcher.

    It is the only record of which catchers watch the signal, so the process-wide state
    lives where the process keeps it -- in the signal's handler slot -- and nowhere else.
    """

    def __init__(self, signo: int, previous: _Handler) -> None:
        self.signo = signo
        self.previous = previous  # what to put back when the last catcher closes
        self.catchers: list[_SignalCatcher] = []

    def __repr__(self) -> str:
        return f"<signal dispatcher {signal.Signals(self.signo).name} catchers={self.catchers}>"

    def __call__(self, signo: int, frame: FrameType | None) -> None:
        if self.catchers:
            for catcher in tuple(self.catchers):
                catcher._arrive(signo)
            return
        # Discussion: every catcher has closed, but this handler was not in the slot then
        # (someone installed theirs over it) and has since been put back by them. Step
        # aside for good, and give the signal what it would have got without us.
        previous = self.previous
        signal.signal(signo, previous)
        if callable(previous):
            previous(signo, frame)
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signo)


class _SignalCatcher:
    """What both classes share: installing the handlers, and getting arrivals to the kernel."""

    def __init__(self, *signals: int) -> None:
        name = type(self).__name__
        _require_main_thread(f"{name}()")
        if not signals:
            raise TypeError(f"{name}() needs at least one signal, e.g. {name}(signal.SIGUSR1)")
        self.signals = tuple(dict.fromkeys(_signal_named(name, s) for s in signals))
        self._arrived: deque[int] = deque()  # appended by the handler, drained by the kernel
        self._kernel: Kernel | None = current_kernel()  # whose tasks wait here
        self._waiters = WaitQueue(self)
        self._takers = 0  # tasks in wait() / get(), parked or on their way (see _arrive)
        self._dispatchers: list[_Dispatcher] = []
        self._closed = False
        try:
            for signo in self.signals:
                self._dispatchers.append(_attach(self, signo))
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        names = ",".join(s.name for s in self.signals)
        state = "closed" if self._closed else f"waiting={len(self._waiters)}"
        return f"<{type(self).__name__} {names} {state}>"

    # -- the signal handler's side (main thread, between any two bytecodes) ------------------

    def _arrive(self, signo: int) -> None:
        """Keep the signal; wake the kernel if a task is waiting for one.

        Discussion: a task counts as waiting from the moment it enters ``_taking`` -- before
        it collects and parks -- so a signal that lands in between still wakes it. With no
        task there, nothing is asked of the kernel: the next one collects the signal itself,
        and a ``_collect`` queued for nobody would still be in the kernel's queue, reported
        as never run, if the kernel closed right after a task took the signal unparked.
        """
        self._arrived.append(signo)
        kernel = self._kernel
        if self._takers and kernel is not None and not kernel._closed:
            # A kernel that closed just now refuses: then the next waiter collects.
            with contextlib.suppress(RuntimeError):
                kernel.call_threadsafe(self._collect)

    # -- the kernel's side -----------------------------------------------------------------

    def _collect(self) -> None:
        """In the kernel's loop: record what arrived and wake whoever can now go on."""
        self._absorb()
        if self._waiters and self._kernel is not None:
            self._serve(self._kernel)

    def _absorb(self) -> None:
        arrived = self._arrived
        while arrived:
            self._record(arrived.popleft())

    def _record(self, signo: int) -> None:
        raise NotImplementedError

    def _serve(self, kernel: Kernel) -> None:
        raise NotImplementedError

    def _bind(self, method: str) -> None:
        """A task is about to wait: its kernel is the one to notify from now on."""
        kernel = current_kernel()
        if kernel is None:
            raise RuntimeError(f"{type(self).__name__}.{method}() must be awaited in a task")
        if kernel is not self._kernel:
            if self._kernel is not None and not self._kernel._closed and self._waiters:
                raise RuntimeError(f"{self!r} is in use by tasks of another kernel")
            self._kernel = kernel

    @contextlib.contextmanager
    def _taking(self) -> Iterator[None]:
        """Around a task's ``wait()`` / ``get()``: arrivals wake the kernel meanwhile."""
        self._takers += 1
        try:
            yield
        finally:
            self._takers -= 1

    async def _park(self) -> Any:
        """Wait to be woken by ``_serve`` (its value) or by ``close`` (``_CLOSED``)."""
        if self._closed:
            return _CLOSED
        return await _wait_on(self._waiters, "SIGNAL_WAIT")

    # -- closing ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop watching; put back the handlers that were there before. Closing twice does
        nothing. Tasks still waiting get a ``RuntimeError`` (a ``SignalQueue`` iteration
        simply ends)."""
        if self._closed:
            return
        _require_main_thread(f"{type(self).__name__}.close()")
        self._closed = True
        for dispatcher in self._dispatchers:
            dispatcher.catchers.remove(self)
            signo, previous = dispatcher.signo, dispatcher.previous
            if not dispatcher.catchers and signal.getsignal(signo) is dispatcher:
                signal.signal(signo, previous)
        self._dispatchers.clear()
        kernel = self._kernel
        if self._waiters and kernel is not None and not kernel._closed:
            kernel.call_threadsafe(self._wake_closed, kernel)

    def _wake_closed(self, kernel: Kernel) -> None:
        kernel._wake(self._waiters, len(self._waiters), _CLOSED)

    def _closed_error(self) -> RuntimeError:
        return RuntimeError(f"{self!r} was closed: no signal will arrive any more")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _signal_named(catcher: str, signo: int) -> signal.Signals:
    """``signo`` as a ``signal.Signals`` member, or a ``ValueError`` that says what to pass."""
    try:
        return signal.Signals(signo)
    except ValueError:
        raise ValueError(
            f"{catcher}() got {signo!r}, which is not a signal of this system; pass one of "
            f"the signal module's constants, e.g. signal.SIGUSR1"
        ) from None


def _attach(catcher: _SignalCatcher, signo: int) -> _Dispatcher:
    """Add ``catcher`` to the dispatcher of ``signo``, installing one if there is none."""
    current = signal.getsignal(signo)
    if isinstance(current, _Dispatcher):
        dispatcher = current
    else:
        if current is None:
            raise ValueError(
                f"{signal.Signals(signo).name} has a handler installed outside Python, which "
                f"could not be put back afterwards; refusing to replace it"
            )
        dispatcher = _Dispatcher(signo, current)
        try:
            signal.signal(signo, dispatcher)
        except OSError as error:  # SIGKILL and SIGSTOP: the system never lets them be caught
            raise ValueError(
                f"{signal.Signals(signo).name} cannot be caught: the operating system acts on "
                f"it without running any handler. Watch a signal that can be, such as SIGTERM "
                f"or SIGUSR1"
            ) from error
    dispatcher.catchers.append(catcher)
    return dispatcher


class SignalEvent(_SignalCatcher):
    """An event set when any of ``signals`` arrives: ``await ev.wait()``, ``ev.clear()``.

    Watching starts at creation (in the main thread); ``close()`` -- or leaving ``with`` /
    ``async with`` -- stops it and restores the previous handlers.
    """

    def __init__(self, *signals: int) -> None:
        self._set = False
        super().__init__(*signals)

    def is_set(self) -> bool:
        return self._set or bool(self._arrived)

    def clear(self) -> None:
        """Forget the signals seen so far; the next one sets the event again."""
        self._arrived.clear()
        self._set = False

    async def wait(self) -> None:
        """Wait until one of the signals has arrived (at once if one already has)."""
        self._bind("wait")
        with self._taking():
            self._absorb()
            if not self._set and await self._park() is _CLOSED:
                raise self._closed_error()

    def _record(self, signo: int) -> None:
        self._set = True

    def _serve(self, kernel: Kernel) -> None:
        if self._set:
            kernel._wake(self._waiters, len(self._waiters))


class SignalQueue(_SignalCatcher):
    """The signals that arrive, in order: ``await q.get()`` returns the next signal number.

    ``async with SignalQueue(signal.SIGUSR1) as q: async for signo in q: ...`` -- the
    iteration runs until the queue is closed. Watching starts at creation (in the main
    thread); ``close()`` stops it and restores the previous handlers.
    """

    def __init__(self, *signals: int) -> None:
        self._signals: deque[int] = deque()  # arrived, not yet taken by a get()
        super().__init__(*signals)

    def qsize(self) -> int:
        """How many signals are waiting to be taken."""
        return len(self._signals) + len(self._arrived)

    async def get(self) -> int:
        """The next signal number (waiting for one if none has arrived)."""
        signo = await self._next()
        if signo is _CLOSED:
            raise self._closed_error()
        result: int = signo
        return result

    async def _next(self) -> Any:
        self._bind("get")
        with self._taking():
            self._absorb()
            if self._signals and not self._waiters:  # nobody is ahead in line: take it
                return self._signals.popleft()
            return await self._park()  # handed a signal by _serve, or _CLOSED

    def _record(self, signo: int) -> None:
        self._signals.append(signo)

    def _serve(self, kernel: Kernel) -> None:
        # Hand each signal to a waiter before waking it: a waiter that is woken resumes
        # with its signal even if it is cancelled right after, so none is lost.
        while self._signals and self._waiters:
            kernel._wake(self._waiters, 1, self._signals.popleft())

    def __aiter__(self) -> SignalQueue:
        return self

    async def __anext__(self) -> int:
        signo = await self._next()
        if signo is _CLOSED:
            raise StopAsyncIteration
        result: int = signo
        return result
