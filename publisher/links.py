"""The site's own URLs: where each post and each author page lives."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urljoin

from publisher.config import SiteConfig


def post_url(site: SiteConfig, *, name: str, kind: str | None, author: str | None, created: datetime) -> str:
    """``site.post_url`` filled in and made absolute ("/{name}" -> "https://example.org/week-3")."""
    path = site.post_url.format(name=name, kind=kind or "", author=author or "", year=f"{created.year:04d}",
                                month=f"{created.month:02d}", day=f"{created.day:02d}")
    return urljoin(site.url, path)


def author_url(site: SiteConfig, author: str) -> str:
    return urljoin(site.url, site.author_url.format(author=author))
