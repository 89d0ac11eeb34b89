"""Headless Chromium for end-to-end tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

Nothing here downloads a browser: Playwright is pointed at the system Chromium
(``executable_path``).  :func:`chromium` skips the test, with the reason, only
when that binary or the ``playwright`` package is missing; any other failure to
start is a test failure.

:class:`Watch` keeps a browser context honest: every request whose host is not
127.0.0.1 is aborted and recorded (the tests use no network), and it collects
what a person would not see but a test should: console errors (CSP violations
land there), uncaught page errors, failed requests and 4xx/5xx answers to
sub-resources.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = frozenset({"127.0.0.1"})
TIMEOUT_MS = 10_000


def require_browser() -> None:
    """Skip (with the reason) unless Debian's chromium and Playwright for Python are both installed."""
    if not (CHROMIUM.is_file() or shutil.which(str(CHROMIUM))):
        pytest.skip(f"{CHROMIUM} not found: install Debian's 'chromium' package for the browser test")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed: `pip install playwright` (no browser download needed: "
                    f"the test drives {CHROMIUM})")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright Browser) for the duration of the block."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watch:
    """One browser context ("one person's browser") with its requests guarded and its problems recorded."""

    context: Any
    origin: str  # scheme://host:port of the server under test: problems are collected for its pages
    blocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, browser: Any, origin: str) -> Watch:
        context = browser.new_context(java_script_enabled=True, locale="en-GB")
        context.set_default_timeout(TIMEOUT_MS)
        watch = cls(context, origin.rstrip("/"))
        context.route("**/*", watch._guard)
        return watch

    def new_page(self) -> Any:
        page = self.context.new_page()
        page.on("console", lambda msg: self._console(page, msg))
        page.on("pageerror", lambda exc: self._note(page, f"uncaught error: {exc}"))
        page.on("requestfailed", lambda req: self._failed(page, req))
        page.on("response", lambda resp: self._response(page, resp))
        return page

    def close(self) -> None:
        self.context.close()

    def cookies(self) -> list[dict[str, Any]]:
        return list(self.context.cookies())

    # -- listeners -------------------------------------------------------------------

    def _guard(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _ours(self, page: Any) -> bool:
        return page.url.startswith(self.origin + "/")

    def _note(self, page: Any, problem: str) -> None:
        if self._ours(page):
            self.problems.append(f"{page.url}: {problem}")

    def _console(self, page: Any, msg: Any) -> None:
        if msg.type in ("error", "warning"):
            self._note(page, f"console {msg.type}: {msg.text}")

    def _failed(self, page: Any, request: Any) -> None:
        if request.url.startswith(self.origin + "/"):
            self._note(page, f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, page: Any, response: Any) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            self._note(page, f"{response.status} for {response.request.resource_type} {response.url}")
