"""The I/O wait table: which task waits to read, and which to write, on each file descriptor.

A task that would block on a socket does not block the program: it parks here with the
``IO_WAIT`` trap and the kernel asks the operating system's selector (epoll on Linux) which
descriptors became ready. Each registered descriptor carries a two-slot list
``[reader, writer]`` as its selector data, so the table *is* the selector's registration:

* at most one reader and one writer per descriptor -- a second one gets ``ResourceBusy``
  (two tasks reading one socket would steal each other's bytes);
* a descriptor stays registered between waits (a socket in a recv/send loop costs no
  ``epoll_ctl`` per message), and is dropped when it turns up ready with nobody waiting,
  or when its owner closes it through the kernel (``release``).

The table also owns the read end of the kernel's wake-up socket pair: any byte on it only
means "stop blocking in select(), a thread has work for you"; the bytes are drained here.

Read next: ``kernel/clock.py``.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from typing import Any

from .errors import ResourceBusy

__all__ = ["EVENT_READ", "EVENT_WRITE", "IOWaitTable"]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE
_SLOT = {EVENT_READ: 0, EVENT_WRITE: 1}
_WAKEUP = object()  # selector data that marks the wake-up socket


class IOWaitTable:
    """Tasks parked on file descriptors, backed by a ``selectors`` selector."""

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._selector = selector if selector is not None else selectors.DefaultSelector()
        self._waiting = 0
        self._wakeup: socket.socket | None = None
        # Our own index of the registrations, by the object registered: one dict lookup
        # per wait, where the selector's map would call fileno() through several layers.
        self._keys: dict[Any, selectors.SelectorKey] = {}

    def __len__(self) -> int:
        """How many tasks are parked (the wake-up socket does not count)."""
        return self._waiting

    def register(self, fileobj: Any, event: int, task: Any) -> tuple[Any, int]:
        """Park ``task`` until ``fileobj`` is ready for ``event``; returns the discard handle."""
        slot = _SLOT[event]
        selector = self._selector
        key = self._keys.get(fileobj)
        if key is None:
            waiters = [None, None]
            waiters[slot] = task
            try:
                key = selector.register(fileobj, event, waiters)
            except KeyError:
                # The descriptor number is still registered for an object that was closed
                # (or detached) behind our back and whose number was reused: that old
                # registration is stale, and may be gone from epoll already.
                stale = selector.get_map()[fileobj]
                if stale.data is _WAKEUP:
                    raise
                self._unregister(stale.fd)
                key = selector.register(fileobj, event, waiters)
            self._keys[fileobj] = key
        else:
            waiters = key.data
            if waiters[slot] is not None:
                verb = "read from" if event == EVENT_READ else "write to"
                raise ResourceBusy(
                    f"{waiters[slot]!r} is already waiting to {verb} {fileobj!r}; only one task "
                    f"may wait per descriptor and direction (give each task its own socket, or "
                    f"funnel the I/O through one task)"
                )
            waiters[slot] = task
            if not key.events & event:
                self._keys[fileobj] = selector.modify(fileobj, key.events | event, waiters)
        self._waiting += 1
        return (fileobj, event)

    def discard(self, handle: tuple[Any, int]) -> None:
        """Unpark whoever waits under ``handle`` (a no-op if it was already woken).

        A socket stays registered (see ``select``); it is dropped the next time it is
        reported ready with nobody waiting. A bare int is unregistered at once.
        """
        fileobj, event = handle
        key = self._keys.get(fileobj)
        if key is None:
            return
        waiters = key.data
        slot = _SLOT[event]
        if waiters[slot] is not None:
            waiters[slot] = None
            self._waiting -= 1
            if type(fileobj) is int:  # no identity to check later: see select()
                self._stop_watching(key, event)

    def release(self, fileobj: Any) -> list[Any]:
        """``fileobj`` is about to be closed: forget it; return the tasks that waited on it."""
        key = self._keys.get(fileobj)
        if key is None:
            return []
        waiting = [task for task in key.data if task is not None]
        self._waiting -= len(waiting)
        self._unregister(key.fd)
        return waiting

    def _unregister(self, fd: int) -> None:
        # By number: the object may be closed or detached already (then epoll has dropped
        # the descriptor by itself, and only the selector's own map needs cleaning).
        with contextlib.suppress(KeyError, ValueError, OSError):
            key = self._selector.unregister(fd)
            self._keys.pop(key.fileobj, None)

    def _stop_watching(self, key: selectors.SelectorKey, events: int) -> None:
        """Stop watching ``events`` on a registered descriptor (all of them: unregister)."""
        remaining = key.events & ~events
        if remaining:
            self._keys[key.fileobj] = self._selector.modify(key.fileobj, remaining, key.data)
        else:
            self._unregister(key.fd)

    def add_wakeup(self, sock: socket.socket) -> None:
        """Watch the read end of the wake-up socket pair (its bytes are drained by select)."""
        self._wakeup = sock
        self._selector.register(sock, EVENT_READ, _WAKEUP)

    def select(self, timeout: float | None) -> list[Any]:
        """Block up to ``timeout`` seconds (None: forever); return the tasks now ready.

        Each returned task has been removed from the table.

        Discussion: a woken task's descriptor stays registered. A task in a loop of
        ``recv``/``send`` parks on the same socket again and again; keeping it registered
        saves two system calls (epoll_ctl add, then delete) every time. A descriptor that
        turns up ready with nobody waiting for that event is dropped from the selector
        then -- so an idle socket cannot keep waking ``select()`` up. The exception is a
        bare ``int``: a closed descriptor's number is soon reused, and an int, unlike a
        socket object, cannot tell the new file from the old (whose registration epoll
        has silently dropped). So waits on an int are unregistered as soon as they end.
        """
        ready = []
        selector = self._selector
        for key, mask in selector.select(timeout):
            waiters = key.data
            if waiters is _WAKEUP:
                self._drain_wakeup()
                continue
            unwatched = 0
            if mask & EVENT_READ:
                if waiters[0] is None:
                    unwatched = EVENT_READ
                else:
                    ready.append(waiters[0])
                    waiters[0] = None
            if mask & EVENT_WRITE:
                if waiters[1] is None:
                    unwatched |= EVENT_WRITE
                else:
                    ready.append(waiters[1])
                    waiters[1] = None
            if type(key.fileobj) is int:  # nothing is kept for a bare int (see above)
                unwatched |= mask
            if unwatched:
                self._stop_watching(key, unwatched)
        self._waiting -= len(ready)
        return ready

    def _drain_wakeup(self) -> None:
        assert self._wakeup is not None
        # A short read means the socket is empty: no need for a last recv() to hit EAGAIN.
        try:
            while len(self._wakeup.recv(4096)) == 4096:
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def waiters(self) -> list[tuple[int, str, Any]]:
        """(fd, "read"|"write", task) for every parked task; for tracing and tests."""
        rows = []
        for key in list(self._selector.get_map().values()):
            if key.data is _WAKEUP:
                continue
            for name, slot in (("read", 0), ("write", 1)):
                if key.data[slot] is not None:
                    rows.append((key.fd, name, key.data[slot]))
        return rows

    def close(self) -> None:
        """Close the selector. Tasks still parked are the kernel's to cancel first."""
        self._selector.close()
