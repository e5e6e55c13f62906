"""Watching a child process exit from the I/O wait table: ``ExitWatch``.

On Linux 5.3 and later, ``os.pidfd_open(pid)`` gives a *pidfd*: a descriptor that becomes
readable when the process terminates. ``add_reader(pidfd, ...)`` is all it takes to be told;
the callback then reaps the child with ``os.waitpid(pid, WNOHANG)``, which cannot block. No
thread, no ``SIGCHLD`` handler, nothing that could reap another library's children. Where
there is no pidfd, the same callback is run from the sleeping queue instead, ``call_later``
every 1 ms doubling to 100 ms.

Differences from asyncio (``unix_events.py``):

* The exit is watched by the loop itself (a pidfd, as ``PidfdChildWatcher`` does, without
  the watcher object): ``asyncio.get_child_watcher()`` / ``set_child_watcher()`` (3.11,
  3.12) are neither needed nor consulted.
* A child reaped behind the transport's back through its ``Popen`` (``poll()`` or
  ``wait()`` on ``get_extra_info('subprocess')``) reports the return code the ``Popen``
  read, not asyncio's 255. A child reaped by someone else entirely (a ``SIGCHLD`` handler
  calling ``waitpid(-1)``, such as asyncio's ``FastChildWatcher`` attached to this loop)
  leaves no status to read: then, as in asyncio, 255 is reported, with a warning.

Read next: ``kernel/aio/pipes.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Callable
from typing import cast

__all__ = ["EXIT_POLL_FIRST", "EXIT_POLL_MAX", "UNKNOWN_RETURNCODE", "ExitWatch", "open_pidfd"]

log = logging.getLogger("asyncio")  # what asyncio logs, where asyncio logs it

EXIT_POLL_FIRST = 0.001  # seconds: without a pidfd, the first waitpid poll comes after this,
EXIT_POLL_MAX = 0.1  # and the interval doubles up to this
UNKNOWN_RETURNCODE = 255  # reported, as asyncio does, when someone else read the exit status


def open_pidfd(pid: int) -> int | None:
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


class ExitWatch:
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
        self._pidfd = open_pidfd(popen.pid)
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
