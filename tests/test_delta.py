"""A rebuild reads from the database only the rows of the files that changed since the stamped build
(:func:`publisher.stamp.changed_since`), and gets exactly what reading every row gets."""

from __future__ import annotations

import marshal
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from publisher import forked, litestore, quickbuild, stamp
from publisher.build import Builder
from publisher.clock import FrozenClock
from publisher.config import load_config
from publisher.litestore import LiteStore
from publisher.scan import scan_posts
from publisher.state import Store

from .conftest import FIXTURES
from .test_fastpath import NOW, make_site, outputs, rows

STEPS = 8


def _edit(posts: Path, step: int) -> None:
    week1 = posts / "weeknotes/week-1.snip.markdown"
    if step == 1:  # one post edited in place
        week1.write_text(week1.read_text().replace("new workshop", "newer workshop"))
    elif step == 2:  # a new post, and a broken one mended
        (posts / "blog/fresh.snip.markdown").write_text(
            "A *new* post.\n\n:kind: blog\n:author: rowan-ash\n:created_at: 2024-03-30 08:00:00 +00:00\n")
        broken = posts / "blog/broken-date.snip.markdown"
        broken.write_text(broken.read_text().replace("2024-02-30", "2024-02-28"))
    elif step == 3:  # a rename and a deletion
        week1.rename(posts / "weeknotes/week-one.snip.markdown")
        (posts / "blog/open-hours.snip.html").unlink()
    elif step == 4:  # a file that can't be read as text
        (posts / "blog/bad.snip.markdown").write_bytes(b"\xff\xfe not text")
    elif step == 5:  # the deleted post comes back under another name (a rename from its tombstone)
        (posts / "blog/hours.snip.html").write_bytes((FIXTURES / "site/posts/blog/open-hours.snip.html").read_bytes())
    elif step == 6:  # touched, not changed
        os.utime(posts / "weeknotes/week-2.snip.markdown", ns=(0, 1_800_000_000 * 10**9))
    elif step == 7:  # two posts deleted, one of them new since the first build
        (posts / "blog/fresh.snip.markdown").unlink()
        (posts / "weeknotes/week-2.snip.markdown").unlink()


def edit(site: Path, step: int) -> None:
    before = {path: path.stat().st_mtime_ns for path in (site / "posts").rglob("*.*")}
    _edit(site / "posts", step)
    for path in (site / "posts").rglob("*.*"):
        if before.get(path) != path.stat().st_mtime_ns and step != 6:
            os.utime(path, ns=(0, (1_700_000_000 + step) * 10**9))


class Spy:
    """Which paths the sync asked the store for (None: every row)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: type) -> None:
        self.asked: list[set[str] | None] = []
        real = store.index

        def index(this, paths=None):
            self.asked.append(None if paths is None else set(paths))
            return real(this, paths)

        monkeypatch.setattr(store, "index", index)


def build(site: Path, clock: FrozenClock, *, store: type = Store):
    config = load_config(site / "config.toml")
    builder = Builder(config, clock=clock, store=store(config.database_url) if store is LiteStore else None)
    try:
        return builder.build()
    finally:
        builder.close()


@pytest.mark.parametrize("store", [Store, LiteStore])
def test_a_build_from_the_changed_paths_is_a_build_from_every_row(tmp_path, monkeypatch, store):
    delta, every = make_site(tmp_path / "delta"), make_site(tmp_path / "every")
    spy = Spy(monkeypatch, store)
    clock = FrozenClock(NOW)
    for site in (delta, every):
        build(site, clock, store=store)
    for step in range(1, STEPS):
        clock.advance(hours=1)
        for site in (delta, every):
            edit(site, step)
        stamp.files_path(every / "state").unlink()  # no record: every row is read
        spy.asked.clear()
        want, got = build(every, clock, store=store), build(delta, clock, store=store)
        assert spy.asked[0] is None and spy.asked[1] is not None, step
        assert got.line().rsplit(" in ", 1)[0] == want.line().rsplit(" in ", 1)[0], step
        assert rows(delta) == rows(every), step
        assert outputs(delta) == outputs(every), step


def test_the_sync_asks_only_for_the_changed_paths(tmp_path, monkeypatch):
    site = make_site(tmp_path)
    spy = Spy(monkeypatch, Store)
    clock = FrozenClock(NOW)
    build(site, clock)
    edit(site, 1)
    build(site, clock)
    assert spy.asked == [None, {"weeknotes/week-1.snip.markdown"}]
    edit(site, 3)
    report = build(site, clock)
    assert spy.asked[-1] == {"weeknotes/week-1.snip.markdown", "weeknotes/week-one.snip.markdown",
                             "blog/open-hours.snip.html"}
    assert report.sync.renamed == 1 and report.sync.deleted == 1


def test_a_forced_build_reads_every_row(tmp_path, monkeypatch):
    site = make_site(tmp_path)
    spy = Spy(monkeypatch, Store)
    config = load_config(site / "config.toml")
    builder = Builder(config, clock=FrozenClock(NOW))
    try:
        builder.build()
        edit(site, 1)
        builder.build(force=True)
    finally:
        builder.close()
    assert spy.asked == [None, None]


# -- the record of the stamped build's files ----------------------------------------------------

def stamped(site: Path):
    config = load_config(site / "config.toml")
    build(site, FrozenClock(NOW))
    return config


def test_changed_since_names_the_new_changed_and_gone_files(tmp_path):
    site = make_site(tmp_path)
    config = stamped(site)
    root = config.posts_root
    assert stamp.changed_since(config, scan_posts(root, config.posts.folders)) == set()
    edit(site, 1)
    edit(site, 3)
    edit(site, 5)
    assert stamp.changed_since(config, scan_posts(root, config.posts.folders)) == {
        "weeknotes/week-1.snip.markdown", "weeknotes/week-one.snip.markdown", "blog/open-hours.snip.html",
        "blog/hours.snip.html"}


@pytest.mark.parametrize("spoil", ["no record", "no stamp", "another stamp", "other folders", "garbage",
                                   "not a listing"])
def test_changed_since_is_unknown_unless_the_record_is_the_stamps(tmp_path, spoil):
    site = make_site(tmp_path)
    config = stamped(site)
    record, stamp_file = stamp.files_path(config.state_dir), stamp.stamp_path(config.state_dir)
    inputs, scope, files = marshal.loads(record.read_bytes())
    if spoil == "no record":
        record.unlink()
    elif spoil == "no stamp":
        stamp_file.unlink()
    elif spoil == "another stamp":
        stamp_file.write_text(stamp_file.read_text().replace(inputs, "0" * len(inputs)))
    elif spoil == "other folders":
        record.write_bytes(marshal.dumps((inputs, (scope[0], scope[1], ("weeknotes",)), files)))
    elif spoil == "garbage":
        record.write_bytes(b"\x00not marshal")
    else:
        record.write_bytes(marshal.dumps((inputs, scope, [[path, 1, 2] for path, _, _ in files])))
    assert stamp.changed_since(config, scan_posts(config.posts_root, config.posts.folders)) is None


def test_a_build_starts_by_forgetting_the_record(tmp_path):
    site = make_site(tmp_path)
    config = stamped(site)
    assert stamp.files_path(config.state_dir).is_file()
    stamp.forget(config)
    assert not stamp.files_path(config.state_dir).exists() and not stamp.stamp_path(config.state_dir).exists()


# -- the quick build's look at the stamp, in a helper process ------------------------------------

def test_the_forked_look_is_the_look_here_with_the_changed_paths(tmp_path):
    site = make_site(tmp_path)
    config = stamped(site)
    now = datetime.now(timezone.utc)
    found = stamp.find(site / "config.toml")
    fresh = quickbuild._look(found, now)
    assert fresh.fresh and len(fresh.stats) == len(scan_posts(config.posts_root, config.posts.folders))
    edit(site, 1)
    assert forked.worth_forking() or pytest.skip("one CPU: the look is always taken here")
    seen, here = quickbuild._look(found, now), stamp.look_at(found, now)
    assert not seen.fresh and seen.inputs == here.inputs and len(seen.stats) == len(here.stats)
    assert seen.changed == {"weeknotes/week-1.snip.markdown"}
    assert stamp.files_among(seen.stats, seen.changed) == stamp.files_among(here.stats, seen.changed)
    assert stamp.files_among(seen.stats, {"blog/a-page.snip.markdown"}) == \
           stamp.files_among(here.stats, {"blog/a-page.snip.markdown"})  # beyond the changed paths too
    assert list(seen.stats) == here.stats and all(type(stat) is type(here.stats[0]) for stat in seen.stats)
    scope = stamp._files_scope(config)
    assert stamp._record(here.inputs, scope, seen.stats) == stamp._record(here.inputs, scope, here.stats)


def test_a_failed_helper_means_a_look_here(tmp_path, monkeypatch):
    site = make_site(tmp_path)
    stamped(site)
    edit(site, 1)

    class Failed(forked.Helper):
        def __init__(self, work):
            super().__init__(lambda: 1 / 0)

    monkeypatch.setattr(forked, "worth_forking", lambda: True)
    monkeypatch.setattr(forked, "Helper", Failed)
    found = stamp.find(site / "config.toml")
    seen = quickbuild._look(found, NOW)
    assert not seen.fresh and seen.changed is None  # looked here, which leaves the changed paths to the build
    assert [stat.path for stat in seen.stats] == [stat.path for stat in stamp.look_at(found, NOW).stats]


def test_the_build_takes_the_helpers_changed_paths_only_while_the_stamp_is_the_same(tmp_path, monkeypatch):
    site = make_site(tmp_path)
    config = stamped(site)
    edit(site, 1)
    found = stamp.find(site / "config.toml")
    seen = stamp.look_at(found, NOW)._replace(changed={"made/up.snip.markdown"})
    builder = Builder(config, clock=FrozenClock(NOW))
    try:
        assert builder._changed(seen.stats, seen) == {"made/up.snip.markdown"}  # taken as given
        stamp.forget(config)  # another build came between
        assert builder._changed(seen.stats, seen) is None
    finally:
        builder.close()


# -- the indexes that make these lookups cheap -----------------------------------------------------

def test_the_lookups_of_a_rebuild_use_indexes_not_a_scan_of_every_post(tmp_path):
    site = make_site(tmp_path)
    stamped(site)
    with sqlite3.connect(site / "state" / "publisher.db") as db:
        query, params = litestore.index_query({"blog/a.snip.markdown", "blog/b.snip.markdown"})
        where, more = litestore._visible(NOW, [])
        unpublished = f"SELECT id FROM posts WHERE {where} AND entry_id IS NULL ORDER BY id"
        for sql, values in ((query, params), (unpublished, more)):
            plan = " / ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", values))
            assert "USING INDEX" in plan and "SCAN posts\x00" not in plan + "\x00", plan
            assert all("INDEX" in step for step in plan.split(" / ") if step.startswith(("SCAN", "SEARCH"))), plan
