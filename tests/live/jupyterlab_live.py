"""The chapters with sliders, run in a real JupyterLab and driven by a real browser.

JupyterLab (from .venv) serves a scratch copy of those chapters, with their outputs cleared,
on 127.0.0.1; Debian's Chromium opens each one offline, restarts the kernel and runs every
cell, then moves each live slider with the keyboard. The figure must change and keep its
natural size, every solution must stay collapsed, and no cell may show an error.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.chromium import chromium
from tools.notebooks import error_outputs

ROOT = Path(__file__).resolve().parents[2]
SLIDER_CHAPTERS = [
    path
    for path in sorted((ROOT / "chapters").glob("*.ipynb"))
    if "pglib.slider(" in path.read_text(encoding="utf-8")
]
START_TIMEOUT_S = 120  # JupyterLab's first start on a busy 2-core machine
RUN_ALL_TIMEOUT_S = 600  # every cell of a chapter; Chapter 8 trains for about a minute
SLIDER_TIMEOUT_S = 120  # one slider move: a redraw (Chapter 8 redraws from its stored runs)
SAVE_SETTLE_S = 3  # a save that changes nothing may leave the file as it was
SAVE_TIMEOUT_S = 60  # one save of a notebook with its figures
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Lab:
    url: str
    token: str
    notebooks: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "chapters"
    notebooks.mkdir()
    for path in SLIDER_CHAPTERS:
        # Cleared, so that every output and execution count on screen comes from this run.
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
                # JupyterLab does not update the prompt of a collapsed cell, and the prompts
                # are how this test sees that Run All has finished.
                cell.metadata.pop("jupyter", None)
        nbformat.write(nb, notebooks / path.name)
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Render every cell, not only those on screen, so that all of them can be inspected.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    log = (root / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",  # CI runs as root
            "--LabApp.extension_manager=readonly",  # it would query PyPI
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={notebooks}",
            f"--LabApp.user_settings_dir={root / 'settings'}",
            f"--LabApp.workspaces_dir={root / 'workspaces'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            # Nothing from this user's own Jupyter set-up, and nothing written into it.
            "JUPYTER_CONFIG_DIR": str(root / "config"),
            "JUPYTER_DATA_DIR": str(root / "data"),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{_tail(root)}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in {START_TIMEOUT_S} s:\n{_tail(root)}")
                time.sleep(0.5)
        yield Lab(url, token, notebooks)
    finally:
        server.terminate()  # the server shuts its kernels down on the way out
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _tail(root: Path) -> str:
    return "\n".join((root / "jupyterlab.log").read_text().splitlines()[-30:])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def _prompts(page: Page) -> list[str]:
    return page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()


def _run_all(page: Page, name: str) -> None:
    """Kernel > Restart Kernel and Run All Cells, confirmed; wait until the run has ended."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
    page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel and Run All Cells").click()
    page.locator(".jp-Dialog button.jp-mod-accept").click()
    # Run All queues every cell at once ("[*]"); each gets its number when done. An error
    # ends the run and clears the queued marks, so "no [*] left" means finished either way.
    deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
    while True:
        prompts = _prompts(page)
        if any(re.search(r"\d", p) for p in prompts) and not any("*" in p for p in prompts):
            return
        if time.monotonic() > deadline:
            shot = Path(tempfile.mkdtemp()) / f"{Path(name).stem}.png"
            page.screenshot(path=shot, full_page=True)
            pytest.fail(
                f"{name}: Run All had not finished after {RUN_ALL_TIMEOUT_S} s, prompts "
                f"{prompts}; screenshot: {shot}"
            )
        time.sleep(1)


def _saved(page: Page, lab: Lab, name: str) -> nbformat.NotebookNode:
    """Save the notebook from the browser and read back what JupyterLab wrote.

    JupyterLab writes the file in place, so a read can catch it half-written (empty, or cut
    off). Wait until the file has changed since the save began (or, for a notebook with
    nothing new to save, a few seconds have passed) and parses as a notebook.
    """
    path = lab.notebooks / name
    before = path.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    page.locator(".jp-mod-current.jp-mod-dirty").wait_for(state="detached")
    settled = time.monotonic() + SAVE_SETTLE_S
    deadline = time.monotonic() + SAVE_TIMEOUT_S
    while True:
        try:
            if path.stat().st_mtime_ns != before or time.monotonic() > settled:
                return nbformat.read(path, as_version=4)
        except ValueError:  # nbformat's NotJSONError: caught mid-write
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: JupyterLab did not save it within {SAVE_TIMEOUT_S} s")
        time.sleep(0.2)


def _image_src(page: Page, index: int) -> str:
    return page.locator(".jp-OutputArea .widget-vbox img").nth(index).get_attribute("src") or ""


@pytest.mark.parametrize("path", SLIDER_CHAPTERS, ids=lambda path: path.stem)
def test_run_all_then_move_every_slider(browser: Browser, lab: Lab, path: Path) -> None:
    name = path.name
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        # A workspace of its own, so that no notebook of an earlier test is reopened beside it.
        page.goto(f"{lab.url}/lab/workspaces/{path.stem}/tree/{name}?token={lab.token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=START_TIMEOUT_S * 1000)
        # The kernel named in the status bar and idle: before that, a restart is ignored.
        page.locator(".jp-StatusBar-Widget", has_text="(ipykernel) | Idle").first.wait_for(
            timeout=START_TIMEOUT_S * 1000
        )
        _run_all(page, name)

        nb = _saved(page, lab, name)
        failures = [f"{name}, {ANSI.sub('', report)}" for report in error_outputs(nb)]
        assert failures == [], "error outputs after Run All:\n\n" + "\n\n".join(failures)
        not_run = [
            index
            for index, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and cell.execution_count is None
        ]
        assert not_run == [], f"{name}: cells {not_run} did not run"

        opened = page.evaluate(
            "() => [...document.querySelectorAll('.jp-RenderedMarkdown details')]"
            ".filter(d => d.open).map(d => d.querySelector('summary')?.textContent)"
        )
        assert opened == [], f"{name}: solutions shown open: {opened}"

        expected = sum(
            cell.source.count("pglib.slider(") for cell in nb.cells if cell.cell_type == "code"
        )
        handles = page.locator(".jp-OutputArea .widget-vbox .widget-slider .noUi-handle")
        assert handles.count() == expected, (
            f"{name}: {expected} sliders in the code, {handles.count()} live ones on screen"
        )
        for index in range(expected):
            image = page.locator(".jp-OutputArea .widget-vbox img").nth(index)
            image.scroll_into_view_if_needed()
            size = image.evaluate(
                "img => [img.getBoundingClientRect().width, img.naturalWidth,"
                " img.closest('.jp-OutputArea-output').getBoundingClientRect().width]"
            )
            shown, natural, room = size
            assert abs(shown - min(natural, room)) <= 1, (
                f"{name}, slider {index}: figure shown {shown:.0f} px wide, natural width "
                f"{natural} px in an output {room:.0f} px wide"
            )
            before = _image_src(page, index)
            handles.nth(index).focus()
            page.keyboard.press("ArrowRight")
            try:
                page.wait_for_function(
                    "([i, src]) => document.querySelectorAll("
                    "'.jp-OutputArea .widget-vbox img')[i].src !== src",
                    arg=[index, before],
                    timeout=SLIDER_TIMEOUT_S * 1000,
                )
            except PlaywrightTimeout:
                pytest.fail(
                    f"{name}, slider {index}: ArrowRight did not change the figure within "
                    f"{SLIDER_TIMEOUT_S} s"
                )
        failures = [f"{name}, {ANSI.sub('', r)}" for r in error_outputs(_saved(page, lab, name))]
        assert failures == [], "error outputs after moving the sliders:\n\n" + "\n\n".join(failures)
        assert errors == [], f"{name}: the page raised {errors}"
    finally:
        page.close()
