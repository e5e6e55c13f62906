"""The course (docs/course/) shows output that its commands really print, today.

A chapter pairs each output with the command that makes it: a ```sh block holding one
command, then one or more ```text blocks -- the whole output, or a slice of whole lines of it
(a few steps of a narration). The command of a ```text block is the nearest ```sh block
above it. This file runs every command and checks that every ```text block is, line for
line, a contiguous part of what the command printed, so a change to the kernel, to an
example or to a view that changes what a student would see fails here until the chapter is
brought up to date. The failure shows the fresh output, to paste from.

Two kinds of command:

* ``python -m kernel VIEW FILE --deterministic ...`` -- explain, timeline, compare -- run in
  this process through ``kernel.__main__.main(argv)``, on the virtual clock (compare exits
  with 1 when the schedules diverge, as diff does; that is a result, not a failure);
* ``python FILE.py`` -- a program of examples/, run as a script, in a subprocess, as a
  student would run it, but on virtual time (``VIRTUAL_TIME`` below): ``kernel.run`` gets a
  ``VirtualClock``, and the toy scheduler a clock that jumps when its ``select()`` would
  wait. The times they print are then exact, however busy the machine. All of them are
  started at once, so the set takes about as long as the slowest one.

The programs about blocking for real (``REAL_TIME``) run on the real clock, and one thing in
them is compared loosely: the number of seconds in the kernel's slow-step warning ("ran for
0.40 s").

The ```python blocks of the course are checked by tests/test_docs.py, like those of every
other page: each is a verbatim piece of a file under examples/, tests/ or kernel/.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import kernel.__main__ as cli

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "docs" / "course"
CHAPTERS = sorted(COURSE.glob("[0-9][0-9]-*.md"))
PROGRAMS = sorted((ROOT / "examples" / "course").glob("*.py"))

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# Real time, printed by the slow-step warning: compared as "some number of seconds".
REAL_SECONDS = re.compile(r"ran for \d+\.\d+ s")
SCRIPT_TIMEOUT = 60.0

# Scripts whose point is real time passing while a task blocks: they keep the real clock.
REAL_TIME = {"examples/20_blocking_call.py", "examples/course/hog.py"}

# Run a script as __main__ with virtual time: kernel.run on a VirtualClock, and for the toy
# scheduler (which reads time.monotonic and waits in select.select) a clock that moves only
# when select() would have waited -- by the whole timeout, at once.
VIRTUAL_TIME = """
import runpy, select, sys, time
import kernel, kernel.scheduler
from kernel.clock import VirtualClock

real_run = kernel.scheduler.run
def run(*args, clock=None, **options):
    return real_run(*args, clock=VirtualClock() if clock is None else clock, **options)
kernel.run = kernel.scheduler.run = run

now = [1000.0]
real_select = select.select
def virtual_select(r, w, x, timeout=None):
    ready = real_select(r, w, x, 0)
    if not any(ready):
        if timeout is None:
            return real_select(r, w, x)
        now[0] += timeout
    return ready
select.select = virtual_select
time.monotonic = lambda: now[0]

path = sys.argv[1]
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""


@dataclass(frozen=True)
class Shown:
    """One ```text block of a chapter, and the command that prints it."""

    chapter: str
    number: int  # its place among the chapter's ```text blocks, from 1
    command: str
    text: str


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def blocks(markdown: Path) -> list[tuple[str, str]]:
    """(language, content) of every fenced block, in order."""
    return FENCE.findall(markdown.read_text(encoding="utf-8"))


def shown() -> list[Shown]:
    found = []
    for chapter in CHAPTERS:
        command = None
        number = 0
        for language, content in blocks(chapter):
            if language == "sh":
                command = content.strip()
            elif language == "text":
                number += 1
                assert command is not None, f"{relative(chapter)}: output with no command above"
                found.append(Shown(relative(chapter), number, command, content))
    return found


def commands() -> list[str]:
    return sorted({block.command for block in shown()})


def is_script(command: str) -> bool:
    return not command.startswith("python -m kernel ")


def comparable(text: str) -> str:
    return REAL_SECONDS.sub("ran for N s", text)


def contains_lines(output: str, excerpt: str) -> bool:
    """Is ``excerpt`` a run of whole, consecutive lines of ``output``?"""
    return ("\n" + excerpt) in ("\n" + output)


# -- the shape of the course -----------------------------------------------------------------


def test_ten_numbered_chapters_listed_in_order_by_the_index() -> None:
    assert [path.name[:2] for path in CHAPTERS] == [f"{n:02}" for n in range(1, 11)]
    index = (COURSE / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((\d\d-[\w-]+\.md)\)", index)
    assert list(dict.fromkeys(links)) == [path.name for path in CHAPTERS]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_each_chapter_quotes_code_shows_output_and_ends_with_exercises(chapter: Path) -> None:
    languages = [language for language, _ in blocks(chapter)]
    assert set(languages) <= {"python", "sh", "text"}, "a block no test checks"
    assert "python" in languages and "text" in languages
    text = chapter.read_text(encoding="utf-8")
    assert text.startswith(f"# {int(chapter.name[:2])}. ")
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert headings[-1] == "Exercises"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.name)
def test_every_command_is_one_line_a_student_can_type(chapter: Path) -> None:
    for language, content in blocks(chapter):
        if language != "sh":
            continue
        command = content.strip()
        assert "\n" not in command, command
        argv = shlex.split(command)
        assert argv[0] == "python", command
        if is_script(command):
            assert len(argv) == 2 and (ROOT / argv[1]).is_file(), command
        else:
            # The views print the same thing on every run only on the virtual clock.
            assert argv[3] in cli.SUBCOMMANDS and "--deterministic" in argv, command
            assert (ROOT / argv[4]).is_file(), command


def test_every_course_program_is_run_by_a_chapter_as_a_script() -> None:
    missing = {f"python {relative(program)}" for program in PROGRAMS} - set(commands())
    # (The toy scheduler also has tests of its own: tests/test_toy_scheduler.py.)
    assert missing == set(), "a program of examples/course/ that no chapter runs"


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda path: path.name)
def test_course_program_says_what_it_teaches_and_what_to_read_next(program: Path) -> None:
    source = program.read_text(encoding="utf-8")
    docstring = source.split('"""')[1]
    assert re.match(r"Course, chapter \d+ -- ", docstring)
    assert "What it teaches:" in docstring
    next_step = docstring.split("Read next:")[1].split()[0].rstrip(",.")
    assert (ROOT / next_step).exists(), next_step


# -- the outputs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scripts() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Start every script the chapters run, all at once; each test collects its own."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    processes = {
        command: subprocess.Popen(
            [sys.executable, "-W", "error", *_launch(shlex.split(command)[1:])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for command in commands()
        if is_script(command)
    }
    try:
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.communicate()


def _launch(argv: list[str]) -> list[str]:
    """The script and its arguments, run on virtual time unless it is about real time."""
    return argv if argv[0] in REAL_TIME else ["-c", VIRTUAL_TIME, *argv]


def run(
    command: str,
    scripts: dict[str, subprocess.Popen[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """What ``command`` prints: a script in its subprocess, a view in this process."""
    if is_script(command):
        process = scripts[command]
        try:
            out, err = process.communicate(timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"{command} still running after {SCRIPT_TIMEOUT}s")
        assert (process.returncode, err) == (0, "")
        return out
    monkeypatch.chdir(ROOT)
    status = cli.main(shlex.split(command)[3:])
    out, err = capsys.readouterr()
    assert err == ""
    # compare answers like diff: 1 when the schedules diverge, which a chapter may show.
    assert status == 0 or (command.startswith("python -m kernel compare ") and status == 1)
    return out


@pytest.mark.parametrize("command", commands())
def test_pasted_output_is_what_the_command_prints(
    command: str,
    scripts: dict[str, subprocess.Popen[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = comparable(run(command, scripts, capsys, monkeypatch))
    for block in shown():
        if block.command == command:
            assert contains_lines(output, comparable(block.text)), (
                f"text block {block.number} of {block.chapter} is not part of what "
                f"`{command}` prints now. Its output:\n{output}"
            )
