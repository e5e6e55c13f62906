"""Labels: short, stable names for the objects a trace mentions.

A record holds no live object, only text (``records.py``), and ``Labels`` is where each object
gets its text: a kernel task is ``"main (task 1)"``, an asyncio task its name, any other future
``Future-1``, a callback in a queue ``Task-1.__step`` or ``TimerHandle(...)``, a primitive of
the kernel ``Lock-1``, any other value its repr, cut short. Key invariant: an object keeps its
label for as long as it lives, so two records that show one label speak of one object, and one
object never shows up under two labels. An asyncio task is labelled the first time a record
mentions it -- when its first step is queued, from inside its ``__init__`` -- by the name it
is given at creation, even when, as on Python 3.11, ``asyncio.create_task(coro, name=...)``
and ``TaskGroup.create_task`` set that name only once the task is made; a task renamed later
(``set_name``) keeps its first label.

In deterministic mode (``Labels(deterministic=True)``) a label is the same on every run:
asyncio's default task names ("Task-57", from a process-wide counter) are renumbered in order
of appearance, file descriptors become ``fd #1``, ``fd #2``, ... and memory addresses and
source locations are dropped from any text.

Both recorders use it: ``Recorder`` (``records.py``, the kernel's tracer) and
``RecordingEventLoop`` (``asyncio_recorder.py``, real asyncio's loop).

Read next: ``kernel/trace/records.py``, the records these labels go into.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
import sys
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..aio.tasks import Task as AioTask
from ..iotable import EVENT_READ
from ..task import Task
from ..tracing import TracedCallback
from ..waitqueue import WaitQueue

__all__ = ["Labels"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|0x[0-9a-fA-F]+")
_SOURCE = re.compile(r" (?:at|created at) [^ >]+:\d+")
_FD = re.compile(r"\bfd=(-?\d+)")
_DEFAULT_TASK_NAME = re.compile(r"^Task-\d+$")


class Labels:
    """Short, stable names for the objects a trace mentions.

    A kernel task is ``"name (task id)"``; an asyncio task is its name; any other future is
    ``Future-1``, ``Future-2``... in order of appearance; a primitive of the kernel is
    ``Event-1``, ``Lock-1``... Each object keeps its label for as long as it lives.
    """

    def __init__(self, deterministic: bool = False) -> None:
        self.deterministic = deterministic
        self._by_id: dict[int, tuple[Callable[[], Any], str]] = {}
        self._counters: dict[str, int] = {}
        self._fds: dict[int, str] = {}
        # Every asyncio task label handed out, and "callbacks", the timeline's row of the
        # callbacks that are no task's step: a name given twice gets a number (_task_label).
        self._task_labels: set[str] = {"callbacks"}

    def _named(self, obj: Any, make: Callable[[], str]) -> str:
        entry = self._by_id.get(id(obj))
        if entry is not None and entry[0]() is obj:
            return entry[1]
        label = make()
        try:
            ref: Callable[[], Any] = weakref.ref(obj)
        except TypeError:  # not weakly referenceable: keep it, so its id is not reused
            ref = _Strong(obj)
        self._by_id[id(obj)] = (ref, label)
        return label

    def _numbered(self, kind: str) -> str:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return f"{kind}-{self._counters[kind]}"

    def task(self, task: Task) -> str:
        return f"{task.name} (task {task.id})"

    def future(self, future: Any) -> str:
        """An asyncio task by its name, any other future as ``Future-n``: each by the label it
        got when first seen."""
        if isinstance(future, AioTask) or hasattr(future, "get_coro"):
            return self._named(future, lambda: self._task_label(future))
        return self._named(future, lambda: self._numbered("Future"))

    def _task_label(self, task: Any) -> str:
        """A task's label: the name it is given at creation (in deterministic mode, a default
        name is renumbered in order of appearance). A name an earlier task had already -- two
        tasks both named ``worker`` -- gets a number, ``worker#2``: one label, one task."""
        name = str(task.get_name())
        if _DEFAULT_TASK_NAME.match(name):
            name = _name_being_given(task) or name
        if self.deterministic and _DEFAULT_TASK_NAME.match(name):
            label = self._numbered("Task")
        else:
            label, n = name, 1
            while label in self._task_labels:
                n += 1
                label = f"{name}#{n}"
        self._task_labels.add(label)
        return label

    def fd(self, fd: int) -> str:
        if not self.deterministic:
            return f"fd {fd}"
        if fd not in self._fds:
            self._fds[fd] = f"fd #{len(self._fds) + 1}"
        return self._fds[fd]

    def clean(self, text: str) -> str:
        """Drop what changes from run to run: addresses, source locations; alias fds."""
        text = _SOURCE.sub("", text)
        text = _ADDRESS.sub("", text)
        if self.deterministic:
            text = _FD.sub(lambda m: "fd=" + self.fd(int(m.group(1))).removeprefix("fd "), text)
        return text

    def value(self, obj: Any, limit: int = 60) -> str:
        """Any value, in a few characters."""
        if obj is None or isinstance(obj, bool | int | float):
            return repr(obj)
        if isinstance(obj, Task):
            return self.task(obj)
        if asyncio.isfuture(obj):
            return self.future(obj)
        if inspect.iscoroutine(obj) or inspect.isgenerator(obj):
            return f"<coroutine {_qualname(obj)}>"
        if isinstance(obj, WaitQueue):
            return (
                "<wait queue>" if obj.owner is None else f"<wait queue of {self.value(obj.owner)}>"
            )
        if isinstance(obj, socket.socket):
            return f"<socket {self.fd(obj.fileno())}>" if obj.fileno() >= 0 else "<closed socket>"
        if isinstance(obj, tuple):
            inner = ", ".join(self.value(item, limit) for item in obj)
            return _clip(f"({inner}{',' if len(obj) == 1 else ''})", limit)
        if isinstance(obj, str | bytes | list | dict | BaseException):
            return _clip(self.clean(repr(obj)), limit)
        if type(obj).__module__.startswith("kernel.") or " at 0x" in object.__repr__(obj):
            # A primitive (its repr shows its changing state) or an object with no repr of
            # its own: a name that stays the same
            return self._named(obj, lambda: self._numbered(type(obj).__name__))
        return _clip(self.clean(repr(obj)), limit)

    def entry(self, obj: Any) -> str:
        """Something in the ready queue, sleeping queue or I/O table: a task or a callback."""
        if isinstance(obj, TracedCallback):
            obj = obj.__wrapped__
        if isinstance(obj, Task):
            return self.task(obj)
        if isinstance(obj, AioTask):
            return f"{self.future(obj)}.__step"
        if isinstance(obj, asyncio.Handle):
            call = self.call(obj)
            return f"TimerHandle({call})" if isinstance(obj, asyncio.TimerHandle) else call
        return type(obj).__name__

    def call(self, handle: asyncio.Handle) -> str:
        """What a Handle will call, as ``function(arguments)``."""
        fn: Any = getattr(handle, "_callback", None)
        args: tuple[Any, ...] = _args_of(handle)
        rendered = ", ".join(self.value(arg) for arg in args)
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, AioTask):
            return f"{self.future(owner)}.{_method_name(fn)}({rendered})"
        return f"{_function_name(fn)}({rendered})"


class _Strong:
    """Stands in for a weak reference to an object that cannot have one."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __call__(self) -> Any:
        return self.obj


# On Python 3.11, asyncio.create_task(coro, name=...) and TaskGroup.create_task(coro, name=...)
# make the task with its default name, then rename it: ``task = loop.create_task(coro)``, then
# ``task.set_name(name)``. The Task's __init__ queues its first step in between -- the first
# record that mentions the task -- so at that moment the name the program gave is only a
# local variable of the create_task that is running. (From 3.12 the name goes to the Task
# itself.)
_CREATE_TASK_CODES = {
    asyncio.tasks.create_task.__code__,
    asyncio.taskgroups.TaskGroup.create_task.__code__,
}


def _name_being_given(task: Any) -> str | None:
    """The name a ``create_task(coro, name=...)`` further up the stack is making ``task``
    with (see ``_CREATE_TASK_CODES``), or None."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code in _CREATE_TASK_CODES:
            local = frame.f_locals
            if local.get("coro") is task.get_coro() and local.get("name") is not None:
                return str(local["name"])
        frame = frame.f_back
    return None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _qualname(obj: Any) -> str:
    return str(getattr(obj, "__qualname__", None) or getattr(obj, "__name__", type(obj).__name__))


def _method_name(fn: Any) -> str:
    """``__wakeup`` rather than the mangled ``_Task__wakeup``."""
    name = str(getattr(fn, "__name__", "?"))
    return re.sub(r"^_[A-Za-z]+(__\w+)$", r"\1", name)


def _function_name(fn: Any) -> str:
    """``futures._set_result_unless_cancelled`` for asyncio's functions; qualname otherwise."""
    if fn is None:
        return "<cancelled>"
    name = getattr(fn, "__qualname__", None)
    if name is None:
        return type(fn).__name__
    module = str(getattr(fn, "__module__", "") or "")
    if module.startswith("asyncio."):
        return f"{module.rpartition('.')[2]}.{name}"
    return str(name)


def _args_of(handle: Any) -> tuple[Any, ...]:
    """The arguments a Handle will pass to its callback (none for other entries)."""
    args = getattr(handle, "_args", None)
    return tuple(args) if args else ()


def _direction(event: int) -> str:
    return "read" if event == EVENT_READ else "write"
