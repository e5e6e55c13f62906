"""Task groups: spawn a set of tasks, and do not leave the block until they are all accounted for.

::

    async with TaskGroup() as g:
        await g.spawn(fetch, url1)
        await g.spawn(fetch, url2)
    # here every task in g has ended

How the block ends depends on ``wait``:

``wait=all``     (default) wait for every task;
``wait=any``     wait for the first task to end, then cancel the rest;
``wait=object``  wait for the first task to return something other than None, cancel the rest;
``wait=None``    cancel every task at once.

Failures are never silent -- the one place this group differs from curio's. When a task
fails (ends with an exception that is not a cancellation), its siblings are cancelled at
once, and when the block ends every failure nobody has looked at leaves it together as an
``ExceptionGroup`` (PEP 654). A failure counts as "looked at" once its exception was raised
to someone (``next_result()``, ``task.join()``, ``task.result``) or read (``task.exception``).
The body of the block itself is *not* interrupted: like curio, a group has no cancel scope.
A body that wants to react early can ``await g.next_done()``.

``await g.start(fn)`` is trio's: ``fn`` gets a ``task_status`` and calls
``task_status.started(value)`` once it is ready (a server, once it listens). Until then the
task belongs to the ``start()`` call, not to the group: if it fails first, ``start()`` raises
the error and the group never sees it -- no sibling is cancelled, and it is no member
(not in ``tasks``, ``results`` or ``exceptions``, and ``wait=any``/``object`` do not count it).
It joins the group when it calls ``started()``; from then on it is a member like any other.

The group learns about endings through an exit callback that the kernel runs when a member
ends, so it can cancel siblings the moment a failure happens.

Read next: ``kernel/pytest_plugin.py``.
"""

from __future__ import annotations

import builtins
import logging
import types
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import CancelledError, TaskCancelled
from .task import (
    CoroutineLike,
    Task,
    TaskFunction,
    as_coroutine,
    disable_cancellation,
    ended_by_cancellation,
    spawn,
)
from .traps import _cancel, _wait_on
from .waitqueue import WaitQueue

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from .scheduler import Kernel

__all__ = ["TASK_STATUS_IGNORED", "TaskGroup"]

log = logging.getLogger("kernel")

_WAIT_POLICIES = (builtins.all, builtins.any, object, None)


class _TaskStatus:
    """What ``TaskGroup.start`` passes as ``task_status``: call ``started(value)`` once."""

    def __init__(self, group: TaskGroup) -> None:
        self._group = group
        self._task: Task | None = None  # set by start() as soon as it has spawned the task
        self.value: Any = None
        self.is_started = False

    def started(self, value: Any = None) -> None:
        if self.is_started:
            raise RuntimeError("task_status.started() was already called; call it exactly once")
        assert self._task is not None  # start() sets it before the task can run
        if self._task.done:
            raise RuntimeError(
                f"task_status.started() called after {self._task!r} ended: too late, it did "
                f"not join the group (its start() raises how it ended)"
            )
        self.is_started = True
        self.value = value
        self._group._on_started(self._task)


class _IgnoredStatus:
    """The default ``task_status`` when a task is spawned normally: ``started()`` does nothing."""

    def started(self, value: Any = None) -> None:
        pass


TASK_STATUS_IGNORED: TaskStatus[Any] = _IgnoredStatus()


class TaskGroup:
    """A set of tasks whose lifetime is the ``async with`` block. See the module docstring."""

    def __init__(self, tasks: tuple[Task, ...] | list[Task] = (), *, wait: Any = all) -> None:
        if not any(wait is policy for policy in _WAIT_POLICIES):
            raise ValueError(f"TaskGroup(wait=...) must be all, any, object or None; got {wait!r}")
        self._wait = wait
        self._tasks: list[Task] = []  # every member, in the order it joined
        # Tasks spawned by start() that have not called started() yet: not members. Dicts
        # are used as ordered sets here: see _running.
        self._starting: dict[Task, None] = {}
        # The tasks still running, members and those being started, as a dict used as an
        # ordered set: cancelling them goes in the order they joined, so a schedule is the
        # same on every run (a set's order would follow memory addresses). Those being started
        # are here so that the group waits for them and cancels them like its members: they
        # would be members the moment they call started().
        self._running: dict[Task, None] = {}
        self._finished: deque[Task] = deque()  # ended, not yet handed out by next_done()
        self._completed: list[Task] = []  # ended, in the order they ended
        self._failed: list[Task] = []  # ended with an error that is not a cancellation
        # The cancellation start() raised because the task it was starting was cancelled (by
        # this group, when a sibling failed): not the body being cancelled (see __aexit__).
        self._start_cancelled: BaseException | None = None
        # Set once the group cancels its members (a failure, the block's end): from then
        # on a newcomer -- spawned by a member's cleanup, say -- is cancelled as it joins.
        self._cancelling = False
        self._waiters = WaitQueue(self)  # the parent, waiting for a member to end
        self._closed = False
        self._kernel: Kernel = None  # type: ignore[assignment]  # learnt from the first member
        for task in tasks:
            self._add(task)

    def __repr__(self) -> str:
        return f"<TaskGroup tasks={len(self._tasks)} running={len(self._running)}>"

    # -- membership --------------------------------------------------------------------

    def _check_open(self, refused: object = None) -> None:
        """Refuse a newcomer once the group has finished -- before it is spawned: a task that
        runs while its spawn() raised would belong to nobody. A refused coroutine object is
        closed (it will never run: no "never awaited" warning)."""
        if self._closed:
            if isinstance(refused, types.CoroutineType | types.GeneratorType):
                refused.close()
            raise RuntimeError("this TaskGroup has finished; tasks cannot join it any more")

    def _add(self, task: Task, *, starting: bool = False) -> None:
        self._check_open()
        if task._group is not None:
            raise RuntimeError(f"{task!r} already belongs to {task._group!r}")
        if task._joined:
            raise RuntimeError(f"{task!r} was already joined; a group cannot collect it again")
        self._kernel = task._kernel
        task._group = self
        if starting:
            self._starting[task] = None
            on_exit = self._on_exit_before_started
        else:
            self._tasks.append(task)
            on_exit = self._on_exit
        if task.done:
            on_exit(task)
        else:
            self._running[task] = None
            task.add_exit_callback(on_exit)
            if self._cancelling:
                self._kernel._cancel_task(task, TaskCancelled("cancelled by its TaskGroup"))

    def _on_exit(self, task: Task) -> None:
        """Runs in the kernel's context when a member ends (it must not block)."""
        self._running.pop(task, None)
        self._finished.append(task)
        self._completed.append(task)
        if task._exception is not None and not ended_by_cancellation(task._exception):
            self._failed.append(task)
            self._cancelling = True
            for sibling in self._running:
                self._kernel._cancel_task(sibling, TaskCancelled(f"a sibling failed: {task!r}"))
        self._wake_parent()

    def _on_exit_before_started(self, task: Task) -> None:
        """Runs in the kernel's context when a task ends before ``started()`` (must not block).

        Its outcome belongs to the start() call that waits for it, which raises it, not to the
        group: counting it as a failure would cancel every sibling for an error its caller may
        well handle -- a server whose port is taken must not bring down those started before.
        """
        del self._starting[task]
        self._running.pop(task, None)
        self._wake_parent()

    def _on_started(self, task: Task) -> None:
        """``task`` called ``task_status.started()``: from now on it is a member."""
        del self._starting[task]
        self._tasks.append(task)
        task.remove_exit_callback(self._on_exit_before_started)
        task.add_exit_callback(self._on_exit)
        self._wake_parent()

    def _wake_parent(self) -> None:
        if self._waiters:
            self._kernel._wake(self._waiters, len(self._waiters))

    async def spawn(
        self,
        corofunc: TaskFunction | CoroutineLike,
        *args: Any,
        daemon: bool = False,
        name: str | None = None,
    ) -> Task:
        """Spawn a task into the group."""
        self._check_open(corofunc)
        task = await spawn(corofunc, *args, daemon=daemon, name=name)
        self._add(task)
        return task

    async def add_task(self, task: Task) -> None:
        """Adopt a task that was spawned elsewhere."""
        self._add(task)

    async def start(self, corofunc: TaskFunction, *args: Any, name: str | None = None) -> Any:
        """Spawn ``corofunc(*args, task_status=...)`` and wait until it calls ``started(value)``.

        Returns ``value``; the task is a member of the group from then on. If it ends before
        calling it, it never joins the group: its exception is raised here (RuntimeError if it
        returned) and nowhere else -- its siblings go on. If the caller is cancelled (or times
        out) first, the task is cancelled too, and waited for, before the cancellation goes on.
        """
        self._check_open()
        status = _TaskStatus(self)
        coro = as_coroutine(lambda: corofunc(*args, task_status=status), (), "start")
        task = await spawn(coro, name=name)
        status._task = task  # before the task can run: spawn() does not switch tasks
        self._add(task, starting=True)
        try:
            while not status.is_started and not task.done:
                await _wait_on(self._waiters, "TASKGROUP_START")
        except BaseException as error:
            if self._closed_outside_a_step(error):
                raise
            # The task is still this call's, so it goes with it (trio's rule). Left running, it
            # would hold the group's exit open, and a failure of it would reach nobody.
            if not status.is_started:
                async with disable_cancellation():
                    await task.cancel(TaskCancelled("the caller of TaskGroup.start() left"))
            raise
        if status.is_started:
            return status.value
        if task._exception is not None:
            task._observed = True
            if ended_by_cancellation(task._exception):
                self._start_cancelled = task._exception
            raise task._exception
        raise RuntimeError(f"{task!r} returned without calling task_status.started()")

    # -- collecting results ------------------------------------------------------------

    async def next_done(self) -> Task | None:
        """The next member to end (in the order they end), or None when none is left."""
        while not self._finished:
            if not self._running:
                return None
            await _wait_on(self._waiters, "TASKGROUP")
        return self._finished.popleft()

    async def next_result(self) -> Any:
        """The result of the next member to end; ``TaskError`` if it failed."""
        task = await self.next_done()
        if task is None:
            raise RuntimeError("no task left in the group to collect a result from")
        return task.result

    def __aiter__(self) -> AsyncIterator[Task]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Task]:
        while (task := await self.next_done()) is not None:
            yield task

    async def cancel_remaining(self) -> None:
        """Cancel every member still running and wait until they have all ended (one that
        joins meanwhile is cancelled as it joins)."""
        self._cancelling = True
        for task in list(self._running):
            await _cancel(task, TaskCancelled("cancelled by its TaskGroup"))
        while self._running:
            await _wait_on(self._waiters, "TASKGROUP")

    @property
    def tasks(self) -> list[Task]:
        """Every member, in the order it joined (one from ``start()`` joins at ``started()``)."""
        return list(self._tasks)

    @property
    def completed(self) -> Task | None:
        """The member that ended first (for ``wait=object``: the first non-None result)."""
        if self._wait is object:
            for task in self._completed:
                if task._exception is None and task._result is not None:
                    return task
            return None
        return self._completed[0] if self._completed else None

    @property
    def result(self) -> Any:
        """The result of ``completed``; ``TaskError`` if it failed."""
        task = self.completed
        if task is None:
            raise RuntimeError("no task in the group has completed")
        return task.result

    @property
    def results(self) -> list[Any]:
        """Results of every member that ended normally, in the order they joined the group."""
        return [t._result for t in self._tasks if t.done and t._exception is None]

    @property
    def exception(self) -> BaseException | None:
        """The first failure (in the order tasks ended), or None."""
        return self._failed[0].exception if self._failed else None

    @property
    def exceptions(self) -> list[BaseException]:
        """Every failure, in the order the tasks ended."""
        return [t.exception for t in self._failed if t.exception is not None]

    # -- the block ---------------------------------------------------------------------

    async def __aenter__(self) -> TaskGroup:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is not None and self._closed_outside_a_step(exc):
            return False  # (no trap may be yielded: see _closed_outside_a_step)
        try:
            if exc is not None:
                await self.cancel_remaining()
            else:
                await self._wait_for_policy()
        except BaseException as error:
            if self._closed_outside_a_step(error):
                raise
            await self._cancel_remaining_shielded()
            raise
        finally:
            self._closed = True
        # (A member's KeyboardInterrupt or SystemExit has been seen -- by the kernel, which
        # stops the program for it -- but the block must not end as if all went well.)
        unseen = [
            t
            for t in self._failed
            if not t._observed or isinstance(t._exception, KeyboardInterrupt | SystemExit)
        ]
        for task in unseen:
            task._observed = True
        errors = [t._exception for t in unseen if t._exception is not None]
        if not errors:
            return False
        if exc is not None and exc is self._start_cancelled:
            # The body left because the task it was starting was cancelled -- by this group,
            # for the failures in hand. The body itself was not cancelled: report those.
            exc = None
        if isinstance(exc, CancelledError):
            # The body is being cancelled (or timed out): that must go on propagating as it is,
            # so the failures cannot travel with it. Report them rather than drop them.
            for failure in errors:
                log.error("task failed in a TaskGroup being cancelled", exc_info=failure)
            return False
        if exc is not None:
            errors.insert(0, exc)
        n = len(unseen)
        raise BaseExceptionGroup(f"{n} task{'s' if n > 1 else ''} in a TaskGroup failed", errors)

    def _closed_outside_a_step(self, error: BaseException) -> bool:
        """Is the task being closed by the kernel as it abandons its tasks (a second Ctrl-C,
        a kernel error)? Then it may not yield a trap -- Python would report it as ignoring
        ``GeneratorExit`` -- and the members are being abandoned with it. (An async
        generator closed by ``aclose()`` in a task is closed *in* a step: it cleans up.)"""
        return isinstance(error, GeneratorExit) and (
            self._kernel is None or not self._kernel._in_task_step()
        )

    async def _wait_for_policy(self) -> None:
        wait = self._wait
        if wait is None:
            await self.cancel_remaining()
            return
        while self._running:
            if self._failed:
                break  # siblings are being cancelled; collect them below
            if wait is any and self._completed:
                break
            if wait is object and self.completed is not None:
                break
            await _wait_on(self._waiters, "TASKGROUP")
        await self.cancel_remaining()

    async def _cancel_remaining_shielded(self) -> None:
        """The parent itself was cancelled while waiting: still never leave members behind."""
        async with disable_cancellation():
            await self.cancel_remaining()
