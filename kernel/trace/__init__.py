"""Teaching views: the kernel's scheduling decisions, recorded, narrated and compared.

``records.py``   ``Recorder``: a tracer that keeps every decision as plain data (JSON-ready),
                 with the ready queue, the sleeping queue and the I/O wait table after it.
``script.py``    ``trace(path)``: load a script and run its ``main()`` on the kernel, or on
                 ``kernel.aio``, recorded (on a ``VirtualClock`` in deterministic mode);
                 also ``python -m kernel run``.
``explain.py``   ``python -m kernel explain``: the records as a numbered narration.
``timeline.py``  ``python -m kernel timeline``: one row per task, each slice labelled with
                 the trap that ended it; as text, as a Chrome/Perfetto trace, and (with
                 ``timeline_html.py``) as a self-contained HTML/SVG page.
``compare.py``   ``python -m kernel compare``: the same asyncio program on real asyncio
                 (recorded by ``asyncio_recorder.py``, a subclass of asyncio's own loop on a
                 virtual clock) and on the adapter, aligned; the first divergence explained.

``kernel/__main__.py`` lists the subcommands. Nothing here is imported by the kernel itself:
a program that is not being traced never loads this package.

Read first: ``kernel/tracing.py`` (where the events come from), then ``records.py``.
"""

from .records import Labels, Record, Recorder
from .script import Traced, trace

__all__ = ["Labels", "Record", "Recorder", "Traced", "trace"]
