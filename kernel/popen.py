"""``Popen``: a child process whose waits are async, and whose pipes are ``FileStream``s.

A child process is started by the standard library's ``subprocess.Popen`` (one fork/exec,
which blocks the kernel for the millisecond it takes); everything that *waits* is done on
the I/O wait table:

* the pipes to and from the child are wrapped in ``FileStream``s (``kernel/filestream.py``),
  non-blocking descriptors read and written with the ``IO_WAIT`` trap;
* the child's exit is a descriptor too. On Linux 5.3 and later, ``os.pidfd_open(pid)``
  gives a *pidfd*, which becomes readable when the process terminates: the waiting task
  parks on it like on a socket -- no thread, no ``SIGCHLD`` handler -- and then reaps the
  child with a ``waitpid`` that cannot block. Elsewhere a worker thread blocks in
  ``waitpid`` for it (``run_in_thread``).

Invariant: a task that is cancelled (or times out) while it waits for a child -- in
``Popen.wait``, ``Popen.communicate``, at the end of ``async with Popen(...)``, or in
``kernel.subprocess.run`` -- does not leave it behind. Before the cancellation goes on, the
child is sent SIGTERM, then SIGKILL if it is still alive ``TERMINATE_GRACE_SECONDS`` later;
it is reaped (no zombie) and its pipes and pidfd are closed (no descriptor leaked). If the
kernel abandons the task instead (a second Ctrl-C closes its coroutine), the child is killed
and reaped at once, since nothing may be awaited any more.

Read next: ``kernel/subprocess.py``, ``run`` and ``check_output`` on top of it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, TypeAlias

from .filestream import FileStream
from .iotable import EVENT_READ
from .processes import TERMINATE_GRACE_SECONDS, _kill_after
from .scheduler import running_task
from .sync import Event
from .task import Task, disable_cancellation, spawn
from .threads import run_in_thread
from .traps import _io_release, _io_wait

__all__ = ["Command", "Popen", "Redirect"]

_Path: TypeAlias = "str | bytes | os.PathLike[str] | os.PathLike[bytes]"
Command: TypeAlias = "_Path | Sequence[_Path]"
# Where a child's stdin/stdout/stderr goes: PIPE, DEVNULL, STDOUT, a descriptor, a file
# object, or a FileStream (handed over to the child: see Popen).
Redirect: TypeAlias = "int | IO[Any] | FileStream | None"

_TEXT_OPTIONS = ("text", "universal_newlines", "encoding", "errors")


class _Pidfd:
    """A pidfd: a descriptor that becomes readable when its process exits (Linux >= 5.3).

    An object of its own rather than a bare int, because the I/O wait table keeps a
    descriptor registered between waits and recognises a stale registration (the number
    closed, then reused) by the object it was made for -- and the int 7 of a closed pidfd
    *is* the int 7 of the next one.
    """

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __repr__(self) -> str:
        return f"<pidfd {self.fd}>"

    def fileno(self) -> int:
        return self.fd


def _open_pidfd(pid: int) -> _Pidfd | None:
    """The pidfd of process ``pid``, or None if the platform has none (then a worker thread
    waits instead)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return _Pidfd(pidfd_open(pid))
    except OSError:  # ENOSYS: Linux older than 5.3
        return None


class Popen:
    """A child process, started at once, like ``subprocess.Popen``, whose waits are async.

    ``stdin`` / ``stdout`` / ``stderr``: ``PIPE`` makes that attribute a ``FileStream``
    (bytes; text options are refused -- decode what you read). A ``FileStream`` given here,
    such as another child's ``stdout`` in a pipeline, is handed to the child: it is switched
    back to blocking mode (a mode the child shares) and the parent may only close it.
    Every other keyword argument is passed to ``subprocess.Popen``.

    ``async with Popen(...) as p:`` closes the pipes and waits for the child at the end of
    the block -- or, if the block raised, stops the child (see the module docstring).
    """

    def __init__(
        self,
        args: Command,
        *,
        stdin: Redirect = None,
        stdout: Redirect = None,
        stderr: Redirect = None,
        **options: Any,
    ) -> None:
        refused = [name for name in _TEXT_OPTIONS if options.get(name)]
        if "bufsize" in options:
            refused.append("bufsize")
        if refused:
            raise TypeError(
                f"kernel.subprocess.Popen does not take {', '.join(refused)}: its pipes are "
                f"unbuffered byte streams (decode what you read; run() and check_output() do "
                f"take text=, encoding= and errors=)"
            )
        handed = [s for s in (stdin, stdout, stderr) if isinstance(s, FileStream)]
        for stream in handed:
            os.set_blocking(stream.fileno(), True)  # before the child can read it
        try:
            self._popen = subprocess.Popen(
                args,
                bufsize=0,
                stdin=_redirect(stdin),
                stdout=_redirect(stdout),
                stderr=_redirect(stderr),
                **options,
            )
        except BaseException:
            for stream in handed:
                os.set_blocking(stream.fileno(), False)
            raise
        for stream in handed:
            stream._hand_to_child()
        self.args = args
        self.pid = self._popen.pid
        popen = self._popen
        self.stdin = FileStream(popen.stdin) if popen.stdin is not None else None
        self.stdout = FileStream(popen.stdout) if popen.stdout is not None else None
        self.stderr = FileStream(popen.stderr) if popen.stderr is not None else None
        self._pidfd = _open_pidfd(self.pid)
        self._reaping = False  # a task is parked waiting for the exit (on the pidfd)
        self._exited = Event()  # set once the child is reaped; other waiters park here
        # What communicate() read from stdout and stderr: all of it, or, if it was
        # interrupted, what had arrived by then (run() hands that to TimeoutExpired, as the
        # standard library does). A second communicate() returns it again.
        self._output: tuple[bytes | None, bytes | None] | None = None

    def __repr__(self) -> str:
        return f"<kernel.subprocess.Popen pid={self.pid} returncode={self.returncode}>"

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative: killed by that signal), else None."""
        return self._popen.returncode

    def poll(self) -> int | None:
        """The exit status if the child has exited (it is reaped then), else None."""
        return self._popen.poll()

    def send_signal(self, signo: int) -> None:
        """Send ``signo`` to the child (nothing happens if it has been reaped)."""
        self._popen.send_signal(signo)

    def terminate(self) -> None:
        """SIGTERM: ask the child to exit."""
        self._popen.terminate()

    def kill(self) -> None:
        """SIGKILL: stop the child now."""
        self._popen.kill()

    async def wait(self) -> int:
        """Wait for the child to exit and return its exit status.

        If the task is cancelled (or times out) while it waits, the child is stopped first.
        """
        try:
            return await self._wait_exit()
        except BaseException as error:
            await self._stop(error)
            raise

    async def communicate(self, input: bytes | None = None) -> tuple[bytes | None, bytes | None]:
        """Send ``input`` (then close stdin), read stdout and stderr to the end, and wait.

        Returns ``(stdout, stderr)``, None for a stream that is not a pipe. The three pipes
        are served at once, by helper tasks, so a child that fills one pipe while the parent
        waits on another cannot deadlock. Cancelled: the child is stopped. A pipe the caller
        has closed already is skipped, as by the standard library's: b"" for its output,
        nothing fed to it (``ValueError`` if there is ``input`` for a closed stdin).

        Once a call has ended, the pipes are closed; a second call returns the same output
        again, as the standard library's does -- all of it, or what the first call had read
        when it was interrupted (the child was stopped then: there will be no more). Input
        cannot be sent a second time.
        """
        if self._output is not None:
            if input:
                raise ValueError("communicate() has ended: input cannot be sent any more")
            return self._output
        if input and self.stdin is None:
            raise ValueError("communicate(input=...) needs stdin=PIPE")
        if input and self.stdin is not None and self.stdin.closed:
            raise ValueError(
                "communicate(input=...): stdin is closed already, so the input cannot be "
                "sent; write it to p.stdin before closing it, or call communicate() without it"
            )
        # Helpers of a daemon task are daemons too: if the kernel shuts down while they
        # run, they are cancelled with it, quietly, instead of reported as forgotten.
        daemon = running_task().daemon
        helpers: list[Task] = []
        readers: list[Task | None] = [None, None]
        try:
            if self.stdin is not None and not self.stdin.closed:
                helpers.append(
                    await spawn(_feed, self.stdin, input, daemon=daemon, name="communicate:stdin")
                )
            readers = [
                await spawn(_read_to_end, stream, daemon=daemon, name=f"communicate:{name}")
                if stream
                else None
                for name, stream in (("stdout", self.stdout), ("stderr", self.stderr))
            ]
            helpers += [reader for reader in readers if reader is not None]
            for helper in helpers:
                await helper.wait()
            failures = [helper.exception for helper in helpers]  # (each one is now observed)
            for failure in failures:
                if failure is not None:
                    raise failure
            await self._close_pipes()
            await self._wait_exit()
        except BaseException as error:
            if not isinstance(error, GeneratorExit):  # (closing, a coroutine may not await)
                async with disable_cancellation():
                    for helper in helpers:
                        await helper.cancel()
            # Before _stop closes the pipes, which empties their buffers.
            self._output = (
                _read_so_far(readers[0], self.stdout),
                _read_so_far(readers[1], self.stderr),
            )
            await self._stop(error)
            raise
        out, err = (reader.result if reader is not None else None for reader in readers)
        self._output = out, err
        return out, err

    async def _wait_exit(self) -> int:
        """Wait for the exit and reap the child; only one task at a time parks on the pidfd."""
        popen = self._popen
        if popen.returncode is None:
            if self._reaping:
                await self._exited.wait()
            else:
                self._reaping = True
                try:
                    if self._pidfd is not None:
                        await _io_wait(self._pidfd, EVENT_READ)
                    else:
                        await run_in_thread(popen.wait)
                finally:
                    self._reaping = False
                popen.wait()  # the child has exited: this waitpid() returns at once
        if not self._exited.is_set():
            # Whoever reaped the child -- this wait, poll(), or the poll inside terminate()
            # when a cancelled waiter stops it -- the other waiters wake here.
            await self._exited.set()
        if self._pidfd is not None and not self._reaping:  # (also after a poll() reaped it)
            await _io_release(self._pidfd)  # out of the I/O wait table before closing
            self._close_pidfd()
        assert popen.returncode is not None
        return popen.returncode

    async def _stop(self, error: BaseException) -> None:
        """The task waiting for the child is leaving with ``error``: stop, reap, close.

        Discussion: SIGTERM first, so a well-behaved child can clean up; a *watchdog* task
        sends SIGKILL if it is still alive after the grace period. The waiting itself is the
        ordinary pidfd wait, so the kernel runs other tasks meanwhile. It happens with
        cancellation disabled: a second cancel must not interrupt the cleanup of the first
        (it is delivered afterwards).

        The kernel may abandon the task during that wait (a second Ctrl-C closes every
        coroutine, throwing GeneratorExit into it). Nothing may be awaited from then on --
        not even the watchdog's cancel -- so the child is killed and reaped at once, by
        ``_stop_now``. (The no-cancel block itself ends without a trap then.)
        """
        if isinstance(error, GeneratorExit):
            self._stop_now()  # the coroutine is being closed: nothing may be awaited now
            return
        async with disable_cancellation():
            if self.returncode is None:
                self.terminate()  # (which reaps a child that has exited already: it polls)
            if self.returncode is None:
                watchdog = await spawn(
                    _kill_after, self.kill, TERMINATE_GRACE_SECONDS, daemon=True, name="kill-after"
                )
                try:
                    await self._wait_exit()
                except GeneratorExit:
                    self._stop_now()  # abandoned in the grace period (the watchdog is, too)
                    raise
                except BaseException:
                    await watchdog.cancel()
                    raise
                await watchdog.cancel()
            else:
                await self._wait_exit()  # reaped: this only wakes other waiters, closes the pidfd
            await self._close_pipes()

    def _stop_now(self) -> None:
        """``_stop`` without waiting in the kernel: SIGKILL and a blocking reap."""
        if self._popen.returncode is None:
            self._popen.kill()
            self._popen.wait()
        self._close_pidfd()
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                stream._close_now()

    async def _close_pipes(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                await stream.close()

    def _close_pidfd(self) -> None:
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            os.close(pidfd.fd)

    def __del__(self) -> None:
        # A Popen nobody waited for. (A task waiting on the pidfd holds a reference, and a
        # wait that ends -- even cancelled -- closes it: see _stop.)
        with contextlib.suppress(Exception):
            self._close_pidfd()

    async def __aenter__(self) -> Popen:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            await self._stop(exc)
            return
        # Pipes first, like the standard library: a child blocked writing to a pipe nobody
        # will read gets EPIPE and exits, instead of the wait below hanging on it.
        await self._close_pipes()
        await self.wait()


async def _feed(stdin: FileStream, data: bytes | None) -> None:
    """A ``communicate`` helper: write the input, then close stdin so the child sees EOF."""
    try:
        if data:
            await stdin.write(data)
    except BrokenPipeError:
        pass  # the child exited (or closed stdin) without reading it all, as it may
    finally:
        await stdin.close()


async def _read_to_end(stream: FileStream) -> bytes:
    """A ``communicate`` helper: everything up to the end of ``stream``.

    A stream the caller has closed already counts as one at its end: b"", as the standard
    library's ``communicate`` skips a closed pipe (the caller read from it what it wanted).
    """
    if stream.closed:
        return b""
    return await stream.readall()


def _read_so_far(reader: Task | None, stream: FileStream | None) -> bytes | None:
    """What a ``communicate`` reader of ``stream`` had read when it was stopped (None: not a
    pipe). A reader that reached the end of the stream holds it all as its result; one
    cancelled on the way left what it read in the stream's buffer."""
    if stream is None:
        return None
    if reader is not None and reader.done and not reader.cancelled and reader.exception is None:
        result: bytes = reader.result
        return result
    return bytes(stream._buffer)


def _redirect(target: Redirect) -> int | IO[Any] | None:
    return target.fileno() if isinstance(target, FileStream) else target
