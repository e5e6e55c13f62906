"""The I/O wait table: which task waits to read, and which to write, on each file descriptor.

A task that would block on a socket does not block the program: it parks here with the
``IO_WAIT`` trap and the kernel asks the operating system's poller (epoll on Linux) which
descriptors became ready. Each registered descriptor has a ``_Registration``: the events the
poller watches for it and a two-slot list ``[reader, writer]``:

* at most one reader and one writer per descriptor -- a second one gets ``ResourceBusy``
  (two tasks reading one socket would steal each other's bytes);
* a descriptor stays registered between waits (a socket in a recv/send loop costs no
  ``epoll_ctl`` per message), and is dropped when it turns up ready with nobody waiting,
  or when its owner closes it through the kernel (``release``);
* a slot may instead hold a *watcher*: a callback that stays in its slot and is handed back
  every time the descriptor is ready, until it is removed. This is asyncio's
  ``add_reader`` / ``add_writer``, which the adapter (``kernel/aio``) maps onto this table.

On Linux the table calls epoll itself and keeps its own index from descriptor number to
registration; elsewhere (or when given one) it drives a stdlib ``selectors`` selector
(``kernel/poller.py`` puts both behind the same calls).

The table also owns the read end of the kernel's wake-up socket pair: any byte on it only
means "stop blocking in select(), a thread has work for you"; the bytes are drained here.

Read next: ``kernel/poller.py``, then ``kernel/clock.py``.
"""

from __future__ import annotations

import selectors
import socket
from typing import Any

from .errors import ResourceBusy
from .poller import EVENT_READ, EVENT_WRITE, Poller, SelectorPoller, default_poller

__all__ = ["EVENT_READ", "EVENT_WRITE", "IOWaitTable"]

_SLOT = {EVENT_READ: 0, EVENT_WRITE: 1}


class _Watcher:
    """A slot's occupant that stays put when its descriptor is ready: a callback to run."""

    __slots__ = ("callback",)

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def __repr__(self) -> str:
        return f"<watcher {self.callback!r}>"


class _Registration:
    """One descriptor known to the poller: the object, its number, the events, who waits."""

    __slots__ = ("events", "fd", "fileobj", "kept", "names", "waiters")

    def __init__(self, fileobj: Any, fd: int, events: int) -> None:
        self.fileobj = fileobj
        # Every object it is registered under: ``fileobj``, and any other name for the same
        # open descriptor (its number, for the asyncio adapter; see IOWaitTable._add).
        self.names = [fileobj]
        self.fd = fd
        self.events = events  # EVENT_READ | EVENT_WRITE: what the poller watches
        self.waiters: list[Any] = [None, None]  # [reader, writer]: a task, a _Watcher or None
        # Kept registered after a wait ends? Not for a bare int: see IOWaitTable.select.
        self.kept = type(fileobj) is not int


def _still_names(fileobj: Any, fd: int) -> bool:
    """Whether ``fileobj`` still stands for descriptor ``fd`` -- False once it was closed or
    detached. A bare int cannot tell, and is believed: its registrations end with its waits."""
    if type(fileobj) is int:
        return True
    try:
        return bool(fileobj.fileno() == fd)
    except (OSError, ValueError, AttributeError):
        return False


def _descriptor(fileobj: Any) -> int:
    """The descriptor number of an int or of an object with ``fileno()``; ValueError if none."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(
                f"cannot wait for I/O on {fileobj!r}: pass a descriptor number or an object "
                f"with a fileno() method, such as a socket"
            ) from None
    if fd < 0:
        raise ValueError(
            f"cannot wait for I/O on {fileobj!r}: its descriptor is {fd}, so it is closed "
            f"(or detached); open a new one"
        )
    return fd


class IOWaitTable:
    """Tasks parked on file descriptors, over epoll (Linux) or a ``selectors`` selector.

    ``selector``: drive this stdlib selector instead of the platform's default poller.
    """

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._poller: Poller = default_poller() if selector is None else SelectorPoller(selector)
        self._occupied = 0  # slots in use, and orphans: parked tasks and watchers
        self._wakeup: socket.socket | None = None
        self._wakeup_fd = -1
        # The registrations, by the object registered (what register and discard get)
        # and by descriptor number (what the poller reports).
        self._by_object: dict[Any, _Registration] = {}
        self._by_fd: dict[int, _Registration] = {}
        # Tasks whose registration went stale (see _evict): the task -> the names it was
        # registered under and the event it waited for. The next select() wakes them, to
        # find their descriptor closed.
        self._orphans: dict[Any, tuple[list[Any], int]] = {}

    def __len__(self) -> int:
        """How many tasks and watchers wait (the wake-up socket does not count)."""
        return self._occupied

    def register(self, fileobj: Any, event: int, task: Any) -> None:
        """Park ``task`` until ``fileobj`` is ready for ``event``.

        ``discard((fileobj, event))`` unparks it; so does ``discard`` of the IO_WAIT trap
        ``("io_wait", fileobj, event)`` itself, which is how the kernel keeps the handle.
        """
        slot = _SLOT[event]
        entry = self._by_object.get(fileobj)
        # A registration kept from an earlier wait may have been closed (or detached) since,
        # behind the table's back: epoll has dropped the descriptor then, and a wait on it
        # would never end. (Written out, not _still_names: this runs on every wait, and a
        # kept registration is never a bare int's.)
        if entry is None or (entry.kept and fileobj.fileno() != entry.fd):
            if entry is not None:
                self._evict(entry)
            entry = self._add(fileobj, event)  # (or the registration of another name for it)
        if entry.waiters[slot] is not None:
            verb = "read from" if event == EVENT_READ else "write to"
            raise ResourceBusy(
                f"{entry.waiters[slot]!r} is already waiting to {verb} descriptor {entry.fd} "
                f"({entry.fileobj!r}); only one task may wait per descriptor and direction "
                f"(give each task its own socket, or funnel the I/O through one task)"
            )
        if not entry.events & event:
            self._poller.modify(entry.fd, entry.events | event)
            entry.events |= event
        # (The common case, a socket still registered from its last wait, passes both
        # tests to here: no system call.)
        entry.waiters[slot] = task
        self._occupied += 1

    def _add(self, fileobj: Any, event: int) -> _Registration:
        """Register a name the table does not know yet: a new descriptor for the poller, or
        one more name for a descriptor already registered under another.

        Discussion: the asyncio adapter names a socket by its number (asyncio's readers and
        writers are keyed so), a kernel task by the socket object; a program running both
        on one socket has two names for one descriptor. They share its registration, so
        one reader and one writer between them, and ``ResourceBusy`` for a second. Only a
        registration whose object no longer stands for the number -- it was closed behind
        the table's back, and the number is a new file now -- is stale, and evicted.
        """
        fd = _descriptor(fileobj)
        if fd == self._wakeup_fd:
            raise ValueError(
                f"descriptor {fd} is the kernel's own wake-up socket; do not wait on it"
            )
        known = self._by_fd.get(fd)
        if known is not None:
            if _still_names(known.fileobj, fd):
                known.names.append(fileobj)
                known.kept = known.kept and type(fileobj) is not int
                self._by_object[fileobj] = known
                return known
            self._evict(known)
        self._poller.register(fd, event)
        entry = self._by_object[fileobj] = self._by_fd[fd] = _Registration(fileobj, fd, event)
        return entry

    def _evict(self, stale: _Registration) -> None:
        """``stale``'s descriptor was closed (or detached) behind the table's back, and its
        number has just come back for a new object: forget it (epoll may have dropped it
        already). Watchers on it are dropped; a task parked on it becomes an orphan, which
        the next ``select`` wakes, so that it retries its call and gets the error.
        """
        self._orphan_waiters(stale)
        self._forget(stale)

    def _orphan_waiters(self, stale: _Registration) -> None:
        """Drop the watchers of a stale registration; make orphans of its parked tasks."""
        for event, occupant in zip((EVENT_READ, EVENT_WRITE), stale.waiters, strict=True):
            if occupant.__class__ is _Watcher:
                self._occupied -= 1
            elif occupant is not None:
                self._orphans[occupant] = (stale.names, event)

    def watch(self, fileobj: Any, event: int, callback: Any) -> Any:
        """Hand ``callback`` back from ``select`` whenever ``fileobj`` is ready for ``event``.

        It replaces a watcher already in that slot (asyncio's ``add_reader`` does the same)
        and returns the callback it replaced, or None; a task parked in the slot makes this
        raise ``ResourceBusy``.
        """
        entry = self._by_object.get(fileobj)
        if entry is not None:
            occupant = entry.waiters[_SLOT[event]]
            if occupant.__class__ is _Watcher:
                replaced = occupant.callback
                occupant.callback = callback
                return replaced
        self.register(fileobj, event, _Watcher(callback))
        return None

    def unwatch(self, fileobj: Any, event: int) -> Any:
        """Remove the watcher for ``event`` on ``fileobj``; return its callback, or None."""
        entry = self._by_object.get(fileobj)
        if entry is None:
            return None
        slot = _SLOT[event]
        watcher = entry.waiters[slot]
        if watcher.__class__ is not _Watcher:
            return None
        entry.waiters[slot] = None
        self._occupied -= 1
        self._stop_watching(entry, event)
        return watcher.callback

    def drop_watchers(self) -> None:
        """Remove every watcher (the kernel drops them on close; tasks stay)."""
        for entry in list(self._by_object.values()):
            for event in (EVENT_READ, EVENT_WRITE):
                self.unwatch(entry.fileobj, event)

    def discard(self, handle: tuple[Any, ...]) -> None:
        """Unpark whoever waits under ``handle``, a tuple ending ``fileobj, event`` (a no-op
        if it was already woken).

        A socket stays registered (see ``select``); it is dropped the next time it is
        reported ready with nobody waiting. A bare int is unregistered at once.
        """
        fileobj, event = handle[-2], handle[-1]
        entry = self._by_object.get(fileobj)
        if entry is None:
            for orphan, (names, waited) in self._orphans.items():  # (rare, and few)
                if waited == event and fileobj in names:
                    del self._orphans[orphan]
                    self._occupied -= 1
                    break
            return
        waiters = entry.waiters
        slot = _SLOT[event]
        if waiters[slot] is not None and waiters[slot].__class__ is not _Watcher:
            waiters[slot] = None
            self._occupied -= 1
            if not entry.kept:  # no identity to check later: see select()
                self._stop_watching(entry, event)

    def release(self, fileobj: Any) -> list[Any]:
        """``fileobj`` is about to be closed: forget it; return the tasks that waited on it.

        Watchers on it are dropped: closing the descriptor ends their job.
        """
        entry = self._by_object.get(fileobj)
        if entry is None:
            return []
        occupants = [occupant for occupant in entry.waiters if occupant is not None]
        self._occupied -= len(occupants)
        self._forget(entry)
        return [task for task in occupants if task.__class__ is not _Watcher]

    def holds(self, fileobj: Any) -> bool:
        """Whether ``fileobj`` is registered here (waited on now, or kept from a wait)."""
        return fileobj in self._by_object

    def forget_idle(self, fileobj: Any) -> None:
        """``fileobj``'s owner is going away without closing it: if nobody waits on it, drop
        its registration now, so that the table does not keep it alive.

        Discussion: a registration kept between waits holds its object, and is dropped only
        when the descriptor turns up ready with nobody waiting -- which, for a socket whose
        peer stays quiet, never happens. A socket dropped without ``close()`` would then
        keep its descriptor open for as long as the kernel lives; ``kernel.socket.Socket``
        (through ``kernel.lifecycle.let_go_of``) calls this as it is collected. One still in
        use elsewhere just registers again at its next wait.
        """
        entry = self._by_object.get(fileobj)
        if entry is not None and entry.waiters == [None, None]:
            self._forget(entry)

    def _forget(self, entry: _Registration) -> None:
        # By number: the object may be closed or detached already. Closed, epoll refuses
        # (EBADF; ENOENT if the number is some other file's now), and may still hold the
        # registration, out of anyone's reach: see _renew_poller.
        try:
            self._poller.unregister(entry.fd)
            lost = False
        except (KeyError, ValueError):
            lost = False
        except OSError:
            lost = True
        for name in entry.names:  # (pop: forget_idle, from a finalizer, may have been first)
            self._by_object.pop(name, None)
        if self._by_fd.get(entry.fd) is entry:
            del self._by_fd[entry.fd]
        if lost:
            self._renew_poller()

    def _renew_poller(self) -> None:
        """Replace the poller with a new one that watches just what the table holds.

        Discussion: epoll watches an open file, not a number. A socket closed behind the
        table's back while another descriptor still has its file open (a ``dup()``, a
        child process's copy) stays in epoll's set: epoll drops a registration only when the
        file's last descriptor closes, and ``epoll_ctl`` can no longer name it, since it
        takes the closed number. If that file is ready -- the duplicate's unread data --
        epoll reports it on every poll, and the loop spins at full speed; if the number is
        reused, its reports wake the new file's waiters for nothing. The only cure is a new
        epoll. The signs: epoll refuses to unregister a descriptor (``_forget``), or reports a
        number the table does not know (``select``). Only then does this run, so its cost --
        one ``epoll_ctl`` per registration -- is paid on that rare path alone. A registration
        found closed meanwhile is treated as ``_evict`` treats a stale one.

        A stdlib ``selectors`` selector hides both signs (its ``unregister`` swallows the
        error, its ``select`` skips the number), so over a ``selectors.EpollSelector`` this
        never runs. The table makes none: on Linux it calls epoll itself, and the selectors
        it falls back on elsewhere (kqueue, poll, select) forget a descriptor as it closes.
        """
        old = self._poller
        self._poller = new = old.fresh()
        stale = []
        for fd, entry in self._by_fd.items():
            if _still_names(entry.fileobj, fd):
                try:
                    new.register(fd, entry.events)
                    continue
                except OSError:  # (a bare int's descriptor, closed)
                    pass
            stale.append(entry)
        if self._wakeup_fd >= 0:
            new.register(self._wakeup_fd, EVENT_READ)
        old.close()
        for entry in stale:
            self._orphan_waiters(entry)
            for name in entry.names:
                self._by_object.pop(name, None)
            del self._by_fd[entry.fd]

    def _stop_watching(self, entry: _Registration, events: int) -> None:
        """Stop watching ``events`` on a registered descriptor (all of them: unregister)."""
        remaining = entry.events & ~events
        if remaining:
            self._poller.modify(entry.fd, remaining)
            entry.events = remaining
        else:
            self._forget(entry)

    def add_wakeup(self, sock: socket.socket) -> None:
        """Watch the read end of the wake-up socket pair (its bytes are drained by select)."""
        self._wakeup = sock
        self._wakeup_fd = sock.fileno()
        self._poller.register(self._wakeup_fd, EVENT_READ)

    def select(self, timeout: float | None) -> list[Any]:
        """Block up to ``timeout`` seconds (None: forever); return what is now ready to run.

        That is each task whose descriptor is ready -- removed from the table -- and the
        callback of each watcher whose descriptor is ready, which stays.

        Discussion: a woken task's descriptor stays registered. A task in a loop of
        ``recv``/``send`` parks on the same socket again and again; keeping it registered
        saves two system calls (epoll_ctl add, then delete) every time. A descriptor that
        turns up ready with nobody waiting for that event is dropped from the poller
        then -- so an idle socket cannot keep waking ``select()`` up. The exception is a
        bare ``int``: a closed descriptor's number is soon reused, and an int, unlike a
        socket object, cannot tell the new file from the old (whose registration epoll
        has silently dropped). So waits on an int are unregistered as soon as they end.
        """
        ready: list[Any] = []
        woken_tasks = 0
        if self._orphans:  # (rare) they are ready now: look, but do not block
            ready.extend(self._orphans)
            woken_tasks = len(self._orphans)
            self._orphans.clear()
            timeout = 0.0
        poller = self._poller
        readable = poller.readable
        writable = poller.writable
        by_fd = self._by_fd
        stray = False
        for fd, mask in poller.poll(timeout, len(by_fd) + 1):
            entry = by_fd.get(fd)
            if entry is None:
                if fd == self._wakeup_fd:
                    self._drain_wakeup()
                else:  # a registration epoll kept and we cannot remove: see _renew_poller
                    stray = True
                continue
            # Read and write are spelled out, not looped over: this runs for every ready
            # descriptor, and it is the I/O benchmark's hottest loop.
            waiters = entry.waiters
            unwatched = 0
            if mask & readable:
                waiter = waiters[0]
                if waiter is None:
                    unwatched = EVENT_READ
                elif waiter.__class__ is _Watcher:
                    ready.append(waiter.callback)
                else:
                    ready.append(waiter)
                    waiters[0] = None
                    woken_tasks += 1
                    if not entry.kept:  # nothing is kept for a bare int (see above)
                        unwatched = EVENT_READ
            if mask & writable:
                waiter = waiters[1]
                if waiter is None:
                    unwatched |= EVENT_WRITE
                elif waiter.__class__ is _Watcher:
                    ready.append(waiter.callback)
                else:
                    ready.append(waiter)
                    waiters[1] = None
                    woken_tasks += 1
                    if not entry.kept:
                        unwatched |= EVENT_WRITE
            if unwatched:
                self._stop_watching(entry, unwatched)
        if stray:
            self._renew_poller()
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
        for entry in self._by_fd.values():
            for name, occupant in zip(("read", "write"), entry.waiters, strict=True):
                if occupant is not None:
                    rows.append((entry.fd, name, occupant))
        return rows

    def close(self) -> None:
        """Close the poller, and forget every registration (a closed kernel kept alive must
        not keep their objects open). Tasks still parked are the kernel's to cancel first."""
        self._poller.close()
        self._by_object.clear()
        self._by_fd.clear()
        self._orphans.clear()
