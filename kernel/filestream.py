"""``FileStream``: a stream over a pipe, a tty or any file descriptor, with no thread.

The descriptor is put into non-blocking mode; reads and writes call ``os.read`` and
``os.write``, and when those raise ``BlockingIOError`` the task parks with the ``IO_WAIT``
trap until the selector reports the descriptor ready. The buffering is ``_Stream``'s
(``kernel/streams.py``), shared with ``SocketStream``. (A regular file is always "ready",
so it works but never waits; for files use ``kernel.files.aopen``, which is honest about
blocking.)

Two things need care, and each has a small piece of this module:

* *What the stream parks as.* The I/O wait table keeps a descriptor registered between
  waits, under the object it was registered as, and asks that object for its number to
  tell a stale registration (the number closed and given to a new file) from a live one.
  A ``_Descriptor`` is that object: one per stream, truthful once its file is closed, and
  not the stream itself, so that a registration never keeps a dropped stream alive.
* *Whose blocking mode it is.* Non-blocking mode belongs to the *open file description*,
  which a descriptor shares with its duplicates -- ``stdin`` and ``stdout`` of a terminal,
  often, and the shell's own copy in another process. ``close()`` puts back the mode the
  stream found; streams on one description share that record (``_ModeShare``), and only
  the last one to close puts it back -- else closing an output stream would turn its
  sibling input stream blocking under a task reading it, and freeze every task.

Read next: ``kernel/files.py``, async files on worker threads.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Protocol

from .iotable import EVENT_READ, EVENT_WRITE
from .lifecycle import let_go_of
from .streams import _Stream
from .traps import _io_release, _io_wait

__all__ = ["FileStream"]


class FileLike(Protocol):
    """What a ``FileStream`` uses of a file object: its descriptor, and a way to close it."""

    def fileno(self) -> int: ...
    def close(self) -> None: ...


class _Descriptor:
    """A ``FileStream``'s descriptor: what it reads, writes and parks as in the I/O wait
    table (see the module docstring). ``fileno()`` is -1 once the stream closed it, or once
    its file object was closed behind the stream's back."""

    __slots__ = ("fd", "fileobj")

    def __init__(self, fd: int, fileobj: int | FileLike) -> None:
        self.fd = fd
        self.fileobj = fileobj

    def __repr__(self) -> str:
        return f"<descriptor {self.fileno()} of a FileStream>"

    def fileno(self) -> int:
        if type(self.fileobj) is not int and getattr(self.fileobj, "closed", False):
            return -1
        return self.fd

    async def read(self, maxbytes: int) -> bytes:
        """``os.read``, parked in the I/O wait table while it would block."""
        while True:
            try:
                return os.read(self.fileno(), maxbytes)
            except BlockingIOError:
                await _io_wait(self, EVENT_READ)

    async def write(self, data: bytes) -> None:
        """All of ``data``, with ``os.write``, parked while the descriptor is full."""
        # A pipe may take only part of a large write. os.write counts what it took in bytes,
        # so the rest is sliced from a view of bytes: a view in the caller's format (the
        # 4-byte items of an array('i')) would skip most of it.
        written = 0
        try:
            with memoryview(data) as view, view.cast("B") as remaining:
                total = len(remaining)
                while written < total:
                    try:
                        written += os.write(self.fileno(), remaining[written:])
                    except BlockingIOError:
                        await _io_wait(self, EVENT_WRITE)
        except BaseException as error:  # cancelled part-way, say: what the reader may have
            error.bytes_sent = written  # type: ignore[attr-defined]
            raise


class _ModeShare:
    """One open file description in use by FileStreams: their descriptors, and the blocking
    mode it had before the first of them made it non-blocking."""

    __slots__ = ("members", "was_blocking")

    def __init__(self, was_blocking: bool) -> None:
        self.members: list[_Descriptor] = []
        self.was_blocking = was_blocking


# The open file descriptions FileStreams use, by the (device, inode) of their file: one
# file may have several (a pipe's two ends; two opens of one terminal), each with its own
# mode. Streams are made and closed in any thread (finalizers too): hence the lock.
_shares: dict[tuple[int, int], list[_ModeShare]] = {}
_shares_lock = threading.Lock()


def _same_description(fd: int, other: int) -> bool:
    """Whether descriptors ``fd`` and ``other`` share one open file description (one is a
    ``dup`` of the other, or both were inherited so), not merely one file.

    Discussion: Linux can tell (``kcmp``), but Python has no call for it. The blocking flag
    itself can: it belongs to the description, so flipping it on ``fd`` flips it on
    ``other`` only if they share one. It is flipped back at once; no task runs meanwhile.
    """
    if other < 0:
        return False  # (its file object was closed behind its stream's back)
    mode, others_mode = os.get_blocking(fd), os.get_blocking(other)
    os.set_blocking(fd, not mode)
    try:
        return os.get_blocking(other) != others_mode
    finally:
        os.set_blocking(fd, mode)


class FileStream(_Stream):
    """A stream over a file descriptor -- a pipe, a tty, a socket's fd -- or a file object.

    The descriptor is put into non-blocking mode; closing the stream puts back the mode it
    had (once no other stream shares its open file description) and closes the file object
    (or the descriptor, if a bare int was given). Pass an *unbuffered* file object
    (``open(..., buffering=0)``, ``Popen(..., bufsize=0)``): the stream reads the
    descriptor directly, so bytes sitting in a buffered object's own buffer would be skipped.
    """

    def __init__(self, fileobj: int | FileLike) -> None:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        self._fileobj = fileobj
        self._descriptor = _Descriptor(fd, fileobj)
        status = os.fstat(fd)
        self._file = (status.st_dev, status.st_ino)
        self._share: _ModeShare | None = None  # None once let go (see _let_go_of_mode)
        with _shares_lock:
            descriptions = _shares.get(self._file, [])
            for share in descriptions:
                if _same_description(fd, share.members[0].fileno()):
                    break
            else:
                share = _ModeShare(os.get_blocking(fd))
            os.set_blocking(fd, False)  # (may fail: then nothing is recorded)
            if not share.members:
                _shares[self._file] = [*descriptions, share]
            share.members.append(self._descriptor)
            self._share = share
        # (The descriptor's own methods, not the stream's: a stream holding its bound methods
        # would be a reference cycle, which only the garbage collector frees.)
        super().__init__(self._descriptor.read, self._descriptor.write)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self.fileno()} buffered={len(self._buffer)}"
        return f"<FileStream {state}>"

    def fileno(self) -> int:
        """The descriptor (so that the stream can be passed where a file is expected); -1
        once closed -- by the stream, or behind its back through its file object."""
        return self._descriptor.fileno()

    def _hand_to_child(self) -> None:
        """The descriptor becomes a child process's stdin/stdout (``kernel.subprocess``).

        The child expects a blocking descriptor, and the mode is shared with it, so it goes
        back to blocking -- and this stream must no longer read or write it (a blocking read
        would freeze every task). It only remains to close it.
        """
        os.set_blocking(self._descriptor.fd, True)
        if self._share is not None:
            self._share.was_blocking = True
        self._buffer.clear()
        self._refuse_io(f"{self!r} was handed to a child process; close it, do not use it")

    def _close_now(self) -> None:
        """``close()`` for code that cannot await (``kernel.subprocess``, when its coroutine
        is being closed)."""
        if not self._closed:
            self._mark_closed()
            self._close_fd()

    async def _close_source(self) -> None:
        # Out of the I/O wait table first: a task parked on the descriptor wakes with
        # OSError(EBADF), and the selector never keeps watching a closed number.
        await _io_release(self._descriptor)
        self._close_fd()

    def _close_fd(self) -> None:
        descriptor = self._descriptor
        fd = descriptor.fd
        self._let_go_of_mode(descriptor.fileno())  # -1 if closed behind its back: not ours
        descriptor.fd = -1
        if isinstance(self._fileobj, int):
            os.close(fd)
        else:
            self._fileobj.close()

    def _let_go_of_mode(self, fd: int) -> None:
        """This stream is done with ``fd``: the last stream on its open file description
        puts back the blocking mode the first one found (``fd`` -1: the mode is left alone,
        the descriptor no longer being known to be this stream's)."""
        share, self._share = self._share, None
        if share is None:
            return
        with _shares_lock:
            share.members.remove(self._descriptor)
            if share.members:
                return  # others read or write through this description: it stays as it is
            descriptions = [other for other in _shares[self._file] if other is not share]
            if descriptions:
                _shares[self._file] = descriptions
            else:
                del _shares[self._file]
        if share.was_blocking and fd >= 0:
            with contextlib.suppress(OSError):  # closed underneath us: nothing to put back
                os.set_blocking(fd, True)

    def __del__(self) -> None:
        # Dropped without close(): as for a dropped file object, nothing waits for it. The
        # I/O table lets go of its descriptor (it holds the _Descriptor, not the stream),
        # so a file object is closed by its own finalizer; the mode share is let go of, and
        # the mode put back only where the descriptor is known to be still this stream's.
        if self.__dict__.get("_share") is None:  # closed (or __init__ failed early)
            return
        let_go_of(self._descriptor)
        fd = self._descriptor.fileno()
        if fd < 0 or isinstance(self._fileobj, int):
            fd = -1  # (a bare int may be closed and its number reused: leave its mode alone)
        self._let_go_of_mode(fd)
