"""Every page of the built book, opened offline in a real browser.

For each page: no JavaScript or console errors, math rendered by the locally served MathJax,
every image loaded, every internal link (anchors included) resolving, and no request leaving
the machine. Sliders are moved and must change their figure.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
from conftest import SITE, site_pages
from playwright.sync_api import Browser, Page

PAGES = site_pages()
CHAPTER_NOTEBOOKS = sorted(Path(SITE.parents[1], "chapters").glob("*.ipynb"))


class _Ids(HTMLParser):
    """Collects every id (and legacy name anchor) of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value or "")


def _ids_of(relative_path: str) -> set[str]:
    parser = _Ids()
    parser.feed((SITE / relative_path).read_text(encoding="utf-8"))
    return parser.ids


def _open(browser: Browser, url: str) -> tuple[Page, list[str], list[str]]:
    """Open ``url``; return the page, the errors it logged and its off-machine requests."""
    page = browser.new_page()
    errors: list[str] = []
    offsite: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console.{message.type}: {message.text}")
            if message.type in ("error", "warning")
            and "Download the React DevTools" not in message.text
            else None
        ),
    )

    def record(request) -> None:
        host = urlparse(request.url).hostname
        if request.url.startswith(("data:", "blob:", "about:")):
            return
        if host != "127.0.0.1":
            offsite.append(request.url)

    page.on("request", record)
    page.on(
        "response",
        lambda response: (
            errors.append(f"HTTP {response.status}: {response.url}")
            if response.status >= 400
            else None
        ),
    )
    page.goto(url, wait_until="networkidle")
    # MathJax typesets asynchronously; its startup promise settles when it is done.
    page.evaluate(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
        " ? MathJax.startup.promise : null"
    )
    page.wait_for_load_state("networkidle")
    return page, errors, offsite


@pytest.mark.parametrize("path", PAGES)
def test_page_works_offline(browser: Browser, base_url: str, path: str) -> None:
    page, errors, offsite = _open(browser, base_url + path)
    try:
        assert errors == [], f"{path} logged errors: {errors}"

        unrendered = page.evaluate(
            """() => [...document.querySelectorAll('.math')]
                   .filter(el => !el.querySelector('mjx-container'))
                   .map(el => el.textContent.slice(0, 60))"""
        )
        assert unrendered == [], f"{path}: math left as raw TeX: {unrendered}"
        assert page.locator("mjx-merror").count() == 0, f"{path}: MathJax reported a TeX error"
        visible_text = page.evaluate("() => document.querySelector('main, body').innerText")
        assert "$$" not in visible_text, f"{path}: raw $$ in the rendered text"

        broken = page.evaluate(
            """() => [...document.images]
                   .filter(img => !(img.complete && img.naturalWidth > 0))
                   .map(img => img.getAttribute('src').slice(0, 80))"""
        )
        assert broken == [], f"{path}: images that did not load: {broken}"

        hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
        for href in hrefs:
            target, anchor = urldefrag(href)
            if urlparse(target).hostname != "127.0.0.1":
                continue  # outside links are for readers online; none is fetched here
            relative = urlparse(target).path.lstrip("/") or "index.html"
            if relative.endswith("/"):
                relative += "index.html"
            assert (SITE / relative).is_file(), f"{path}: link to missing page {relative}"
            if anchor and relative.endswith(".html"):
                assert anchor in _ids_of(relative), f"{path}: link to missing anchor {href}"

        assert offsite == [], f"{path}: requests left the machine: {offsite}"
    finally:
        page.close()


@pytest.mark.parametrize("notebook", [nb.stem for nb in CHAPTER_NOTEBOOKS])
def test_chapter_has_colab_button(browser: Browser, base_url: str, notebook: str) -> None:
    page, _, _ = _open(browser, urljoin(base_url, f"chapters/{notebook}.html"))
    try:
        links = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
        colab = [
            link for link in links if link.startswith("https://colab.research.google.com/github/")
        ]
        assert any(link.endswith(f"/chapters/{notebook}.ipynb") for link in colab), (
            f"chapters/{notebook}.html has no Open-in-Colab link to its notebook: {colab}"
        )
    finally:
        page.close()


def _frame_of(page: Page, slider_id: str) -> str:
    return page.evaluate(
        "id => document.getElementById(id).closest('figure, div').querySelector('img').src",
        slider_id,
    )


SLIDER_PAGES = [
    p for p in PAGES if re.search(r'type="range"', (SITE / p).read_text(encoding="utf-8"))
]


@pytest.mark.parametrize("path", SLIDER_PAGES)
def test_every_slider_changes_its_figure(browser: Browser, base_url: str, path: str) -> None:
    page, errors, _ = _open(browser, base_url + path)
    try:
        sliders = page.locator("input[type=range]")
        assert sliders.count() > 0
        for index in range(sliders.count()):
            slider = sliders.nth(index)
            assert slider.get_attribute("aria-label"), f"{path}: slider {index} has no aria-label"
            slider_id = slider.get_attribute("id")
            before = _frame_of(page, slider_id)
            slider.focus()
            page.keyboard.press("End")  # keyboard access: the last precomputed frame
            after = _frame_of(page, slider_id)
            assert after != before, f"{path}: moving slider {slider_id} did not change its figure"
        assert errors == [], f"{path} logged errors while sliding: {errors}"
    finally:
        page.close()
