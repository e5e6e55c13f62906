"""The timeline's HTML page in a real browser: Debian's Chromium, headless, driven by Selenium.

The page is opened from a file, as a student would open it, and checked the way a reader
uses it: it renders with no error in the console, it shows every task of the trace on a row
of its own with its name, and moving the pointer onto a slice shows a tooltip naming the
trap that ended it.

The browser comes from the system: ``apt-get install -y chromium chromium-driver`` (and
Selenium from the ``test`` extra). Without them these tests are skipped -- unless the
environment sets ``KERNEL_REQUIRE_BROWSER=1``, as CI does, and then they fail, saying what
to install. One browser serves the whole module; it is started with the flags that keep a
headless Chromium from reaching for the network (this machine has none), and when the
module is done the test checks that no process of it is left.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kernel.trace.records import Record
from kernel.trace.script import trace
from kernel.trace.timeline import Timeline, build
from kernel.trace.timeline_html import render_html

if TYPE_CHECKING:
    from selenium.webdriver import Chrome as WebDriver  # Chrome's has get_log()
    from selenium.webdriver.remote.webelement import WebElement

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = (
    "install them with: apt-get install -y chromium chromium-driver; "
    "pip install -e '.[test]' (for selenium)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]

MARK = "KERNEL_TIMELINE_BROWSER"  # set in the environment of the browser this module starts

pytestmark = pytest.mark.timeout(30)

# (script, on the adapter?, axis): pages of both axes, of kernel and asyncio tasks.
PAGES = [
    ("examples/05_taskgroup.py", False, "ticks"),
    ("examples/15_asyncio_sleep_then_123.py", True, "time"),
    ("examples/17_asyncio_done_callback.py", True, "ticks"),
]


def missing() -> list[str]:
    """What the browser tests need and this machine lacks."""
    needs = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if importlib.util.find_spec("selenium") is None:
        needs.append("the selenium package")
    return needs


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver | None]:
    """A headless Chromium for the module, or None if it cannot be had (see ``driver``)."""
    if missing():
        yield None
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The mark in the environment finds chromedriver and Chromium's helpers at the end; the
    # configuration home keeps Chromium's crash database out of the user's.
    environment = {**os.environ, MARK: str(profile), "XDG_CONFIG_HOME": str(profile)}
    service = Service(executable_path=str(CHROMEDRIVER), env=environment)
    browser = webdriver.Chrome(service=service, options=options)
    try:
        browser.set_page_load_timeout(10)
        yield browser
    finally:
        browser.quit()
        left = leftovers(str(profile))
        for pid in left:  # ours: started with this test's own profile
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"Chromium processes outlived quit(): {left}"


def leftovers(profile: str, wait: float = 5.0) -> list[int]:
    """The processes of this module's browser still running after ``wait`` seconds: those
    with ``profile`` on their command line (Chromium's) or in their environment (with the
    driver, the helpers that Chromium starts)."""
    marks = (profile.encode(), f"{MARK}={profile}".encode())
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    command = (entry / "cmdline").read_bytes()
                    environment = (entry / "environ").read_bytes()
                    if marks[0] in command or marks[1] in environment:
                        found.append(int(entry.name))
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def driver(chromium: WebDriver | None) -> WebDriver:
    """The browser; or skip the test -- fail it, under KERNEL_REQUIRE_BROWSER=1 -- without."""
    if chromium is not None:
        return chromium
    message = f"the browser tests need {', '.join(missing())}: {INSTALL}"
    if os.environ.get("KERNEL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"KERNEL_REQUIRE_BROWSER=1, but {message}", pytrace=False)
    pytest.skip(message)


def open_page(
    browser: WebDriver, tmp_path: Path, script: str, aio: bool, axis: str
) -> tuple[Timeline, list[Record]]:
    """Write the timeline page of ``script`` to a file and load it."""
    traced = trace(ROOT / script, aio=aio, deterministic=True)
    timeline = build(traced.records, virtual=True)
    page = tmp_path / "timeline.html"
    page.write_text(render_html(timeline, axis=axis, title=script), encoding="utf-8")
    browser.get(page.as_uri())
    return timeline, traced.records


def console_errors(browser: WebDriver) -> list[str]:
    """The errors the page's console has logged since the last call."""
    entries: list[dict[str, Any]] = browser.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]


def tooltip(browser: WebDriver) -> WebElement:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, "tooltip")


def hover(browser: WebDriver, element: WebElement) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    browser.execute_script(
        "arguments[0].scrollIntoView({block: 'center', inline: 'center'})", element
    )
    ActionChains(browser).move_to_element(element).perform()


@pytest.mark.parametrize(("script", "aio", "axis"), PAGES, ids=[p[0].split("/")[1] for p in PAGES])
def test_the_page_renders_and_shows_every_task(
    script: str, aio: bool, axis: str, chromium: WebDriver | None, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser = driver(chromium)
    timeline, records = open_page(browser, tmp_path, script, aio, axis)
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "yes"
    assert console_errors(browser) == []
    # Every task of the trace -- read from the records, not from the timeline -- has a row.
    tasks = [r["task"] for r in records if r["event"] == "spawn"]
    tasks += [r["task"] for r in records if r["event"] == "callback" and r["kind"] == "step"]
    labels = browser.find_elements(By.CSS_SELECTOR, ".row-label")
    shown = [label.text for label in labels]
    assert len(shown) == len(set(shown)) == len(timeline.rows)
    assert set(tasks) <= set(shown)
    assert all(label.is_displayed() for label in labels)
    lanes = browser.find_element(By.CSS_SELECTOR, "svg.lanes")
    assert lanes.size["width"] > 100 and lanes.size["height"] > 40 * len(timeline.rows) / 2
    slices = browser.find_elements(By.CSS_SELECTOR, ".slice")
    assert len(slices) == len(timeline.slices)
    assert set(tasks) <= {s.get_attribute("data-task") for s in slices}


@pytest.mark.parametrize(("script", "aio", "axis"), PAGES, ids=[p[0].split("/")[1] for p in PAGES])
def test_hovering_a_slice_names_its_trap(
    script: str, aio: bool, axis: str, chromium: WebDriver | None, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    browser = driver(chromium)
    timeline, _ = open_page(browser, tmp_path, script, aio, axis)
    rects = browser.find_elements(By.CSS_SELECTOR, ".slice")
    tip = tooltip(browser)
    assert not tip.is_displayed()
    # The first slice, one in the middle, the last: on the time axis they may overlap, so
    # the slice under the pointer is the one the tooltip must name.
    for index in sorted({0, len(rects) // 2, len(rects) - 1}):
        hover(browser, rects[index])
        WebDriverWait(browser, 5).until(lambda _: tip.is_displayed())
        under = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);",
            rects[index],
        )
        expected = timeline.slices[rects.index(under)] if under in rects else None
        assert expected is not None
        text = tip.text
        assert expected.row in text
        assert f"ended on {expected.ended_on}: {expected.call}" in text
        assert f"turn {expected.tick}" in text
    hover(browser, browser.find_element(By.TAG_NAME, "h1"))
    WebDriverWait(browser, 5).until(lambda _: not tip.is_displayed())
    assert console_errors(browser) == []


def test_the_console_check_sees_a_script_error(chromium: WebDriver | None, tmp_path: Path) -> None:
    """The checks above would pass on a page whose script never ran, were it not for this."""
    browser = driver(chromium)
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>null.field;</script>", encoding="utf-8")
    browser.get(page.as_uri())
    assert any("TypeError" in message for message in console_errors(browser))
