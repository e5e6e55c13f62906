"""kernel.aio: asyncio's Future, Task and event loop, on the kernel's three structures.

Run an unmodified asyncio program on the kernel::

    import kernel.aio
    kernel.aio.run(main())

or ``asyncio.Runner(loop_factory=kernel.aio.new_event_loop)``. How each asyncio concept
maps onto the kernel, and every deliberate difference, is written down at the top of
``kernel/aio/events.py`` and in ``docs/aio.md``.

Read first: ``kernel/aio/handles.py``, then ``futures.py``, ``tasks.py``, ``events.py``,
``runners.py``.
"""

from .events import EventLoop
from .futures import Future
from .handles import Handle, TimerHandle
from .runners import (
    EventLoopPolicy,
    coroutine,
    new_event_loop,
    run,
    run_asyncio,
    run_kernel,
    wrap_kernel_task,
)
from .tasks import Task

__all__ = [
    "EventLoop",
    "EventLoopPolicy",
    "Future",
    "Handle",
    "Task",
    "TimerHandle",
    "coroutine",
    "new_event_loop",
    "run",
    "run_asyncio",
    "run_kernel",
    "wrap_kernel_task",
]
