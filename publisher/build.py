"""A build: scan the posts, bring the state database up to date, render what the
feeds show, and write the feeds that changed.

Data flows one way: posts folder -> state database -> rendered entries -> feed
files.  A build with nothing changed is recognised from the build stamp and
does no more than a directory scan.

A Builder reads its settings from a validated :class:`publisher.config.Config`
or from the stamp's :class:`publisher.snapshot.Snapshot` of one, and keeps its
posts in a :class:`publisher.state.Store` or a
:class:`publisher.litestore.LiteStore` (``publisher build`` with a few changed
posts uses the latter two: see :mod:`publisher.quickbuild`).

A first build shares its work with helper processes where it can: one reads
part of the posts (:mod:`publisher.sync`), one renders the newest while the
database is written (:mod:`publisher.prerender`).
"""

from __future__ import annotations

import fcntl
import importlib
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher import __version__, prerender, stamp
from publisher.clock import Clock
from publisher.errors import PostError, PublisherError
from publisher.feedset import STYLESHEET, FeedSpec, author_name, feed_specs
from publisher.ids import EntryIds
from publisher.links import author_url, post_url
from publisher.output import Writer
from publisher.resources import template_dir
from publisher.scan import FileStat, scan_posts
from publisher.sync import ProgressFactory, ReadAhead, SyncResult, content_hash, no_progress, sync

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.litestore import LiteStore
    from publisher.snapshot import Snapshot
    from publisher.state import Store

log = logging.getLogger(__name__)

EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=timezone.utc)


class BuildLocked(PublisherError):
    """Another build holds the lock on this state folder."""


@dataclass
class BuildReport:
    fresh: bool = False  # nothing had changed: nothing was read, rendered or written
    sync: SyncResult = field(default_factory=SyncResult)
    published: int = 0
    rendered: int = 0
    written: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    discovery: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def errors(self) -> list[str]:
        return self.sync.errors

    def line(self) -> str:
        """The one log line per build."""
        s = self.sync
        if self.fresh:
            return stamp.nothing_changed_line(s.scanned, self.elapsed)
        return (f"build: {s.scanned} scanned, {s.new} new, {s.changed} changed, {s.renamed} renamed, "
                f"{s.deleted} deleted, {len(s.errors)} errors, {self.published} published, "
                f"{self.rendered} rendered, {len(self.written)} of {len(self.outputs)} files written "
                f"in {self.elapsed:.2f}s")


class Builder:
    """Builds one site; keeps its database connection and renderer between builds (the daemon reuses it)."""

    def __init__(self, config: Config | Snapshot, *, clock: Clock | None = None,
                 progress: ProgressFactory = no_progress, store: Store | LiteStore | None = None,
                 read_ahead: ReadAhead | None = None):
        """``read_ahead``: the posts a first build reads, partly read ahead (used by the first build if it can be,
        see :class:`publisher.sync.ReadAhead`)."""
        self.config = config
        self.clock = clock or Clock()
        self.progress = progress
        self._store = store
        self._renderer: Any = None
        self._prerendered: prerender.Prerendered | None = None  # a first build's renders from a helper
        self._read_ahead = read_ahead
        self._importing: threading.Thread | None = None  # a first build's import of the feed writers
        self._config_hash: str | None = None  # the config file's, at the first build (see stamp.config_digest)

    @property
    def store(self) -> Store | LiteStore:
        if self._store is None:
            from publisher.state import Store

            self._store = Store(self.config.database_url, clock=self.clock)
            self._store.migrate()
        return self._store

    def close(self) -> None:
        self._stop_helpers()
        if self._store is not None:
            self._store.close()
            self._store = None

    def build(self, *, force: bool = False, scanned: stamp.Look | None = None,
              started: float | None = None) -> BuildReport:
        """Build once; ``scanned``: the posts folder as just scanned (default: scan it), ``started``: when the
        build began by :func:`time.perf_counter` (default: now)."""
        started = time.perf_counter() if started is None else started
        now = self.clock.now()
        if scanned is None:
            stats = self._scan()
            inputs = stamp.inputs_digest(self.config, stats)
        else:
            stats, inputs = scanned.stats, scanned.inputs
        if self._config_hash is None:
            self._config_hash = stamp.config_digest(self.config)
        if not force and stamp.is_fresh(self.config, self._config_hash, inputs, now):
            report = BuildReport(fresh=True, sync=SyncResult(scanned=len(stats)))
        else:
            with build_lock(self.config):
                changed = None if force else self._changed(stats, scanned)
                stamp.forget(self.config)
                report = self._full_build(stats, now, changed)
                next_due = self.store.next_due(now, self.config.posts.kinds)
                if not report.sync.unread:  # an unreadable file must be read again next time, not skipped as "fresh"
                    stamp.save(self.config, self._config_hash, inputs, report.outputs, next_due, stats)
        report.elapsed = time.perf_counter() - started
        return report

    def _scan(self) -> list[FileStat]:
        """The posts folder now (as a first build's read-ahead helper scanned it, when it scanned this one)."""
        root, folders = self.config.posts_root, self.config.posts.folders
        stats = self._read_ahead.scanned(root, folders) if self._read_ahead is not None else None
        return scan_posts(root, folders) if stats is None else stats

    def _changed(self, stats: list[FileStat], scanned: stamp.Look | None) -> set[str] | None:
        """The paths changed since the stamped build (None: unknown); as ``scanned`` found them if the stamp it
        compared with is still the stamp (no other build came between)."""
        if scanned is not None and scanned.changed is not None and stamp.current(self.config) == scanned.stamp:
            return scanned.changed
        return stamp.changed_since(self.config, stats)

    def _full_build(self, stats: list[FileStat], now: datetime, changed: set[str] | None) -> BuildReport:
        try:
            return self._build_all(stats, now, changed)
        finally:
            self._stop_helpers()

    def _stop_helpers(self) -> None:
        """Stop the helper processes of a first build whose work was not taken (it never is twice), and wait for
        its import thread (long done by now: no thread outlives a build)."""
        for helper in (self._prerendered, self._read_ahead):
            if helper is not None:
                helper.close()
        self._prerendered = self._read_ahead = None
        self._imported()

    def _import_feed_writers(self) -> None:
        self._importing = _import_feed_writers()

    def _imported(self) -> None:
        """Wait for the import thread, if any: while it runs, each call that lets go of the interpreter lock
        (every database call) may wait for it to take turns (5 ms)."""
        if self._importing is not None:
            self._importing.join()
            self._importing = None

    def _build_all(self, stats: list[FileStat], now: datetime, changed: set[str] | None) -> BuildReport:
        config = self.config
        report = BuildReport()
        report.sync, published_early = self._sync(stats, now, changed)
        report.published = published_early + self._publish(now)
        specs = feed_specs(config, self.store)
        selections = {spec.key: self.store.feed_rows(now, config.posts.kinds, config.feeds.entries, **spec.match)
                      for spec in specs}
        entries = self._entries(selections, now, report)
        self._write(specs, selections, entries, report)
        self.store.record_build(started_at=now, finished_at=self.clock.now(), scanned=report.sync.scanned,
                                parsed=report.sync.parsed, rendered=report.rendered, deleted=report.sync.deleted,
                                errors=len(report.sync.errors), written=len(report.written))
        return report

    def _sync(self, stats: list[FileStat], now: datetime, changed: set[str] | None) -> tuple[SyncResult, int]:
        """The sync, and how many posts it published (a first build's posts get their entry IDs as inserted, and
        the newest are rendered in a helper meanwhile); ``changed``: the only paths that can differ from what the
        database holds (None: any)."""
        config = self.config
        published: list[str] = []
        taken: set[str] = set()
        new_rows: list[dict[str, Any]] = []

        def publish(rows: list[dict[str, Any]], *, last: bool) -> None:
            first = not new_rows
            if first and not last and self._read_ahead is not None:  # the read-ahead renders as soon as it can
                self._prerendered = prerender.ask_early(self, rows, self._read_ahead, now)
            published.extend(self._publish_new(rows, now, taken))
            new_rows.extend(rows)
            if last and self._prerendered is None:
                self._prerendered = prerender.start(self, new_rows)

        result = sync(self.store, config.posts_root, stats, tz=config.site.tz, now=now, progress=self.progress,
                      publish=publish, ahead=self._read_ahead, changed=changed, committing=self._import_feed_writers)
        self._imported()  # what is left of the import, now: each database call would wait for the thread
        return result, len(published)

    # -- publishing: entry IDs are made once and kept -----------------------

    def _publish(self, now: datetime) -> int:
        config = self.config
        ids = EntryIds(config.feeds.entry_id, config.site.url)
        with self.store.begin() as conn:
            rows = self.store.unpublished(conn, now, config.posts.kinds)
            if not rows:
                return 0
            taken = self.store.entry_ids(conn)
            make, url = ids.make, self.post_url
            updates = [{"id": row.id, "first_published_at": now,
                        "entry_id": _unique(make(url=partial(url, row), name=row.name, kind=row.kind,
                                                 created=row.created_local), taken)}
                       for row in rows]
            self.store.update_posts(conn, updates)
        return len(updates)

    def _publish_new(self, rows: list[dict[str, Any]], now: datetime, taken: set[str]) -> list[str]:
        """Entry IDs for the rows about to be inserted into an EMPTY database, exactly as :meth:`_publish` would
        make them after the insert (the rows get ids in this order; ``taken``: the IDs of the rows inserted
        before them, to which the IDs made are added); the IDs made.

        Every row gets ``entry_id`` and ``first_published_at`` (None for a post not visible yet), so that the
        first build inserts them instead of updating ten thousand rows after.
        """
        config = self.config
        make, url, kinds = EntryIds(config.feeds.entry_id, config.site.url).make, self.post_url, config.posts.kinds
        made = []
        for row in rows:
            visible = visible_new(row, kinds, now)
            entry_id = _unique(make(url=partial(url, row), name=row["name"], kind=row["kind"],
                                    created=row["created_local"]), taken) if visible else None
            row["entry_id"], row["first_published_at"] = entry_id, now if visible else None
            if visible:
                made.append(entry_id)
        return made

    def post_url(self, values: Any) -> str:
        """A post's absolute URL from its stored values (a row or a mapping with name, kind, author, created_local)."""
        get = values.__getitem__ if isinstance(values, Mapping) else values.__getattribute__
        return post_url(self.config.site, name=get("name"), kind=get("kind"), author=get("author"),
                        created=get("created_local"))

    # -- rendering: only what a feed shows, only when its content changed ----

    def _entries(self, selections: dict[str, list[Any]], now: datetime, report: BuildReport) -> dict[int, Any]:
        from publisher.feeds.model import Entry

        key = self.render_key()
        rows = {row.id: row for chosen in selections.values() for row in chosen}
        entries, renders = {}, []
        for row in rows.values():
            values = dict(row._mapping)
            if row.html is None or row.rendered_from != row.content_hash or row.render_key != key:
                rendered = self._rendered(row, key, now)
                values.update(rendered)
                renders.extend([{"id": row.id, **rendered}] if rendered else [])
                report.rendered += 1
            if values["html"] is not None:
                entries[row.id] = Entry(**self._entry_fields(values))
        self._save_renders(renders)
        return entries

    def _render(self, row: Any, key: str, now: datetime) -> dict[str, Any]:
        """The render of ``row``'s post, saved (empty when the post can't be read)."""
        values = self._rendered(row, key, now)
        self._save_renders([{"id": row.id, **values}] if values else [])
        return values

    def _save_renders(self, renders: list[dict[str, Any]]) -> None:
        if renders:
            with self.store.begin() as conn:
                self.store.update_posts(conn, renders)

    def _rendered(self, row: Any, key: str, now: datetime) -> dict[str, Any]:
        """The render of ``row``'s post, as the columns to save (empty when the post can't be read)."""
        from publisher.posts import read_post

        source = self.config.posts_root / row.path
        try:
            data = source.read_bytes()
            post = read_post(row.path, data, source.stat().st_mtime, tz=self.config.site.tz, source=str(source))
            digest, url = content_hash(data), self.post_url(row)
            done = self._prerendered.take(row.path, digest, url) if self._prerendered is not None else None
            html, summary = done or self.rendered_html(post, url)
        except (OSError, PostError) as exc:
            log.warning("%s: can't render (%s); keeping what was published before", source, exc)
            return {}
        return _render_values(row, html, summary, digest, key, now, post.updated_at)

    def rendered_html(self, post: Any, url: str) -> tuple[str, str]:
        """The sanitized HTML and summary of ``post``, whose own URL is ``url``."""
        from publisher.sanitize import sanitize

        rendered = self.renderer.render(post, url)
        return sanitize(rendered.html), sanitize(rendered.summary)

    @property
    def renderer(self) -> Any:
        if self._renderer is None:
            from publisher.render import Renderer

            site = self.config.site
            self._renderer = Renderer(site_url=site.url, asset_base_url=site.assets, author_url=site.author_url,
                                      authors=site.authors, template_dirs=self.config.template_dirs,
                                      summary=self.config.render.summary,
                                      summary_length=self.config.render.summary_length)
        return self._renderer

    def render_key(self) -> str:
        """Everything besides the post itself that shapes its rendered HTML."""
        site, render = self.config.site, self.config.render
        parts = [__version__, site.url, site.post_url, site.author_url, site.assets, json.dumps(site.authors),
                 render.summary, str(render.summary_length)]
        for folder in [*self.config.template_dirs, template_dir()]:
            for path in sorted(folder.glob("*.j2")) if folder.is_dir() else []:
                parts.append(f"{path.name}:{content_hash(path.read_bytes())}")
        return content_hash("\0".join(parts).encode())

    def _entry_fields(self, values: dict[str, Any]) -> dict[str, Any]:
        from publisher.feeds.model import Person

        config = self.config
        author = values["author"]
        person = None
        if author:
            person = Person(name=author_name(config, author), uri=author_url(config.site, author))
        meta = json.loads(values["meta"])
        categories = tuple(dict.fromkeys(c for c in [values["kind"], *meta.get("tags", [])] if c))
        return {"id": values["entry_id"], "url": self.post_url(values), "title": values["title"],
                "content_html": values["html"], "summary_html": values["summary"] or "",
                "published": _utc(values["created_at"]), "updated": _utc(values["entry_updated"] or values["created_at"]),
                "author": person, "categories": categories}

    # -- writing ----------------------------------------------------------

    def _write(self, specs: list[FeedSpec], selections: dict[str, list[Any]], entries: dict[int, Any],
               report: BuildReport) -> None:
        from publisher.feeds.model import discovery_links, render

        output = self.config.output_dir
        with Writer() as writer:
            if self.config.feeds.stylesheet:
                self._write_file(writer, output / STYLESHEET, self._stylesheet(), report)
            for spec in specs:
                chosen = tuple(entries[row.id] for row in selections[spec.key] if row.id in entries)
                feed = self._feed(spec, chosen)
                for fmt in self.config.feeds.formats:
                    self._write_file(writer, output / spec.file(fmt), render(feed, fmt), report)
                if spec.key == "main":
                    report.discovery = discovery_links(feed)

    def _write_file(self, writer: Writer, path: Path, data: bytes, report: BuildReport) -> None:
        report.outputs.append(path)
        if writer.write_if_changed(path, data):
            report.written.append(path)
            log.debug("wrote %s", path)

    def _feed(self, spec: FeedSpec, entries: tuple[Any, ...]) -> Any:
        from publisher.feeds.model import Feed, Person

        config = self.config
        feeds_url = config.feeds_url
        fmts = config.feeds.formats
        updated = max((entry.updated for entry in entries), default=EMPTY_FEED_UPDATED)
        return Feed(id=spec.url(feeds_url, fmts[0]), title=spec.title, home_url=config.site.url,
                    self_urls={fmt: spec.url(feeds_url, fmt) for fmt in fmts}, updated=updated, entries=entries,
                    subtitle=config.site.description, language=config.site.language,
                    author=Person(name=config.site.author or config.site.title, uri=config.site.url),
                    icon=config.site.icon, stylesheet=spec.stylesheet_href if config.feeds.stylesheet else None)

    def _stylesheet(self) -> bytes:
        for folder in [*self.config.template_dirs, template_dir()]:
            candidate = folder / STYLESHEET
            if candidate.is_file():
                return candidate.read_bytes()
        raise PublisherError(f"{template_dir() / STYLESHEET}: feed stylesheet missing; reinstall publisher")


def _utc(moment: datetime) -> datetime:
    """Feeds show UTC: the same instant reads the same whether fresh from a post or from the database."""
    return moment.astimezone(timezone.utc)


def _next_updated(previous: datetime | None, post_updated: datetime, created: datetime, now: datetime) -> datetime:
    """A new rendering moves ``updated``: to the post's own updated_at if that moved forward, else to now."""
    candidate = max(post_updated, created)
    if previous is None or candidate > previous:
        return candidate
    return now


#: What writing the feeds imports (lxml, feedgen, dateutil): imported in a thread while a first build commits.
FEED_WRITERS = ("publisher.feeds.model", "publisher.feeds.xml", "publisher.feeds.jsonfeed")


def _import_feed_writers() -> threading.Thread | None:
    """Import :data:`FEED_WRITERS` in a thread, started now: the commit of a first build waits for the disk
    meanwhile (the build imports them anyway as it needs them, waiting for this import if it is under way, and
    an import that fails here fails there again, and is reported there)."""
    if all(name in sys.modules for name in FEED_WRITERS):
        return None

    def work() -> None:
        try:
            for name in FEED_WRITERS:
                importlib.import_module(name)
        except ImportError:
            pass

    thread = threading.Thread(target=work, name="publisher imports", daemon=True)
    thread.start()
    return thread


def _render_values(row: Any, html: str, summary: str, source_hash: str, key: str, now: datetime,
                   post_updated: datetime) -> dict[str, Any]:
    """The columns a render of ``row`` sets; its entry's updated time moves only when the HTML changed."""
    html_hash = content_hash(f"{html}\0{summary}".encode())
    updated = row.entry_updated
    if html_hash != row.html_hash:
        updated = _next_updated(row.entry_updated, post_updated, row.created_at, now)
    return {"html": html, "summary": summary, "html_hash": html_hash,
            "rendered_from": source_hash, "render_key": key, "entry_updated": updated}


def visible_new(row: Mapping[str, Any], kinds: Any, now: datetime) -> bool:
    """Whether the post of a new row (about to be inserted) shows in the feeds at ``now``: a row that is no
    error, draft or deleted post, of one of ``kinds`` (any when empty), created by then."""
    return (row["error"] is None and row.get("deleted_at") is None and not row["draft"]
            and (not kinds or row["kind"] in kinds) and row["created_at"] <= now)


def _unique(entry_id: str, taken: set[str]) -> str:
    candidate, n = entry_id, 1
    while candidate in taken:
        n += 1
        candidate = f"{entry_id}-{n}"
    if n > 1:
        log.warning("entry ID %s is already used by another post; using %s", entry_id, candidate)
    taken.add(candidate)
    return candidate


@contextmanager
def build_lock(config: Config | Snapshot, *, wait: float = 30.0) -> Iterator[None]:
    """One build at a time per state folder, across processes."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    path = config.state_dir / "build.lock"
    with path.open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BuildLocked(f"{path}: another build is running; try again when it has finished") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_once(config: Config, *, clock: Clock | None = None, force: bool = False,
               progress: ProgressFactory = no_progress) -> BuildReport:
    builder = Builder(config, clock=clock, progress=progress)
    try:
        return builder.build(force=force)
    finally:
        builder.close()
