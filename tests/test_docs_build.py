"""The documentation site builds: ``mkdocs build --strict`` with the course chapters in it.

mkdocs.yml at the repository's root lists the pages (``nav``); ``--strict`` turns every
warning into an error, so a link to a page that does not exist, or a page in ``nav`` that
is missing, fails the build. The build runs in a subprocess, into a temporary folder.

mkdocs is in the ``test`` extra (and the ``docs`` one); without it the test is skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "docs" / "course").glob("[0-9][0-9]-*.md"))


def test_the_docs_build_with_the_course_in_them(tmp_path: Path) -> None:
    pytest.importorskip(
        "mkdocs", reason="mkdocs is not installed: pip install -e '.[docs]' to build the docs"
    )
    site = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    home = (site / "index.html").read_text(encoding="utf-8")
    assert (site / "course" / "index.html").exists()
    assert len(CHAPTERS) == 10
    for chapter in CHAPTERS:
        page = site / "course" / chapter.stem / "index.html"
        assert page.exists(), f"{chapter.name} is not in the site"
        assert f"course/{chapter.stem}/" in home, f"{chapter.name} is not in the navigation"
