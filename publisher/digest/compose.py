"""Composing a list's digest: choose the new posts, render once, store, write the web copy.

A digest is rendered a single time with per-recipient placeholders (see
:mod:`publisher.mail.letter`) and stored, content and all, before anything is
sent, so a resumed send sends exactly the same message.  One digest per
(list, schedule slot): a second composer for a slot gets the stored one.

Gmail clips HTML over 102 KB (hiding the unsubscribe link), so when the full
posts would make the HTML larger, the digest falls back to summaries with
read-more links, and if even that is too large, to fewer posts and an
"and N more on the site" line; the log says which.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from publisher.clock import Clock
from publisher.config import Config, ListConfig
from publisher.digest import archive, records, templates
from publisher.digest.bodies import with_html
from publisher.digest.select import Selection, Window, next_slot, rows_by_id, select_posts, window
from publisher.digest.view import DigestPost, context, digest_post, with_text
from publisher.errors import ConfigError, DigestError, StateError
from publisher.mail.letter import Letter, fill

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
HTML_LIMIT = 102 * 1024  # bytes of UTF-8 HTML, placeholders filled with their longest values
WORST_CASE = {"name": "N" * 200, "email": "e" * 320, "unsubscribe_url": "u" * 400}
_LIST_ID_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>\"]")


@dataclass
class Composed:
    """A composed digest (``digest_id`` None for a preview)."""

    letter: Letter
    digest_id: int | None
    posts: list[DigestPost] = field(default_factory=list)
    summaries_only: bool = False
    web_copy: Path | None = None
    web_url: str | None = None


@dataclass
class _Rendered:
    subject: str
    html: str
    text: str
    posts: list[DigestPost]  # the posts shown
    summaries_only: bool


class Composer:
    """Composes the digests of one configuration's lists."""

    def __init__(self, config: Config, store: Any, clock: Clock | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock or Clock()
        self._envs: dict[str, Any] = {}

    # -- public -----------------------------------------------------------

    def compose(self, list_name: str, scheduled_for: datetime) -> Composed | None:
        """The digest of ``list_name`` for the slot ``scheduled_for``: stored, or None when nothing is new."""
        mailing_list = self._list(list_name)
        with self.store.begin() as conn:
            existing = records.find(conn, list_name, scheduled_for)
        if existing is not None:
            log.info("list %s: digest %d for %s already composed; using it", list_name, existing.id,
                     scheduled_for.isoformat())
            return self._stored(existing, mailing_list)
        started = time.perf_counter()
        span, chosen = self._choose(list_name, mailing_list, scheduled_for)
        if not chosen.rows:
            return None
        posts = [digest_post(self.config, mailing_list.tz, values)
                 for values in with_html(self.config, self.store, self.clock, chosen.rows)]
        composed = self._store_new(list_name, mailing_list, scheduled_for, span, posts, chosen.more)
        if composed is not None:
            log.info("list %s: digest %d composed: %d posts first published %s to %s, %d bytes of HTML%s in %.2fs",
                     list_name, composed.digest_id, len(composed.posts), span.since.isoformat(),
                     span.cutoff.isoformat(), len(composed.letter.html.encode()),
                     " (summaries)" if composed.summaries_only else "", time.perf_counter() - started)
        return composed

    def preview(self, list_name: str, *, latest: bool = False) -> Composed | None:
        """The list's next digest as it would be now, stored and written nowhere; None when nothing is new.

        With ``latest``, nothing new previews the list's latest posts instead (to check the templates).
        """
        mailing_list = self._list(list_name)
        now = self.clock.now()
        try:
            slot = next_slot(mailing_list.schedule, mailing_list.tz, now)
        except ValueError as exc:
            raise DigestError(list_name, f"lists.{list_name}.schedule: {exc}; fix the cron expression") from exc
        _span, chosen = self._choose(list_name, mailing_list, slot)
        if not chosen.rows and latest:
            with self.store.begin() as conn:
                chosen = select_posts(conn, self.config, mailing_list, Window(since=_EPOCH, cutoff=now, first=False))
            log.info("list %s: previewing the latest %d posts instead", list_name, len(chosen.rows))
        if not chosen.rows:
            return None
        posts = [digest_post(self.config, mailing_list.tz, values)
                 for values in with_html(self.config, self.store, self.clock, chosen.rows)]
        rendered = self._render(list_name, mailing_list, posts, chosen.more, digest_id=None, date=slot, web_url=None)
        letter = self._letter(list_name, mailing_list, rendered.subject, rendered.html, rendered.text, now, None)
        return Composed(letter=letter, digest_id=None, posts=rendered.posts, summaries_only=rendered.summaries_only)

    def letter(self, digest_id: int) -> Letter:
        """The stored digest ``digest_id`` as a Letter: the very content composed, headers from the config."""
        row = self._row(digest_id)
        mailing_list = self._list(row.list)
        return self._letter(row.list, mailing_list, row.subject, row.html, row.text, row.created_at, row.id)

    # -- choosing ---------------------------------------------------------

    def _list(self, list_name: str) -> ListConfig:
        try:
            return self.config.mailing_list(list_name)
        except ConfigError as exc:
            known = ", ".join(sorted(self.config.lists)) or "none configured"
            raise DigestError(list_name, f"no such list in {self.config.path} (known: {known})") from exc

    def _row(self, digest_id: int) -> Any:
        with self.store.begin() as conn:
            row = records.get(conn, digest_id)
        if row is None:
            raise DigestError("?", f"digest {digest_id} does not exist; `publisher deliveries` lists the digests")
        return row

    def _choose(self, list_name: str, mailing_list: ListConfig, scheduled_for: datetime) -> tuple[Window, Selection]:
        cutoff = self.clock.now()
        with self.store.begin() as conn:
            span = window(conn, list_name, mailing_list, scheduled_for, cutoff)
            chosen = select_posts(conn, self.config, mailing_list, span)
        if not chosen.rows:
            log.info("list %s: nothing new since %s; no digest for %s", list_name, span.since.isoformat(),
                     scheduled_for.isoformat())
        return span, chosen

    # -- storing ----------------------------------------------------------

    def _store_new(self, list_name: str, mailing_list: ListConfig, scheduled_for: datetime, span: Window,
                   posts: list[DigestPost], more: int) -> Composed | None:
        """Insert, render and write the web copy in one transaction; the slot's existing digest if one won."""
        try:
            with self.store.begin() as conn:
                since = None if span.first else span.since
                digest_id = records.reserve(conn, list_name, scheduled_for, since, span.cutoff, span.cutoff)
                url = archive.web_url(self.config, list_name, digest_id)
                rendered = self._render(list_name, mailing_list, posts, more, digest_id=digest_id,
                                        date=scheduled_for, web_url=url)
                records.fill(conn, digest_id, post_ids=[p.id for p in rendered.posts], subject=rendered.subject,
                             html=rendered.html, text=rendered.text, summaries_only=rendered.summaries_only)
                path = archive.write_web_copy(self.config, list_name, digest_id, rendered.html)
        except StateError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            return self._winner(list_name, mailing_list, scheduled_for, exc)
        letter = self._letter(list_name, mailing_list, rendered.subject, rendered.html, rendered.text, span.cutoff,
                              digest_id)
        return Composed(letter=letter, digest_id=digest_id, posts=rendered.posts,
                        summaries_only=rendered.summaries_only, web_copy=path, web_url=url)

    def _winner(self, list_name: str, mailing_list: ListConfig, scheduled_for: datetime, exc: Exception) -> Composed:
        with self.store.begin() as conn:
            row = records.find(conn, list_name, scheduled_for)
        if row is None:
            raise exc
        log.info("list %s: digest %d for %s was composed by another process; using it", list_name, row.id,
                 scheduled_for.isoformat())
        return self._stored(row, mailing_list)

    def _stored(self, row: Any, mailing_list: ListConfig) -> Composed:
        """A Composed from a stored digest row (the web copy rewritten if it went missing)."""
        with self.store.begin() as conn:
            found = rows_by_id(conn, records.post_ids(row))
        posts = [digest_post(self.config, mailing_list.tz, values) for values in found]
        path = archive.web_path(self.config, row.list, row.id)
        if not path.exists():
            path = archive.write_web_copy(self.config, row.list, row.id, row.html)
        letter = self._letter(row.list, mailing_list, row.subject, row.html, row.text, row.created_at, row.id)
        return Composed(letter=letter, digest_id=row.id, posts=posts, summaries_only=row.summaries_only,
                        web_copy=path, web_url=archive.web_url(self.config, row.list, row.id))

    def _letter(self, list_name: str, mailing_list: ListConfig, subject: str, html: str, text: str, date: datetime,
                digest_id: int | None) -> Letter:
        title = " ".join(_LIST_ID_UNSAFE.sub(" ", mailing_list.title).split())
        return Letter(subject=subject, from_address=mailing_list.from_address, from_name=mailing_list.from_name,
                      reply_to=mailing_list.reply_to, list_id=f"{title} <{list_name}.{self.config.message_id_domain}>",
                      list_name=list_name, unsubscribe_mailto=self.config.mail.unsubscribe_mailto, date=date,
                      html=html, text=text, digest_id=digest_id)

    # -- rendering --------------------------------------------------------

    def _env(self, list_name: str, mailing_list: ListConfig) -> Any:
        if list_name not in self._envs:
            self._envs[list_name] = templates.environment(self.config, mailing_list)
        return self._envs[list_name]

    def _render(self, list_name: str, mailing_list: ListConfig, posts: list[DigestPost], more: int, *,
                digest_id: int | None, date: datetime, web_url: str | None) -> _Rendered:
        """Subject, HTML and text, falling back to summaries, then to fewer posts, to keep under HTML_LIMIT."""
        env = self._env(list_name, mailing_list)

        def ctx(shown: list[DigestPost], summaries: bool, subject: str = "") -> dict[str, Any]:
            return context(self.config, list_name, mailing_list, shown, digest_id=digest_id, date=date,
                           web_url=web_url, summaries_only=summaries, more=more + len(posts) - len(shown),
                           subject=subject)

        subject = templates.render_subject(env, list_name, mailing_list.subject, ctx(posts, False)) or mailing_list.title
        shown, summaries, html = self._fit(list_name, posts, lambda s, summ: _html(env, list_name, ctx(s, summ, subject)))
        text = templates.render(env, list_name, templates.TEXT_TEMPLATE, ctx(with_text(shown, summaries), summaries,
                                                                              subject))
        return _Rendered(subject=subject, html=html, text=text, posts=shown, summaries_only=summaries)

    def _fit(self, list_name: str, posts: list[DigestPost], render: Any) -> tuple[list[DigestPost], bool, str]:
        html = render(posts, False)
        full = size(html)
        if full <= HTML_LIMIT:
            return posts, False, html
        html = render(posts, True)
        if size(html) <= HTML_LIMIT:
            log.warning("list %s: the full posts make %d KB of HTML (the limit is %d KB, where Gmail clips); "
                        "sending summaries with read-more links", list_name, full // 1024, HTML_LIMIT // 1024)
            return posts, True, html
        shown = posts
        while len(shown) > 1 and size(html) > HTML_LIMIT:
            keep = min(len(shown) - 1, max(1, len(shown) * HTML_LIMIT // size(html)))
            shown = posts[:keep]
            html = render(shown, True)
        log.warning("list %s: the full posts make %d KB of HTML (the limit is %d KB, where Gmail clips); sending "
                    "summaries of %d of the %d posts and a link to the rest on the site", list_name, full // 1024,
                    HTML_LIMIT // 1024, len(shown), len(posts))
        if size(html) > HTML_LIMIT:
            log.warning("list %s: even one summary makes %d KB of HTML; it will be clipped", list_name,
                        size(html) // 1024)
        return shown, True, html


def _html(env: Any, list_name: str, ctx: dict[str, Any]) -> str:
    import css_inline

    html = templates.render(env, list_name, templates.HTML_TEMPLATE, ctx)
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    try:
        return inliner.inline(html)
    except ValueError as exc:
        raise DigestError(list_name, f"{templates.HTML_TEMPLATE}: CSS can't be inlined ({exc}); fix its <style>") \
            from exc


def size(html: str) -> int:
    """The HTML's size in bytes with every placeholder at its longest value."""
    return len(fill(html, WORST_CASE, escape=True).encode("utf-8"))
