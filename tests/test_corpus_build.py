"""The real corpus (../shared/corpus/gofreerange) through whole builds: valid feeds, stable IDs.

Skipped, with the reason, when the corpus is not beside the repo.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import pytest

from publisher.build import Builder
from publisher.clock import FrozenClock
from publisher.config import load_config

from .feedcheck import check_atom, check_json, check_rss

FOLDERS = ["weeknotes", "blog", "weeklinks", "show-and-tell"]
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)

CONFIG = """
[site]
title = "Go Free Range"
url = "https://gofreerange.com/"
author = "Go Free Range"
timezone = "Europe/London"
asset_url = "https://gofreerange.com/images/"

[posts]
root = "soups"
folders = ["weeknotes", "blog", "weeklinks", "show-and-tell"]
kinds = ["blog", "show-and-tell"]

[feeds]
output = "out"
entries = 20
per_kind = true
per_author = true
"""


class _Urls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.relative: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value and ":" not in value.split("/")[0]:
                self.relative.append(value)


@pytest.fixture(scope="module")
def site(corpus_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for folder in FOLDERS:
        shutil.copytree(corpus_root / "soups" / folder, root / "soups" / folder)
    (root / "config.toml").write_text(CONFIG)
    return root


@pytest.fixture(scope="module")
def first_build(site: Path):
    builder = Builder(load_config(site / "config.toml"), clock=FrozenClock(NOW))
    report = builder.build()
    builder.close()
    return report


def test_every_dated_post_is_read(site, first_build):
    on_disk = sum(1 for folder in FOLDERS for p in (site / "soups" / folder).iterdir() if p.is_file())
    assert on_disk == 484 + 57 + 133 + 50
    assert first_build.sync.scanned == on_disk
    assert first_build.errors == []


def _feeds(site: Path) -> list[Path]:
    return sorted(p for p in (site / "out").rglob("*") if p.suffix in (".xml", ".json"))


def test_every_feed_parses_cleanly_with_the_expected_entries(site, first_build):
    feeds = _feeds(site)
    assert len(feeds) == 3 * (1 + 2 + 8)  # main, 2 kinds, 8 authors
    for path in feeds:
        if path.suffix == ".json":
            items = json.loads(path.read_bytes())["items"]
            assert 1 <= len(items) <= 20
            continue
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert 1 <= len(parsed.entries) <= 20
    main = feedparser.parse((site / "out" / "atom.xml").read_bytes())
    assert len(main.entries) == 20


def test_no_erb_and_no_relative_url_in_any_feed(site, first_build):
    for path in _feeds(site):
        if path.suffix == ".json":
            assert "<%" not in path.read_text()
            continue
        parsed = feedparser.parse(path.read_bytes())
        for entry in parsed.entries:
            html = entry.content[0].value if "content" in entry else entry.summary
            assert "<%" not in html, (path, entry.link)
            urls = _Urls()
            urls.feed(html)
            assert urls.relative == [], (path, entry.link, urls.relative[:3])


def test_every_feed_passes_the_validator_rules(site, first_build):
    base = "https://gofreerange.com/feeds/"
    for path in _feeds(site):
        url = base + path.relative_to(site / "out").as_posix()
        check = {".json": check_json, ".xml": check_atom if path.name == "atom.xml" else check_rss}[path.suffix]
        assert check(path.read_bytes(), url) == [], path


def test_entry_ids_survive_a_rebuild_and_a_rename(site, first_build):
    before = {e.link: e.id for e in feedparser.parse((site / "out/atom.xml").read_bytes()).entries}
    newest = next(iter(before))
    name = newest.rsplit("/", 1)[1]
    source = next((site / "soups").rglob(f"{name}.*"))
    source.rename(source.with_name(f"{name}-renamed{''.join(source.suffixes)}"))
    builder = Builder(load_config(site / "config.toml"), clock=FrozenClock(NOW))
    report = builder.build()
    builder.close()
    assert report.sync.renamed == 1
    after = {e.link: e.id for e in feedparser.parse((site / "out/atom.xml").read_bytes()).entries}
    assert after[newest + "-renamed"] == before[newest]
    assert set(after.values()) == set(before.values())
