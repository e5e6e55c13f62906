"""Teaching views: the kernel's scheduling decisions, recorded, narrated and compared.

Recording
``records.py``           ``Recorder``: a tracer that keeps every decision as plain data
                         (JSON-ready), with the ready queue, the sleeping queue and the I/O wait
                         table after it; the kernel's events are turned into records here.
``labels.py``            ``Labels``: the short, stable names records use for tasks, futures,
                         callbacks and file descriptors.
``records_aio.py``       the asyncio adapter's events as records, and what a queued asyncio
                         callback is (its kind, its task, its outcome), for both recorders.
``script.py``            ``trace(path)``: load a script and run its ``main()`` on the kernel, or
                         on ``kernel.aio``, recorded (on a ``VirtualClock`` in deterministic
                         mode); also ``python -m kernel run``.

Narrating
``explain.py``           ``python -m kernel explain``: the records as a numbered narration.
``narrator.py``          the walk that turns records into steps, and the words views share.
``narrator_kernel.py``   the loop, tasks and traps, told in the kernel's words.
``narrator_asyncio.py``  the adapter's callbacks, told in asyncio's words.

Drawing
``timeline.py``          ``python -m kernel timeline``: one row per task, each slice labelled
                         with the trap that ended it.
``timeline_model.py``    ``build``: the records cut into slices and columns (``Timeline``).
``timeline_text.py``     the timeline as text, on the ticks axis or the time axis.
``timeline_chrome.py``   the timeline as a Chrome/Perfetto trace.
``timeline_html.py``     the timeline as a self-contained HTML/SVG page.

Comparing
``compare.py``           ``python -m kernel compare``: the same asyncio program on real asyncio
                         and on the adapter, aligned; the first divergence explained.
``compare_align.py``     each run's schedule read from its records; the alignment; the
                         explanations of known differences.
``compare_report.py``    the comparison written out, as text or JSON.
``asyncio_recorder.py``  ``RecordingEventLoop``: a subclass of asyncio's own loop, on a virtual
                         clock if asked, that records what it schedules in the adapter's words.
``asyncio_script.py``    ``trace(path)`` for real asyncio: a script run on that loop, recorded.

``kernel/__main__.py`` lists the subcommands. Nothing here is imported by the kernel itself:
a program that is not being traced never loads this package.

Read first: ``kernel/tracing.py`` (where the events come from), then ``records.py``.
"""

from .labels import Labels
from .records import Record, Recorder
from .script import Traced, trace

__all__ = ["Labels", "Record", "Recorder", "Traced", "trace"]
