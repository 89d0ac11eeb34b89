"""Which feeds a site has, where each is written and served, and which posts it shows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publisher.config import Config
    from publisher.state import Store

FILE_NAMES = {"atom": "atom.xml", "rss": "rss.xml", "json": "feed.json"}
STYLESHEET = "feed.xsl"


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One feed (in every configured format): the main one, a kind's or an author's."""

    key: str  # "main", "kind:blog", "author:chris-roos"
    title: str
    folder: str  # relative to feeds.output: "", "kinds/blog", "authors/chris-roos"
    match: dict[str, str] = field(default_factory=dict)

    def file(self, fmt: str) -> str:
        return str(PurePosixPath(self.folder, FILE_NAMES[fmt])) if self.folder else FILE_NAMES[fmt]

    def url(self, feeds_url: str, fmt: str) -> str:
        return feeds_url + self.file(fmt)

    @property
    def stylesheet_href(self) -> str:
        depth = len(PurePosixPath(self.folder).parts) if self.folder else 0
        return "../" * depth + STYLESHEET


def slug(value: str) -> str:
    """A safe folder name for a kind or an author."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", value.strip().lower()).strip("-")
    return cleaned or "unnamed"


def author_name(config: Config, author: str) -> str:
    """An author's display name: from ``site.authors``, else made from the slug ("chris-roos" -> "Chris Roos")."""
    return config.site.authors.get(author) or " ".join(part.capitalize() for part in re.split(r"[-_\s]+", author) if part)


def feed_specs(config: Config, store: Store) -> list[FeedSpec]:
    specs = [FeedSpec("main", config.site.title, "")]
    kinds = _selected(config.feeds.per_kind, lambda: store.distinct("kind", config.posts.kinds))
    specs += [FeedSpec(f"kind:{kind}", f"{config.site.title}: {kind}", f"kinds/{slug(kind)}", {"kind": kind})
              for kind in kinds]
    authors = _selected(config.feeds.per_author, lambda: store.distinct("author", config.posts.kinds))
    specs += [FeedSpec(f"author:{author}", f"{config.site.title}: {author_name(config, author)}",
                       f"authors/{slug(author)}", {"author": author}) for author in authors]
    return specs


def _selected(setting: bool | list[str], everything: object) -> list[str]:
    if setting is True:
        return list(everything())  # type: ignore[operator]
    return list(setting) if setting else []
