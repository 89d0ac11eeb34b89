"""A first build renders the posts its main feed will show in a helper process while it writes the database.

A first build inserts ten thousand rows and then renders the twenty newest
posts, both on one core.  Once every row is known (just before the insert),
the newest visible posts are known too: a forked helper
(:mod:`publisher.forked`) renders them, sanitized, as
:meth:`publisher.build.Builder.rendered_html` does, while the parent writes the
database.  From the console script, that helper is the one that read part of
the posts ahead (:class:`publisher.sync.ReadAhead`): the build asks it as soon
as its own part is read, with that part's newest posts, and the helper adds its
own part's (:func:`ask_early`, :class:`Renders`).  When the build then renders
a post, it takes the helper's HTML if the helper rendered that very file
content at that very URL (:meth:`Prerendered.take`), and renders it itself
otherwise: a wrong guess costs time, never a difference.  The warnings the helper's renders logged are
logged again by the parent as each render is taken, so they appear where a
render in the parent would have logged them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
import logging
import os
from typing import TYPE_CHECKING, Any

from publisher import forked

if TYPE_CHECKING:
    from publisher.build import Builder
    from publisher.sync import ReadAhead

#: From this many new rows, a first build renders in a helper (when :func:`forked.worth_forking`).
PRERENDER_FROM = 1000

Key = str  # path, content hash and URL of a render, joined by NULs


def _key(path: str, digest: str, url: str) -> Key:
    return f"{path}\0{digest}\0{url}"


class Prerendered:
    """The renders of a helper process, taken one by one (``fetch``: gets them all, None on failure; ``stop``:
    stops the helper if they were never needed)."""

    def __init__(self, fetch: Callable[[], Any], stop: Callable[[], object] | None = None) -> None:
        self._fetch: Callable[[], Any] | None = fetch
        self._stop = stop
        self._renders: dict[Key, Any] = {}

    def take(self, path: str, digest: str, url: str) -> tuple[str, str] | None:
        """The sanitized HTML and summary of ``path`` with content hash ``digest`` at ``url``, or None when the
        helper did not render exactly that (its warnings are logged now)."""
        if self._fetch is not None:
            self._renders = self._fetch() or {}
            self._fetch = None
        found = self._renders.pop(_key(path, digest, url), None)
        if found is None:
            return None
        html, summary, records = found
        for name, level, message in records:
            logging.getLogger(name).log(level, "%s", message)
        return html, summary

    def close(self) -> None:
        """Stop the helper if its renders were never needed."""
        if self._fetch is not None and self._stop is not None:
            self._stop()
        self._fetch = None


def start(builder: Builder, rows: list[dict[str, Any]]) -> Prerendered | None:
    """Render in a new helper the newest posts among ``rows`` (about to be inserted into an empty database, in
    id order, with their entry IDs: those without one are not visible); None when not worth it.  (A build whose
    read-ahead helper renders asks it instead: :func:`ask_early`.)"""
    if len(rows) < PRERENDER_FROM or not forked.worth_forking():
        return None
    limit = builder.config.feeds.entries
    chosen = [(row["path"], builder.post_url(row))
              for _, _, row in _newest(rows, 0, limit, lambda row: row["entry_id"] is not None)]
    helper = forked.Helper(lambda: _render_all(builder, chosen))
    return Prerendered(helper.result, helper.stop)


def ask_early(builder: Builder, rows: list[dict[str, Any]], ahead: ReadAhead, now: datetime) -> Prerendered | None:
    """Ask the read-ahead helper of a first build to render the newest posts of the whole build as soon as it
    has read its part, given ``rows``, the part read here (the first), and the time of the build; None when it
    can't be asked.  The helper adds its own part's newest to those of ``rows`` sent with the request."""
    from publisher.build import visible_new
    from publisher.snapshot import take

    kinds, limit = builder.config.posts.kinds, builder.config.feeds.entries
    ours = [(_micros(created), n, row["path"], builder.post_url(row))
            for created, n, row in _newest(rows, 0, limit, lambda row: visible_new(row, kinds, now))]
    return Prerendered(ahead.answer) if ahead.ask((take(builder.config), _micros(now), len(rows), ours)) else None


def _newest(rows: list[dict[str, Any]], first: int, limit: int,
            visible: Callable[[dict[str, Any]], bool]) -> list[tuple[datetime, int, dict[str, Any]]]:
    """(created_at, position, row) of the ``limit`` newest visible ``rows``, newest first; positions from ``first``
    (the later of two posts created at the same time is the newer, as the feeds order them)."""
    return heapq.nlargest(limit, ((row["created_at"], first + n, row) for n, row in enumerate(rows) if visible(row)),
                          key=lambda item: item[:2])


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class Renders:
    """The service of a read-ahead helper (:class:`publisher.sync.ReadAhead`): it renders the newest posts of a
    first build, with the config snapshot the request carries (it started before the config was validated).

    A request is (snapshot values, the build's time in microseconds, the number of rows read before the
    helper's, the newest of those as (created, position, path, URL)); the helper adds the newest of its own
    rows, visible at that time, before choosing."""

    def warm_up(self) -> None:
        """Import what rendering takes (Jinja too: the newest posts often have ERB tags), while the build does not
        need the helper yet."""
        import jinja2  # noqa: F401

        from publisher import build, render, sanitize  # noqa: F401

        render.warm_up()

    def __call__(self, request: Any, rows: list[dict[str, Any]]) -> dict[Key, Any]:
        from publisher.build import Builder, visible_new
        from publisher.snapshot import Snapshot

        values, now, first, chosen = request
        builder = Builder(Snapshot(values))
        limit, kinds, at = builder.config.feeds.entries, builder.config.posts.kinds, _EPOCH + _MICROSECOND * now
        ours = [(_micros(created), n, row["path"], builder.post_url(row))
                for created, n, row in _newest(rows, first, limit, lambda row: visible_new(row, kinds, at))]
        newest = heapq.nlargest(limit, [*map(tuple, chosen), *ours], key=lambda item: item[:2])
        return _render_all(builder, [(path, url) for _, _, path, url in newest])


class _Records(logging.Handler):
    """Collects what is logged (in the helper, instead of writing it)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _render_all(builder: Builder, chosen: list[tuple[str, str]]) -> dict[Key, Any]:
    """In the helper: each post's HTML, summary and the log records of its render, by :func:`_key`."""
    from publisher.errors import PostError
    from publisher.posts import read_post
    from publisher.sync import content_hash

    collected = _Records()
    ours = logging.getLogger("publisher")
    ours.handlers[:], ours.propagate = [collected], False
    logging.getLogger().handlers[:] = [collected]
    renders = {}
    config = builder.config
    for path, url in chosen:
        source = os.path.join(str(config.posts_root), path)
        try:
            with open(source, "rb") as handle:
                data = handle.read()
            post = read_post(path, data, os.stat(source).st_mtime, tz=config.site.tz, source=source)
            html, summary = builder.rendered_html(post, url)
        except (OSError, PostError):
            collected.records.clear()
            continue  # the parent renders it, and says what is wrong
        renders[_key(path, content_hash(data), url)] = (html, summary, list(collected.records))
        collected.records.clear()
    return renders
