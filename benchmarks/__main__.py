"""The benchmark harness: ``python -m benchmarks`` runs every workload on every library.

Each library+workload runs in a fresh subprocess (``python -m benchmarks.worker``), ``--repeat``
times, and the best run counts: the highest rate, or the fewest bytes for idle_memory. The
repeats are interleaved (all measurements once, then all again) so that a slow patch of the
machine does not land on one library only. The table goes to stdout, progress to stderr.

A library that is missing shows as "not installed" and is not tried again; a workload that
fails, crashes or times out shows "error" with a numbered note below the table, and its
remaining repeats are skipped. A workload runs only on the libraries it lists
(``Workload.libraries``); the other cells of its row show "-". The ``bare`` column, a server
with no framework, appears only when the TCP echo row does, with the ratio kernel / bare.
The ratio columns (``RATIOS``) are kernel / asyncio, kernel / bare and kernel.aio / asyncio
(the asyncio adapter against asyncio's default loop, running the same code); each shows when
both of its libraries have a column.

Read next: ``worker.py`` for what one run does, ``README.md`` for how to read the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .worker import ERROR, IMPORT_ERROR, NOT_INSTALLED, OK, Result
from .workloads import (
    ADAPTER_LIBRARIES,
    ADAPTER_WORKLOADS,
    FULL,
    LIBRARIES,
    ON_REQUEST,
    QUICK,
    WORKLOADS,
    Library,
    Sizes,
    Workload,
)

__all__ = ["RATIOS", "Measurement", "Ratio", "main", "measurements", "render", "run_all"]

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_TIMEOUT = 600.0  # seconds for one worker run; the slowest full run takes about 30 s
UNUSABLE = (NOT_INSTALLED, IMPORT_ERROR)  # statuses that mean: do not try this library again


@dataclass(frozen=True)
class Ratio:
    """A ratio column: ``top``'s value divided by ``bottom``'s, row by row."""

    top: str
    bottom: str
    legend: str  # what the column means, printed under the table

    @property
    def label(self) -> str:
        return f"{self.top}/{self.bottom}"


RATIOS = (
    Ratio(
        "kernel",
        "asyncio",
        "kernel's value divided by asyncio's; above 1 is faster, except for idle_memory where"
        " below 1 uses less memory",
    ),
    Ratio("kernel", "bare", "kernel's rate as a fraction of the server with no framework"),
    Ratio(
        "kernel+tracer",
        "kernel",
        "the kernel with a do-nothing tracer attached, as a fraction of the plain kernel: what"
        " tracing costs when it is on (off, the kernel runs none of the tracing code)",
    ),
    Ratio(
        "kernel.aio",
        "asyncio",
        "kernel.aio's value divided by asyncio's: the same asyncio code (lib_asyncio.py) on"
        " the adapter's loop and on asyncio's default loop; above 1 the adapter is faster,"
        " except for idle_memory where below 1 uses less memory",
    ),
)


@dataclass(frozen=True)
class Measurement:
    """One row of the table that a worker measures; spawn_scale gives two, small and large."""

    label: str
    workload: Workload
    large: bool = False  # spawn_scale only: the 10^6 case rather than the 10^3 one

    def tasks(self, sizes: Sizes) -> int:
        """Tasks alive at once in this row, before any library's cap."""
        return sizes.tasks(self.workload.name, self.large)


def power_label(n: int) -> str:
    """Write ``n`` as ``10^k`` or ``mx10^k`` for row labels and notes (no ``*``: Markdown)."""
    exponent = len(str(n)) - len(str(n).rstrip("0"))
    mantissa = n // 10**exponent
    power = f"10^{exponent}"
    return power if mantissa == 1 else f"{mantissa}x{power}"


def measurements(workloads: Sequence[Workload], sizes: Sizes) -> list[Measurement]:
    """The rows to measure for the chosen workloads, in table order."""
    rows: list[Measurement] = []
    for workload in workloads:
        if workload.name == "spawn_scale":
            rows.append(Measurement(f"spawn_scale {power_label(sizes.scale_small)}", workload))
            large = f"spawn_scale {power_label(sizes.scale_large)}"
            rows.append(Measurement(large, workload, large=True))
        else:
            rows.append(Measurement(workload.name, workload))
    return rows


def run_worker(library: Library, row: Measurement, sizes: Sizes, quick: bool) -> Result:
    """Run one worker subprocess and return what it reported (or how it failed)."""
    command = [sys.executable, "-m", "benchmarks.worker", library.name, row.workload.name]
    if row.large:
        command.append("--large")
    if quick:
        command.append("--quick")
    command.append("--json")
    failed = Result(library.name, row.workload.name, ERROR, unit=row.workload.unit)
    try:
        proc = subprocess.run(
            command,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return dataclasses.replace(failed, detail=f"timed out after {WORKER_TIMEOUT:.0f} s")
    if proc.returncode != 0:
        last_error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        detail = f"worker exited with status {proc.returncode}: {last_error}"
        return dataclasses.replace(failed, detail=detail)
    last_line = (proc.stdout.strip().splitlines() or [""])[-1]
    try:
        return Result(**json.loads(last_line))
    except (ValueError, TypeError):
        return dataclasses.replace(failed, detail=f"worker printed no result: {last_line!r}")


def best(results: Sequence[Result], higher_is_better: bool) -> Result:
    """The best successful result, or the first failure if none succeeded."""
    ok = [r for r in results if r.status == OK and r.value is not None]
    if not ok:
        return results[0]
    pick = max if higher_is_better else min
    return pick(ok, key=lambda r: r.value or 0.0)


def run_all(
    libraries: Sequence[Library],
    rows: Sequence[Measurement],
    sizes: Sizes,
    quick: bool,
    repeat: int,
) -> dict[tuple[str, str], Result]:
    """Run every row on each library it lists, ``repeat`` times; return the best per pair."""
    runs: dict[tuple[str, str], list[Result]] = {}
    unusable: dict[str, Result] = {}  # library name -> the result that showed it cannot run
    pairs = [(r, lib) for r in rows for lib in libraries if lib.name in r.workload.libraries]
    total = repeat * len(pairs)
    done = 0
    for round_number in range(1, repeat + 1):
        for row, library in pairs:
            done += 1
            key = (row.label, library.name)
            earlier = runs.setdefault(key, [])
            if library.name in unusable:
                result = unusable[library.name]
            elif any(r.status == ERROR for r in earlier):
                continue  # a failure is not retried
            else:
                result = run_worker(library, row, sizes, quick)
                _progress(done, total, round_number, library, row, result)
                if result.status in UNUSABLE:
                    unusable[library.name] = result
            earlier.append(result)
    by_label = {row.label: row for row in rows}
    return {
        key: best(results, by_label[key[0]].workload.higher_is_better)
        for key, results in runs.items()
    }


def _progress(
    done: int, total: int, round_number: int, library: Library, row: Measurement, result: Result
) -> None:
    shown = _format_value(result, row.workload) if result.status == OK else result.status
    print(
        f"[{done:>{len(str(total))}}/{total}] round {round_number}  {library.name:<11}"
        f"{row.label:<20}{shown} {row.workload.unit if result.status == OK else ''}",
        file=sys.stderr,
        flush=True,
    )


def _format_value(result: Result, workload: Workload) -> str:
    value = result.value or 0.0
    if not workload.higher_is_better:
        return f"{value:,.0f}"
    return _si(value)


def _si(value: float) -> str:
    """Three significant digits with a k or M suffix: 512k, 1.23M."""
    for factor, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= factor:
            scaled = value / factor
            digits = 2 if scaled < 10 else 1 if scaled < 100 else 0
            return f"{scaled:.{digits}f}{suffix}"
    return f"{value:.0f}"


class Notes:
    """Numbered notes under the table; the same text always gets the same number."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        """Return the marker, like ``[2]``, for ``text``, adding it if it is new."""
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"


def render(
    libraries: Sequence[Library],
    rows: Sequence[Measurement],
    results: dict[tuple[str, str], Result],
    sizes: Sizes,
    markdown: bool,
) -> str:
    """The table, its legend and its notes, as plain aligned text or as Markdown."""
    notes = Notes()
    # A column only for a library that some row runs on: bare shows up with tcp_echo only.
    columns = [lib for lib in libraries if any(lib.name in r.workload.libraries for r in rows)]
    names = {lib.name for lib in columns}
    ratios = [ratio for ratio in RATIOS if ratio.top in names and ratio.bottom in names]
    header = ["workload", "unit", *(lib.name for lib in columns)]
    header += [ratio.label for ratio in ratios]
    table: list[list[str]] = [header]
    for row in rows:
        cells = [row.label, row.workload.unit]
        for library in columns:
            result = results.get((row.label, library.name))
            cells.append("-" if result is None else _cell(result, row, sizes, notes))
        cells += [
            _ratio(results.get((row.label, r.top)), results.get((row.label, r.bottom)))
            for r in ratios
        ]
        table.append(cells)
        if row.large:
            table.append(_scaling_row(columns, rows, results, row, ratios))

    lines = _markdown_table(table) if markdown else _text_table(table)
    lines.append("")
    for workload in dict.fromkeys(row.workload for row in rows):
        summary = workload.summary.format(**dataclasses.asdict(sizes))
        lines.append(f"- {workload.name}: {summary}" if markdown else f"{workload.name}: {summary}")
    lines += [f"{'- ' if markdown else ''}{ratio.label}: {ratio.legend}" for ratio in ratios]
    if notes.texts:
        lines.append("")
        lines += [
            f"[{n}] {text}" + ("  " if markdown else "")
            for n, text in enumerate(notes.texts, start=1)
        ]
    return "\n".join(lines)


def _cell(result: Result, row: Measurement, sizes: Sizes, notes: Notes) -> str:
    if result.status == OK:
        text = _format_value(result, row.workload)
        if result.tasks < row.tasks(sizes):
            text += " " + notes.mark(
                f"{result.library}: run with at most {power_label(result.tasks)} tasks alive at"
                " once, fewer than the row's size, because its time grows with the square of"
                " the tasks alive (README.md)"
            )
        return text
    if result.status == NOT_INSTALLED and result.detail.startswith("no module named"):
        return NOT_INSTALLED
    return f"{result.status} " + notes.mark(f"{result.library}: {result.detail}")


def _scaling_row(
    libraries: Sequence[Library],
    rows: Sequence[Measurement],
    results: dict[tuple[str, str], Result],
    large: Measurement,
    ratios: Sequence[Ratio],
) -> list[str]:
    """The row rate(large)/rate(small) under the two spawn_scale rows."""
    small = next(r for r in rows if r.workload is large.workload and not r.large)
    label = f"spawn_scale {large.label.split()[-1]}/{small.label.split()[-1]}"
    values: dict[str, float] = {}
    for library in libraries:
        big = results.get((large.label, library.name))
        little = results.get((small.label, library.name))
        if big is not None and little is not None and big.value is not None and little.value:
            values[library.name] = big.value / little.value
    cells = [label, "ratio"]
    cells += [f"{values[lib.name]:.2f}" if lib.name in values else "-" for lib in libraries]
    for ratio in ratios:  # bare has no scaling figure, so kernel/bare shows "-"
        top, bottom = values.get(ratio.top), values.get(ratio.bottom)
        cells.append(f"{top / bottom:.2f}" if top and bottom else "-")
    return cells


def _ratio(top: Result | None, bottom: Result | None) -> str:
    if top is None or bottom is None or not top.value or not bottom.value:
        return "-"
    return f"{top.value / bottom.value:.2f}"


def _text_table(table: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def _markdown_table(table: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(row) + " |" for row in table]
    align = ["---" if i < 2 else "---:" for i in range(len(table[0]))]
    lines.insert(1, "| " + " | ".join(align) + " |")
    return lines


def _preamble(
    libraries: Sequence[Library],
    results: dict[tuple[str, str], Result],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    """What was run, where and when: the lines printed above the table."""
    command = shlex.join([sys.executable, "-m", "benchmarks", *sys.argv[1:]])
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    python = f"{platform.python_implementation()} {platform.python_version()}"
    shown = [lib for lib in libraries if any(name == lib.name for _, name in results)]
    versions: dict[str, str] = {}
    for (_, name), result in results.items():
        if result.version:
            versions[name] = result.version
    method = f"best of {args.repeat}, each library+workload in a fresh process"
    facts = [
        ("Command", f"`{command}`" if args.markdown else command),
        ("Python", f"{python} on {platform.platform()}, {os.cpu_count()} CPUs"),
        ("Date", now),
        ("Versions", ", ".join(f"{lib.name} {versions.get(lib.name, '-')}" for lib in shown)),
        ("Method", method + (", --quick sizes" if args.quick else "")),
        ("Took", f"{elapsed:.0f} s"),
    ]
    if args.markdown:
        return "\n".join(f"- {name}: {value}" for name, value in facts)
    return "\n".join(f"{name + ':':<9} {value}" for name, value in facts)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m benchmarks [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Compare kernel with asyncio, uvloop, curio and trio on the same workloads"
        " (and, for TCP echo, with a server that uses no framework); the asyncio workloads"
        " also run on kernel.aio, the kernel's asyncio adapter.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for the smoke test")
    parser.add_argument("--only", metavar="LIB[,LIB]", help="run only these libraries")
    parser.add_argument("--workload", metavar="NAME[,NAME]", help="run only these workloads")
    parser.add_argument("--repeat", type=int, default=3, metavar="N", help="best of N (3)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--aio",
        action="store_true",
        help="the asyncio adapter's comparison: --only and --workload default to"
        f" {','.join(ADAPTER_LIBRARIES)} and {','.join(ADAPTER_WORKLOADS)}",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    library_names = [lib.name for lib in LIBRARIES]
    default_libraries = [name for name in library_names if name not in ON_REQUEST]
    wanted_libraries = _split(args.only) or (
        list(ADAPTER_LIBRARIES) if args.aio else default_libraries
    )
    workload_names = [w.name for w in WORKLOADS]
    wanted_workloads = _split(args.workload) or (
        list(ADAPTER_WORKLOADS) if args.aio else workload_names
    )
    for name in wanted_libraries:
        if name not in library_names:
            parser.error(f"unknown library {name!r}; choose from {', '.join(library_names)}")
    for name in wanted_workloads:
        if name not in workload_names:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(workload_names)}")
    libraries = [lib for lib in LIBRARIES if lib.name in wanted_libraries]
    workloads = [w for w in WORKLOADS if w.name in wanted_workloads]

    sizes = QUICK if args.quick else FULL
    rows = measurements(workloads, sizes)
    started = time.monotonic()
    results = run_all(libraries, rows, sizes, args.quick, args.repeat)
    elapsed = time.monotonic() - started

    print(_preamble(libraries, results, args, elapsed))
    print()
    print(render(libraries, rows, results, sizes, args.markdown))
    return 0


def _split(names: str | None) -> list[str]:
    return [name.strip() for name in names.split(",") if name.strip()] if names else []


if __name__ == "__main__":
    raise SystemExit(main())
