"""The digest fixture site (tests/fixtures/digest/site) and the helpers the digest tests share.

A site is copied to a temporary folder, built with a FrozenClock (which fills
the posts table and records each post's first_published_at), then composed.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from publisher.build import build_once
from publisher.clock import FrozenClock
from publisher.config import load_config
from publisher.digest import Composer
from publisher.schema import digests, posts
from publisher.state import Store

from .conftest import FIXTURES

DIGEST_FIXTURES = FIXTURES / "digest"
SITE = DIGEST_FIXTURES / "site"
UTC = timezone.utc
BUILD_AT = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)
SLOT = datetime(2024, 3, 8, 16, 0, tzinfo=UTC)  # Friday 16:00 Europe/London (GMT in March)
COMPOSE_AT = SLOT + timedelta(seconds=5)
WEEK = timedelta(days=7)


class Site:
    """A copy of the fixture site with its own clock, state database and composer."""

    def __init__(self, root: Path) -> None:
        shutil.copytree(SITE, root, dirs_exist_ok=True)
        self.root = root
        self.clock = FrozenClock(BUILD_AT)
        self.config = load_config(root / "config.toml")
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.config.database_url, clock=self.clock)
            self._store.migrate()
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def configure(self, toml: str) -> None:
        """Append ``toml`` to the config file and reload it."""
        path = self.root / "config.toml"
        path.write_text(path.read_text() + "\n" + toml)
        self.config = load_config(path)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / "posts" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def build(self, at: datetime = BUILD_AT) -> Any:
        self.clock.set(at)
        return build_once(self.config, clock=self.clock)

    def composer(self) -> Composer:
        return Composer(self.config, self.store, clock=self.clock)

    def compose(self, list_name: str = "weekly", slot: datetime = SLOT, at: datetime | None = None) -> Any:
        self.clock.set(at or slot + timedelta(seconds=5))
        return self.composer().compose(list_name, slot)

    def digest_rows(self) -> list[Any]:
        with self.store.begin() as conn:
            return list(conn.execute(select(digests).order_by(digests.c.id)))

    def digest_count(self) -> int:
        with self.store.begin() as conn:
            return conn.scalar(select(func.count()).select_from(digests))

    def names(self, ids: list[int]) -> list[str]:
        with self.store.begin() as conn:
            found = dict(conn.execute(select(posts.c.id, posts.c.name).where(posts.c.id.in_(ids))).all())
        return [found[i] for i in ids]


@pytest.fixture
def site(tmp_path: Path):
    built = Site(tmp_path / "site")
    built.build()
    yield built
    built.close()


def snip(body: str, created: str, title: str, kind: str = "blog", author: str | None = None) -> str:
    """A snip-format post."""
    lines = [body, "", f":created_at: {created}", f":page_title: {title}", f":kind: {kind}"]
    if author:
        lines.append(f":author: {author}")
    return "\n".join(lines) + "\n"


# -- the fixture site itself --------------------------------------------------


def test_the_fixture_build_publishes_the_visible_posts(site):
    with site.store.begin() as conn:
        rows = {row.name: row for row in conn.execute(select(posts))}
    published = {name for name, row in rows.items() if row.first_published_at is not None}
    assert published == {"week-10", "tools-and-tricks", "open-day", "old-news", "reading"}
    assert all(rows[name].first_published_at == BUILD_AT for name in published)
    # feeds.entries = 3: the build renders only what the feeds show, so open-day has no HTML yet
    assert rows["open-day"].html is None and rows["week-10"].html is not None


def test_the_first_weekly_digest_carries_the_weeks_posts(site):
    composed = site.compose()
    row = site.digest_rows()[0]
    assert site.names(json.loads(row.post_ids)) == ["week-10", "tools-and-tricks", "open-day"]
    assert [post.id for post in composed.posts] == json.loads(row.post_ids)
