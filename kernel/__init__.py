"""kernel -- a generator-based async microkernel in the style of curio.

Coroutines yield small trap tuples (``kernel/traps.py``); a kernel with a ready queue, a
sleeping queue and an I/O wait table decides who runs next (``kernel/scheduler.py``).

Start reading at ``kernel/traps.py``, then ``kernel/scheduler.py``.
"""

from . import socket, subprocess
from .clients import open_connection, open_unix_connection
from .clock import Clock, MonotonicClock, VirtualClock
from .errors import (
    CancelledError,
    Deadlock,
    KernelError,
    QueueEmpty,
    QueueFull,
    ResourceBusy,
    TaskCancelled,
    TaskError,
    TaskTimeout,
    TimeoutCancellationError,
    UncaughtTimeoutError,
)
from .files import aopen
from .filestream import FileStream
from .generators import coroutine
from .processes import run_in_process
from .queues import LifoQueue, PriorityQueue, Queue
from .scheduler import Kernel, current_kernel, run
from .servers import (
    tcp_server,
    tcp_server_socket,
    unix_server,
    unix_server_socket,
)
from .signals import SignalEvent, SignalQueue
from .streams import IncompleteReadError, SocketStream
from .sync import BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore
from .task import Task, check_cancellation, current_task, disable_cancellation, spawn
from .taskgroup import TASK_STATUS_IGNORED, TaskGroup
from .threads import run_in_thread
from .time import (
    TimeoutBlock,
    clock,
    ignore_after,
    ignore_at,
    sleep,
    timeout_after,
    timeout_at,
)
from .tracing import Tracer
from .universal import UniversalEvent, UniversalQueue

__version__ = "0.1.0"

__all__ = [
    "TASK_STATUS_IGNORED",
    "BoundedSemaphore",
    "CancelledError",
    "Clock",
    "Condition",
    "Deadlock",
    "Event",
    "FileStream",
    "IncompleteReadError",
    "Kernel",
    "KernelError",
    "LifoQueue",
    "Lock",
    "MonotonicClock",
    "PriorityQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "RLock",
    "ResourceBusy",
    "Semaphore",
    "SignalEvent",
    "SignalQueue",
    "SocketStream",
    "Task",
    "TaskCancelled",
    "TaskError",
    "TaskGroup",
    "TaskTimeout",
    "TimeoutBlock",
    "TimeoutCancellationError",
    "Tracer",
    "UncaughtTimeoutError",
    "UniversalEvent",
    "UniversalQueue",
    "VirtualClock",
    "aopen",
    "check_cancellation",
    "clock",
    "coroutine",
    "current_kernel",
    "current_task",
    "disable_cancellation",
    "ignore_after",
    "ignore_at",
    "open_connection",
    "open_unix_connection",
    "run",
    "run_in_process",
    "run_in_thread",
    "sleep",
    "socket",
    "spawn",
    "subprocess",
    "tcp_server",
    "tcp_server_socket",
    "timeout_after",
    "timeout_at",
    "unix_server",
    "unix_server_socket",
]
