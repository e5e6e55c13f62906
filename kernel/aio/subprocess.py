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
2. *Its exit.* A *pidfd* (``os.pidfd_open``) turns readable when the child terminates: a
   reader on it reaps the child with a ``waitpid`` that cannot block. No thread, no
   ``SIGCHLD`` handler: that is ``ExitWatch`` (``exitwatch.py``).
3. *The transport* the protocol sees, ``SubprocessTransport`` (``subprocess_transport.py``),
   which ties them together.

Differences from asyncio (``base_subprocess.py``, ``unix_events.py``):

* ``subprocess_exec`` / ``subprocess_shell`` on a closed loop raise ``RuntimeError`` before
  starting the child (asyncio starts it first). If wiring the pipes fails, the pipes are
  closed and ``_wait()`` still returns (asyncio's would wait forever).
* There is no AIX socket-pair variant of stdin.

Read next: ``kernel/aio/subprocess_transport.py``.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, TypeVar

from .pipes import ReadPipeTransport, WritePipeTransport
from .subprocess_transport import SubprocessTransport
from .transport_base import wait_connection_made

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop as _LoopBase
else:
    _LoopBase = object

__all__ = ["ProcessMixin", "SubprocessTransport"]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it

_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)
_PipeTransportT = TypeVar("_PipeTransportT", ReadPipeTransport, WritePipeTransport)
_Stdio = int | IO[Any] | None  # what Popen takes for stdin / stdout / stderr


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
        await wait_connection_made(transport, waiter)
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
