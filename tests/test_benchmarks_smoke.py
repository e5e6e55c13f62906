"""Smoke test of ``python -m benchmarks``: it runs end to end and prints a complete table.

It checks the shape of the output only (a row per workload, a numeric kernel/asyncio ratio
in each) and never a timing, so a slow or busy machine cannot fail it. The TCP echo rows
have a test of their own, which needs ``kernel.socket`` (and ``kernel.streams`` for the
line echo), and so does the asyncio adapter's column, ``kernel.aio``.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

kernel = pytest.importorskip("kernel")
if not hasattr(kernel, "run"):
    pytest.skip("the kernel package is not usable yet", allow_module_level=True)

REPO_ROOT = Path(__file__).resolve().parent.parent

# The workloads that run inside one process (the TCP echo ones also start a client).
IN_PROCESS_WORKLOADS = (
    "spawn_join",
    "switch",
    "timers",
    "idle_memory",
    "spawn_scale",
    "queue",
    "lock_pingpong",
    "event_fanout",
    "thread_roundtrip",
)

# Their row labels with --quick: spawn_scale compares 10^3 with 10^4 tasks alive at once.
QUICK_ROWS = (
    "spawn_join",
    "switch",
    "timers",
    "idle_memory",
    "spawn_scale 10^3",
    "spawn_scale 10^4",
    "spawn_scale 10^4/10^3",
    "queue",
    "lock_pingpong",
    "event_fanout",
    "thread_roundtrip",
)


def run_module(module: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` from the repository root, run to its end (not checked)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_benchmarks(*options: str) -> str:
    proc = run_module("benchmarks", *options, timeout=240)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.timeout(300)
def test_quick_run_has_a_numeric_ratio_for_every_workload() -> None:
    workloads = ",".join(IN_PROCESS_WORKLOADS)
    out = run_benchmarks("--quick", "--only", "kernel,asyncio", "--workload", workloads)
    lines = out.splitlines()
    assert lines[0].startswith("Command:")
    for label in QUICK_ROWS:
        rows = [line for line in lines if line.startswith(label + "  ")]
        assert len(rows) == 1, f"no single row {label!r} in:\n{out}"
        ratio = rows[0].split()[-1]
        assert float(ratio) > 0, f"row {label!r} has no kernel/asyncio ratio:\n{out}"


@pytest.mark.timeout(120)
def test_markdown_table() -> None:
    out = run_benchmarks(
        "--quick", "--only", "kernel,asyncio", "--workload", "switch", "--repeat", "1", "--markdown"
    )
    assert "| workload | unit | kernel | asyncio | kernel/asyncio |" in out
    assert any(line.startswith("| switch | switches/s |") for line in out.splitlines())


@pytest.mark.timeout(120)
@pytest.mark.skipif(importlib.util.find_spec("curio") is not None, reason="curio is installed")
def test_missing_library_is_reported_not_raised() -> None:
    out = run_benchmarks("--quick", "--only", "curio", "--workload", "switch", "--repeat", "1")
    rows = [line for line in out.splitlines() if line.startswith("switch  ")]
    assert len(rows) == 1
    assert "not installed" in rows[0]


@pytest.mark.timeout(120)
def test_quick_echo_rows_compare_kernel_with_asyncio_and_bare() -> None:
    # One repeat of a fraction of a second per server: the shape, not the speed.
    out = run_benchmarks(
        "--quick",
        "--only",
        "kernel,asyncio,bare",
        "--workload",
        "tcp_echo,tcp_echo_lines",
        "--repeat",
        "1",
    )
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("workload  "))
    assert header.split()[-5:] == ["kernel", "asyncio", "bare", "kernel/asyncio", "kernel/bare"]
    [echo] = [line.split() for line in lines if line.startswith("tcp_echo  ")]
    over_asyncio, over_bare = echo[-2:]
    assert float(over_asyncio) > 0 and float(over_bare) > 0, out
    [echo_lines] = [line.split() for line in lines if line.startswith("tcp_echo_lines  ")]
    bare, over_asyncio, over_bare = echo_lines[-3:]
    assert (bare, over_bare) == ("-", "-"), out  # bare has no line echo
    assert float(over_asyncio) > 0, out


# The asyncio adapter's comparison (``--aio``): these rows, with a kernel.aio/asyncio ratio.
ADAPTER_ROWS = ("spawn_join", "switch", "timers", "queue", "tcp_echo")

# The other workloads of lib_asyncio.py, which the adapter runs too.
OTHER_ADAPTER_WORKLOADS = (
    "idle_memory",
    "spawn_scale",
    "lock_pingpong",
    "event_fanout",
    "thread_roundtrip",
    "tcp_echo_lines",
)
OTHER_ADAPTER_ROWS = (
    "idle_memory",
    "spawn_scale 10^3",
    "spawn_scale 10^4",
    "lock_pingpong",
    "event_fanout",
    "thread_roundtrip",
    "tcp_echo_lines",
)


def _numeric(cell: str) -> bool:
    """A rate as the table prints it: ``512k``, ``1.23M``, ``860`` or ``1,421``."""
    try:
        float(cell.rstrip("kM").replace(",", ""))
    except ValueError:
        return False
    return True


@pytest.mark.timeout(60)
def test_aio_run_compares_the_adapter_with_asyncio() -> None:
    out = run_benchmarks("--aio", "--quick", "--only", "asyncio,kernel.aio", "--repeat", "1")
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("workload  "))
    assert header.split() == ["workload", "unit", "asyncio", "kernel.aio", "kernel.aio/asyncio"]
    for label in ADAPTER_ROWS:
        [row] = [line.split() for line in lines if line.startswith(label + "  ")]
        assert _numeric(row[-2]), f"no kernel.aio rate in row {label!r}:\n{out}"
        assert float(row[-1]) > 0, f"row {label!r} has no kernel.aio/asyncio ratio:\n{out}"


@pytest.mark.timeout(60)
def test_adapter_runs_every_asyncio_workload() -> None:
    workloads = ",".join(OTHER_ADAPTER_WORKLOADS)
    out = run_benchmarks(
        "--quick", "--only", "kernel.aio", "--workload", workloads, "--repeat", "1"
    )
    lines = out.splitlines()
    for label in OTHER_ADAPTER_ROWS:
        [row] = [line.split() for line in lines if line.startswith(label + "  ")]
        assert _numeric(row[-1]), f"row {label!r} has no kernel.aio figure:\n{out}"


def profile_run(library: str, workload: str) -> str:
    """``python -m benchmarks.profile_run LIBRARY WORKLOAD --quick``'s output."""
    proc = run_module("benchmarks.profile_run", library, workload, "--quick")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.timeout(60)
def test_profile_run_times_the_collector_and_lists_functions() -> None:
    out = profile_run("kernel.aio", "switch")
    assert "kernel.aio switch:" in out
    assert "generation 2:" in out
    assert "under cProfile" in out
    assert "tasks.py" in out  # the adapter's Task shows up in the listing


@pytest.mark.timeout(60)
def test_profile_run_splits_an_echo_servers_cpu_per_message() -> None:
    out = profile_run("bare", "tcp_echo")
    match = re.search(r"per message ([0-9.]+) us user \+ ([0-9.]+) us system", out)
    assert match is not None, out
    assert float(match[1]) + float(match[2]) > 0


@pytest.mark.timeout(60)
def test_the_traced_kernel_column_runs_only_when_asked_for() -> None:
    out = run_benchmarks(
        "--quick", "--only", "kernel,kernel+tracer", "--workload", "switch", "--repeat", "1"
    )
    header = next(line for line in out.splitlines() if line.startswith("workload  "))
    assert header.split() == ["workload", "unit", "kernel", "kernel+tracer", "kernel+tracer/kernel"]
    row = next(line for line in out.splitlines() if line.startswith("switch  ")).split()
    assert _numeric(row[-2]) and float(row[-1]) > 0, out
    plain = run_benchmarks("--quick", "--workload", "switch", "--repeat", "1")
    assert "kernel+tracer" not in plain


@pytest.mark.timeout(60)
def test_echo_headroom_places_the_kernel_beside_bare_with_added_work() -> None:
    proc = run_module("benchmarks.echo_headroom", "--quick", "--work", "5", "--repeat", "1")
    assert proc.returncode == 0, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines()[1:]:
        label, numbers = line[:20].strip(), line[20:].split()
        rows[label] = numbers
    assert list(rows) == ["bare", "bare + 5 turns", "kernel"], proc.stdout
    assert rows["bare"][1] == "1.00"  # the share of plain bare's rate, for bare itself
    for rate, share, user, _us, system, _us2 in rows.values():
        assert float(rate.replace(",", "")) > 0
        assert float(share) > 0
        assert float(user) + float(system) > 0


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--work", "0"], "whole numbers above 0"),
        (["--work", "100,x"], "whole numbers above 0"),
        (["--work", ""], "whole numbers above 0"),
        (["--repeat", "0"], "--repeat must be at least 1"),
    ],
)
def test_echo_headroom_refuses_bad_arguments(args: list[str], complaint: str) -> None:
    proc = run_module("benchmarks.echo_headroom", "--quick", *args)
    assert proc.returncode == 2
    assert complaint in proc.stderr


def test_extra_work_wraps_the_bare_send_and_puts_it_back() -> None:
    from benchmarks import echo_headroom as headroom
    from benchmarks import lib_bare

    plain = lib_bare._send
    sent: list[bytes] = []

    class Peer:
        def send(self, data: bytes) -> int:
            sent.append(data)
            return len(data)

    with pytest.raises(RuntimeError), headroom.extra_work(3):
        assert lib_bare._send is not plain
        assert lib_bare._send(Peer(), b"ping") == 4  # type: ignore[arg-type]
        raise RuntimeError("the server failed")
    assert sent == [b"ping"]  # the wrapper still sends, through the plain function
    assert lib_bare._send is plain


def test_a_module_built_into_the_interpreter_counts_as_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Debian's Python compiles select into the interpreter: it has no __file__, yet the
    # bare column needs nothing more. Only a folder without __init__.py is "not installed".
    from benchmarks import worker
    from benchmarks.workloads import Library

    assert "builtins" in sys.builtin_module_names  # (no __file__ on any Python)
    assert worker._import_problem(Library("bare", "builtins")) is None
    (tmp_path / "half_written").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    problem = worker._import_problem(Library("half", "half_written"))
    assert problem == (worker.NOT_INSTALLED, "'half_written' is an empty namespace package")
