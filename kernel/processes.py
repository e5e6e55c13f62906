"""Processes: run a CPU-bound function in a child process while the task waits on a pipe.

Threads do not help CPU-bound Python code (one interpreter lock); a separate process does.
``await run_in_process(func, *args)`` starts one child process for the call and waits for
its answer like any other I/O:

1. The child is started from a ``multiprocessing`` context that is safe in a program with
   threads: "forkserver" on Linux (children are forked from a small clean server process,
   never from this multi-threaded one), "spawn" elsewhere. Either way ``func`` and its
   arguments travel to the child by pickling, so ``func`` must be importable by name.
2. The child runs ``func(*args)`` and sends back, over a one-way ``multiprocessing.Pipe``,
   either its result or the exception -- with the child's traceback as text, added to the
   exception as a note.
3. The task parks in the I/O wait table until the pipe is readable (the ``IO_WAIT`` trap,
   no thread involved), reads the answer, then waits the same way on the process's
   *sentinel* (readable once the child has exited) and reaps it.

Invariant: when ``run_in_process`` returns or raises, its child has exited and been reaped,
and both ends of the pipe are closed -- also when the waiting task is cancelled, in which
case the child is terminated (then killed if it ignores that) before the cancellation
leaves. No zombie and no file descriptor is left behind.

Read next: ``kernel/universal.py``.
"""

from __future__ import annotations

import multiprocessing
import pickle
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from typing import Any, TypeVar

from .iotable import EVENT_READ
from .traps import _io_wait

__all__ = ["run_in_process"]

T = TypeVar("T")

# How long a cancelled child gets to exit after SIGTERM before it is sent SIGKILL.
TERMINATE_GRACE_SECONDS = 1.0


def _context() -> ForkServerContext | SpawnContext:
    """The start method: never a bare fork() of this process, which may have threads."""
    if sys.platform.startswith("linux") and "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _check_picklable(func: Callable[..., Any]) -> None:
    try:
        pickle.dumps(func)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise TypeError(
            f"run_in_process() needs a function the child process can import by name, but "
            f"{func!r} cannot be pickled ({error}). Define it with `def` at the top level of a "
            f"module -- not a lambda, a local function or a bound method of an unpicklable "
            f"object"
        ) from error


async def run_in_process(func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` in a new child process and return its result.

    ``func`` and ``args`` are pickled to the child and the result (or exception) pickled
    back. An exception raised by ``func`` is raised here with the child's traceback added as
    a note. If the task is cancelled or times out while it waits, the child is terminated.

    As with any ``multiprocessing`` child that is not a bare fork, the child imports the
    main module again: a script must start the kernel under ``if __name__ == "__main__":``.
    Starting the child blocks the kernel for the few milliseconds a fork takes (longer the
    first time, when the fork server starts). The answer is read once its first byte has
    arrived; the child writes it in one go, so the rest follows at memory speed.
    """
    _check_picklable(func)
    context = _context()
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(
        target=_child_main,
        args=(writer, func, args),
        name=f"kernel-process:{getattr(func, '__qualname__', func)}",
        daemon=True,  # never outlives this program, even if it dies without cleaning up
    )
    try:
        try:
            process.start()
        finally:
            writer.close()  # the child has its own copy; ours would hide its EOF
        await _io_wait(reader, EVENT_READ)
        try:
            answer = reader.recv()
        except EOFError:  # the child died without answering
            answer = None
        await _io_wait(process.sentinel, EVENT_READ)
        process.join()
    except BaseException:
        _stop(process)
        raise
    finally:
        reader.close()
    pid, exitcode = process.pid, process.exitcode
    process.close()
    if answer is None:
        raise RuntimeError(
            f"the child process (pid {pid}) running {func!r} exited with code {exitcode} "
            f"without sending a result (killed by a signal if negative)"
        )
    ok, value, child_traceback = answer
    if ok:
        result: T = value
        return result
    value.add_note(f"\nTraceback in the child process (pid {pid}):\n{child_traceback}")
    raise value


def _stop(process: Any) -> None:
    """Terminate and reap a child whose task stopped waiting (a no-op if it never started)."""
    if process.pid is None:
        return
    if process.exitcode is None:
        process.terminate()
        process.join(TERMINATE_GRACE_SECONDS)
        if process.exitcode is None:  # it handles or ignores SIGTERM
            process.kill()
    process.join()
    process.close()


def _child_main(conn: Connection, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """In the child: run the function, send back (ok, result or exception, traceback)."""
    try:
        answer: tuple[bool, Any, str | None]
        try:
            answer = (True, func(*args), None)
        except BaseException as error:
            answer = (False, _sendable(error), traceback.format_exc())
        try:
            conn.send(answer)
        except Exception as error:  # the result could not be pickled
            conn.send(
                (
                    False,
                    TypeError(f"run_in_process({func!r}) returned an unpicklable result: {error}"),
                    traceback.format_exc(),
                )
            )
    finally:
        conn.close()


def _sendable(error: BaseException) -> BaseException:
    """``error`` if it survives the trip through pickle, else a RuntimeError describing it.

    (An exception class whose ``__init__`` takes other arguments than it passes on to
    ``Exception.__init__`` pickles fine but fails to unpickle -- in the parent, too late.)
    """
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__qualname__}: {error} (could not be pickled)")
    return error
