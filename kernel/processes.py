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
   *sentinel* (readable once the child has exited) and reaps it. Only then is the answer
   unpickled, so an answer that cannot be rebuilt here is reported like any other error.

Invariant: when ``run_in_process`` returns or raises, its child has exited and been reaped,
and both ends of the pipe are closed -- also when the waiting task is cancelled, in which
case the child is terminated (then killed if it ignores that) before the cancellation
leaves. No zombie and no file descriptor is left behind. Stopping a child waits for it
through the kernel, like everything else here: other tasks run meanwhile.

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
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from .iotable import EVENT_READ
from .task import disable_cancellation, spawn
from .time import sleep
from .traps import _io_wait

__all__ = ["run_in_process"]

T = TypeVar("T")

# How long a cancelled child gets to exit after SIGTERM before it is sent SIGKILL (seconds on
# the kernel's clock; kernel/popen.py uses it too).
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
            message: bytes | None = reader.recv_bytes()
        except EOFError:  # the child died without answering
            message = None
        await _io_wait(process.sentinel, EVENT_READ)
        process.join()
    except BaseException as error:
        await _stop(process, error)
        raise
    finally:
        reader.close()
    pid, exitcode = process.pid, process.exitcode
    process.close()
    if message is None:
        raise RuntimeError(
            f"the child process (pid {pid}) running {func!r} exited with code {exitcode} "
            f"without sending a result (killed by a signal if negative)"
        )
    ok, value, child_traceback = _unpickle_answer(message, func)
    if ok:
        result: T = value
        return result
    value.add_note(f"\nTraceback in the child process (pid {pid}):\n{child_traceback}")
    raise value


def _unpickle_answer(message: bytes, func: Callable[..., Any]) -> tuple[bool, Any, str | None]:
    """The child's ``(ok, result or exception, traceback)``, rebuilt from its bytes.

    Discussion: pickling in the child proves little about unpickling here. An object's
    pickle names a callable to rebuild it with and the arguments to pass; an exception
    class whose ``__init__`` takes other arguments than it passes on to
    ``Exception.__init__`` pickles fine and fails here, with a bare error from pickle that
    says nothing of where the object came from. (A raised exception was already tried both
    ways in the child, by ``_sendable``; a returned value is not, as that would unpickle
    every result twice.)
    """
    try:
        answer: tuple[bool, Any, str | None] = ForkingPickler.loads(message)
    except Exception as error:
        raise TypeError(
            f"run_in_process({func!r}) returned a result that could not be sent back: it "
            f"was pickled in the child process, but unpickling it here failed "
            f"({type(error).__name__}: {error}). Return plain data (numbers, strings, "
            f"lists, dicts, dataclasses) -- or, for an exception class, one whose __init__ "
            f"passes all its arguments on to Exception.__init__"
        ) from error
    return answer


async def _stop(process: BaseProcess, error: BaseException) -> None:
    """The task waiting for ``process`` is leaving with ``error``: stop and reap the child.

    Discussion: SIGTERM first, so a child that handles it can clean up; a *watchdog* task
    sends SIGKILL if the child is still alive ``TERMINATE_GRACE_SECONDS`` later (on the
    kernel's clock). The wait itself is on the sentinel, in the I/O wait table, so the
    kernel runs other tasks meanwhile -- a ``process.join(timeout)`` here would freeze them
    all for the grace period. It happens with cancellation disabled: a second cancel must
    not interrupt the cleanup of the first (it is delivered afterwards). This is the same
    sequence as ``Popen._stop`` in ``kernel/popen.py``, which waits on a pidfd instead.

    The kernel may abandon the task during that wait (a second Ctrl-C closes every
    coroutine, throwing GeneratorExit into it). Nothing may be awaited from then on -- not
    even the watchdog's cancel -- so the child is killed and reaped at once, by
    ``_stop_now``.
    """
    if process.pid is None:
        return  # start() failed: there is no child
    if isinstance(error, GeneratorExit):
        _stop_now(process)  # the coroutine is being closed: nothing may be awaited now
        return
    async with disable_cancellation():
        if process.exitcode is None:  # (which reaps a child that has exited already)
            process.terminate()
            watchdog = await spawn(
                _kill_after, process.kill, TERMINATE_GRACE_SECONDS, daemon=True, name="kill-after"
            )
            try:
                await _io_wait(process.sentinel, EVENT_READ)
            except GeneratorExit:
                _stop_now(process)  # abandoned in the grace period (the watchdog is, too)
                raise
            except BaseException:
                await watchdog.cancel()
                raise
            await watchdog.cancel()
        process.join()  # the child has exited: this returns at once
    process.close()


async def _kill_after(kill: Callable[[], None], seconds: float) -> None:
    """A watchdog: call ``kill`` once ``seconds`` have passed, unless cancelled first."""
    await sleep(seconds)
    kill()


def _stop_now(process: BaseProcess) -> None:
    """``_stop`` without waiting in the kernel: SIGKILL and a blocking, but short, reap."""
    if process.exitcode is None:
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
