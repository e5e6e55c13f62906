"""The documentation agrees with the code.

* Every ```python block in the Markdown files (docs/ and its folders, such as the course in
  docs/course/, and the two READMEs) is a verbatim piece of a file under examples/,
  tests/ or kernel/, so the docs show code that runs (and is checked by ruff and mypy) instead of
  copies that drift.
* The trap table in docs/traps.md has one row per trap in ``kernel.traps.TRAPS``.
* docs/api.md has one ``### `name``` heading per name in ``kernel.__all__``.
* Paths to examples/, docs/ and kernel/ mentioned in the docs exist.

The last section holds the tests that docs/getting-started.md shows.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kernel
from kernel.traps import TRAPS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKDOWN = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md", ROOT / "examples" / "README.md"]
SOURCES = [
    path
    for folder in ("examples", "tests", "kernel")
    for path in sorted((ROOT / folder).rglob("*.py"))
]

PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
TRAP_ROW = re.compile(r"^\|\s*`(\w+)`\s*\|", re.MULTILINE)
API_ENTRY = re.compile(r"^### `(\w+)`\s*$", re.MULTILINE)
# A path in the repository: a folder we ship, then a file name with an extension.
REPO_PATH = re.compile(r"\b((?:examples|docs|kernel|benchmarks|tests)/[\w./-]*\.\w+)")


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def python_blocks() -> list[tuple[str, int, str]]:
    """(markdown file, block number, code) for every ```python block."""
    return [
        (relative(md), i, code)
        for md in MARKDOWN
        for i, code in enumerate(PYTHON_BLOCK.findall(md.read_text(encoding="utf-8")), 1)
    ]


def test_the_docs_exist() -> None:
    names = {md.name for md in DOCS.glob("*.md")}
    assert {"getting-started.md", "traps.md", "design.md", "api.md"} <= names


def test_the_docs_show_code() -> None:
    shown = {md for md, _, _ in python_blocks()}
    assert {"README.md", "docs/getting-started.md"} <= shown


@pytest.mark.parametrize(
    ("markdown", "number", "code"),
    python_blocks(),
    ids=[f"{md}#{i}" for md, i, _ in python_blocks()],
)
def test_python_block_is_a_piece_of_a_real_file(markdown: str, number: int, code: str) -> None:
    sources = [relative(p) for p in SOURCES if code in p.read_text(encoding="utf-8")]
    assert sources, (
        f"python block {number} of {markdown} is not a verbatim part of any file under "
        f"examples/, tests/ or kernel/; include code from those files rather than a copy:\n{code}"
    )


def test_trap_table_has_one_row_per_trap() -> None:
    rows = TRAP_ROW.findall((DOCS / "traps.md").read_text(encoding="utf-8"))
    assert len(rows) == len(set(rows)), "a trap has two rows"
    assert set(rows) == set(TRAPS)


def test_api_reference_has_one_entry_per_public_name() -> None:
    entries = API_ENTRY.findall((DOCS / "api.md").read_text(encoding="utf-8"))
    assert len(entries) == len(set(entries)), "a name has two entries"
    assert set(entries) == set(kernel.__all__)


@pytest.mark.parametrize("markdown", MARKDOWN, ids=relative)
def test_paths_named_in_the_docs_exist(markdown: Path) -> None:
    text = markdown.read_text(encoding="utf-8")
    # Links written relative to the Markdown file, e.g. [traps.md](traps.md).
    links = re.findall(r"\]\(([\w./-]+)\)", text)
    missing = [link for link in links if not (markdown.parent / link).exists()]
    # Paths written from the repository root, e.g. `kernel/scheduler.py`.
    missing += [path for path in REPO_PATH.findall(text) if not (ROOT / path).exists()]
    assert not missing


def test_readme_quick_start_is_two_make_targets() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^```\w*\n(.*?)^```$", section, re.MULTILINE | re.DOTALL) == [
        "make demo\nmake test\n"
    ]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:.*\n\t.*examples/02_sleep_then_123\.py$", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)


# -- the tests shown in docs/getting-started.md ------------------------------------------


async def test_an_hour_passes_at_once(virtual_clock: kernel.VirtualClock) -> None:
    start = await kernel.clock()
    await kernel.sleep(3600)
    assert await kernel.clock() - start == 3600.0
    assert virtual_clock.now() == 3600.0


async def test_a_slow_call_times_out(virtual_clock: kernel.VirtualClock) -> None:
    with pytest.raises(kernel.TaskTimeout):
        await kernel.timeout_after(5, kernel.sleep, 3600)
    assert virtual_clock.now() == 5.0


async def tick(queue: kernel.Queue[float]) -> None:
    while True:
        await kernel.sleep(1)
        await queue.put(await kernel.clock())


@pytest.fixture
async def ticks() -> AsyncIterator[kernel.Queue[float]]:
    queue: kernel.Queue[float] = kernel.Queue()
    async with kernel.TaskGroup(wait=None) as group:  # wait=None: cancel it at the end
        await group.spawn(tick, queue)
        yield queue  # the test runs here


async def test_a_tick_comes_every_second(ticks: kernel.Queue[float]) -> None:
    assert [await ticks.get() for _ in range(3)] == [1.0, 2.0, 3.0]
