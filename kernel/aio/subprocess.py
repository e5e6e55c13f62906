"""Pipes and child processes for the adapter loop: ``ProcessMixin``.

``ProcessMixin`` gives the adapter's event loop the last four methods of
``asyncio.AbstractEventLoop``: ``connect_read_pipe``, ``connect_write_pipe``,
``subprocess_exec`` and ``subprocess_shell``. With them ``asyncio.create_subprocess_exec``,
``asyncio.create_subprocess_shell`` and ``asyncio.subprocess.Process`` (``communicate``,
``wait``, the ``stdin`` / ``stdout`` / ``stderr`` streams) run on the kernel unchanged:
asyncio's own ``Process`` and ``SubprocessStreamProtocol`` are the layer above, this module
is the layer below.

For the loop, a child process is nothing but descriptors in the kernel's I/O wait table:

1. *Its pipes.* ``subprocess.Popen`` makes them (one blocking fork/exec, as in asyncio).
   Each becomes a pipe transport (``pipes.py``), made through the loop's own public
   ``connect_write_pipe`` (stdin) and ``connect_read_pipe`` (stdout, stderr).
2. *Its exit.* On Linux 5.3 and later, ``os.pidfd_open(pid)`` gives a *pidfd*: a descriptor
   that becomes readable when the process terminates. ``add_reader(pidfd, ...)`` is all it
   takes to be told; the callback then reaps the child with ``os.waitpid(pid, WNOHANG)``,
   which cannot block. No thread, no ``SIGCHLD`` handler, nothing that could reap another
   library's children: that is ``_ExitWatch``. (Where there is no pidfd, the same callback
   is run from the sleeping queue instead, ``call_later`` every 1 ms doubling to 100 ms.)
3. *The transport* the protocol sees, ``SubprocessTransport``, which ties them together::

       subprocess_exec()          Popen(...); the exit is watched from this moment
       a task                     connect_write_pipe(stdin), connect_read_pipe(stdout), (stderr)
         then                     protocol.connection_made(transport), then every protocol
                                  call held back meanwhile, in order; subprocess_exec returns
       a pipe's data              -> protocol.pipe_data_received(fd, data)
       a pipe closed              -> protocol.pipe_connection_lost(fd, exc)
       the child reaped           -> protocol.process_exited()
       child reaped and every     -> protocol.connection_lost(None); _wait() returns the
         pipe closed                 return code (what Process.wait() awaits)

The rules the transport keeps:

* Every protocol call is queued with ``call_soon`` (``_call``), none is made from inside
  the transport's own bookkeeping: a protocol that raises is reported by the loop and
  cannot leave the transport half-updated, and a protocol that calls ``close()`` from
  ``process_exited`` does not re-enter us. Calls that come before ``connection_made``
  (a child that exits at once) wait in ``_pending`` and keep their order.
* Exactly one place reaps the child (the exit watch), and every exit path gets there:
  ``close()`` kills a child that is still running, as asyncio does, and the watch then
  reaps it and closes the pidfd. No zombie, no descriptor. While the child runs, the
  watch's registration in the loop keeps the transport alive; a transport collected
  unclosed after that warns ``ResourceWarning: unclosed transport`` and is closed.
* A ``subprocess_exec`` that is cancelled or fails after the child started closes the
  transport (killing the child) and waits until it is reaped before it raises.

Differences from asyncio (``base_subprocess.py``, ``unix_events.py``):

* The exit is watched by the loop itself (a pidfd, as ``PidfdChildWatcher`` does, without
  the watcher object): ``asyncio.get_child_watcher()`` / ``set_child_watcher()`` (3.11,
  3.12) are neither needed nor consulted.
* ``send_signal()``, ``terminate()`` and ``kill()`` go straight to ``os.kill`` on every
  Python (3.13's behaviour; ``Popen.send_signal`` would ``poll()`` first and could reap the
  child behind the watch's back), and do nothing once the child is reaped -- its pid may
  belong to another process by then. After ``connection_lost`` they raise
  ``ProcessLookupError``, as asyncio's do.
* A child reaped behind the transport's back through its ``Popen`` (``poll()`` or
  ``wait()`` on ``get_extra_info('subprocess')``) reports the return code the ``Popen``
  read, not asyncio's 255. A child reaped by someone else entirely (a ``SIGCHLD`` handler
  calling ``waitpid(-1)``, such as asyncio's ``FastChildWatcher`` attached to this loop)
  leaves no status to read: then, as in asyncio, 255 is reported, with a warning.
* ``subprocess_exec`` / ``subprocess_shell`` on a closed loop raise ``RuntimeError`` before
  starting the child (asyncio starts it first). If wiring the pipes fails, the pipes are
  closed and ``_wait()`` still returns (asyncio's would wait forever).
* ``close()`` once the loop is closed (or the garbage collector closing the transport then)
  kills the child and reaps it at once -- a blocking ``waitpid`` right after ``SIGKILL`` --
  and closes the pidfd and the pipes, without protocol calls: nothing can run any more.
* There is no AIX socket-pair variant of stdin.

Read next: ``kernel/aio/pipes.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import warnings
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

from .pipes import ReadPipeTransport, WritePipeTransport

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop as _LoopBase
else:
    _LoopBase = object

__all__ = ["ProcessMixin", "SubprocessTransport"]

log = logging.getLogger("kernel")

_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)
_PipeTransportT = TypeVar("_PipeTransportT", ReadPipeTransport, WritePipeTransport)
_Stdio = int | IO[Any] | None  # what Popen takes for stdin / stdout / stderr

EXIT_POLL_FIRST = 0.001  # seconds: without a pidfd, the first waitpid poll comes after this,
EXIT_POLL_MAX = 0.1  # and the interval doubles up to this
UNKNOWN_RETURNCODE = 255  # reported, as asyncio does, when someone else read the exit status


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that turns readable when process ``pid`` exits, or None where there is none.

    None when ``os`` has no ``pidfd_open`` (not Linux), when the kernel is older than 5.3
    (ENOSYS), or when the process is already reaped (ESRCH): waitpid polling covers them all.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return cast(int, pidfd_open(pid))
    except OSError:
        return None


class _ExitWatch:
    """Reaps child ``popen`` as soon as it exits and hands its return code to ``on_exit``.

    ``on_exit(returncode)`` is called once, from a loop callback. Until then the watch is
    registered in the loop (a reader on the pidfd, or a timer), which keeps it -- and the
    transport whose method ``on_exit`` is -- alive.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        popen: subprocess.Popen[bytes],
        on_exit: Callable[[int], None],
    ) -> None:
        self._loop = loop
        self._popen = popen
        self._on_exit: Callable[[int], None] | None = on_exit
        self._timer: asyncio.TimerHandle | None = None
        self._delay = EXIT_POLL_FIRST
        self._pidfd = _open_pidfd(popen.pid)
        if self._pidfd is not None:
            loop.add_reader(self._pidfd, self._check)
        else:
            self._timer = loop.call_later(self._delay, self._poll)

    @property
    def active(self) -> bool:
        return self._on_exit is not None

    def _poll(self) -> None:
        self._timer = None
        self._check()
        if self.active:  # still running: look again later, less and less often
            self._delay = min(self._delay * 2, EXIT_POLL_MAX)
            self._timer = self._loop.call_later(self._delay, self._poll)

    def _check(self) -> None:
        """Reap the child if it has exited; the pidfd being readable says it has."""
        try:
            pid, status = os.waitpid(self._popen.pid, os.WNOHANG)
        except ChildProcessError:
            returncode = self._status_read_elsewhere()
        else:
            if pid == 0:
                return  # still running (a spurious wake-up, or the next poll will tell)
            returncode = os.waitstatus_to_exitcode(status)
        self._finish(returncode)

    def reap_now(self) -> None:
        """Wait for the exit right here (the loop is closed: no callback will come).

        The caller has killed the child, so this does not wait long.
        """
        if not self.active:
            return
        try:
            _, status = os.waitpid(self._popen.pid, 0)
        except ChildProcessError:
            returncode = self._status_read_elsewhere()
        else:
            returncode = os.waitstatus_to_exitcode(status)
        self._finish(returncode)

    def _status_read_elsewhere(self) -> int:
        """The return code of a child someone else reaped, as far as we can know it."""
        if self._popen.returncode is not None:
            return self._popen.returncode  # reaped through its Popen: poll() or wait()
        log.warning(
            "child process pid %d exit status already read: will report returncode %d",
            self._popen.pid,
            UNKNOWN_RETURNCODE,
        )
        return UNKNOWN_RETURNCODE

    def _finish(self, returncode: int) -> None:
        on_exit, self._on_exit = self._on_exit, None
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._popen.returncode is None:
            # The Popen learns it too: it would otherwise warn "still running" when
            # collected, and its own poll() / wait() now answer at once.
            self._popen.returncode = returncode
        if on_exit is not None:
            on_exit(returncode)


class _PipeEnd(asyncio.Protocol):
    """The protocol of one of the child's pipes: forwards to the subprocess transport."""

    def __init__(self, owner: SubprocessTransport, fd: int) -> None:
        self.owner = owner
        self.fd = fd  # 0, 1 or 2: the child's side of the pipe
        self.pipe: asyncio.BaseTransport | None = None  # its transport, from connection_made
        self.disconnected = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self.fd} pipe={self.pipe!r}>"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.pipe = transport

    def data_received(self, data: bytes) -> None:
        self.owner._call("pipe_data_received", self.fd, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True
        self.owner._call("pipe_connection_lost", self.fd, exc)
        self.owner._try_finish()

    # Flow control of stdin goes to the subprocess protocol at once, not through _call:
    # a StreamWriter.drain() right after write() must already see the pause.
    def pause_writing(self) -> None:
        self.owner._protocol.pause_writing()

    def resume_writing(self) -> None:
        self.owner._protocol.resume_writing()


class SubprocessTransport(asyncio.SubprocessTransport):
    """A running child and its pipes, driving an ``asyncio.SubprocessProtocol``.

    Made by ``ProcessMixin`` around a started ``Popen``: it watches the exit at once and
    connects the pipes in a task, which sets ``waiter`` once ``connection_made`` has run.
    """

    _closed = True  # until __init__ has a child to look after (read by __del__)
    _extra: dict[str, Any]  # BaseTransport's slot: what get_extra_info() returns

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol: asyncio.BaseProtocol,
        popen: subprocess.Popen[bytes],
        waiter: asyncio.Future[None],
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra)
        self._extra["subprocess"] = popen
        self._loop = loop
        self._protocol = cast(asyncio.SubprocessProtocol, protocol)
        self._proc = popen
        self._pid = popen.pid
        self._returncode: int | None = None
        self._pending: list[tuple[Callable[..., object], tuple[Any, ...]]] | None = []
        self._connected = False  # connection_made was queued: protocol calls go out now
        self._finished = False  # connection_lost is queued
        self._gone = False  # connection_lost has run: the process is no business of ours
        self._exit_waiters: list[asyncio.Future[int]] = []
        stdio = (popen.stdin, popen.stdout, popen.stderr)
        self._pipes = {fd: _PipeEnd(self, fd) for fd, f in enumerate(stdio) if f is not None}
        self._exit = _ExitWatch(loop, popen, self._process_exited)
        self._connecting = loop.create_task(self._connect_pipes(waiter))
        self._closed = False

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._closed:
            info.append("closed")
        info.append(f"pid={self._pid}")
        if self._returncode is not None:
            info.append(f"returncode={self._returncode}")
        else:
            info.append("running")
        for fd, name in enumerate(("stdin", "stdout", "stderr")):
            end = self._pipes.get(fd)
            if end is not None and end.pipe is not None:
                info.append(f"{name}={end.pipe!r}")
        return f"<{' '.join(info)}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self.close()
            return
        watch: _ExitWatch | None = getattr(self, "_exit", None)  # None if __init__ failed
        if watch is not None and watch.active and self._loop.is_closed():
            self._reap_now()  # closed while the loop ran; the loop closed before the exit

    # -- wiring the pipes (a task) -------------------------------------------------------

    async def _connect_pipes(self, waiter: asyncio.Future[None]) -> None:
        """Give each pipe its transport, through the loop's own public methods (so a test
        may wrap them on the loop object); then connect the protocol."""
        loop = self._loop
        proc = self._proc
        try:
            if 0 in self._pipes:
                stdin = self._pipes[0]
                await loop.connect_write_pipe(lambda: stdin, proc.stdin)
            if 1 in self._pipes:
                stdout = self._pipes[1]
                await loop.connect_read_pipe(lambda: stdout, proc.stdout)
            if 2 in self._pipes:
                stderr = self._pipes[2]
                await loop.connect_read_pipe(lambda: stderr, proc.stderr)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._abandon_pipes()
            if not waiter.cancelled():
                waiter.set_exception(exc)
            return
        if self._closed:
            # Closed while we were connecting (subprocess_exec was cancelled): the pipes
            # connected since must not keep the transport alive.
            for end in self._pipes.values():
                if end.pipe is not None:
                    end.pipe.close()
        loop.call_soon(self._protocol.connection_made, self)
        pending, self._pending = self._pending, None
        self._connected = True
        for callback, args in pending or ():
            loop.call_soon(callback, *args)
        if not waiter.cancelled():
            waiter.set_result(None)

    def _abandon_pipes(self) -> None:
        """Connecting failed: the protocol never hears of this child; close its pipes."""
        self._pending = None  # (connection_lost may wait in there: _wake_waiters does its job)
        for fd, end in list(self._pipes.items()):
            if end.pipe is not None:
                end.pipe.close()  # its connection_lost still comes, and counts
            else:
                del self._pipes[fd]  # no transport will report this one closed
        for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()  # (closing twice is harmless: a transport may close it too)
        if self._finished:
            self._loop.call_soon(self._wake_waiters)
        else:
            self._try_finish()

    # -- events from the pipes and the exit watch ----------------------------------------

    def _call(self, method: str, *args: Any) -> None:
        """Queue ``protocol.<method>(*args)``: held back until connection_made, dropped if
        that never happens."""
        if self._loop.is_closed():
            return
        callback = getattr(self._protocol, method)
        if self._pending is not None:
            self._pending.append((callback, args))
        elif self._connected:
            self._loop.call_soon(callback, *args)

    def _process_exited(self, returncode: int) -> None:
        if self._loop.get_debug():
            log.info("%r exited with return code %r", self, returncode)
        self._returncode = returncode
        self._call("process_exited")
        self._try_finish()

    def _try_finish(self) -> None:
        """Once the child is reaped and every pipe closed, the transport's work is done."""
        if self._finished or self._returncode is None:
            return
        if not all(end.disconnected for end in self._pipes.values()):
            return
        self._finished = True
        if self._loop.is_closed():
            return
        if self._pending is not None:
            self._pending.append((self._call_connection_lost, ()))
        elif self._connected:
            self._loop.call_soon(self._call_connection_lost)
        else:
            self._loop.call_soon(self._wake_waiters)

    def _call_connection_lost(self) -> None:
        try:
            self._protocol.connection_lost(None)
        finally:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        self._gone = True
        waiters, self._exit_waiters = self._exit_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(cast(int, self._returncode))

    async def _wait(self) -> int:
        """The return code, once the child has exited (and, if it has not yet, once the
        transport is done: connection_lost). ``asyncio.subprocess.Process.wait`` awaits this."""
        if self._returncode is not None:
            return self._returncode
        waiter: asyncio.Future[int] = self._loop.create_future()
        self._exit_waiters.append(waiter)
        return await waiter

    # -- the SubprocessTransport interface ---------------------------------------------

    def get_pid(self) -> int:
        return self._pid

    def get_returncode(self) -> int | None:
        return self._returncode

    def get_pipe_transport(self, fd: int) -> asyncio.BaseTransport | None:
        end = self._pipes.get(fd)
        return None if end is None else end.pipe

    def send_signal(self, signal: int) -> None:
        if self._gone:
            raise ProcessLookupError()
        if self._returncode is not None or self._proc.returncode is not None:
            return  # reaped: its pid may be another process's by now
        with contextlib.suppress(ProcessLookupError):  # reaped by someone else: gone
            os.kill(self._pid, signal)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = cast(asyncio.SubprocessProtocol, protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the pipes and kill the child if it is still running.

        The protocol still gets ``process_exited`` and ``connection_lost`` when the child
        is reaped (unless the loop is closed: then the child is reaped here and now).
        """
        if self._closed:
            return
        self._closed = True
        for end in self._pipes.values():
            if end.pipe is not None:
                end.pipe.close()
        if self._returncode is None and self._proc.returncode is None:
            if self._loop.get_debug():
                log.warning("Close running child process: kill %r", self)
            # Through the Popen, which checks it has not reaped the child already; a child
            # that is gone, or set-user-id and not ours to signal, is let be.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                self._proc.kill()
        if self._loop.is_closed():
            self._reap_now()

    def _reap_now(self) -> None:
        """The loop is closed: reap the (killed) child here, close everything it had."""
        for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        self._exit.reap_now()


def _check_binary_mode(
    *,
    universal_newlines: bool,
    shell: bool,
    want_shell: bool,
    bufsize: int,
    text: bool | None,
    encoding: str | None,
    errors: str | None,
) -> None:
    """Refuse the Popen options that asyncio refuses, in asyncio's order and words."""
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if want_shell and not shell:
        raise ValueError("shell must be True")
    if shell and not want_shell:
        raise ValueError("shell must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


def _stdio_names(stdin: _Stdio, stdout: _Stdio, stderr: _Stdio) -> str:
    """For the debug log: where the child's standard streams go."""

    def name(target: _Stdio) -> str:
        return "<pipe>" if target == subprocess.PIPE else repr(target)

    if stderr == subprocess.STDOUT:
        return f"stdin={name(stdin)} stdout=stderr={name(stdout)}"
    return f"stdin={name(stdin)} stdout={name(stdout)} stderr={name(stderr)}"


class ProcessMixin(_LoopBase):
    """Pipe and subprocess methods of an ``asyncio.AbstractEventLoop``; mix in first.

    ::

        class EventLoop(ProcessMixin, <a loop class with add_reader, call_soon, ...>): ...

    Written against the loop's public interface (``add_reader`` / ``remove_reader``,
    ``add_writer`` / ``remove_writer``, ``call_soon``, ``call_later``,
    ``call_exception_handler``, ``create_future``, ``create_task``, ``get_debug``,
    ``is_closed``) and ``_check_closed()``; the methods keep no state on the loop.
    """

    if TYPE_CHECKING:

        def _check_closed(self) -> None: ...

    # -- pipes ---------------------------------------------------------------------------

    async def connect_read_pipe(
        self, protocol_factory: Callable[[], _ProtocolT], pipe: Any
    ) -> tuple[asyncio.ReadTransport, _ProtocolT]:
        """Read from ``pipe`` (a file object of a pipe, FIFO, pty or socket) into a protocol."""
        return await self._connect_pipe(ReadPipeTransport, "Read", protocol_factory, pipe)

    async def connect_write_pipe(
        self, protocol_factory: Callable[[], _ProtocolT], pipe: Any
    ) -> tuple[asyncio.WriteTransport, _ProtocolT]:
        """Write to ``pipe`` (a file object of a pipe, FIFO, pty or socket) from a protocol."""
        return await self._connect_pipe(WritePipeTransport, "Write", protocol_factory, pipe)

    async def _connect_pipe(
        self,
        transport_class: type[_PipeTransportT],
        direction: str,
        protocol_factory: Callable[[], _ProtocolT],
        pipe: Any,
    ) -> tuple[_PipeTransportT, _ProtocolT]:
        """Wrap ``pipe`` in a ``transport_class`` driving a new protocol.

        Returns once ``connection_made`` has run; the transport owns ``pipe`` from then on.
        """
        self._check_closed()
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = transport_class(self, pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self.get_debug():
            log.debug(
                "%s pipe %r connected: (%r, %r)", direction, pipe.fileno(), transport, protocol
            )
        return transport, protocol

    # -- subprocesses --------------------------------------------------------------------

    async def subprocess_exec(
        self,
        protocol_factory: Callable[[], _ProtocolT],
        program: Any,
        *args: Any,
        stdin: _Stdio = subprocess.PIPE,
        stdout: _Stdio = subprocess.PIPE,
        stderr: _Stdio = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: str | None = None,
        errors: str | None = None,
        text: bool | None = None,
        **kwargs: Any,
    ) -> tuple[asyncio.SubprocessTransport, _ProtocolT]:
        """Run ``program`` with ``args`` (no shell); other keywords go to ``Popen``."""
        _check_binary_mode(
            universal_newlines=universal_newlines,
            shell=shell,
            want_shell=False,
            bufsize=bufsize,
            text=text,
            encoding=encoding,
            errors=errors,
        )
        protocol = protocol_factory()
        transport = await self._start_subprocess(
            protocol,
            (program, *args),
            False,
            stdin,
            stdout,
            stderr,
            kwargs,
            # Not the arguments: they may hold a password, or be very long.
            f"execute program {program!r}",
        )
        return transport, protocol

    async def subprocess_shell(
        self,
        protocol_factory: Callable[[], _ProtocolT],
        cmd: bytes | str,
        *,
        stdin: _Stdio = subprocess.PIPE,
        stdout: _Stdio = subprocess.PIPE,
        stderr: _Stdio = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: str | None = None,
        errors: str | None = None,
        text: bool | None = None,
        **kwargs: Any,
    ) -> tuple[asyncio.SubprocessTransport, _ProtocolT]:
        """Run ``cmd`` with the shell; other keywords go to ``Popen``."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        _check_binary_mode(
            universal_newlines=universal_newlines,
            shell=shell,
            want_shell=True,
            bufsize=bufsize,
            text=text,
            encoding=encoding,
            errors=errors,
        )
        protocol = protocol_factory()
        transport = await self._start_subprocess(
            protocol, cmd, True, stdin, stdout, stderr, kwargs, f"run shell command {cmd!r}"
        )
        return transport, protocol

    async def _start_subprocess(
        self,
        protocol: asyncio.BaseProtocol,
        args: Any,
        shell: bool,
        stdin: _Stdio,
        stdout: _Stdio,
        stderr: _Stdio,
        popen_kwargs: dict[str, Any],
        what: str,
    ) -> SubprocessTransport:
        """Start the child, wrap it in a transport, return once its protocol is connected."""
        self._check_closed()
        debug = self.get_debug()
        if debug:
            log.debug("%s %s", what, _stdio_names(stdin, stdout, stderr))
        # Binary and unbuffered: the transports read and write the descriptors directly.
        popen = subprocess.Popen(
            args,
            shell=shell,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            universal_newlines=False,
            bufsize=0,
            **popen_kwargs,
        )
        waiter = self.create_future()
        try:
            transport = SubprocessTransport(self, protocol, popen, waiter)
        except BaseException:
            # The loop would not take the watch or the task: do not leave the child behind.
            with popen:
                popen.kill()
            raise
        try:
            await waiter
        except BaseException as exc:
            transport.close()
            if not isinstance(exc, (SystemExit, KeyboardInterrupt)):
                await transport._wait()  # reaped: nothing is left behind
            raise
        if debug:
            log.info("%s: %r", what, transport)
        return transport
