"""asyncio transports for pipes: one descriptor, one direction, driven by readiness callbacks.

``loop.connect_read_pipe(factory, pipe)`` and ``loop.connect_write_pipe(factory, pipe)``
(``kernel/aio/subprocess.py``) wrap the read or the write end of a pipe in a transport, so
that a protocol can be driven by it exactly as by a socket. ``pipe`` is a file object (it
must have ``fileno()``): an ``os.pipe()`` end opened with ``open(fd, "rb")``, a FIFO, a
pseudo-terminal, a socket, or the ``stdin`` / ``stdout`` / ``stderr`` of a ``Popen``. The
transport owns it from then on and closes it after ``connection_lost``.

Like the socket transports (``kernel/aio/transports.py``), a pipe transport never blocks and
never runs a task: the loop's ``add_reader`` / ``add_writer`` (the kernel's I/O wait table)
call it back, and each callback does one non-blocking read (``os.readv`` into the loop's
buffer, see ``transports.read_scratch``) or ``os.write``::

    ReadPipeTransport
      readable  -> os.readv(fd)    bytes  -> protocol.data_received(bytes)
                                   b""    -> protocol.eof_received(), then connection_lost(None)
                                   error  -> connection_lost(exc) (EIO, a pty whose other
                                             side closed, quietly; others reported too)
    WritePipeTransport
      write()   -> os.write(fd) at once; the rest is buffered and a writer registered;
                   buffer above high water -> protocol.pause_writing()
      writable  -> os.write(buffer)  buffer at or below low water -> protocol.resume_writing()
      readable  -> the reader of a pipe or socket never gets data: the descriptor turning
                   "readable" means the other end was closed -> connection_lost (with
                   BrokenPipeError if bytes were still waiting to go)

A pipe has no half-close: on the read side EOF ends the transport, and on the write side
``write_eof()`` and ``close()`` are the same thing -- stop accepting writes, send what is
buffered, then close.

The invariants (the socket transports keep the same ones):

* A reader is registered exactly while the read transport is reading (after
  ``connection_made`` has run, not while ``pause_reading()`` holds, not after EOF or
  ``close()``); a writer exactly while the write buffer is not empty.
* ``connection_lost`` is scheduled exactly once (``_lose``), always runs as a fresh loop
  callback, and only after it is the pipe closed.
* ``OSError`` from the system is the other side's doing: it ends the transport. Any other
  exception (a protocol that raised) also goes to ``loop.call_exception_handler``.

Differences from asyncio's ``unix_events._UnixReadPipeTransport`` / ``_UnixWritePipeTransport``:

* Only the loop's public interface is used (``add_reader`` and friends, ``call_soon``,
  ``call_exception_handler``, ``get_debug``, ``is_closed``); the transports keep their own
  flags of what they registered, so ``repr()`` says ``polling`` / ``idle`` without looking
  into a selector.
* ``write()`` of something that is not bytes-like raises ``TypeError`` (asyncio asserts).
* A protocol whose ``data_received`` raises ends the read transport, reported as by the
  socket transports (asyncio's pipe transport reports it and keeps reading).
* ``resume_writing()`` is called as soon as the buffer is at or below the low-water mark
  (asyncio's pipe transport waits until the buffer is empty).
* ``abort()`` after ``close()``, or the other end closing while a ``close()`` drains, does
  not schedule a second ``connection_lost`` (asyncio would call it twice).
* Once the loop is closed nothing can run any more: ending a transport then closes the pipe
  at once, without calling ``connection_lost``.

Read next: ``kernel/aio/subprocess.py`` -- the loop methods that make these transports, and
the subprocess transport built on them.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import stat
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .transport_base import LOG_WRITES_AFTER_LOST, BufferedWriting, byte_size, read_scratch

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["ReadPipeTransport", "WritePipeTransport"]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it


def _set_result_unless_cancelled(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.set_result(None)


class _PipeTransport(asyncio.BaseTransport):
    """What both directions share: the pipe, the protocol, and the way a transport ends.

    ``waiter``, if given, gets its result once ``connection_made`` has run: that is when
    ``connect_read_pipe`` / ``connect_write_pipe`` returns. Subclasses set ``_refusal`` and
    implement ``_init_io``, ``_repr_io``, ``_stop_io`` and ``_is_quiet``.
    """

    _pipe: Any = None  # the file object; None once closed (read by __del__ even if
    # __init__ refused the pipe)
    _extra: dict[str, Any]  # BaseTransport's slot: what get_extra_info() returns
    _refusal: str  # the ValueError's message for a descriptor that is no pipe

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra)
        self._fd: int = pipe.fileno()
        mode = os.fstat(self._fd).st_mode
        self._is_fifo = stat.S_ISFIFO(mode)
        self._is_socket = stat.S_ISSOCK(mode)
        if not (self._is_fifo or self._is_socket or stat.S_ISCHR(mode)):
            # A regular file (or a directory) is always "ready", so a readiness callback
            # would spin; epoll refuses to watch one at all. The caller keeps its object.
            raise ValueError(self._refusal)
        self._extra["pipe"] = pipe
        self._loop = loop
        self._scratch = read_scratch(loop)  # where reads land (see read_scratch)
        self._protocol = protocol
        self._closing = False  # no more reading / writing accepted, ever
        self._lost = False  # connection_lost is scheduled (it happens exactly once)
        start_io = self._init_io()
        os.set_blocking(self._fd, False)
        self._pipe = pipe
        loop.call_soon(protocol.connection_made, self)
        if start_io is not None:
            # Only once connection_made has run: the protocol hears nothing before it has
            # its transport, and may pause reading in connection_made.
            loop.call_soon(start_io)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter)

    def _init_io(self) -> Callable[[], None] | None:
        """Set up this direction's state; return its first registration in the loop, if any.

        Called by ``__init__`` before the transport owns the pipe; what it returns is
        scheduled to run right after ``connection_made``.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        state = "closed" if self._pipe is None else "closing" if self._closing else "open"
        return f"<{type(self).__name__} fd={self._fd} {state}{self._repr_io()}>"

    def _repr_io(self) -> str:
        raise NotImplementedError

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    # -- the end of a transport --------------------------------------------------------

    def _lose(self, exc: BaseException | None) -> None:
        """Stop all I/O and schedule ``connection_lost(exc)``: the one way a transport ends."""
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._stop_io()
        if self._loop.is_closed():
            # No callback will ever run again: give the descriptor back now, untold.
            self._close_pipe()
            return
        self._loop.call_soon(self._call_connection_lost, exc)

    def _stop_io(self) -> None:
        """Remove every registration this transport holds in the loop."""
        raise NotImplementedError

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            # Typed Exception | None in typeshed; asyncio passes on what it caught, as we do.
            self._protocol.connection_lost(cast("Exception | None", exc))
        finally:
            self._close_pipe()

    def _close_pipe(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.close()

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        """End the transport with ``exc``; report it unless it is the other side's quiet end."""
        if self._is_quiet(exc):
            if self._loop.get_debug():
                log.debug("%r: %s", self, message, exc_info=exc)
        else:
            self._report(exc, message)
        self._lose(exc)

    def _is_quiet(self, exc: BaseException) -> bool:
        """Whether ``exc`` is just how this direction learns that the other end is gone."""
        raise NotImplementedError

    def _report(self, exc: BaseException, message: str) -> None:
        self._loop.call_exception_handler(
            {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
        )


class ReadPipeTransport(_PipeTransport, asyncio.ReadTransport):
    """The read end of a pipe, FIFO, pseudo-terminal or socket, feeding a ``Protocol``."""

    _refusal = "Pipe transport is for pipes/sockets only."

    def _init_io(self) -> Callable[[], None]:
        self._paused = False  # pause_reading() holds
        self._reading = False  # our reader is registered
        return self._start_reading

    def _repr_io(self) -> str:
        return " polling" if self._reading else " idle"

    # -- reading switch ----------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True
        self._stop_reading()
        if self._loop.get_debug():
            log.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._loop.get_debug():
            log.debug("%r resumes reading", self)

    def _start_reading(self) -> None:
        if self.is_reading() and not self._reading:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    _stop_io = _stop_reading

    # -- the reader callback -----------------------------------------------------------

    def _on_readable(self) -> None:
        """One read, turned into one protocol call."""
        if self._closing:
            return
        try:
            size = os.readv(self._fd, [self._scratch])
        except (BlockingIOError, InterruptedError):
            return  # a spurious wake-up: stay registered
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if not size:
            self._on_eof()
            return
        data = bytes(self._scratch[:size])
        protocol: Any = self._protocol
        try:
            protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _on_eof(self) -> None:
        """The writer closed its end: tell the protocol, then end the transport."""
        if self._loop.get_debug():
            log.debug("%r was closed by peer", self)
        protocol: Any = self._protocol
        self._closing = True
        self._stop_reading()
        # A pipe cannot stay half-open, so what eof_received returns does not matter.
        self._loop.call_soon(protocol.eof_received)
        self._lose(None)

    def _is_quiet(self, exc: BaseException) -> bool:
        # A pseudo-terminal's master reads EIO once the slave side is closed: that is its
        # way of saying EOF, not a failure worth a report.
        return isinstance(exc, OSError) and exc.errno == errno.EIO

    def close(self) -> None:
        """Stop reading now; ``connection_lost(None)`` follows from the loop."""
        if not self._closing:
            self._lose(None)


class WritePipeTransport(BufferedWriting, _PipeTransport, asyncio.WriteTransport):
    """The write end of a pipe, FIFO, pseudo-terminal or socket, with a write buffer.

    Its write flow control (``pause_writing`` above the high-water mark, ``resume_writing``
    at or below the low one) is the socket transports' own: ``WriteFlowControl``.
    """

    _refusal = "Pipe transport is only for pipes, sockets and character devices"
    _write_error = "Fatal write error on pipe transport"

    def _init_io(self) -> Callable[[], None] | None:
        self._buffer = bytearray()  # bytes os.write() could not take yet
        self._write_now = functools.partial(os.write, self._fd)  # BufferedWriting's call
        self._writing = False  # our writer is registered (exactly while _buffer is not empty)
        self._watching = False  # our "the other end closed" reader is registered
        self._dropped = 0  # writes dropped because the transport was closing or lost
        if self._is_fifo or self._is_socket:
            # The write end of a pipe reports "readable" (an error, really) when the read end
            # is closed, and so does a socket whose peer closed: that is how we learn it
            # without writing. (A pseudo-terminal has no such signal.)
            return self._watch_other_end
        return None

    def _repr_io(self) -> str:
        polling = " polling" if self._writing else " idle"
        return f"{polling} bufsize={len(self._buffer)}"

    # -- writing -----------------------------------------------------------------------

    def write(self, data: ReadableBuffer) -> None:
        size = byte_size(data)
        if not size:
            return
        if self._closing:
            # Writing to a closed pipe is silently dropped, as in asyncio; a program that
            # keeps at it is told in the log.
            if self._dropped >= LOG_WRITES_AFTER_LOST:
                log.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._dropped += 1
            return
        self._write_or_buffer(data, size)

    def _start_writing(self) -> None:
        self._loop.add_writer(self._fd, self._on_writable)
        self._writing = True

    def _on_writable(self) -> None:
        """The writer callback: write what the buffer holds; when it is empty, finish up."""
        if self._lost:
            return
        try:
            written = os.write(self._fd, self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, self._write_error)
            return
        # Deleting from the front of a bytearray is cheap: CPython moves its start pointer.
        del self._buffer[:written]
        self._maybe_resume_protocol()  # the protocol may write again right here
        if self._buffer:
            return
        self._stop_writing()
        if self._closing:
            self._lose(None)  # close() or write_eof() was waiting for the buffer to drain

    def _stop_writing(self) -> None:
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """No more writes; once the buffer is written, the pipe is closed."""
        if self._closing:
            return
        self._closing = True
        if not self._buffer:
            self._lose(None)

    def close(self) -> None:
        """The same as ``write_eof()``: a pipe has nothing more to close."""
        self.write_eof()

    def abort(self) -> None:
        """Close at once: buffered data is dropped."""
        self._lose(None)

    # -- the other end -----------------------------------------------------------------

    def _watch_other_end(self) -> None:
        if not self._lost and not self._watching:
            self._loop.add_reader(self._fd, self._on_other_end_closed)
            self._watching = True

    def _on_other_end_closed(self) -> None:
        if self._loop.get_debug():
            log.debug("%r was closed by peer", self)
        # Bytes that can now never be delivered make it an error; an idle pipe just ends.
        self._lose(BrokenPipeError() if self._buffer else None)

    # -- the end -----------------------------------------------------------------------

    def _stop_io(self) -> None:
        self._buffer.clear()
        self._stop_writing()
        if self._watching:
            self._watching = False
            self._loop.remove_reader(self._fd)

    def _is_quiet(self, exc: BaseException) -> bool:
        # EPIPE and friends: the reader went away, which ends the transport quietly.
        return isinstance(exc, OSError)

    # -- write flow control (WriteFlowControl does the rest) ---------------------------

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)
