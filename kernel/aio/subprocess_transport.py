"""The transport of a child process: ``SubprocessTransport``.

It ties together what ``subprocess.py`` starts: the child's pipes, each a pipe transport
(``pipes.py``) whose protocol, a ``_PipeEnd``, forwards to this transport, and the watch on
its exit (``exitwatch.py``).

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

Differences from asyncio (``base_subprocess.py``):

* ``send_signal()``, ``terminate()`` and ``kill()`` go straight to ``os.kill`` on every
  Python (3.13's behaviour; ``Popen.send_signal`` would ``poll()`` first and could reap the
  child behind the watch's back), and do nothing once the child is reaped -- its pid may
  belong to another process by then. After ``connection_lost`` they raise
  ``ProcessLookupError``, as asyncio's do.
* ``close()`` once the loop is closed (or the garbage collector closing the transport then)
  kills the child and reaps it at once -- a blocking ``waitpid`` right after ``SIGKILL`` --
  and closes the pidfd and the pipes, without protocol calls: nothing can run any more.

Read next: ``kernel/aio/exitwatch.py``.
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
from typing import Any, cast

from .exitwatch import ExitWatch

__all__ = ["SubprocessTransport"]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it


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
        self._exit = ExitWatch(loop, popen, self._process_exited)
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
        watch: ExitWatch | None = getattr(self, "_exit", None)  # None if __init__ failed
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
