"""Threads: run a blocking function in a worker thread while the task waits, without polling.

``await run_in_thread(func, *args)`` hands ``func`` to a pool of worker threads owned by the
running kernel and parks the task on a wait queue of its own. The round trip is:

1. *Submit* (kernel thread). The call becomes a ``_Job`` and goes on the pool's job queue
   (a ``queue.SimpleQueue``); a worker thread is started only if no worker is idle and the
   pool is below ``Kernel.max_threads``. The task parks with the ``WAIT_ON`` trap.
2. *Run* (worker thread). A worker takes the job, runs ``func`` and keeps the outcome (the
   result or the exception) on the job, which drops ``func`` and its arguments there and
   then: neither the job nor the idle worker keeps them alive.
3. *Deliver* (kernel thread). The worker asks ``Kernel.call_threadsafe`` to run
   ``_deliver(job)``, which writes a byte to the kernel's wake-up socket; the kernel wakes
   from ``select()``, runs the callback between two task steps, and the callback wakes the
   parked task with the job. The task returns the result or raises the exception -- the very
   object ``func`` raised.

Invariant: a job is delivered exactly once, in the kernel thread. If its task stopped
waiting (cancelled, timed out) the outcome is dropped -- an exception is logged on the
``kernel`` logger with its traceback, never lost -- and a job whose task gave up before a
worker picked it up never runs at all.

The pool never has more than ``max_threads`` threads, and the kernel joins every one of them
when it closes (``Kernel.add_close_callback``), after all its tasks have ended.

Read next: ``kernel/processes.py``.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .traps import _get_kernel, _wait_on
from .waitqueue import WaitQueue

if TYPE_CHECKING:
    from .scheduler import Kernel

__all__ = ["ThreadPool", "run_in_thread"]

log = logging.getLogger("kernel")
P = ParamSpec("P")
T = TypeVar("T")

# How long close() waits for a busy worker before saying in the log what it is waiting for.
# A thread cannot be interrupted, so the kernel keeps waiting after the warning.
JOIN_WARNING_SECONDS = 5.0


class _Job:
    """One call of ``run_in_thread``: the function, then its outcome.

    ``state`` moves from "queued" to "running" (a worker claimed it) or to "abandoned" (its
    task gave up first); both moves happen under the pool's lock, so exactly one side wins.
    A job that has run is "done"; if nobody takes its outcome it becomes "dropped", under
    the same lock, when it is reported (``ThreadPool._drop_late``): only once.

    ``call`` -- the function and its arguments -- is dropped (set to None) as soon as it has
    run, before the outcome is delivered, or once it never will run: the job lives on a
    while (in the worker that ran it, in the task it wakes), and an argument must not live
    on with it -- an idle worker would keep its last job's arguments alive indefinitely.
    The call runs in ``context``, a copy of the context of the task that made the job (its
    context variables: a request id, a ``decimal`` context...), as ``asyncio.to_thread`` and
    trio's ``to_thread.run_sync`` do; a variable the function sets stays in that copy. It
    is dropped with the call.
    """

    __slots__ = ("call", "context", "exception", "name", "release", "result", "state", "waiter")

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        release: Callable[[Any], object] | None = None,
    ) -> None:
        self.call: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = (
            func,
            args,
            kwargs,
        )
        self.context: contextvars.Context | None = contextvars.copy_context()  # (the task's)
        self.name: str | None = None  # the function's, kept when the call is dropped
        # For a result that holds a resource (an open file): what to do with it if nobody
        # is left to take it (see ThreadPool._drop_late).
        self.release = release
        self.state = "queued"
        self.result: Any = None
        self.exception: BaseException | None = None
        self.waiter = WaitQueue(self)  # the task parks here; empty once it stopped waiting

    def __repr__(self) -> str:
        return f"<thread job {self.describe()} {self.state}>"

    def describe(self) -> str:
        """The function's name, for messages (also once the call has been dropped)."""
        if self.call is not None:
            return _name_of(self.call[0])
        return self.name or "(a function already dropped)"

    def run(self) -> None:
        """In a worker: call the function, keep its outcome, drop the call."""
        assert self.call is not None and self.context is not None  # claimed: not abandoned
        func, args, kwargs = self.call
        try:
            self.result = self.context.run(func, *args, **kwargs)
            if inspect.iscoroutine(self.result):  # an async function run_in_thread missed
                self.result, coroutine = None, self.result
                coroutine.close()  # never started: closed, it warns of nothing
                raise _not_a_sync_function(func, returned=True)
        except BaseException as error:  # handed to the task, not raised here
            self.exception = error
            # A late exception is logged with the function's name: that much is kept.
            self.name = _name_of(func)
        self.call = self.context = None
        self.state = "done"


class ThreadPool:
    """Worker threads that take ``_Job``s from one queue, at most ``max_threads`` of them.

    Only the kernel thread submits jobs and reads ``_pending``; the workers share the job
    queue (thread-safe by itself) and the ``_lock``-guarded ``_idle`` count and job states.
    """

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self.max_threads = kernel.max_threads
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # None: "stop"
        self._lock = threading.Lock()
        self._idle = 0  # workers that have finished a job and will take the next one
        self._threads: list[threading.Thread] = []
        self._pending: set[_Job] = set()  # submitted, not yet delivered (kernel thread only)

    # -- the kernel thread's side ----------------------------------------------------------

    def submit(self, job: _Job) -> None:
        """Queue ``job``; start a worker for it if none is idle and the bound allows.

        The bound holds because this is the only place a thread is started, and it starts
        one only while there are fewer than ``max_threads``. ``_idle`` counts workers that
        will come back for another job without one being started: each job handled adds
        one, each job submitted to an idle worker takes one.
        """
        with self._lock:
            if self._idle:
                self._idle -= 1  # that worker will take this job: it is no longer idle
                start = False
            else:
                start = len(self._threads) < self.max_threads
        if start:
            # Started before the job is queued: if the system has no thread to give ("can't
            # start new thread"), the error reaches the caller and nothing is left behind -- no
            # job that some later worker would run behind the caller's back, no dead thread
            # counted against max_threads.
            thread = threading.Thread(
                target=self._work, name=f"kernel-worker-{len(self._threads) + 1}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._pending.add(job)
        self._jobs.put(job)

    def abandon(self, job: _Job) -> None:
        """The job's task stopped waiting. A job not started yet will now never run."""
        with self._lock:
            if job.state == "queued":
                job.state = "abandoned"
                job.call = job.context = None  # it sits in the job queue until a worker skips it
                self._pending.discard(job)  # a worker will skip it: nothing to deliver

    def _deliver(self, job: _Job) -> None:
        """In the kernel thread: wake the job's task with it, or drop a late outcome."""
        self._pending.discard(job)
        if job.waiter:
            self._kernel._wake(job.waiter, 1)
        else:
            self._drop_late(job)

    def shutdown(self) -> None:
        """Stop and join every worker (run by ``Kernel.close()`` after all tasks ended).

        Jobs still queued belong to tasks that have ended, so they were abandoned and the
        workers skip them; a worker still inside a function is waited for, with a warning
        in the log every few seconds naming what it runs.
        """
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(JOIN_WARNING_SECONDS)
            while thread.is_alive():
                running = sorted(repr(job) for job in self._pending if job.state == "running")
                log.warning(
                    "the kernel is closing and waits for %s, still running %s (a thread "
                    "cannot be interrupted; make the function return)",
                    thread.name,
                    ", ".join(running) or "a function",
                )
                thread.join(JOIN_WARNING_SECONDS)
        self._threads.clear()
        # Outcomes that never reached the kernel: the loop had stopped before it ran their
        # delivery callback. Their tasks are gone; errors are still reported.
        for job in self._pending:
            self._drop_late(job)
        self._pending.clear()

    def _drop_late(self, job: _Job) -> None:
        """An outcome nobody waits for: a result is released (if its job says how) or dropped,
        an exception is logged -- once.

        Discussion: two places may find the same late outcome when the kernel closes while a
        worker runs a job. The worker, whose delivery is refused, reports it at once; and
        ``shutdown`` reports what is still pending once the workers are joined -- that job
        too, as its delivery never ran. The move from "done" to "dropped" decides, under the
        lock: a result released twice would be a file closed twice, or the second time
        ``None`` (its reference is dropped with the first report).
        """
        with self._lock:
            if job.state != "done":
                return  # reported already (or it never ran: there is no outcome)
            job.state = "dropped"
        if job.exception is None and job.release is not None:
            try:
                job.release(job.result)
            except Exception as error:
                log.error("releasing the late result of %r failed", job, exc_info=error)
        if job.exception is not None:
            log.error(
                "run_in_thread(%s) raised after its task had stopped waiting for it",
                job.describe(),
                exc_info=job.exception,
            )
        job.result = job.exception = None

    # -- the worker threads' side ----------------------------------------------------------

    def _work(self) -> None:
        """A worker's life: take jobs until told to stop."""
        jobs = self._jobs
        while (job := jobs.get()) is not None:
            if self._claim(job):
                job.run()
            # Idle again *before* delivering: the task, once woken, may submit its next job at
            # once, and should find this thread ready for it rather than start another.
            with self._lock:
                self._idle += 1
            if job.state == "done":
                self._send_home(job)
            # Not to hold the job while waiting for the next one (its call is gone already;
            # its outcome is the task's). As CPython's ThreadPoolExecutor drops its work item.
            del job

    def _claim(self, job: _Job) -> bool:
        """Mark ``job`` running, unless its task has already given up on it."""
        with self._lock:
            if job.state != "queued":
                return False
            job.state = "running"
            return True

    def _send_home(self, job: _Job) -> None:
        try:
            self._kernel.call_threadsafe(self._deliver, job)
        except RuntimeError:  # the kernel has closed: nobody can be waiting any more
            self._drop_late(job)


def _name_of(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


def _not_a_sync_function(func: Callable[..., Any], returned: bool = False) -> TypeError:
    """The error for an async function given to ``run_in_thread`` (as trio's ``run_sync``
    refuses one): its call only makes a coroutine, which no thread would ever run."""
    name = _name_of(func)
    what = (
        "returned a coroutine (closed unrun): it is asynchronous"
        if returned
        else "is an async function: calling it only makes a coroutine"
    )
    return TypeError(
        f"run_in_thread() runs a blocking sync function in a worker thread, but {name} {what}, "
        f"which a thread cannot run. Await it in the task instead (`await {name}(...)`), or "
        f"spawn it as a task of its own (`await kernel.spawn({name}, ...)`)"
    )


def _pool_of(kernel: Kernel) -> ThreadPool:
    """The kernel's pool, created on first use and shut down when the kernel closes."""
    pool: ThreadPool | None = kernel._thread_pool
    if pool is None:
        pool = kernel._thread_pool = ThreadPool(kernel)
        kernel.add_close_callback(pool.shutdown)
    return pool


async def run_in_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func(*args, **kwargs)`` in a worker thread and return its result.

    For blocking calls that have no async version (file systems, C libraries, DNS, ...). The
    calling task waits without blocking the kernel. An exception raised by ``func`` is raised
    here, the same object (except ``StopIteration``, which Python turns into a
    ``RuntimeError`` as it leaves a coroutine). If the task is cancelled or times out while
    it waits, it gets the ``TaskCancelled`` / ``TaskTimeout`` at once; the thread cannot be
    stopped and runs on, its result is dropped and its exception, if any, logged.

    ``func`` is positional-only, as in ``asyncio.to_thread``: a keyword argument named
    ``func`` is passed on to it. An async function is refused with ``TypeError``: before any
    thread is used if it is declared ``async def``, else when its call returns a coroutine
    (which is closed unrun, so nothing warns that it was never awaited).
    """
    if inspect.iscoroutinefunction(func):
        raise _not_a_sync_function(func)
    result: T = await _run_job(_Job(func, args, kwargs))
    return result


async def _run_job(job: _Job) -> Any:
    """``run_in_thread``'s work, for a job made by the caller (``aopen`` gives its own a
    ``release``: a file opened for a task that has left is closed, not left to the GC)."""
    kernel = await _get_kernel()
    pool = _pool_of(kernel)
    pool.submit(job)
    try:
        # Discussion: the worker may finish before the task has even parked. That is fine:
        # its delivery runs only in the kernel thread, between task steps -- by then this
        # task is parked on job.waiter (or has left with a cancellation).
        await _wait_on(job.waiter, "THREAD")
    except BaseException:
        pool.abandon(job)
        raise
    error = job.exception
    if error is not None:
        job.exception = None  # no cycle job -> error -> traceback -> frames -> job
        try:
            raise error
        finally:
            del error
    result = job.result
    job.result = None
    return result
