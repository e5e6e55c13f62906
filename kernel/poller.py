"""The poller: the one call that asks the operating system which descriptors are ready.

The I/O wait table (``kernel/iotable.py``) needs five things from the OS -- register a
descriptor for reading and/or writing, change that, unregister it, poll, close -- and
nothing more, but for one rare repair: a new, empty poller of the same kind (``fresh``),
which it fills again when epoll holds a registration nobody can remove (see
``IOWaitTable._renew_poller``). This module gives it them over two implementations:

* ``EpollPoller`` calls Linux's epoll directly. The table keeps its own index from
  descriptor number to registration, so ``poll`` hands back epoll's own list of
  ``(fd, mask)`` pairs, untouched;
* ``SelectorPoller`` drives any stdlib ``selectors`` selector (kqueue, poll, select), for
  other platforms and for tests.

Discussion: why not always ``selectors``? Its ``select()`` makes a key lookup (a Python call)
and a tuple for every ready descriptor, then the table looks that key's data up again. A busy
server pays that once per message; the TCP echo benchmark measured about a quarter of a
microsecond of Python per message saved (``docs/benchmarks.md``).

A poll's masks are the poller's own: a descriptor is ready for a reader when
``mask & poller.readable``, and for a writer when ``mask & poller.writable``.

Read next: ``kernel/clock.py``.
"""

from __future__ import annotations

import select
import selectors
from typing import Protocol

__all__ = [
    "EVENT_READ",
    "EVENT_WRITE",
    "EpollPoller",
    "Poller",
    "SelectorPoller",
    "default_poller",
]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE


class Poller(Protocol):
    """What the I/O wait table asks of the OS. ``events`` are EVENT_READ | EVENT_WRITE."""

    readable: int  # a mask bit set in ``poll``'s answer for a descriptor a reader can use
    writable: int  # ... and for one a writer can use

    def register(self, fd: int, events: int) -> None: ...
    def modify(self, fd: int, events: int) -> None: ...
    def unregister(self, fd: int) -> None: ...
    def poll(self, timeout: float | None, maxevents: int) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (None: no limit); ``(fd, mask)`` for each ready one."""
        ...

    def close(self) -> None: ...
    def fresh(self) -> Poller:
        """A new poller of the same kind, watching nothing."""
        ...


class EpollPoller:
    """Linux's epoll, called directly."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self.poll = self._epoll.poll  # the C method itself: no Python frame per poll
        # A reader is woken by any bit but "writable" (data, end of file, error, hang-up), a
        # writer by any bit but "readable"; the stdlib's selectors reads epoll's masks so too.
        self.readable = ~select.EPOLLOUT
        self.writable = ~select.EPOLLIN

    @staticmethod
    def _mask(events: int) -> int:
        return (select.EPOLLIN if events & EVENT_READ else 0) | (
            select.EPOLLOUT if events & EVENT_WRITE else 0
        )

    def register(self, fd: int, events: int) -> None:
        self._epoll.register(fd, self._mask(events))

    def modify(self, fd: int, events: int) -> None:
        self._epoll.modify(fd, self._mask(events))

    def unregister(self, fd: int) -> None:
        self._epoll.unregister(fd)

    def close(self) -> None:
        self._epoll.close()

    def fresh(self) -> EpollPoller:
        return EpollPoller()


class SelectorPoller:
    """A stdlib ``selectors`` selector behind the same calls; its masks are EVENT_*."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        self.readable = EVENT_READ
        self.writable = EVENT_WRITE

    def register(self, fd: int, events: int) -> None:
        self.selector.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self.selector.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self.selector.unregister(fd)

    def poll(self, timeout: float | None, maxevents: int) -> list[tuple[int, int]]:
        return [(key.fd, events) for key, events in self.selector.select(timeout)]

    def close(self) -> None:
        self.selector.close()

    def fresh(self) -> SelectorPoller:
        return SelectorPoller(type(self.selector)())


def default_poller() -> Poller:
    """epoll where the platform has it, else the stdlib's best selector."""
    if hasattr(select, "epoll"):
        return EpollPoller()
    return SelectorPoller(selectors.DefaultSelector())
