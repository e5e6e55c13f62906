"""Teaching views: the kernel's scheduling decisions, recorded, narrated and compared.

``records.py``   ``Recorder``: a tracer that keeps every decision as plain data (JSON-ready),
                 with the ready queue, the sleeping queue and the I/O wait table after it.
``script.py``    ``trace(path)``: load a script and run its ``main()`` on the kernel, or on
                 ``kernel.aio``, recorded (on a ``VirtualClock`` in deterministic mode);
                 also ``python -m kernel run``.
``explain.py``   ``python -m kernel explain``: the records as a numbered narration.

The other views (``timeline``, ``compare``) read the same records; ``kernel/__main__.py``
lists the subcommands. Nothing here is imported by the kernel itself: a program that is not
being traced never loads this package.

Read first: ``kernel/tracing.py`` (where the events come from), then ``records.py``.
"""

from .records import Labels, Record, Recorder
from .script import Traced, trace

__all__ = ["Labels", "Record", "Recorder", "Traced", "trace"]
