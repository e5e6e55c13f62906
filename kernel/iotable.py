"""The I/O wait table: which task waits to read, and which to write, on each file descriptor.

A task that would block on a socket does not block the program: it parks here with the
``IO_WAIT`` trap and the kernel asks the operating system's selector (epoll on Linux) which
descriptors became ready. Each registered descriptor carries a two-slot list
``[reader, writer]`` as its selector data, so the table *is* the selector's registration:

* at most one reader and one writer per descriptor -- a second one gets ``ResourceBusy``
  (two tasks reading one socket would steal each other's bytes);
* a descriptor stays registered between waits (a socket in a recv/send loop costs no
  ``epoll_ctl`` per message), and is dropped when it turns up ready with nobody waiting,
  or when its owner closes it through the kernel (``release``);
* a slot may instead hold a *watcher*: a callback that stays in its slot and is handed back
  every time the descriptor is ready, until it is removed. This is asyncio's
  ``add_reader`` / ``add_writer``, which the adapter (``kernel/aio``) maps onto this table.

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


class _Watcher:
    """A slot's occupant that stays put when its descriptor is ready: a callback to run."""

    __slots__ = ("callback",)

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def __repr__(self) -> str:
        return f"<watcher {self.callback!r}>"


class IOWaitTable:
    """Tasks parked on file descriptors, backed by a ``selectors`` selector."""

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._selector = selector if selector is not None else selectors.DefaultSelector()
        self._occupied = 0  # slots in use: parked tasks (which leave when woken) and watchers
        self._wakeup: socket.socket | None = None
        # Our own index of the registrations, by the object registered: one dict lookup
        # per wait, where the selector's map would call fileno() through several layers.
        self._keys: dict[Any, selectors.SelectorKey] = {}

    def __len__(self) -> int:
        """How many tasks and watchers wait (the wake-up socket does not count)."""
        return self._occupied

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
        self._occupied += 1
        return (fileobj, event)

    def watch(self, fileobj: Any, event: int, callback: Any) -> Any:
        """Hand ``callback`` back from ``select`` whenever ``fileobj`` is ready for ``event``.

        It replaces a watcher already in that slot (asyncio's ``add_reader`` does the same)
        and returns the callback it replaced, or None; a task parked in the slot makes this
        raise ``ResourceBusy``.
        """
        key = self._keys.get(fileobj)
        if key is not None:
            occupant = key.data[_SLOT[event]]
            if occupant.__class__ is _Watcher:
                replaced = occupant.callback
                occupant.callback = callback
                return replaced
        self.register(fileobj, event, _Watcher(callback))
        return None

    def unwatch(self, fileobj: Any, event: int) -> Any:
        """Remove the watcher for ``event`` on ``fileobj``; return its callback, or None."""
        key = self._keys.get(fileobj)
        if key is None:
            return None
        slot = _SLOT[event]
        watcher = key.data[slot]
        if watcher.__class__ is not _Watcher:
            return None
        key.data[slot] = None
        self._occupied -= 1
        self._stop_watching(key, event)
        return watcher.callback

    def drop_watchers(self) -> None:
        """Remove every watcher (the kernel drops them on close; tasks stay)."""
        for key in list(self._keys.values()):
            for event, slot in ((EVENT_READ, 0), (EVENT_WRITE, 1)):
                if key.data[slot].__class__ is _Watcher:
                    self.unwatch(key.fileobj, event)
                    key = self._keys.get(key.fileobj, key)

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
        if waiters[slot] is not None and waiters[slot].__class__ is not _Watcher:
            waiters[slot] = None
            self._occupied -= 1
            if type(fileobj) is int:  # no identity to check later: see select()
                self._stop_watching(key, event)

    def release(self, fileobj: Any) -> list[Any]:
        """``fileobj`` is about to be closed: forget it; return the tasks that waited on it.

        Watchers on it are dropped: closing the descriptor ends their job.
        """
        key = self._keys.get(fileobj)
        if key is None:
            return []
        waiting = [task for task in key.data if task is not None and task.__class__ is not _Watcher]
        self._occupied -= sum(1 for occupant in key.data if occupant is not None)
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
        """Block up to ``timeout`` seconds (None: forever); return what is now ready to run.

        That is each task whose descriptor is ready -- removed from the table -- and the
        callback of each watcher whose descriptor is ready, which stays.

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
        woken_tasks = 0
        selector = self._selector
        for key, mask in selector.select(timeout):
            waiters = key.data
            if waiters is _WAKEUP:
                self._drain_wakeup()
                continue
            # Read and write are spelled out, not looped over: this runs for every ready
            # descriptor, and it is the I/O benchmark's hottest loop.
            unwatched = 0
            if mask & EVENT_READ:
                waiter = waiters[0]
                if waiter is None:
                    unwatched = EVENT_READ
                elif waiter.__class__ is _Watcher:
                    ready.append(waiter.callback)
                else:
                    ready.append(waiter)
                    waiters[0] = None
                    woken_tasks += 1
                    if type(key.fileobj) is int:  # nothing is kept for a bare int (see above)
                        unwatched = EVENT_READ
            if mask & EVENT_WRITE:
                waiter = waiters[1]
                if waiter is None:
                    unwatched |= EVENT_WRITE
                elif waiter.__class__ is _Watcher:
                    ready.append(waiter.callback)
                else:
                    ready.append(waiter)
                    waiters[1] = None
                    woken_tasks += 1
                    if type(key.fileobj) is int:
                        unwatched |= EVENT_WRITE
            if unwatched:
                self._stop_watching(key, unwatched)
        self._occupied -= woken_tasks
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
        """(fd, "read"|"write", task or watcher) for every slot in use; for tracing and tests."""
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
