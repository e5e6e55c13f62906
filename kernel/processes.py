"""Processes: run a CPU-bound function in a child process while the task waits on pipes.

Threads do not help CPU-bound Python code (one interpreter lock); a separate process does.
``await run_in_process(func, *args)`` starts one child process for the call and talks to it
over two one-way pipes, like any other I/O:

1. The child is started from a ``multiprocessing`` context that is safe in a program with
   threads: "forkserver" on Linux (children are forked from a small clean server process,
   never from this multi-threaded one), "spawn" elsewhere. Either way ``func`` and its
   arguments travel to the child by pickling, so ``func`` must be importable by name.
2. ``process.start()`` pickles ``func`` and its arguments but only forks; they are sent
   afterwards, over a pipe of their own, which the task writes without blocking: whenever
   the pipe is full it parks in the I/O wait table (the ``IO_WAIT`` trap, no thread
   involved). A new child imports the main module again before it reads anything, and a
   large argument would otherwise hold the whole kernel for as long as that takes.
3. The child ignores SIGINT, reads the call to the end of its pipe, runs ``func(*args)``
   and sends back, over the other pipe (a ``multiprocessing.Pipe``), either its result or
   the exception -- with the child's traceback as text, added to the exception as a note.
4. The task parks until that pipe is readable, reads the answer, then waits the same way
   on the process's *sentinel* (readable once the child has exited) and reaps it. Only
   then is the answer unpickled, so an answer that cannot be rebuilt here is reported like
   any other error.

Invariant: when ``run_in_process`` returns or raises, its child has exited and been reaped,
and both ends of both pipes are closed -- also when the waiting task is cancelled, in which
case the child is terminated (then killed if it ignores that) before the cancellation
leaves. No zombie and no file descriptor is left behind. Stopping a child waits for it
through the kernel, like everything else here: other tasks run meanwhile.

Read next: ``kernel/universal.py``.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from .iotable import EVENT_READ, EVENT_WRITE
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


def _check_not_daemonic() -> None:
    """Refuse to start a child from a daemonic process: a ``run_in_process`` child, say.

    Discussion: the children are daemonic, and ``multiprocessing`` does not let a daemonic
    process have children of its own; this says so in words, where ``process.start()``
    would fail a bare assertion. Nesting could be allowed by starting non-daemonic children,
    but two promises would go. A child is stopped with SIGTERM, then SIGKILL, neither of
    which runs the cleanup of a kernel inside it: cancelling the outer call would stop the
    child and orphan the grandchild, which would run its function to the end. And a
    program that exits without its kernel's cleanup (a kernel in a daemon thread, say) has
    its daemonic children terminated by ``multiprocessing``'s exit handler, but would wait
    at exit for non-daemonic ones, for as long as they run.
    """
    if multiprocessing.current_process().daemon:
        raise RuntimeError(
            f"run_in_process() cannot start a child process from "
            f"{multiprocessing.current_process().name!r}: it is a daemonic process (the "
            f"child of another run_in_process() call, or a multiprocessing.Pool worker), and "
            f"those may not have children -- stopping it would leave them orphaned. Do the "
            f"work in this process directly, or return to the parent and have it call "
            f"run_in_process() for each piece of work"
        )


# How the module name begins that kernel/trace/script.py's load() gives a script `python -m
# kernel` runs: defined here, where it is checked, and imported there (views use the core).
SCRIPT_MODULE_PREFIX = "_kernel_script_"
_SCRIPT_ADVICE = (
    "the script was loaded by `python -m kernel` (run, explain, timeline...) under a private "
    "module name that a child cannot import. Run the script itself (`python script.py`), or "
    "move what is sent into a module the script imports"
)


def _check_picklable(func: Callable[..., Any]) -> None:
    # (Looked at first: such a function pickles here, where the script's module is known
    # by its private name, and fails only in the child.)
    if (getattr(func, "__module__", None) or "").startswith(SCRIPT_MODULE_PREFIX):
        raise TypeError(
            f"run_in_process() cannot send {func!r} to a child process: {_SCRIPT_ADVICE}"
        )
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
    back; one that cannot be raises a ``TypeError`` naming it (an argument: before any
    child is started). An exception raised by ``func`` is raised here with the child's
    traceback added as a note. If the task is cancelled or times out while it waits, the
    child is terminated. The child ignores SIGINT: a Ctrl-C at the terminal is the
    program's to handle.

    As with any ``multiprocessing`` child that is not a bare fork, the child imports the
    main module again: a script must start the kernel under ``if __name__ == "__main__":``.
    Starting the child blocks the kernel for the time it takes to pickle ``func`` and
    ``args`` and to fork (longer the first time, when the fork server starts); they are
    written to the child as it reads them, while other tasks run. The answer is read once
    its first byte has arrived; the child writes it in one go, so the rest follows at
    memory speed. ``func`` cannot itself call ``run_in_process``: the child is a daemonic
    process, which may not have children (``RuntimeError``).
    """
    _check_not_daemonic()
    _check_picklable(func)
    context = _context()
    call = _Call(func, args)
    call_reader, call_writer = context.Pipe(duplex=False)
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(
        target=_child_main,
        args=(call, call_reader, writer),
        name=f"kernel-process:{getattr(func, '__qualname__', func)}",
        daemon=True,  # never outlives this program, even if it dies without cleaning up
    )
    try:
        try:
            process.start()  # pickles the call (see _Call) and forks; sends only the rest
        finally:
            # The child has its own copies. Ours would hide its EOF on the answer pipe, and
            # keep the call pipe open should the child die before reading it all.
            call_reader.close()
            writer.close()
        await _send(call_writer, call.take())
        call_writer.close()  # the end of the call, for the child
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
        call_writer.close()
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


class _Call:
    """``func`` and its arguments, pickled when ``process.start()`` pickles the process, but
    sent to the child apart from it, by ``_send``.

    Discussion: ``process.start()`` writes everything it pickled to the new child in one
    blocking write, and the child reads it only after importing the main module again --
    which may take seconds (numpy, torch...). Anything larger than a pipe holds would keep
    the kernel's thread in that write all the while. So the call is not among what
    ``start()`` sends: this object stands in its place, and pickles as a placeholder. But
    the call is pickled *at that moment*, from ``__reduce__``, because some arguments can
    travel only while ``multiprocessing`` starts a process: its locks, events and queues
    (pickled at any other time, they raise ``RuntimeError``: "should only be shared between
    processes through inheritance"), and the file descriptors of connections, which
    ``start()`` hands to the child itself. So whatever could be passed before still can.
    """

    __slots__ = ("call", "pickled")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.call: tuple[Callable[..., Any], tuple[Any, ...]] | None = (func, args)
        self.pickled: memoryview | None = None

    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        assert self.call is not None, "a _Call is pickled once, by process.start()"
        call, self.call = self.call, None
        try:
            self.pickled = ForkingPickler.dumps(call)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            # Raised out of process.start() before it forks: no child, nothing to stop.
            raise _unpicklable_call(*call, error) from error
        return (_sent_apart, ())

    def take(self) -> memoryview:
        """The pickled call, given up by this object (it may be large)."""
        pickled, self.pickled = self.pickled, None
        if pickled is None:
            raise RuntimeError("process.start() returned without pickling the call")
        return pickled


def _unpicklable_call(
    func: Callable[..., Any], args: tuple[Any, ...], error: Exception
) -> TypeError:
    """The error for a call that cannot be pickled to the child, naming what cannot be.

    Discussion: pickle's own error names a class or a local object, not which argument
    holds it, so each argument is tried alone -- still inside ``process.start()``, so that
    an argument that may travel only then (a ``multiprocessing`` lock) is not blamed.
    """
    for number, arg in enumerate(args, 1):
        try:
            ForkingPickler.dumps(arg)
        except Exception as arg_error:  # (the first one that fails is the one to name)
            return TypeError(
                f"run_in_process({func!r}, ...) cannot send argument {number}, "
                f"{_short_repr(arg)}, to the child process: it cannot be pickled "
                f"({type(arg_error).__name__}: {arg_error}). Pass plain data (numbers, "
                f"strings, lists, dicts, dataclasses) or objects whose classes and functions "
                f"are defined at the top level of a module -- not a lambda, a local "
                f"function, a lock or an open file"
            )
    return TypeError(
        f"run_in_process({func!r}, ...) cannot send the call to the child process: it cannot "
        f"be pickled ({type(error).__name__}: {error}). Pass a function defined at the top "
        f"level of a module, and plain data or objects whose classes and functions are "
        f"defined there too"
    )


def _short_repr(obj: object, limit: int = 200) -> str:
    """``repr(obj)``, cut short if longer than ``limit`` (an argument may be a large list)."""
    text = repr(obj)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _sent_apart() -> None:
    """What a ``_Call`` is in the child: nothing -- the call itself comes over its pipe."""
    return None


async def _send(pipe: Connection, data: memoryview) -> None:
    """Write all of ``data`` to ``pipe``, parked in the I/O wait table while it is full.

    A child that exits before taking it all (killed, or failed to import the main module)
    breaks the pipe: the rest is dropped, and the child's exit code tells what happened.
    """
    fd = pipe.fileno()
    os.set_blocking(fd, False)
    with data:
        written, total = 0, len(data)
        while written < total:
            try:
                written += os.write(fd, data[written:])
            except BlockingIOError:
                await _io_wait(fd, EVENT_WRITE)
            except BrokenPipeError:
                return


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


def _child_main(_sent_apart: None, calls: Connection, answers: Connection) -> None:
    """In the child: take the call, run it, send back (ok, result or exception, traceback).

    Discussion: SIGINT is ignored from the start. A Ctrl-C at a terminal is sent to every
    process in the foreground process group, so to this child too, and it is for the program
    to decide what it means -- it may handle SIGINT itself (``SignalEvent``) and let the
    work in progress finish. Left to Python's default handler, every child would raise
    KeyboardInterrupt and send it back as the outcome of its call. Cancelling the task
    still stops the child: that is SIGTERM, then SIGKILL.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    func: Callable[..., Any] | None = None
    try:
        answer: tuple[bool, Any, str | None]
        try:
            func, args = _receive(calls)
            answer = (True, func(*args), None)
        except BaseException as error:
            answer = (False, _sendable(error), traceback.format_exc())
        try:
            answers.send(answer)
        except Exception as error:  # the result could not be pickled
            answers.send(
                (
                    False,
                    TypeError(f"run_in_process({func!r}) returned an unpicklable result: {error}"),
                    traceback.format_exc(),
                )
            )
    finally:
        answers.close()


def _receive(calls: Connection) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """In the child: read the pickled call to the end of its pipe (the parent closes it after
    the last byte) and unpickle it."""
    try:
        with io.FileIO(calls.fileno(), "rb", closefd=False) as pipe:
            pickled = pipe.readall()
    finally:
        calls.close()
    try:
        call: tuple[Callable[..., Any], tuple[Any, ...]] = pickle.loads(pickled)
    except Exception as error:
        if isinstance(error, ModuleNotFoundError) and (error.name or "").startswith(
            SCRIPT_MODULE_PREFIX
        ):
            raise TypeError(
                f"run_in_process(): the child process could not unpickle an argument: "
                f"{_SCRIPT_ADVICE}"
            ) from error
        raise TypeError(
            f"run_in_process(): the child process could not unpickle the function and "
            f"arguments it was sent ({type(error).__name__}: {error}). Pass objects whose "
            f"classes and functions are defined at the top level of a module the child can "
            f"import"
        ) from error
    return call


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
