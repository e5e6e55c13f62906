"""Async files: ``aopen()`` and the file object it returns, doing each blocking call in a thread.

A regular file cannot be waited for the way a socket can: ``select()`` and epoll report it
ready at all times, and a read from a slow disk or a network file system simply blocks the
thread. So an ``AsyncFile`` does not pretend. Each call that may touch the disk -- open,
read, write, seek, flush, close -- runs the ordinary blocking method of an ordinary Python
file object in one of the kernel's worker threads (``run_in_thread``), and the task waits
for it on a wait queue while the others run.

Invariant: the file object is used by one call at a time, and every call that was made
completes and is returned to its caller. Tasks sharing an ``AsyncFile`` take turns on its
lock: Python's buffered files are not safe to use from two threads at once (two
``readline`` calls racing lose and repeat data). And a call is not cancellable: abandoned
half-way, it would still move the file's position in its thread and its result would be
dropped -- lines lost. A cancellation that arrives meanwhile is raised at the task's next
blocking call instead, as with trio's files. (For a pipe or a terminal, which may block
for as long as the other side likes, use ``FileStream``: its waits are in the I/O table,
and cancellable.)

Each call costs a round trip to a worker thread (tens of microseconds), so iterating with
``async for line in f`` is slow for a large file; ``await f.read()`` then ``splitlines()``
pays it once.

Read next: ``kernel/popen.py``, child processes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

from .resource import AsyncResource
from .sync import Lock
from .task import disable_cancellation
from .threads import _Job, _run_job, run_in_thread

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["AsyncFile", "aopen"]

T = TypeVar("T")


class _FromFile(Generic[T]):
    """An attribute of ``AsyncFile`` that is the file's own, read synchronously.

    Only for what the file answers without waiting for data (see ``AsyncFile``). One the file
    lacks raises the file's own ``AttributeError`` (``'_io.BufferedReader' object has no
    attribute 'encoding'``), so ``hasattr()`` tells a text file from a binary one. ``T`` is
    the attribute's type, for mypy.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...
    @overload
    def __get__(self, instance: AsyncFile, owner: type | None = None) -> T: ...
    def __get__(self, instance: AsyncFile | None, owner: type | None = None) -> Self | T:
        return self if instance is None else getattr(instance.file, self.name)


class AsyncFile(AsyncResource):
    """A file object whose blocking methods are awaited; made by ``aopen()``.

    ``file`` is the underlying ordinary file object, for what is not wrapped here.

    Discussion: the class lists, one by one, what it takes from ``file``. Plain attributes
    and queries that do not wait for data (``encoding``, ``readable()``, ``isatty()``, ...)
    are the file's own, used synchronously. Everything that reads, writes, seeks or flushes
    is a coroutine going through ``_call``. There is no ``__getattr__`` forwarding the rest:
    a blocking method not wrapped here (``detach()``, ``reconfigure()``) is missing rather
    than silently run in the kernel's thread, and must be reached on purpose, via ``file``
    (or ``buffer`` / ``raw``, which are ordinary blocking file objects too). The binary-only
    coroutines (``read1``, ``readinto``, ``peek``, ...) exist on every ``AsyncFile``; on a
    file without the method, awaiting one raises the file's ``AttributeError``.
    """

    def __init__(self, file: IO[Any]) -> None:
        self.file = file
        self._turn = Lock()  # held for each call: one at a time (see the module docstring)

    def __repr__(self) -> str:
        return f"<AsyncFile {self.file!r}>"

    # Synchronous, straight from the file (those it lacks raise its AttributeError).
    name = _FromFile[Any]()
    mode = _FromFile[str]()
    closed = _FromFile[bool]()
    encoding = _FromFile[str]()  # text files
    errors = _FromFile[str | None]()
    newlines = _FromFile[str | tuple[str, ...] | None]()
    line_buffering = _FromFile[bool]()
    buffer = _FromFile[IO[bytes]]()  # the binary file under a text file
    raw = _FromFile[IO[bytes]]()  # the unbuffered file under a buffered one
    fileno = _FromFile[Callable[[], int]]()
    isatty = _FromFile[Callable[[], bool]]()  # an ioctl, not a wait for data
    readable = _FromFile[Callable[[], bool]]()
    writable = _FromFile[Callable[[], bool]]()
    seekable = _FromFile[Callable[[], bool]]()

    async def read(self, size: int | None = -1) -> Any:
        """Up to ``size`` characters or bytes; everything to the end by default (or None)."""
        return await self._call(self.file.read, size)

    async def readline(self, size: int | None = -1) -> Any:
        """One line (of at most ``size``), with its line ending; "" / b"" at the end."""
        return await self._call(self.file.readline, size)

    async def readlines(self, hint: int = -1) -> list[Any]:
        """The remaining lines, or the first ones up to ``hint`` characters or bytes (one trip
        to a worker thread)."""
        return await self._call(self.file.readlines, hint)

    async def read1(self, size: int = -1) -> bytes:
        """Binary, buffered: up to ``size`` bytes, with at most one read of the raw file."""
        return await self._call(self.file.read1, size)  # type: ignore[attr-defined]

    async def readall(self) -> bytes:
        """Binary, unbuffered (``buffering=0``): every remaining byte."""
        return await self._call(self.file.readall)  # type: ignore[attr-defined]

    async def readinto(self, b: WriteableBuffer) -> int:
        """Binary: read into the writable buffer ``b``; returns how many bytes were read.

        ``b`` is filled in a worker thread: leave it alone until the call returns (which it
        always does, even for a cancelled task -- the module docstring)."""
        return await self._call(self.file.readinto, b)  # type: ignore[attr-defined]

    async def readinto1(self, b: WriteableBuffer) -> int:
        """``readinto`` with at most one read of the raw file (binary, buffered)."""
        return await self._call(self.file.readinto1, b)  # type: ignore[attr-defined]

    async def peek(self, size: int = 0) -> bytes:
        """Binary, buffered for reading: the buffered bytes from the current position (read
        from the file if there are none), without moving the position."""
        return await self._call(self.file.peek, size)  # type: ignore[attr-defined]

    async def write(self, data: Any) -> int:
        """Write ``data``; returns how much was written, like the file's own ``write``."""
        return await self._call(self.file.write, data)

    async def writelines(self, lines: Iterable[Any]) -> None:
        """Write each of ``lines`` (in one trip to a worker thread)."""
        await self._call(self.file.writelines, list(lines))

    async def seek(self, offset: int, whence: int = 0) -> int:
        """Move to ``offset`` (from the start, the current position or the end: ``whence``)."""
        return await self._call(self.file.seek, offset, whence)

    async def tell(self) -> int:
        return await self._call(self.file.tell)

    async def truncate(self, size: int | None = None) -> int:
        return await self._call(self.file.truncate, size)

    async def flush(self) -> None:
        await self._call(self.file.flush)

    async def close(self) -> None:
        """Flush and close the file, after any call in progress. Closing twice does nothing.

        It is not cancellable either: leaving ``async with`` leaves no file open."""
        if not self.file.closed:
            await self._call(self.file.close)

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        """``method(*args)`` in a worker thread, alone and to its end (module docstring)."""
        async with disable_cancellation(), self._turn:
            return await run_in_thread(method, *args)

    def __aiter__(self) -> AsyncFile:
        return self

    async def __anext__(self) -> Any:
        """``async for line in f``: each line (one worker-thread trip per line)."""
        line = await self._call(self.file.readline)
        if not line:
            raise StopAsyncIteration
        return line


class _Opening:
    """What ``aopen()`` returns: ``await`` it for an ``AsyncFile``, or ``async with`` it to
    have the file closed at the end of the block."""

    def __init__(self, opener: Callable[[], IO[Any]]) -> None:
        self._opener = opener
        self._file: AsyncFile | None = None

    async def _open(self) -> AsyncFile:
        # A task cancelled while the thread opens the file never gets it: the file is then
        # closed as soon as it arrives, not left to the garbage collector (a ResourceWarning).
        file = await _run_job(_Job(self._opener, (), {}, release=_close))
        return AsyncFile(file)

    def __await__(self) -> Generator[Any, None, AsyncFile]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncFile:
        if self._file is not None:
            raise RuntimeError("this aopen() was already entered; call aopen() again")
        self._file = await self._open()
        return self._file

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._file is not None
        await self._file.close()


def _close(file: IO[Any]) -> None:
    file.close()


def aopen(
    file: Any,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Callable[[str, int], int] | None = None,
) -> _Opening:
    """Open a file like the built-in ``open()``, for use from tasks.

    ``f = await aopen(path)`` opens it (in a worker thread) and returns an ``AsyncFile``;
    ``async with aopen(path) as f:`` also closes it at the end of the block (so does
    ``async with await aopen(path) as f:``). The arguments are ``open()``'s.
    """

    def open_file() -> IO[Any]:
        return open(file, mode, buffering, encoding, errors, newline, closefd, opener)

    return _Opening(open_file)
