"""The exceptions of the kernel.

Two families are kept apart on purpose:

* *Your bug* -- an exception raised by a task's own code -- is stored on its ``Task`` and
  re-raised to whoever joins it (wrapped in ``TaskError``).
* *Our bug* -- an exception inside one of the scheduler's trap handlers -- becomes
  ``KernelError`` and shuts the kernel down.

Cancellation exceptions derive from ``BaseException`` (through ``CancelledError``) so that a
careless ``except Exception:`` in a task cannot swallow them.

Read next: ``kernel/traps.py``, the only way a task talks to the kernel.
"""

from __future__ import annotations

__all__ = [
    "CancelledError",
    "Deadlock",
    "KernelError",
    "QueueEmpty",
    "QueueFull",
    "ResourceBusy",
    "TaskCancelled",
    "TaskError",
    "TaskTimeout",
    "TimeoutCancellationError",
    "UncaughtTimeoutError",
]


class CancelledError(BaseException):
    """Base class of every cancellation: a task was asked to stop at its next blocking call."""


class TaskCancelled(CancelledError):
    """The task was cancelled with ``Task.cancel()`` (or at kernel shutdown, or by Ctrl-C)."""


class TaskTimeout(CancelledError):
    """A ``timeout_after`` / ``timeout_at`` deadline expired. ``args[0]`` is the clock then."""


class TimeoutCancellationError(CancelledError):
    """An *enclosing* timeout expired while this inner timeout block was still running."""


class UncaughtTimeoutError(Exception):
    """A ``TaskTimeout`` escaped the block that owned it and reached an outer, unexpired one."""


class TaskError(Exception):
    """Raised by ``Task.join()`` when the task failed; ``__cause__`` is the task's exception."""


class ResourceBusy(Exception):
    """A second task tried to wait for the same I/O event on a file descriptor."""


class QueueEmpty(Exception):
    """``get_nowait()`` on an empty queue."""


class QueueFull(Exception):
    """``put_nowait()`` on a full queue."""


class Deadlock(Exception):
    """Every task is blocked and nothing is left that could wake one: the program is stuck.

    Your bug, not ours: the message names each blocked task, what it waits for and who holds
    it. It is raised in the main task, where it waits, so that its cleanup runs; with no main
    task (``close()``, ``run_until``) it leaves the loop instead. See ``kernel/deadlock.py``.
    """


class KernelError(Exception):
    """A bug in the kernel itself (an exception inside a trap handler). The kernel shuts down."""
