"""Fixtures for the browser tests: the built book served on 127.0.0.1, and Debian's Chromium
started so that every off-machine host is unresolvable (the book must work offline)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.chromium import chromium

SITE = Path(__file__).resolve().parents[2] / "_build" / "html"


def site_pages() -> list[str]:
    """Every HTML page of the built book, relative to the site root."""
    if not (SITE / "index.html").is_file():
        pytest.fail(f"No built book at {SITE}; run `make build` (or `make book`) first.")
    skip = {"_static", "_sources", "_images", "mathjax"}
    return sorted(
        path.relative_to(SITE).as_posix()
        for path in SITE.rglob("*.html")
        if not skip.intersection(path.relative_to(SITE).parts)
    )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output free of one access-log line per request."""


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser
