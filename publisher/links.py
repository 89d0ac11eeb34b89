"""The site's own URLs: where each post and each author page lives."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin

if TYPE_CHECKING:
    from publisher.config import SiteConfig


def post_url(site: SiteConfig, *, name: str, kind: str | None, author: str | None, created: datetime | str) -> str:
    """``site.post_url`` filled in and made absolute ("/{name}" -> "https://example.org/week-3").

    ``created`` is the post's creation time as written (a datetime, or its ISO string).
    """
    day = created[:10] if isinstance(created, str) else created.date().isoformat()
    path = site.post_url.format(name=name, kind=kind or "", author=author or "", year=day[:4], month=day[5:7],
                                day=day[8:10])
    if path.startswith("/") and not path.startswith("//"):
        return site.url + path[1:]  # site.url always ends with "/": the common case needs no urljoin
    return urljoin(site.url, path)


def author_url(site: SiteConfig, author: str) -> str:
    return urljoin(site.url, site.author_url.format(author=author))
