"""Builds end to end on the fixture site: feeds out, incremental state, stable IDs."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import pytest

from publisher.build import Builder, BuildLocked, build_lock
from publisher.clock import FrozenClock
from publisher.config import load_config

from .conftest import FIXTURES

SITE = FIXTURES / "site"
EXPECTED = SITE / "expected"
NOW = datetime(2024, 4, 1, 12, 0, tzinfo=timezone.utc)
REGEN = os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(SITE / "posts", tmp_path / "posts")
    shutil.copy(SITE / "config.toml", tmp_path / "config.toml")
    return tmp_path


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def builder(site: Path, clock: FrozenClock):
    builder = Builder(load_config(site / "config.toml"), clock=clock)
    yield builder
    builder.close()


def entry_ids(path: Path) -> dict[str, str]:
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    return {entry.link: entry.id for entry in parsed.entries}


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cold_build_writes_every_feed(builder, site):
    report = builder.build()
    out = site / "out"
    assert not report.fresh
    assert report.sync.scanned == 8  # weeknotes + blog only; notes/ is not listed
    assert report.sync.parsed == 8 and report.sync.new == 8
    assert len(report.errors) == 1 and "broken-date.snip.markdown" in report.errors[0]
    assert report.rendered == 4  # week-1, week-2, open-hours, front-matter-post
    expected = {"atom.xml", "rss.xml", "feed.json", "feed.xsl", "kinds/blog/atom.xml", "kinds/show-and-tell/rss.xml",
                "authors/rowan-ash/feed.json", "authors/morgan-lee/atom.xml"}
    assert expected <= set(mtimes(out))
    links = entry_ids(out / "atom.xml")
    assert set(links) == {"https://fixture.example.net/week-1", "https://fixture.example.net/week-2",
                          "https://fixture.example.net/open-hours", "https://fixture.example.net/front-matter-post"}
    assert links["https://fixture.example.net/week-1"] == "tag:fixture.example.net,2024-03-01:/week-1"
    assert len(entry_ids(out / "kinds/show-and-tell/atom.xml")) == 1
    assert len(entry_ids(out / "authors/rowan-ash/rss.xml")) == 2


@pytest.mark.parametrize("name", ["atom.xml", "rss.xml", "feed.json", "kinds/show-and-tell/atom.xml",
                                  "authors/rowan-ash/rss.xml"])
def test_outputs_match_the_golden_files(builder, site, name):
    builder.build()
    produced = (site / "out" / name).read_bytes()
    golden = EXPECTED / name
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(produced)
    assert produced == golden.read_bytes(), f"{name} differs from {golden}; PUBLISHER_REGEN_GOLDEN=1 rewrites it"


def test_outputs_pass_the_feed_validator_rules(builder, site):
    from .feedcheck import check_atom, check_json, check_rss

    builder.build()
    out = site / "out"
    for folder in ["", "kinds/blog/", "authors/rowan-ash/"]:
        base = f"https://fixture.example.net/feeds/{folder}"
        assert check_atom((out / folder / "atom.xml").read_bytes(), base + "atom.xml") == []
        assert check_rss((out / folder / "rss.xml").read_bytes(), base + "rss.xml") == []
        assert check_json((out / folder / "feed.json").read_bytes(), base + "feed.json") == []


def test_no_change_rebuild_is_fresh_and_touches_nothing(builder, site):
    builder.build()
    before = mtimes(site / "out")
    report = builder.build()
    assert report.fresh
    assert report.sync.parsed == 0 and report.rendered == 0 and report.written == []
    assert mtimes(site / "out") == before


def test_forced_rebuild_reparses_and_rerenders_nothing(builder, site):
    builder.build()
    before = {p: (site / "out" / p).read_bytes() for p in mtimes(site / "out")}
    report = builder.build(force=True)
    assert not report.fresh
    assert (report.sync.parsed, report.rendered, report.written) == (0, 0, [])
    assert {p: (site / "out" / p).read_bytes() for p in mtimes(site / "out")} == before


def test_touching_a_file_reads_but_does_not_reparse_it(builder, site):
    builder.build()
    path = site / "posts/weeknotes/week-1.snip.markdown"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    report = builder.build()
    assert not report.fresh and report.sync.parsed == 0 and report.written == []


def test_one_changed_post_is_reparsed_and_rerendered_alone(builder, site, clock):
    builder.build()
    ids_before = entry_ids(site / "out/atom.xml")
    path = site / "posts/weeknotes/week-1.snip.markdown"
    path.write_text(path.read_text().replace("new workshop", "newer workshop"))
    clock.advance(hours=1)
    report = builder.build()
    assert (report.sync.parsed, report.sync.changed, report.rendered) == (1, 1, 1)
    assert entry_ids(site / "out/atom.xml") == ids_before
    entry = next(e for e in feedparser.parse(site / "out/atom.xml").entries if e.link.endswith("/week-1"))
    assert "newer workshop" in entry.content[0].value
    assert tuple(entry.updated_parsed[:4]) == (2024, 4, 1, 13)  # content changed, updated_at did not: now


def test_updated_moves_only_when_the_rendered_content_changes(builder, site, clock):
    builder.build()
    before = (site / "out/atom.xml").read_bytes()
    path = site / "posts/weeknotes/week-1.snip.markdown"
    # Only the attribute block changes: same rendered content, so same feeds.
    path.write_text(path.read_text().replace(":updated_at: 2024-03-01 17:02:11.123456789 +00:00",
                                             ":updated_at: 2024-03-20 10:00:00 +00:00"))
    clock.advance(days=1)
    report = builder.build()
    assert report.sync.parsed == 1 and report.rendered == 1
    assert (site / "out/atom.xml").read_bytes() == before


def test_a_deleted_post_leaves_the_feeds(builder, site):
    builder.build()
    (site / "posts/blog/open-hours.snip.html").unlink()
    report = builder.build()
    assert report.sync.deleted == 1
    assert "https://fixture.example.net/open-hours" not in entry_ids(site / "out/atom.xml")
    assert entry_ids(site / "out/kinds/show-and-tell/atom.xml") == {}


def test_a_renamed_post_keeps_its_entry_id(builder, site):
    builder.build()
    old_id = entry_ids(site / "out/atom.xml")["https://fixture.example.net/week-1"]
    (site / "posts/weeknotes/week-1.snip.markdown").rename(site / "posts/weeknotes/week-one.snip.markdown")
    report = builder.build()
    assert report.sync.renamed == 1 and report.sync.deleted == 0 and report.sync.new == 0
    assert entry_ids(site / "out/atom.xml")["https://fixture.example.net/week-one"] == old_id


def test_a_renamed_and_edited_post_is_recognised_by_its_written_date(builder, site):
    builder.build()
    old_id = entry_ids(site / "out/atom.xml")["https://fixture.example.net/week-1"]
    old = site / "posts/weeknotes/week-1.snip.markdown"
    (site / "posts/weeknotes/week-01.snip.markdown").write_text(old.read_text().replace("Tuesday", "Wednesday"))
    old.unlink()
    builder.build()
    assert entry_ids(site / "out/atom.xml")["https://fixture.example.net/week-01"] == old_id


def test_ids_survive_a_domain_change_and_a_date_edit(site, clock):
    config = load_config(site / "config.toml")
    first = Builder(config, clock=clock)
    first.build()
    first.close()
    old_id = entry_ids(site / "out/atom.xml")["https://fixture.example.net/week-2"]
    (site / "config.toml").write_text((site / "config.toml").read_text().replace("fixture.example.net", "new.example.com"))
    path = site / "posts/weeknotes/week-2.snip.markdown"
    path.write_text(path.read_text().replace("2024-03-08 16:45:00", "2024-03-07 16:45:00"))
    second = Builder(load_config(site / "config.toml"), clock=clock)
    second.build()
    second.close()
    assert entry_ids(site / "out/atom.xml")["https://new.example.com/week-2"] == old_id


def test_a_future_post_is_held_back_until_its_time(builder, site, clock):
    builder.build()
    assert "https://fixture.example.net/from-the-future" not in entry_ids(site / "out/atom.xml")
    assert builder.build().fresh
    clock.set(datetime(2030, 1, 1, 9, 0, 1, tzinfo=timezone.utc))
    report = builder.build()
    assert not report.fresh and report.published == 1
    assert "https://fixture.example.net/from-the-future" in entry_ids(site / "out/atom.xml")


def test_a_draft_is_never_published(builder, site):
    builder.build()
    assert all("unfinished" not in link for link in entry_ids(site / "out/atom.xml"))


def test_a_fixed_file_leaves_the_error_list(builder, site):
    assert len(builder.build().errors) == 1
    path = site / "posts/blog/broken-date.snip.markdown"
    path.write_text(path.read_text().replace("2024-02-30", "2024-02-28"))
    report = builder.build()
    assert report.errors == [] and report.sync.changed == 1
    assert "https://fixture.example.net/broken-date" in entry_ids(site / "out/atom.xml")


def test_the_stylesheet_is_written_and_referenced(builder, site):
    builder.build()
    assert (site / "out/feed.xsl").read_bytes().startswith(b"<?xml")
    assert b'<?xml-stylesheet type="text/xsl" href="feed.xsl"?>' in (site / "out/atom.xml").read_bytes()
    assert b'href="../../feed.xsl"' in (site / "out/kinds/blog/rss.xml").read_bytes()


def test_no_temporary_files_are_left_behind(builder, site):
    builder.build()
    assert not [p for p in (site / "out").rglob("*") if p.name.endswith(".tmp")]


def test_the_feed_updated_time_is_the_newest_entry(builder, site):
    builder.build()
    parsed = feedparser.parse(site / "out/atom.xml")
    newest = max(entry.updated_parsed for entry in parsed.entries)
    assert parsed.feed.updated_parsed == newest
    data = json.loads((site / "out/feed.json").read_text())
    assert [item["id"] for item in data["items"]] == [entry.id for entry in parsed.entries]


def test_a_second_build_waits_for_the_lock(site):
    config = load_config(site / "config.toml")
    with build_lock(config):
        with pytest.raises(BuildLocked, match="another build is running"):
            with build_lock(config, wait=0):
                pass


def test_discovery_links_name_every_format(builder):
    report = builder.build()
    assert len(report.discovery) == 3
    assert any('type="application/atom+xml"' in tag and 'href="https://fixture.example.net/feeds/atom.xml"' in tag
               for tag in report.discovery)


def test_atomic_writes_leave_one_whole_readable_file(tmp_path):
    from publisher.output import Writer, write_atomic

    target = tmp_path / "deep" / "feed.xml"
    write_atomic(target, b"first")
    with Writer() as writer:
        assert writer.write_if_changed(target, b"second version") is True
    assert target.read_bytes() == b"second version" and (target.stat().st_mode & 0o777) == 0o644
    before = target.stat().st_mtime_ns
    with Writer() as writer:
        assert writer.write_if_changed(target, b"second version") is False
    assert target.stat().st_mtime_ns == before
    assert [p.name for p in target.parent.iterdir()] == ["feed.xml"]  # no temporary file left


def test_a_writer_writes_each_changed_file_and_waits_for_all_before_the_block_ends(tmp_path):
    from publisher.output import Writer

    same = tmp_path / "same.xml"
    same.write_bytes(b"unchanged")
    before = same.stat().st_mtime_ns
    with Writer() as writer:
        written = [writer.write_if_changed(tmp_path / f"feeds/{n}.xml", bytes([65 + n]) * 100_000) for n in range(4)]
        assert writer.write_if_changed(same, b"unchanged") is False
    assert written == [True] * 4
    assert [(tmp_path / f"feeds/{n}.xml").read_bytes() for n in range(4)] == [bytes([65 + n]) * 100_000
                                                                              for n in range(4)]
    assert same.stat().st_mtime_ns == before
    assert sorted(p.name for p in (tmp_path / "feeds").iterdir()) == [f"{n}.xml" for n in range(4)]  # no temporary


def test_a_writer_raises_the_first_failed_write_once_the_others_are_done(tmp_path):
    from publisher.errors import OutputError
    from publisher.output import Writer

    (tmp_path / "blocked.xml").mkdir()  # the rename over it fails
    with pytest.raises(OutputError, match="blocked.xml: can't write the file"):
        with Writer() as writer:
            writer.write_if_changed(tmp_path / "blocked.xml", b"new")
            writer.write_if_changed(tmp_path / "fine.xml", b"fine")
    assert (tmp_path / "fine.xml").read_bytes() == b"fine"
    with pytest.raises(KeyError):  # an error in the block itself is not masked by a write's
        with Writer() as writer:
            writer.write_if_changed(tmp_path / "blocked.xml", b"new")
            raise KeyError("the block's own")


def test_a_failed_atomic_write_replaces_nothing_and_leaves_no_temporary(tmp_path):
    from publisher.errors import OutputError
    from publisher.output import write_atomic

    target = tmp_path / "feed.xml"
    target.mkdir()  # the rename over it fails
    (target / "keep").write_bytes(b"old")
    with pytest.raises(OutputError, match="nothing was replaced"):
        write_atomic(target, b"new")
    assert (target / "keep").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feed.xml"]
    with pytest.raises(OutputError, match="can't create the file"):
        write_atomic(target / "keep" / "below.xml", b"x")  # its folder is a file


def test_the_feed_writers_are_imported_in_a_thread_that_no_build_leaves_behind(tmp_path, monkeypatch, capsys):
    import sys
    import threading

    from publisher import build as build_module

    (tmp_path / "probe_feed_writer.py").write_text("IMPORTED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "probe_feed_writer", raising=False)
    monkeypatch.setattr(build_module, "FEED_WRITERS", ("probe_feed_writer", "no_such_feed_writer_module"))
    thread = build_module._import_feed_writers()
    thread.join()
    assert sys.modules["probe_feed_writer"].IMPORTED
    assert capsys.readouterr().err == ""  # the failed import is left to the build, which reports it
    monkeypatch.setattr(build_module, "FEED_WRITERS", ("probe_feed_writer",))
    assert build_module._import_feed_writers() is None  # imported already: no thread
    monkeypatch.setattr(build_module, "FEED_WRITERS", ("no_such_feed_writer_module",))
    started = []
    real = build_module._import_feed_writers
    monkeypatch.setattr(build_module, "_import_feed_writers", lambda: started.append(real()) or started[-1])
    site = tmp_path / "site"
    shutil.copytree(SITE, site)
    builder = Builder(load_config(site / "config.toml"), clock=FrozenClock(NOW))
    try:
        assert builder.build().written  # a first build: its rows are committed while the thread imports
    finally:
        builder.close()
    assert len(started) == 1 and isinstance(started[0], threading.Thread)
    assert not started[0].is_alive() and threading.active_count() == 1
