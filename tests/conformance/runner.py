"""Run CPython's own asyncio test suite (``test.test_asyncio``) against a loop factory.

The measure of the asyncio adapter is how much of CPython's suite passes on it. This module
runs a chosen set of ``test.test_asyncio`` modules with every event loop the tests ask asyncio
for coming from one *loop factory* (by default ``kernel.aio:new_event_loop``), and reports,
per module, how many tests really ran on that factory's loops and how they did::

    python -m tests.conformance.runner                       # every target module
    python -m tests.conformance.runner --fast                # the CI subset
    python -m tests.conformance.runner --loop-factory asyncio:SelectorEventLoop --modules test_locks

How the factory reaches the tests
    Tests get their loop from ``asyncio.new_event_loop()``, from ``asyncio.run`` /
    ``asyncio.Runner`` or ``unittest.IsolatedAsyncioTestCase`` (which, on 3.11 as on 3.13,
    ask the event loop policy when they are given no ``loop_factory``), or from a
    loop-creating hook (``create_event_loop``, ``new_loop``) of a mixin. All but the hooks go
    through the policy, so before *each* test a policy whose ``new_event_loop`` calls the
    factory is installed again (the modules reset the policy in ``tearDownModule``, and some
    tests in ``tearDown``). The hooks are bound to the factory by :data:`BINDINGS`: a subclass
    of the module's concrete selector-loop class, with the hook calling the factory, is
    generated, and the concrete classes it replaces (the same tests on CPython's selector
    loops) are not run.

What counts as "ran on the adapter"
    Every loop the factory builds is watched: its ``run_forever`` and ``run_until_complete``
    are wrapped on the instance (or, for a loop without a ``__dict__``, through a subclass
    swapped in at run time). A test *ran on the adapter* if one of those was entered while it
    ran; it is *idle* if it built a factory loop but never ran one (it still exercised the
    adapter's methods, so its failures count); it brought its *own loop* if it built some
    other asyncio loop (``test_utils.TestLoop`` through ``self.new_test_loop()``, an explicit
    ``asyncio.SelectorEventLoop()``, ...), seen by counting ``BaseEventLoop.__init__`` calls;
    otherwise it used *no loop*. Only failures of tests that touched the factory's loops are
    held against it; the others are reported apart.

Processes and timeouts
    A young loop hangs tests rather than failing them, so each module runs in a child process
    that streams one JSON line per event to the parent through a pipe. Inside the child a
    watchdog thread interrupts a test that outlives ``--timeout`` (a signal to the main thread
    makes it raise :class:`TestTimeout`, a ``BaseException`` so that asyncio's ``except
    Exception`` blocks do not swallow it); if the test is still running after a grace period,
    the child reports it as hung and exits, and the parent starts a new child at the next
    test. ``faulthandler`` backs this up when the interpreter itself is stuck. The parent also
    kills a module that outlives ``--module-timeout``.

Expected failures
    ``EXPECTED_FAILURES`` (next to this file) lists the tests that check CPython internals,
    one ``test_module.Class.test_name  # reason`` per line. A listed test that fails is an
    expected failure; one that passes is reported as an unexpected pass so that the entry can
    go. Anything else that fails on the adapter makes the exit status non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.base_events
import collections
import contextlib
import dataclasses
import faulthandler
import functools
import importlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
import unittest
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, cast

if TYPE_CHECKING:
    from _typeshed import OptExcInfo

PACKAGE: Final = "test.test_asyncio"
DEFAULT_FACTORY: Final = "kernel.aio:new_event_loop"

#: The modules of issue 5, plus test_sendfile whose mixins are bound like test_events'.
TARGET_MODULES: Final = (
    "test_futures",
    "test_futures2",
    "test_tasks",
    "test_locks",
    "test_queues",
    "test_timeouts",
    "test_taskgroups",
    "test_waitfor",
    "test_context",
    "test_runners",
    "test_events",
    "test_sock_lowlevel",
    "test_streams",
    "test_server",
    "test_threads",
    "test_pep492",
    "test_sendfile",
)

#: The CI subset: futures, locks, queues, timeouts, task groups, wait_for, contexts,
#: asyncio.run and Runner, to_thread. It takes seconds, and nearly all of its tests run on the
#: factory's loop (on the stand-in: 231 of 232 on Python 3.11, 267 of 269 on 3.13).
FAST_MODULES: Final = (
    "test_futures2",
    "test_locks",
    "test_queues",
    "test_timeouts",
    "test_taskgroups",
    "test_waitfor",
    "test_context",
    "test_runners",
    "test_threads",
)

RUNNER_PATH: Final = Path(__file__).resolve()
REPO_ROOT: Final = RUNNER_PATH.parents[2]
EXPECTED_FAILURES_PATH: Final = RUNNER_PATH.with_name("EXPECTED_FAILURES")

#: The methods wrapped on every factory loop to see it run. ``run_until_complete`` is wrapped
#: too because a loop need not implement it on top of ``run_forever``.
RUN_METHODS: Final = ("run_forever", "run_until_complete")

#: Sent by the watchdog thread to the main thread of the child to interrupt a test. Not
#: SIGALRM: test_events uses it with its own handlers and timers.
INTERRUPT_SIGNAL: Final = signal.SIGUSR2

#: Seconds faulthandler waits past the watchdog's own hard limit before it kills the child:
#: the backstop for an interpreter too stuck to run the watchdog thread.
BACKSTOP_SECONDS: Final = 5.0

Outcome = Literal["pass", "fail", "error", "timeout", "skip"]
Where = Literal["adapter", "idle", "own", "none", "unknown"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
ErrorInfo = (
    tuple[type[BaseException], BaseException, types.TracebackType | None] | tuple[None, None, None]
)


# --------------------------------------------------------------------------------------------
# EXPECTED_FAILURES


def parse_expected_failures(
    text: str, source: str = "EXPECTED_FAILURES", python: str | None = None
) -> dict[str, str]:
    """Parse the expected-failures list into ``{test id: reason}``.

    One entry a line, ``test_module.Class.test_name  # reason``; blank lines and lines that
    start with ``#`` are comments. The reason is compulsory: an entry is a claim that the test
    checks a CPython internal, and the claim has to be written down. An entry may name the
    Pythons it holds for, ``test_module.Class.test_name @3.12  # reason`` (several:
    ``@3.11,3.12``), for a test whose CPython internals changed between versions; with
    ``python`` ("3.12") only the entries for that Python are returned. Malformed lines and
    duplicates raise ``ValueError`` rather than being skipped, so a typo cannot silently turn
    a listed test into an unexpected failure (or hide one).
    """
    entries: dict[str, str] = {}
    seen: set[str] = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, hash_mark, reason = (part.strip() for part in line.partition("#"))
        where = f"{source}:{lineno}"
        if not hash_mark or not reason:
            raise ValueError(f"{where}: no reason; write 'test_module.Class.test_name  # reason'")
        test_id, *qualifiers = head.split()
        if len(qualifiers) > 1 or len(test_id.split(".")) < 3:
            raise ValueError(f"{where}: {head!r} is not 'test_module.Class.test_name [@3.X]'")
        versions = None
        if qualifiers:
            versions = qualifiers[0].removeprefix("@").split(",")
            if not qualifiers[0].startswith("@") or not all(
                re.fullmatch(r"3\.\d+", v) for v in versions
            ):
                raise ValueError(f"{where}: {qualifiers[0]!r} is not '@3.X' or '@3.X,3.Y'")
        if test_id in seen:
            raise ValueError(f"{where}: {test_id} is listed twice")
        seen.add(test_id)
        if python is None or versions is None or python in versions:
            entries[test_id] = reason
    return entries


def load_expected_failures(
    path: Path = EXPECTED_FAILURES_PATH, python: str | None = None
) -> dict[str, str]:
    """Read and parse an expected-failures file (see :func:`parse_expected_failures`)."""
    return parse_expected_failures(path.read_text(encoding="utf-8"), path.name, python)


def python_version(python: str) -> str:
    """``"3.12"`` for the interpreter at ``python``."""
    out = subprocess.check_output(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], text=True
    )
    return out.strip()


# --------------------------------------------------------------------------------------------
# Names


def qualified_module(name: str) -> str:
    """``test_tasks`` -> ``test.test_asyncio.test_tasks``; a dotted name is used as given."""
    return name if "." in name else f"{PACKAGE}.{name}"


def short_id(name: str) -> str:
    """Drop the ``test.test_asyncio.`` prefix from a module name, test id or description."""
    return name.replace(f"{PACKAGE}.", "")


# --------------------------------------------------------------------------------------------
# Child side: the loop factory, watched


def load_factory(spec: str) -> LoopFactory:
    """Import ``module:callable`` (the callable may be dotted: ``module:Class.method``)."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"loop factory {spec!r} is not 'module:callable'")
    target: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"loop factory {spec!r} is not callable")
    return cast(LoopFactory, target)


@dataclasses.dataclass
class LoopUse:
    """What one test did with event loops, filled in while it runs."""

    created: int = 0
    """Loops the factory built during the test."""
    ran: bool = False
    """Whether a factory loop's run method was entered during the test."""
    others: int = 0
    """Other asyncio loops (``BaseEventLoop`` subclasses) built during the test."""

    def where(self) -> Where:
        """Classify the test: ran on the factory's loop, built one only, own loop, no loop."""
        if self.ran:
            return "adapter"
        if self.created:
            return "idle"
        if self.others:
            return "own"
        return "none"


class LoopTracker:
    """Wraps the loop factory so that the loops it builds, and their runs, are seen.

    ``current`` is the :class:`LoopUse` of the test being run (``None`` between tests); the
    wrapped factory and the wrapped run methods write into it. Loops built or run from other
    threads are attributed to the current test too: the suite runs one test at a time.
    """

    def __init__(self, factory: LoopFactory) -> None:
        self._factory = factory
        self._building = threading.local()
        self._watched_classes: dict[type, type] = {}
        self.current: LoopUse | None = None
        self.unwatchable: set[str] = set()
        """Loop types whose runs cannot be seen: building one counts as running it."""

    def new_loop(self) -> asyncio.AbstractEventLoop:
        """The factory as the tests get it: build a loop, watch it, count it."""
        depth: int = getattr(self._building, "depth", 0)
        self._building.depth = depth + 1
        try:
            loop = self._factory()
        finally:
            self._building.depth = depth
        if self.current is not None:
            self.current.created += 1
        self._watch(loop)
        return loop

    def install(self) -> None:
        """Count every other asyncio loop built from now on (``BaseEventLoop.__init__``).

        ``test_utils.TestLoop``, ``asyncio.SelectorEventLoop`` and the mocked ``BaseEventLoop``
        of some tests all pass through it. A loop the factory is building is not counted, so a
        factory that returns a ``BaseEventLoop`` subclass (the stand-in) still classifies right.
        """
        original = asyncio.base_events.BaseEventLoop.__init__
        tracker = self

        def counting_init(loop: Any) -> None:
            if tracker.current is not None and not getattr(tracker._building, "depth", 0):
                tracker.current.others += 1
            original(loop)

        # Replaced for the whole child process, on purpose; setattr because type checkers
        # (rightly) refuse an assignment to a method.
        setattr(asyncio.base_events.BaseEventLoop, "__init__", counting_init)  # noqa: B010

    def _note_run(self) -> None:
        if self.current is not None:
            self.current.ran = True

    def _instrument(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def entered(*args: Any, **kwargs: Any) -> Any:
            self._note_run()
            return method(*args, **kwargs)

        return entered

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wrap the loop's run methods: on the instance if it has a ``__dict__``, else by
        swapping in a same-named subclass that adds no slots (so the layout is unchanged)."""
        try:
            namespace = vars(loop)
        except TypeError:
            pass
        else:
            for name in RUN_METHODS:
                namespace[name] = self._instrument(getattr(loop, name))
            return
        try:
            loop.__class__ = self._watched_class(type(loop))
        except TypeError:
            self.unwatchable.add(f"{type(loop).__module__}.{type(loop).__qualname__}")
            self._note_run()

    def _watched_class(self, cls: type) -> type:
        watched = self._watched_classes.get(cls)
        if watched is None:
            namespace: dict[str, object] = {
                "__slots__": (),
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
            }
            for name in RUN_METHODS:
                namespace[name] = self._instrument(getattr(cls, name))
            watched = self._watched_classes[cls] = type(cls.__name__, (cls,), namespace)
        return watched


class FactoryPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, except that new loops come from the (watched) factory.

    A subclass rather than a bare ``AbstractEventLoopPolicy`` so that everything else the
    tests ask of the policy (child watchers on 3.11-3.13, ``get_event_loop`` in the main
    thread, isinstance checks against ``DefaultEventLoopPolicy``) behaves as by default.
    """

    def __init__(self, factory: LoopFactory) -> None:
        super().__init__()
        self._conformance_factory = factory

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return self._conformance_factory()


# --------------------------------------------------------------------------------------------
# Child side: binding the loop-hook mixins to the factory


@dataclasses.dataclass(frozen=True)
class Binding:
    """A concrete test class whose loop-creating hook is re-pointed at the factory."""

    base: str
    """The module's concrete class to subclass (its extra tests and skips come along)."""
    hook: str
    """The method the tests call to get their loop."""
    name: str
    """Name of the generated class; test ids read ``test_module.<name>.test_x``."""
    replaces: str
    """The mixin whose concrete classes (CPython's selector variants) are not run."""
    probe_shutdown: bool = False
    """test_runners' hook marks ``loop.shutdown_ag_run`` when ``shutdown_asyncgens`` runs,
    and its ``tearDown`` checks the mark: keep the probe, around the loop's real method."""


BINDINGS: Final[Mapping[str, tuple[Binding, ...]]] = {
    "test_events": (
        Binding(
            base="SelectEventLoopTests",
            hook="create_event_loop",
            name="AdapterEventLoopTests",
            replaces="EventLoopTestsMixin",
        ),
    ),
    "test_sock_lowlevel": (
        Binding(
            base="SelectEventLoopTests",
            hook="create_event_loop",
            name="AdapterSockTests",
            replaces="BaseSockTestsMixin",
        ),
    ),
    "test_sendfile": (
        Binding(
            base="SelectEventLoopTests",
            hook="create_event_loop",
            name="AdapterSendfileTests",
            replaces="SendfileBase",
        ),
    ),
    "test_server": (
        Binding(
            base="SelectorStartServerTests",
            hook="new_loop",
            name="AdapterStartServerTests",
            replaces="BaseStartServer",
        ),
    ),
    "test_runners": (
        Binding(
            base="RunTests",
            hook="new_loop",
            name="AdapterRunTests",
            replaces="BaseTest",
            probe_shutdown=True,
        ),
        Binding(
            base="RunnerTests",
            hook="new_loop",
            name="AdapterRunnerTests",
            replaces="BaseTest",
            probe_shutdown=True,
        ),
    ),
}


def _hook(factory: LoopFactory, probe_shutdown: bool) -> Callable[[object], object]:
    def plain(self: object) -> object:
        return factory()

    def probed(self: object) -> object:
        loop = factory()
        real_shutdown = loop.shutdown_asyncgens
        state = vars(loop)

        async def shutdown_asyncgens() -> None:
            state["shutdown_ag_run"] = True
            await real_shutdown()

        state["shutdown_ag_run"] = False
        state["shutdown_asyncgens"] = shutdown_asyncgens
        return loop

    return probed if probe_shutdown else plain


@dataclasses.dataclass
class Collected:
    """The tests a child runs, in order, and what binding changed."""

    tests: list[unittest.TestCase]
    bound: list[str]
    replaced: int
    notes: list[str]


def _flatten(suite: unittest.TestSuite | unittest.TestCase) -> Iterator[unittest.TestCase]:
    if isinstance(suite, unittest.TestSuite):
        for item in suite:
            yield from _flatten(item)
    else:
        yield suite


def collect_tests(
    module: types.ModuleType, factory: LoopFactory, patterns: Sequence[str] = ()
) -> Collected:
    """Load the module's tests, with its loop-hook classes bound to ``factory``.

    The generated classes keep the module's name, so ``setUpModule``/``tearDownModule`` and
    test ids work as for the module's own classes; their tests come after the module's.
    """
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = [p if "*" in p else f"*{p}*" for p in patterns]
    generated: list[type[unittest.TestCase]] = []
    roots: list[type] = []
    notes: list[str] = []
    for binding in BINDINGS.get(short_id(module.__name__), ()):
        base = getattr(module, binding.base, None)
        root = getattr(module, binding.replaces, None)
        if not (isinstance(base, type) and issubclass(base, unittest.TestCase)):
            notes.append(f"{binding.name} not bound: no class {binding.base}")
            continue
        namespace = {
            binding.hook: _hook(factory, binding.probe_shutdown),
            "__module__": base.__module__,
            "__qualname__": binding.name,
            "__doc__": f"{base.__name__}, with {binding.hook}() returning the factory's loop.",
        }
        generated.append(type(binding.name, (base,), namespace))
        if isinstance(root, type) and root not in roots:
            roots.append(root)
    tests: list[unittest.TestCase] = []
    replaced = 0
    for test in _flatten(loader.loadTestsFromModule(module)):
        if isinstance(test, tuple(roots)):
            replaced += 1
        else:
            tests.append(test)
    for cls in generated:
        tests.extend(_flatten(loader.loadTestsFromTestCase(cls)))
    return Collected(tests, [cls.__name__ for cls in generated], replaced, notes)


# --------------------------------------------------------------------------------------------
# Child side: per-test timeout and result streaming


class TestTimeout(BaseException):
    """Raised in a test that outlived its time.

    A ``BaseException`` so that the ``except Exception`` of a task step or a coroutine under
    test does not catch it; unittest records it as the test's error and goes on.
    """


class EventPipe:
    """One JSON object per line to the parent; safe to call from the watchdog thread."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, event: Mapping[str, object]) -> None:
        data = memoryview((json.dumps(event) + "\n").encode())
        with self._lock:
            while data:
                data = data[os.write(self._fd, data) :]


class Watchdog:
    """Interrupts a test that outlives ``timeout``; gives up on it ``grace`` seconds later.

    The thread lives as long as the child, so the thread counts that CPython's test helpers
    compare before and after each test do not change. ``on_hang`` is called from the watchdog
    thread when a test ignored its interrupt; it must end the process.
    """

    def __init__(self, timeout: float, grace: float, on_hang: Callable[[], None]) -> None:
        self.timeout = timeout
        self.grace = grace
        self._on_hang = on_hang
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._interrupted = False
        self._main = threading.main_thread().ident or 0
        threading.Thread(target=self._watch, name="conformance-watchdog", daemon=True).start()

    @property
    def interrupted(self) -> bool:
        """Whether the running test has been sent its interrupt."""
        return self._interrupted

    def arm(self) -> None:
        with self._cond:
            self._deadline = time.monotonic() + self.timeout
            self._interrupted = False
            self._cond.notify()
        faulthandler.dump_traceback_later(self.timeout + self.grace + BACKSTOP_SECONDS, exit=True)

    def disarm(self) -> None:
        faulthandler.cancel_dump_traceback_later()
        with self._cond:
            self._deadline = None
            self._interrupted = False
            self._cond.notify()

    def _watch(self) -> None:
        with self._cond:
            while True:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                elif not self._interrupted:
                    self._interrupted = True
                    self._deadline = time.monotonic() + self.grace
                    signal.pthread_kill(self._main, INTERRUPT_SIGNAL)
                else:
                    self._on_hang()


@dataclasses.dataclass(frozen=True)
class Finding:
    """One outcome a test reported: a test may report several (subtests, a failing tearDown)."""

    outcome: Outcome
    summary: str = ""
    """One line: the exception (``AssertionError: 1 != 2``) or the skip reason."""
    detail: str = ""
    """The traceback, cut to its last 4000 characters."""

    @classmethod
    def from_error(cls, outcome: Outcome, err: ErrorInfo, note: str = "") -> Finding:
        kind, value, tb = err
        if kind is None:
            return cls(outcome, note)
        lines = "".join(traceback.format_exception_only(kind, value)).strip().splitlines()
        summary = f"{note}{lines[0] if lines else kind.__name__}"
        text = "".join(traceback.format_exception(kind, value, tb))
        return cls(outcome, summary, text if len(text) <= 4000 else "...\n" + text[-4000:])


#: When one test reports several outcomes (subtests, tearDown after a failure), the worst wins.
_SEVERITY: Final[Mapping[Outcome, int]] = {
    "skip": 0,
    "pass": 1,
    "fail": 2,
    "error": 3,
    "timeout": 4,
}


class StreamingResult(unittest.TestResult):
    """A TestResult that classifies each test and sends its record to the parent.

    ``startTest``/``stopTest`` bracket each test (``TestCase.run`` calls them around
    ``setUp``, the test and ``tearDown``), so they are where the policy is installed again,
    the loop bookkeeping is reset and the watchdog armed.
    """

    def __init__(self, pipe: EventPipe, tracker: LoopTracker, timeout: float, grace: float):
        super().__init__()
        self._pipe = pipe
        self._tracker = tracker
        self._watchdog = Watchdog(timeout, grace, self._hung)
        self._current: unittest.TestCase | None = None
        self._findings: list[Finding] = []
        self._started = 0.0

    def _interrupt(self, signum: int, frame: types.FrameType | None) -> None:
        if self._watchdog.interrupted:
            raise TestTimeout(f"still running after {self._watchdog.timeout:g}s (per-test timeout)")

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        asyncio.set_event_loop_policy(FactoryPolicy(self._tracker.new_loop))
        signal.signal(INTERRUPT_SIGNAL, self._interrupt)
        self._current = test
        self._findings = []
        self._tracker.current = LoopUse()
        self._pipe.send({"type": "start", "id": short_id(test.id())})
        self._started = time.monotonic()
        self._watchdog.arm()

    def stopTest(self, test: unittest.TestCase) -> None:
        self._watchdog.disarm()
        self._send_record(test)
        self._current = None
        self._tracker.current = None
        super().stopTest(test)

    def _send_record(self, test: unittest.TestCase) -> None:
        worst = max(self._findings, key=lambda f: _SEVERITY[f.outcome], default=Finding("pass"))
        self._send(test.id(), worst, self._where())

    def _where(self) -> Where:
        return (self._tracker.current or LoopUse()).where()

    def _send(self, test_id: str, finding: Finding, where: Where) -> None:
        seconds = time.monotonic() - self._started if self._current is not None else 0.0
        self._pipe.send(
            {
                "type": "result",
                "id": short_id(test_id),
                "outcome": finding.outcome,
                "where": where,
                "summary": short_id(finding.summary),
                "detail": finding.detail,
                "seconds": round(seconds, 3),
            }
        )

    def _hung(self) -> None:
        """Called by the watchdog: the test ignored its interrupt. Report it and exit."""
        test = self._current
        if test is not None:
            limit = self._watchdog.timeout + self._watchdog.grace
            why = f"hung: ignored its interrupt, still running {limit:g}s after it started"
            self._send(test.id(), Finding("timeout", why, why), self._where())
        self._pipe.send({"type": "abandon"})
        faulthandler.dump_traceback(all_threads=True)
        sys.stderr.flush()
        os._exit(3)

    def record_escape(self, exc: BaseException) -> None:
        """A BaseException left ``TestCase.run`` (KeyboardInterrupt does): report the test."""
        if self._current is not None:
            err = (type(exc), exc, exc.__traceback__)
            self._findings.append(Finding.from_error("error", err, "escaped the test: "))
            self._watchdog.disarm()
            self._send_record(self._current)
            self._pipe.send({"type": "abandon"})

    def _add(self, test: object, finding: Finding) -> None:
        owner = getattr(test, "test_case", test)  # a subtest reports for its test
        if owner is self._current:
            self._findings.append(finding)
        else:
            # setUpModule/setUpClass (and their tearDowns) report through an _ErrorHolder,
            # outside any startTest/stopTest; their id is their description.
            self._send(str(test), finding, "none")

    def _add_error(self, test: object, err: OptExcInfo, failure: bool) -> None:
        kind = err[0]
        if kind is not None and issubclass(kind, TestTimeout):
            self._add(test, Finding.from_error("timeout", err))
        else:
            self._add(test, Finding.from_error("fail" if failure else "error", err))

    def addSuccess(self, test: unittest.TestCase) -> None:
        self._add(test, Finding("pass"))

    def addError(self, test: unittest.TestCase, err: OptExcInfo) -> None:
        self._add_error(test, err, failure=False)

    def addFailure(self, test: unittest.TestCase, err: OptExcInfo) -> None:
        self._add_error(test, err, failure=True)

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        self._add(test, Finding("skip", reason or "(no reason given)"))

    def addExpectedFailure(self, test: unittest.TestCase, err: OptExcInfo) -> None:
        self._add(test, Finding("pass"))  # failed, as its @expectedFailure says it does

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        self._add(test, Finding("fail", "unexpected success of an @expectedFailure test"))

    def addSubTest(
        self, test: unittest.TestCase, subtest: unittest.TestCase, err: OptExcInfo | None
    ) -> None:
        if err is not None and err[0] is not None:
            self._add_error(test, err, failure=issubclass(err[0], test.failureException))


def child_main(args: argparse.Namespace) -> int:
    """Run one module's tests (from ``--start-at``) and stream the events to ``--event-fd``."""
    os.set_inheritable(args.event_fd, False)  # the tests' own subprocesses must not hold it
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # Started in the background by a shell (`make conformance &`), we inherit Ctrl-C
        # ignored; then the tests that press it (_thread.interrupt_main) would wait forever,
        # on asyncio's own loop as on ours. They are written for a terminal: give them one.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    pipe = EventPipe(args.event_fd)
    try:
        factory = load_factory(args.loop_factory)
    except Exception as exc:
        pipe.send({"type": "fatal", "detail": f"cannot load {args.loop_factory}: {exc!r}"})
        return 2
    name = qualified_module(args.child)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            pipe.send(
                {
                    "type": "missing",
                    "reason": f"no module {name} on Python {sys.version.split()[0]}",
                }
            )
            return 0
        raise
    except unittest.SkipTest as exc:
        pipe.send({"type": "missing", "reason": f"module skipped: {exc}"})
        return 0

    tracker = LoopTracker(factory)
    tracker.install()
    collected = collect_tests(module, tracker.new_loop, args.k or ())
    pipe.send(
        {
            "type": "plan",
            "python": sys.version.split()[0],
            "tests": [short_id(test.id()) for test in collected.tests],
            "bound": collected.bound,
            "replaced": collected.replaced,
            "notes": collected.notes,
        }
    )
    grace = args.grace if args.grace is not None else default_grace(args.timeout)
    result = StreamingResult(pipe, tracker, args.timeout, grace)
    suite = unittest.TestSuite(collected.tests[args.start_at :])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # as unittest.main and regrtest run them
            suite.run(result)
    except BaseException as exc:
        result.record_escape(exc)
        raise
    if tracker.unwatchable:
        pipe.send({"type": "note", "text": f"runs not seen on {sorted(tracker.unwatchable)}"})
    pipe.send({"type": "done"})
    sys.stdout.flush()
    sys.stderr.flush()
    # Leaked non-daemon threads must not keep a finished child alive: the per-test thread
    # checks of CPython's helpers have already reported them.
    os._exit(0)


def default_grace(timeout: float) -> float:
    """How long an interrupted test gets to wind down before its process is ended."""
    return max(2.0, min(10.0, timeout / 2))


# --------------------------------------------------------------------------------------------
# Parent side: running modules


@dataclasses.dataclass(frozen=True)
class TestRecord:
    """How one test did, and on which loop."""

    test_id: str
    outcome: Outcome
    where: Where
    summary: str = ""
    """One line: the exception, the skip reason, or why the runner lost the test."""
    detail: str = ""
    """The traceback (or the end of the child's output), for ``--verbose``."""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.outcome in ("fail", "error", "timeout")

    @property
    def touched_factory(self) -> bool:
        """Whether the test used the factory's loop (or died before it could be told)."""
        return self.where in ("adapter", "idle", "unknown")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run the modules (the command-line flags, for the Python API)."""

    factory: str = DEFAULT_FACTORY
    timeout: float = 20.0
    """Per test, inside the child."""
    grace: float | None = None
    """After the interrupt, before the child gives up on the test (default from timeout)."""
    module_timeout: float = 600.0
    """Wall clock per module, enforced by the parent."""
    patterns: tuple[str, ...] = ()
    """unittest ``-k`` patterns."""
    python: str = sys.executable
    """Interpreter for the children: run 3.13's suite from a 3.11 parent, say."""
    search_path: tuple[str, ...] = ()
    """Extra import paths for the children (before the repository root and the cwd)."""
    log_dir: Path | None = None
    """Keep each module's child output here (``<module>.log``); a temporary folder if None."""


@dataclasses.dataclass
class ModuleRun:
    """Everything the children of one module reported."""

    module: str
    records: list[TestRecord] = dataclasses.field(default_factory=list)
    planned: list[str] = dataclasses.field(default_factory=list)
    bound: list[str] = dataclasses.field(default_factory=list)
    replaced: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)
    python: str = ""
    missing: str | None = None
    fatal: str | None = None
    seconds: float = 0.0


@dataclasses.dataclass
class _ChildExit:
    """What the parent saw of one child process."""

    finished: bool = False
    """It reported all its tests ("done")."""
    abandoned: bool = False
    """It gave up on a hung test, reported it, and exited."""
    in_progress: str | None = None
    """The test it started and never reported."""
    deadline_hit: bool = False
    returncode: int | None = None
    started: list[str] = dataclasses.field(default_factory=list)


class _ModuleDeadline(Exception):
    pass


def _read_events(
    fd: int, proc: subprocess.Popen[bytes], deadline: float
) -> Iterator[dict[str, Any]]:
    """Yield the child's JSON lines until it is done or gone; raise at the deadline.

    "Gone" is not only end-of-file: a test that forks (multiprocessing's default start method
    on Linux) hands the pipe to a grandchild, which may outlive the child and keep the pipe
    open. So the child process itself is polled too.
    """
    buffer = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _ModuleDeadline
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not ready:
            if _has_exited(proc):
                return
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                event: dict[str, Any] = json.loads(line)
                yield event
                if event["type"] == "done":
                    return


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the child has exited, without reaping it: while it is an unreaped zombie its
    pid, and so its process group id, cannot be reused by an unrelated process."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _end_group(proc: subprocess.Popen[bytes], wait: float) -> None:
    """Give the child ``wait`` seconds to exit, then end it and whatever its tests left
    running (it leads its own session, so its process group is itself and its descendants),
    and only then reap it."""
    give_up = time.monotonic() + wait
    while not _has_exited(proc) and time.monotonic() < give_up:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(path: Path, size: int = 3000) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - size))
            return log.read().decode(errors="replace")
    except OSError:
        return ""


def _child_env(options: RunOptions) -> dict[str, str]:
    env = dict(os.environ)
    paths = [*options.search_path, str(REPO_ROOT), os.getcwd()]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _run_child(
    module: str,
    options: RunOptions,
    start_at: int,
    deadline: float,
    run: ModuleRun,
    workdir: Path,
    log_path: Path,
) -> _ChildExit:
    """Run one child from test ``start_at`` and fold its events into ``run``."""
    read_fd, write_fd = os.pipe()
    command = [options.python, str(RUNNER_PATH), "--child", module]
    command += ["--loop-factory", options.factory, "--timeout", str(options.timeout)]
    command += ["--event-fd", str(write_fd), "--start-at", str(start_at)]
    if options.grace is not None:
        command += ["--grace", str(options.grace)]
    for pattern in options.patterns:
        command += ["-k", pattern]
    try:
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                cwd=workdir,  # the tests write their scratch files into the cwd
                env=_child_env(options),
                start_new_session=True,
            )
    finally:
        os.close(write_fd)
    child = _ChildExit()
    try:
        for event in _read_events(read_fd, proc, deadline):
            _fold_event(event, run, child)
    except _ModuleDeadline:
        child.deadline_hit = True
    finally:
        os.close(read_fd)
        _end_group(proc, wait=0 if child.deadline_hit else 10)
    child.returncode = proc.returncode
    return child


def _fold_event(event: Mapping[str, Any], run: ModuleRun, child: _ChildExit) -> None:
    kind = event["type"]
    if kind == "plan":
        if not run.planned:  # a restarted child plans the same tests again
            run.planned = list(event["tests"])
            run.bound = list(event["bound"])
            run.replaced = int(event["replaced"])
            run.notes.extend(event["notes"])
            run.python = str(event["python"])
    elif kind == "start":
        child.in_progress = str(event["id"])
        child.started.append(child.in_progress)
    elif kind == "result":
        record = TestRecord(
            test_id=str(event["id"]),
            outcome=event["outcome"],
            where=event["where"],
            summary=str(event["summary"]),
            detail=str(event["detail"]),
            seconds=float(event["seconds"]),
        )
        run.records.append(record)
        if record.test_id == child.in_progress:
            child.in_progress = None
    elif kind == "note":
        run.notes.append(str(event["text"]))
    elif kind == "missing":
        run.missing = str(event["reason"])
    elif kind == "fatal":
        run.fatal = str(event["detail"])
    elif kind == "abandon":
        child.abandoned = True
    elif kind == "done":
        child.finished = True


def run_module(module: str, options: RunOptions) -> ModuleRun:
    """Run one module in child processes, restarting after a test that hung its child.

    A test that never reported (its child died or the module ran out of time) is recorded as
    a timeout; a child that died between tests is recorded as an error of the module. Both
    count against the factory: nothing the runner cannot account for is let pass.
    """
    run = ModuleRun(short_id(qualified_module(module)))
    started = time.monotonic()
    deadline = started + options.module_timeout
    restarts = 0
    with tempfile.TemporaryDirectory(prefix=f"conformance-{run.module}-") as scratch:
        log_dir = options.log_dir or Path(scratch)
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{run.module}.log"
        log_path.unlink(missing_ok=True)
        workdir = Path(scratch) / "cwd"
        workdir.mkdir()
        start_at = 0
        while True:
            child = _run_child(module, options, start_at, deadline, run, workdir, log_path)
            if child.finished or run.missing or run.fatal:
                break
            if not run.planned:
                run.fatal = f"child exited ({child.returncode}) before listing its tests; "
                run.fatal += f"end of its output:\n{_tail(log_path)}"
                break
            if child.deadline_hit:
                why = f"module time limit ({options.module_timeout:g}s) reached"
            else:
                why = f"child process died (exit status {child.returncode})"
            output = f"end of the child's output:\n{_tail(log_path)}"
            if child.in_progress is not None:
                why += " while this test ran"
                lost = TestRecord(child.in_progress, "timeout", "unknown", why, output)
                run.records.append(lost)
            elif not child.abandoned:
                why += " between tests"
                run.records.append(
                    TestRecord(f"{run.module} (child)", "error", "unknown", why, output)
                )
            positions = {test_id: index for index, test_id in enumerate(run.planned)}
            done = [positions[test_id] for test_id in child.started if test_id in positions]
            if child.deadline_hit or not done:
                break  # out of time, or no progress to restart from
            start_at = max(done) + 1
            if start_at >= len(run.planned):
                break
            restarts += 1
    if restarts:
        run.notes.append(f"child restarted {restarts}x after a test hung or killed it")
    run.seconds = time.monotonic() - started
    return run


# --------------------------------------------------------------------------------------------
# Parent side: summaries and reports


@dataclasses.dataclass
class ModuleSummary:
    """The table row of one module, and the lists behind it."""

    module: str
    adapter: int = 0
    idle: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    timeouts: int = 0
    xfail: int = 0
    xpass: int = 0
    own: int = 0
    none: int = 0
    skipped: int = 0
    other_failed: int = 0
    not_run: int = 0
    seconds: float = 0.0
    unexpected: list[TestRecord] = dataclasses.field(default_factory=list)
    unexpected_passes: list[str] = dataclasses.field(default_factory=list)
    other_failures: list[TestRecord] = dataclasses.field(default_factory=list)
    skip_reasons: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    notes: list[str] = dataclasses.field(default_factory=list)
    missing: str | None = None
    fatal: str | None = None


def summarize(run: ModuleRun, expected: Mapping[str, str]) -> ModuleSummary:
    """Count one module's records into its table row (see README.md for the columns)."""
    row = ModuleSummary(run.module, seconds=run.seconds, missing=run.missing, fatal=run.fatal)
    if run.bound:
        row.notes.append(f"bound: {', '.join(run.bound)} (replacing {run.replaced} tests)")
    row.notes.extend(run.notes)
    planned = set(run.planned)
    for record in run.records:
        # Class and module fixtures, and a child lost between tests, report under names of
        # their own: they are not tests, so they count in no loop column.
        is_test = record.test_id in planned
        if record.outcome == "skip":
            row.skipped += 1
            row.skip_reasons[record.summary] += 1
        elif not record.touched_factory:
            if is_test and record.where == "own":
                row.own += 1
            elif is_test:
                row.none += 1
            if record.failed:
                row.other_failed += 1
                row.other_failures.append(record)
        else:
            if is_test and record.where == "idle":
                row.idle += 1
            elif is_test:
                row.adapter += 1
            listed = record.test_id in expected
            if record.failed and listed:
                row.xfail += 1
            elif record.failed:
                row.unexpected.append(record)
                if record.outcome == "fail":
                    row.failed += 1
                elif record.outcome == "error":
                    row.errors += 1
                else:
                    row.timeouts += 1
            else:
                row.passed += 1
                if listed:
                    row.xpass += 1
                    row.unexpected_passes.append(record.test_id)
    reported = {record.test_id for record in run.records}
    row.not_run = len(planned - reported)
    return row


@dataclasses.dataclass
class Report:
    """The whole run: one summary per module, in the order asked for."""

    factory: str
    python: str
    rows: list[ModuleSummary]
    stale: list[str]
    """EXPECTED_FAILURES entries of the modules run that did not run on the factory's loop."""
    runs: list[ModuleRun] = dataclasses.field(default_factory=list)

    @property
    def unexpected(self) -> list[TestRecord]:
        return [record for row in self.rows for record in row.unexpected]

    @property
    def fatal(self) -> list[str]:
        return [f"{row.module}: {row.fatal}" for row in self.rows if row.fatal]

    @property
    def ok(self) -> bool:
        """No unexpected failure on the factory's loop, and every module could run."""
        return not self.unexpected and not self.fatal

    def total(self) -> ModuleSummary:
        total = ModuleSummary("total")
        for row in self.rows:
            for field in _COUNT_FIELDS:
                setattr(total, field, getattr(total, field) + getattr(row, field))
            total.seconds += row.seconds
        return total


_COUNT_FIELDS: Final = (
    "adapter",
    "passed",
    "failed",
    "errors",
    "timeouts",
    "xfail",
    "xpass",
    "idle",
    "own",
    "none",
    "skipped",
    "other_failed",
    "not_run",
)

#: (heading, field) of the table, in order; README.md explains each.
COLUMNS: Final = (
    ("module", "module"),
    ("adapter", "adapter"),
    ("passed", "passed"),
    ("failed", "failed"),
    ("errors", "errors"),
    ("timeouts", "timeouts"),
    ("xfail", "xfail"),
    ("xpass", "xpass"),
    ("idle", "idle"),
    ("own loop", "own"),
    ("no loop", "none"),
    ("skipped", "skipped"),
    ("other failed", "other_failed"),
    ("not run", "not_run"),
    ("seconds", "seconds"),
)


def run_conformance(
    modules: Sequence[str],
    options: RunOptions,
    expected: Mapping[str, str],
    jobs: int = 1,
    progress: Callable[[ModuleRun], None] | None = None,
) -> Report:
    """Run ``modules`` (``jobs`` at a time) and summarise them against ``expected``."""

    def one(module: str) -> ModuleRun:
        run = run_module(module, options)
        if progress is not None:
            progress(run)
        return run

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        runs = list(pool.map(one, modules))
    return build_report(runs, options.factory, expected)


def build_report(runs: Sequence[ModuleRun], factory: str, expected: Mapping[str, str]) -> Report:
    """Summarise module runs against the expected failures."""
    rows = [summarize(run, expected) for run in runs]
    on_factory = {r.test_id for run in runs for r in run.records if r.touched_factory}
    prefixes = tuple(f"{run.module}." for run in runs if not run.missing)
    stale = sorted(
        test_id
        for test_id in expected
        if test_id.startswith(prefixes) and test_id not in on_factory
    )
    python = next((run.python for run in runs if run.python), "")
    return Report(factory, python, rows, stale, list(runs))


def write_json(report: Report, path: Path) -> None:
    """Every record of the run, for tools and for a closer look than the table gives."""
    data = {
        "python": report.python,
        "factory": report.factory,
        "modules": [dataclasses.asdict(run) for run in report.runs],
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _cells(row: ModuleSummary) -> list[str]:
    cells = []
    for _, field in COLUMNS:
        value = getattr(row, field)
        if field == "module":
            cells.append(str(value))
        elif field == "seconds":
            cells.append(f"{value:.1f}")
        elif row.missing:
            cells.append("-")
        else:
            cells.append(str(value))
    return cells


def render_text(report: Report, verbose: bool = False) -> str:
    """The plain-text table and the lists behind it."""
    header = [heading for heading, _ in COLUMNS]
    body = [_cells(row) for row in report.rows] + [_cells(report.total())]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    out = [f"test.test_asyncio on Python {report.python}, loops from {report.factory}", ""]
    out += [line(header), line(["-" * width for width in widths])]
    out += [line(cells) for cells in body[:-1]]
    out += [line(["-" * width for width in widths]), line(body[-1])]
    out += _sections(report, verbose, bullet="  ")
    return "\n".join(out) + "\n"


def render_markdown(report: Report) -> str:
    """The same report as a markdown table (for docs/aio.md) and lists."""
    header = [heading for heading, _ in COLUMNS]
    out = [
        f"`test.test_asyncio` on Python {report.python}, loops from `{report.factory}`.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for row in report.rows:
        out.append("| " + " | ".join(_cells(row)) + " |")
    total = _cells(report.total())
    out.append("| " + " | ".join(f"**{cell}**" for cell in total) + " |")
    out += _sections(report, verbose=False, bullet="- ", code=True)
    return "\n".join(out) + "\n"


def _sections(report: Report, verbose: bool, bullet: str, code: bool = False) -> list[str]:
    def name(text: str) -> str:
        """Test ids, exceptions and skip reasons as code spans in markdown: they hold
        underscores, asterisks and ``<...>`` reprs that markdown would otherwise eat."""
        if not code or not text:
            return text
        return f"`` {text} ``" if "`" in text else f"`{text}`"

    out: list[str] = []

    def section(title: str, lines: Iterable[str]) -> None:
        items = list(lines)
        if items:
            out.extend(["", f"{title}:", ""] if code else ["", f"{title}:"])
            out.extend(f"{bullet}{item}" for item in items)

    section("Fatal", report.fatal)
    unexpected = report.unexpected
    section(
        f"Unexpected failures on the factory's loop ({len(unexpected)})",
        (f"{name(r.test_id)} [{r.outcome}] {name(r.summary)}" for r in unexpected),
    )
    if verbose:
        for record in unexpected:
            out += ["", f"--- {record.test_id} [{record.outcome}]", record.detail.rstrip()]
    section(
        "Unexpected passes: remove these from EXPECTED_FAILURES",
        (name(test_id) for row in report.rows for test_id in row.unexpected_passes),
    )
    section(
        "Failures on other loops (not counted against the factory)",
        (
            f"{name(r.test_id)} [{r.outcome}, {r.where}] {name(r.summary)}"
            for row in report.rows
            for r in row.other_failures
        ),
    )
    section(
        "Skipped, by reason",
        (
            f"{row.module}: {count} x {name(reason)}"
            for row in report.rows
            for reason, count in row.skip_reasons.most_common()
        ),
    )
    section(
        "EXPECTED_FAILURES entries that did not run on the factory's loop",
        (name(test_id) for test_id in report.stale),
    )
    section(
        "Notes",
        [f"{row.module}: {row.missing}" for row in report.rows if row.missing]
        + [f"{row.module}: {note}" for row in report.rows for note in row.notes],
    )
    return out


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance.runner",
        description="Run CPython's test.test_asyncio against a loop factory.",
    )
    parser.add_argument(
        "--loop-factory",
        default=DEFAULT_FACTORY,
        metavar="MOD:CALLABLE",
        help=f"callable returning a new event loop (default {DEFAULT_FACTORY})",
    )
    parser.add_argument("--modules", help="comma-separated test_asyncio modules (default: all)")
    parser.add_argument("--fast", action="store_true", help="the CI subset, with short timeouts")
    parser.add_argument("-k", action="append", metavar="PATTERN", help="unittest -k filter")
    parser.add_argument("--timeout", type=float, help="seconds per test (20; 10 with --fast)")
    parser.add_argument(
        "--module-timeout", type=float, help="seconds per module (600; 60 with --fast)"
    )
    parser.add_argument("--jobs", "-j", type=int, default=2, help="modules run at once (2)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the tests")
    parser.add_argument(
        "--expected", type=Path, default=EXPECTED_FAILURES_PATH, help="expected-failures list"
    )
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write a table")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every record")
    parser.add_argument("--log-dir", type=Path, help="keep each module's output here")
    parser.add_argument("--verbose", "-v", action="store_true", help="print tracebacks")
    # The child's side of the protocol.
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--event-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--grace", type=float, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 all good, 1 unexpected failures on the factory's loop, 2 cannot run."""
    args = _parser().parse_args(argv)
    if args.child:
        if args.timeout is None:
            args.timeout = 20.0
        return child_main(args)
    try:
        expected = load_expected_failures(args.expected, python_version(args.python))
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.modules:
        modules = [name.strip() for name in args.modules.split(",") if name.strip()]
    else:
        modules = list(FAST_MODULES if args.fast else TARGET_MODULES)
    options = RunOptions(
        factory=args.loop_factory,
        timeout=args.timeout or (10.0 if args.fast else 20.0),
        module_timeout=args.module_timeout or (60.0 if args.fast else 600.0),
        patterns=tuple(args.k or ()),
        python=args.python,
        log_dir=args.log_dir,
    )

    def progress(run: ModuleRun) -> None:
        print(f"  {run.module}: {len(run.records)} tests, {run.seconds:.1f}s", file=sys.stderr)

    report = run_conformance(modules, options, expected, args.jobs, progress)
    print(render_text(report, verbose=args.verbose), end="")
    if args.markdown:
        args.markdown.write_text(render_markdown(report), encoding="utf-8")
    if args.json:
        write_json(report, args.json)
    if report.fatal:
        return 2
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
