"""The digest archive: ``/archive``, ``/archive/<list>`` and ``/archive/<list>/<digest id>``.

Only digests that went out (status ``sent``, or ``sending`` while a send is under
way) are listed or shown; a composed digest that was never sent stays private.
A digest's page is the web copy the composer wrote
(:func:`publisher.digest.archive.web_path`: the email as sent, with neutral values
where a recipient's own went) with a small archive bar added at the top of its
body (back to the list, previous and next digest).  When the file is gone (an
emptied feeds folder) it is rebuilt from the stored digest, the same way.

The index and list pages are ``templates/web/archive.html.j2`` and
``archive-list.html.j2`` (they extend the service's ``base.html.j2``, rendered with
``ctx.page``); the bar is ``archive-bar.html.j2``.  The digest page's own
Content-Security-Policy allows inline styles (an email is styled inline) and no
script.  Paths work with or without a trailing slash; links use the slash form
(``archive/weekly/``) like the index page's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from publisher.schema import digests

VISIBLE = ("sent", "sending")
CACHE_CONTROL = "public, max-age=300"
_BODY = re.compile(rb"<body\b[^>]*>", re.I)


@dataclass(frozen=True, slots=True)
class Issue:
    """One past digest as the archive shows it."""

    id: int
    subject: str
    date: datetime  # the schedule slot, in the list's timezone
    url: str

    @property
    def date_text(self) -> str:
        return _date_text(self.date)

    @property
    def iso_date(self) -> str:
        return self.date.date().isoformat()


class Archive:
    """The archive pages over one web context (config, store, templates, page rendering)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.config = ctx.config

    def routes(self) -> list[Any]:
        from starlette.routing import Route

        get = ["GET", "HEAD"]
        return [
            Route("/archive", self.index, methods=get, name="archive"),
            Route("/archive/", self.index, methods=get),
            Route("/archive/{list_name}", self.list_page, methods=get, name="archive_list"),
            Route("/archive/{list_name}/", self.list_page, methods=get),
            Route("/archive/{list_name}/{digest_id:int}", self.digest_page, methods=get, name="archive_digest"),
        ]

    def url(self, list_name: str | None = None, digest_id: int | None = None) -> str:
        """The site-relative URL of the index, a list's page or a digest's page."""
        path = "archive/" if list_name is None else f"archive/{list_name}/"
        return self.ctx.path(path + ("" if digest_id is None else str(digest_id)))

    # -- endpoints -------------------------------------------------------------------

    async def index(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        stats = await run_in_threadpool(self._read, _stats)
        lists = [{"name": name, "title": cfg.title, "description": cfg.description, "url": self.url(name),
                  "subscribe_url": self.ctx.path(f"subscribe/{name}"), "count": stats.get(name, (0, None))[0],
                  "latest": self._latest(name, stats)}
                 for name, cfg in self.config.lists.items()]
        return self.ctx.page(request, "archive.html.j2", {"archive": lists}, headers=_CACHED)

    async def list_page(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        list_name = request.path_params["list_name"]
        if list_name not in self.config.lists:
            return self.ctx.error(request, 404, "Not found", "There is no newsletter by that name.")
        issues = await run_in_threadpool(self._read, lambda conn: self._issues(conn, list_name))
        years: dict[int, list[Issue]] = {}
        for issue in issues:
            years.setdefault(issue.date.year, []).append(issue)
        context = {"list": self._list_info(list_name), "issues": issues, "years": sorted(years.items(), reverse=True)}
        return self.ctx.page(request, "archive-list.html.j2", context, headers=_CACHED)

    async def digest_page(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import Response

        from publisher.web.feeds import PAGE_CSP

        list_name, digest_id = request.path_params["list_name"], request.path_params["digest_id"]
        found = None
        if list_name in self.config.lists:
            found = await run_in_threadpool(self._read, lambda conn: self._digest(conn, list_name, digest_id))
        if found is None:
            return self.ctx.error(request, 404, "Not found", "That digest is not in the archive.")
        html, issue, newer, older = found
        bar = self.ctx.templates.get_template("archive-bar.html.j2").render(
            list=self._list_info(list_name), issue=issue, newer=newer, older=older, archive_url=self.url(),
            site=self.config.site)
        return Response(insert_bar(html, bar.encode("utf-8")), media_type="text/html; charset=utf-8",
                        headers={**_CACHED, "Content-Security-Policy": PAGE_CSP})

    # -- data ------------------------------------------------------------------------

    def _read(self, query: Any) -> Any:
        with self.ctx.store.begin() as conn:
            return query(conn)

    def _latest(self, name: str, stats: dict[str, tuple[int, datetime | None]]) -> str | None:
        when = stats.get(name, (0, None))[1]
        return None if when is None else _date_text(when.astimezone(self.config.lists[name].tz))

    def _issues(self, conn: Connection, list_name: str) -> list[Issue]:
        """The list's visible digests, newest first."""
        tz = self.config.lists[list_name].tz
        query = (select(digests.c.id, digests.c.subject, digests.c.scheduled_for)
                 .where(digests.c.list == list_name, digests.c.status.in_(VISIBLE))
                 .order_by(digests.c.scheduled_for.desc(), digests.c.id.desc()))
        return [Issue(row.id, row.subject, row.scheduled_for.astimezone(tz), self.url(list_name, row.id))
                for row in conn.execute(query)]

    def _digest(self, conn: Connection, list_name: str, digest_id: int) -> tuple[bytes, Issue, Any, Any] | None:
        """(web copy, the issue, the newer one, the older one), or None when it is not in the archive."""
        issues = self._issues(conn, list_name)
        position = next((i for i, issue in enumerate(issues) if issue.id == digest_id), None)
        if position is None:
            return None
        newer = issues[position - 1] if position > 0 else None
        older = issues[position + 1] if position + 1 < len(issues) else None
        return self._web_copy(conn, list_name, digest_id), issues[position], newer, older

    def _web_copy(self, conn: Connection, list_name: str, digest_id: int) -> bytes:
        """The composer's web copy; rebuilt from the stored digest when the file is missing."""
        from publisher.digest.archive import neutral_values, web_path

        try:
            return web_path(self.config, list_name, digest_id).read_bytes()
        except OSError:
            from publisher.mail.letter import fill

            html = conn.scalar(select(digests.c.html).where(digests.c.id == digest_id)) or ""
            return fill(html, neutral_values(self.config), escape=True).encode("utf-8")

    def _list_info(self, name: str) -> dict[str, Any]:
        cfg = self.config.lists[name]
        return {"name": name, "title": cfg.title, "description": cfg.description, "url": self.url(name),
                "subscribe_url": self.ctx.path(f"subscribe/{name}")}


_CACHED = {"Cache-Control": CACHE_CONTROL}


def _date_text(when: datetime) -> str:
    return f"{when.day} {when:%B %Y}"


def _stats(conn: Connection) -> dict[str, tuple[int, datetime | None]]:
    """Per list: how many visible digests, and the newest one's slot (max() keeps the column's UTC type)."""
    query = (select(digests.c.list, func.count(), func.max(digests.c.scheduled_for))
             .where(digests.c.status.in_(VISIBLE)).group_by(digests.c.list))
    return {row[0]: (row[1], row[2]) for row in conn.execute(query)}


def insert_bar(html: bytes, bar: bytes) -> bytes:
    """``html`` with ``bar`` placed first inside its <body> (or in front, when it has none)."""
    match = _BODY.search(html)
    if match is None:
        return bar + html
    return html[:match.end()] + b"\n" + bar + b"\n" + html[match.end():]


def routes(ctx: Any) -> list[Any]:
    """The archive routes for ``create_app``."""
    return Archive(ctx).routes()
