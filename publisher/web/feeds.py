"""The feeds folder (``feeds.output``) served under the path of ``feeds.url``.

- Content types: Atom ``application/atom+xml``, RSS ``application/rss+xml``, JSON
  Feed ``application/feed+json``, the XSLT ``text/xsl``, digest web copies
  ``text/html``; anything else by its extension.
- Browsers: a request whose most preferred type is ``text/html`` (what a browser
  sends when someone follows a feed link) gets an Atom or RSS feed as
  ``application/xml``, because browsers offer a download for
  ``application/atom+xml`` / ``application/rss+xml`` but render ``application/xml``
  and apply its ``xml-stylesheet`` (the readable ``feed.xsl`` view).  Feed readers
  ask for the feed types or ``*/*`` and get the registered type.  Both answers
  carry ``Vary: Accept`` and their own ETag.
- Caching: a strong ETag (from a hash of the bytes; cached per file version) and
  Last-Modified; ``If-None-Match`` (which wins when both are sent) or
  ``If-Modified-Since`` answer 304.  GET and HEAD only.
- Safety: no directory listings, no dot files (the temporary files of atomic
  writes), nothing outside the folder (``..``, absolute paths, backslashes, NUL and
  symlinks that lead out are all 404).
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
BROWSER_XML = "application/xml; charset=utf-8"
TYPES = {
    ".json": "application/feed+json; charset=utf-8",
    ".xsl": "text/xsl; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
}
NAMES = {"atom.xml": ATOM, "rss.xml": RSS}
CACHE_CONTROL = "public, max-age=300"
# What a digest's web copy may use: the inline CSS it carries and images; never a script.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; base-uri 'none'; " \
           "form-action 'none'; frame-ancestors 'none'"
# A feed shown to a browser through its XSLT: the same, plus the feed's own stylesheet, which
# Chromium loads under script-src ('self'; without it the page stays blank); never an inline or foreign script.
FEED_VIEW_CSP = PAGE_CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self';")
CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Version:
    """What is known about one version of a file (same inode, mtime and size)."""

    etag: str  # the quoted strong ETag
    content_type: str


class FeedFiles:
    """Serves one folder; remembers the ETag and type of each file version it has read."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._versions: dict[tuple[int, int, int, str], Version] = {}

    async def endpoint(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self.respond, request.path_params.get("path", ""), request.method,
                                       request.headers)

    def respond(self, relative: str, method: str, headers: Any) -> Any:
        from starlette.responses import PlainTextResponse, Response

        found = self.open(relative)
        if found is None:
            return PlainTextResponse("Not Found\n", 404)
        data, info, version = found
        browser = version.content_type in (ATOM, RSS) and prefers_html(headers.get("accept", ""))
        etag = version.etag[:-1] + '-html"' if browser else version.etag
        answer = {"ETag": etag, "Last-Modified": email.utils.formatdate(info.st_mtime, usegmt=True),
                  "Cache-Control": CACHE_CONTROL}
        if version.content_type in (ATOM, RSS):
            answer["Vary"] = "Accept"
        if not_modified(headers, etag, info.st_mtime):
            return Response(status_code=304, headers=answer)
        answer["Content-Type"] = BROWSER_XML if browser else version.content_type
        answer["X-Content-Type-Options"] = "nosniff"
        if browser or version.content_type.startswith("text/html"):
            answer["Content-Security-Policy"] = FEED_VIEW_CSP
        answer["Content-Length"] = str(len(data))
        return Response(b"" if method == "HEAD" else data, headers=answer)

    def open(self, relative: str) -> tuple[bytes, os.stat_result, Version] | None:
        """The file's bytes, stat and version, or None when it is not a file this folder serves."""
        path = self.locate(relative)
        if path is None:
            return None
        try:
            with path.open("rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    return None
                data = handle.read()
        except OSError:  # missing, a directory, unreadable
            return None
        return data, info, self._version(path, info, data)

    def locate(self, relative: str) -> Path | None:
        """The path inside the folder for a URL path, or None when it is not allowed."""
        parts = relative.split("/")
        if not relative or "\\" in relative or "\x00" in relative or any(
                part in ("", ".", "..") or part.startswith(".") for part in parts):
            return None
        root = self.root.resolve()
        path = (root / Path(*parts)).resolve()
        return path if path.is_relative_to(root) and path != root else None

    def _version(self, path: Path, info: os.stat_result, data: bytes) -> Version:
        key = (info.st_ino, info.st_mtime_ns, info.st_size, str(path))
        version = self._versions.get(key)
        if version is None:
            if len(self._versions) >= CACHE_SIZE:
                self._versions.clear()
            version = Version(f'"{hashlib.sha256(data).hexdigest()[:32]}"', content_type(path.name, data))
            self._versions[key] = version
        return version


def content_type(name: str, data: bytes) -> str:
    """The type a feeds-folder file is served with (Atom and RSS told apart by name, else by root element)."""
    if name in NAMES:
        return NAMES[name]
    suffix = Path(name).suffix.lower()
    if suffix == ".xml":
        head = data[:2048]
        return ATOM if b"<feed" in head else RSS if b"<rss" in head else TYPES[".xml"]
    if suffix == ".json" and name != "feed.json":
        return "application/json"
    guessed = TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guessed + "; charset=utf-8" if guessed.startswith("text/") and "charset" not in guessed else guessed


def prefers_html(accept: str) -> bool:
    """Whether the Accept header's most preferred type (highest q, first listed) is text/html."""
    best, best_q = None, -1.0
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > best_q:
            best, best_q = media.lower(), q
    return best == "text/html"


def not_modified(headers: Any, etag: str, mtime: float) -> bool:
    """RFC 9110 13.1: If-None-Match decides when present (weak comparison); else If-Modified-Since."""
    none_match = headers.get("if-none-match")
    if none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in none_match.split(",")]
        return "*" in tags or etag in tags
    since = headers.get("if-modified-since")
    if not since:
        return False
    try:
        when = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    return when.tzinfo is not None and int(mtime) <= when.timestamp()


def mount_path(config: Any) -> str:
    """The URL path the feeds are served under ("/feeds" for https://example.com/feeds/)."""
    return urlsplit(config.feeds_url).path.rstrip("/")


def routes(ctx: Any) -> list[Any]:
    """``GET``/``HEAD`` ``<path of feeds.url>/<file>``: an absolute path, mounted at the app's root.

    When ``feeds.url`` lies under ``web.url`` the route must come before the base path's Mount
    (which would otherwise take the request); when its path is ``/`` it matches everything and
    must come last.
    """
    from starlette.routing import Route

    files = FeedFiles(ctx.config.output_dir)
    return [Route(mount_path(ctx.config) + "/{path:path}", files.endpoint, methods=["GET", "HEAD"], name="feeds")]
