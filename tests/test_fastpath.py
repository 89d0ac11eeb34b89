"""The quick build (stamp snapshot + sqlite3 store) gives exactly what the full path gives, and steps aside
whenever it must."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from publisher import litestore, quickbuild, stamp
from publisher.build import Builder
from publisher.clock import FrozenClock
from publisher.config import load_config
from publisher.litestore import LiteStore, Refused
from publisher.schema import MIGRATIONS, UTCDateTime, builds, posts
from publisher.snapshot import ATTRIBUTES, Snapshot, take, usable

from .conftest import FIXTURES, REPO

NOW = datetime(2024, 4, 1, 12, 0, tzinfo=timezone.utc)


def make_site(folder: Path) -> Path:
    shutil.copytree(FIXTURES / "site" / "posts", folder / "posts")
    shutil.copy(FIXTURES / "site" / "config.toml", folder / "config.toml")
    for path in (folder / "posts").rglob("*"):
        os.utime(path, ns=(0, 1_700_000_000 * 10**9))  # mtimes are stored: the same on every copy
    return folder


def attribute(obj: object, path: str) -> object:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


# -- what the fast path knows about the schema and the config -----------------------------------

def test_litestore_knows_the_newest_schema():
    assert litestore.SCHEMA_VERSION == max(version for version, _, _ in MIGRATIONS), (
        "a new migration: check whether it changes the posts or builds tables, then update LiteStore")


@pytest.mark.parametrize(("table", "columns"), [(posts, litestore.POST_COLUMNS), (builds, litestore.BUILD_COLUMNS)])
def test_litestore_columns_are_the_tables_columns(table, columns):
    assert list(columns) == [column.name for column in table.columns]
    for column in table.columns:
        expected = "datetime" if isinstance(column.type, UTCDateTime) else "bool" if column.name == "draft" else None
        assert columns[column.name] == expected, column.name


@pytest.mark.parametrize("config_file", [FIXTURES / "site" / "config.toml", REPO / "config.toml"])
def test_a_snapshot_answers_what_the_config_answers(config_file):
    config = load_config(config_file)
    snapshot = Snapshot(take(config))
    for path in ATTRIBUTES:
        assert attribute(snapshot, path) == attribute(config, path), path
    assert list(snapshot.site.authors) == list(config.site.authors)  # order too: the render key hashes it


def test_a_snapshot_survives_the_stamp_and_renders_alike(tmp_path):
    site = make_site(tmp_path)
    config = load_config(site / "config.toml")
    builder = Builder(config, clock=FrozenClock(NOW))
    builder.build()
    builder.close()
    values = stamp._load(stamp.stamp_path(config.state_dir))["snapshot"]
    assert usable(values, config.path) and not usable(values, config.path.with_name("other.toml"))
    assert Builder(Snapshot(values)).render_key() == Builder(config).render_key()


def test_litestore_reads_what_the_sqlalchemy_store_reads(tmp_path):
    from publisher.state import Store

    site = make_site(tmp_path)
    full_build(site, FrozenClock(NOW))
    url = f"sqlite:///{site / 'state' / 'publisher.db'}"
    full, lite = Store(url), LiteStore(url)
    try:
        for kinds in ([], ["blog", "show-and-tell"], ["blog"]):
            for match in ({}, {"kind": "blog"}, {"author": "rowan-ash"}):
                want = [dict(row._mapping) for row in full.feed_rows(NOW, kinds, 50, **match)]
                got = [dict(row._mapping) for row in lite.feed_rows(NOW, kinds, 50, **match)]
                assert got == want and [type(v) for r in got for v in r.values()] == \
                       [type(v) for r in want for v in r.values()]
            assert lite.next_due(NOW, kinds) == full.next_due(NOW, kinds) is not None
            assert lite.distinct("author", kinds) == full.distinct("author", kinds)
            with full.begin() as a, lite.begin() as b:
                later = datetime(2031, 1, 1, tzinfo=timezone.utc)
                assert [tuple(r) for r in lite.unpublished(b, later, kinds)] == \
                       [tuple(r) for r in full.unpublished(a, later, kinds)]
                assert lite.entry_ids(b) == full.entry_ids(a)
        assert lite.index() == full.index()
        assert lite.feed_rows(NOW, [], 2)[0].created_at.tzinfo == timezone.utc
    finally:
        full.close()
        lite.close()


# -- the same builds, row for row and byte for byte ---------------------------------------------

def edit(site: Path, step: int) -> None:
    """One step of a series of changes, the same on any site (mtimes included)."""
    before = {path: path.stat().st_mtime_ns for path in (site / "posts").rglob("*.*")}
    _edit(site / "posts", step)
    for path in (site / "posts").rglob("*.*"):
        if before.get(path) != path.stat().st_mtime_ns:
            os.utime(path, ns=(0, (1_700_000_000 + step) * 10**9))


def _edit(posts_dir: Path, step: int) -> None:
    week1 = posts_dir / "weeknotes/week-1.snip.markdown"
    if step == 1:
        week1.write_text(week1.read_text().replace("new workshop", "newer workshop"))
    elif step == 2:
        (posts_dir / "blog/fresh.snip.markdown").write_text(
            "A *new* post with a [link](/week-1#notes).\n\n:kind: blog\n:author: rowan-ash\n"
            ":created_at: 2024-03-30 08:00:00 +00:00\n:page_title: Fresh <news> & more\n")
        broken = posts_dir / "blog/broken-date.snip.markdown"
        broken.write_text(broken.read_text().replace("2024-02-30", "2024-02-28"))
    elif step == 3:
        week1.rename(posts_dir / "weeknotes/week-one.snip.markdown")
        (posts_dir / "blog/open-hours.snip.html").unlink()
    elif step == 4:
        (posts_dir / "blog/bad.snip.markdown").write_bytes(b"\xff\xfe not text")


def rows(site: Path) -> list[tuple]:
    with sqlite3.connect(site / "state" / "publisher.db") as db:
        return db.execute("SELECT * FROM posts ORDER BY id").fetchall()


def outputs(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site / "out")): p.read_bytes() for p in sorted((site / "out").rglob("*")) if p.is_file()}


def full_build(site: Path, clock: FrozenClock):
    builder = Builder(load_config(site / "config.toml"), clock=clock)
    try:
        return builder.build()
    finally:
        builder.close()


def quick_build(site: Path, clock: FrozenClock):
    found = stamp.find(site / "config.toml")
    assert found is not None
    seen = stamp.look_at(found, clock.now())
    assert not seen.fresh
    snapshot = Snapshot(seen.stamp["snapshot"])
    builder = Builder(snapshot, clock=clock, store=LiteStore(snapshot.database_url))
    try:
        return builder.build(scanned=seen)
    finally:
        builder.close()


def test_the_quick_path_builds_what_the_full_path_builds(tmp_path):
    full, quick = make_site(tmp_path / "full"), make_site(tmp_path / "quick")
    clocks = FrozenClock(NOW), FrozenClock(NOW)
    for site, clock in zip((full, quick), clocks):
        full_build(site, clock)
    for step in (1, 2, 3, 4, 5):
        for site, clock in zip((full, quick), clocks):
            edit(site, step)
            clock.advance(hours=1)
        if step == 5:  # the future post comes due
            for clock in clocks:
                clock.set(datetime(2030, 1, 1, 9, 0, 1, tzinfo=timezone.utc))
        want, got = full_build(full, clocks[0]), quick_build(quick, clocks[1])
        assert got.line().rsplit(" in ", 1)[0] == want.line().rsplit(" in ", 1)[0], step
        assert got.errors == [e.replace(str(full), str(quick)) for e in want.errors]
        assert rows(quick) == rows(full), step
        assert outputs(quick) == outputs(full), step
        assert [p.relative_to(quick) for p in got.written] == [p.relative_to(full) for p in want.written]


def test_quick_and_full_paths_record_the_same_build(tmp_path):
    full, quick = make_site(tmp_path / "full"), make_site(tmp_path / "quick")
    for site in (full, quick):
        full_build(site, FrozenClock(NOW))
        edit(site, 1)
    full_build(full, FrozenClock(NOW))
    quick_build(quick, FrozenClock(NOW))
    query = "SELECT started_at, finished_at, scanned, parsed, rendered, deleted, errors, written FROM builds"
    with sqlite3.connect(full / "state/publisher.db") as a, sqlite3.connect(quick / "state/publisher.db") as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


# -- the console script takes the quick path, and steps aside when it must ----------------------

def run_cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    probe = ("import sys\nimport publisher.entry as entry\nsys.argv = ['publisher', *sys.argv[1:]]\n"
             "def heavy():\n    print('heavy:', sorted(m for m in ('sqlalchemy', 'pydantic', 'click') if m in sys.modules))\n"
             "end = entry._end\nentry._end = lambda: (heavy(), end())\n"  # a quick build ends the process there
             "try:\n    entry.main()\nfinally:\n    heavy()")
    return subprocess.run([sys.executable, "-c", probe, *args], cwd=site, capture_output=True, text=True,
                          check=True, env={**os.environ, "PUBLISHER_CONFIG": "config.toml"})


def test_the_console_script_builds_a_changed_post_without_sqlalchemy_pydantic_or_click(tmp_path):
    site = make_site(tmp_path)
    first = run_cli(site, "build")
    assert "heavy: ['pydantic']" in first.stdout  # a first build validates the config; no click, no SQLAlchemy
    edit(site, 1)
    second = run_cli(site, "build", "--config", "config.toml")
    assert "heavy: []" in second.stdout
    assert "0 new, 1 changed" in second.stdout and "1 rendered" in second.stdout
    assert "newer workshop" in (site / "out" / "atom.xml").read_text()
    third = run_cli(site, "build")
    assert "build: nothing changed (8 posts scanned)" in third.stdout and "heavy: []" in third.stdout


def printed(result: subprocess.CompletedProcess, site: Path) -> tuple[list[str], list[str]]:
    """What a build printed, without times and with the site's folder as SITE."""
    def clean(text: str) -> list[str]:
        lines = text.replace(str(site), "SITE").splitlines()
        return [re.sub(r" in [0-9.]+s$", "", line.split(" ", 2)[-1] if line[:2] == "20" else line) for line in lines]
    return clean(result.stdout), clean(result.stderr)


def test_the_console_script_prints_what_the_full_cli_prints(tmp_path):
    full, quick = make_site(tmp_path / "full"), make_site(tmp_path / "quick")
    for site in (full, quick):
        run_cli(site, "build")
    for step in (2, 4):
        for site in (full, quick):
            edit(site, step)
        want = run_cli(full, "build", "--config", "config.toml", "--log-level", "INFO")  # the full CLI
        got = run_cli(quick, "build", "--config", "config.toml")
        assert "heavy: []" in got.stdout and "heavy: []" not in want.stdout
        assert printed(got, quick)[0][:-1] == printed(want, full)[0][:-1]
        assert [line for line in printed(got, quick)[1] if "INFO" not in line] == \
               [line for line in printed(want, full)[1] if "INFO" not in line]
    assert "WARNING publisher.sync: SITE/posts/blog/bad.snip.markdown: not valid UTF-8" in "".join(printed(got, quick)[1])


def test_an_edited_config_is_validated_again(tmp_path):
    site = make_site(tmp_path)
    run_cli(site, "build")
    edit(site, 1)
    config = site / "config.toml"
    config.write_text(config.read_text().replace('title = "Fixture Co-op"', 'title = "Renamed Co-op"'))
    result = run_cli(site, "build")
    assert "heavy: ['pydantic']" in result.stdout  # validated again (still no click or SQLAlchemy)
    assert "<title>Renamed Co-op</title>" in (site / "out" / "atom.xml").read_text()


@pytest.mark.parametrize("url", ["postgresql://db.example/x", "sqlite://", "sqlite:///:memory:",
                                 "sqlite:///state.db?mode=ro", "sqlite:///file:x?uri=true"])
def test_litestore_refuses_all_but_plain_sqlite_files(url):
    with pytest.raises(Refused):
        LiteStore(url)


def test_litestore_refuses_another_schema_version(tmp_path):
    site = make_site(tmp_path)
    full_build(site, FrozenClock(NOW))
    url = f"sqlite:///{site / 'state' / 'publisher.db'}"
    LiteStore(url).close()
    with sqlite3.connect(site / "state" / "publisher.db") as db:
        db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'x', '2024-01-01')")
    with pytest.raises(Refused, match="schema version 99"):
        LiteStore(url)
    edit(site, 1)
    assert quickbuild.build(site / "config.toml") is False  # and so the full path runs


def test_no_stamp_or_a_stamp_from_elsewhere_means_the_config_is_validated_here(tmp_path, monkeypatch):
    import publisher.config

    validated = []
    real_load = publisher.config.load_config
    monkeypatch.setattr(publisher.config, "load_config", lambda path: validated.append(path) or real_load(path))
    site = make_site(tmp_path / "a")
    assert quickbuild.build(site / "config.toml") is True  # never built
    moved = tmp_path / "b"
    shutil.copytree(site, moved)
    edit(moved, 1)
    assert quickbuild.build(moved / "config.toml") is True  # the stamp names a.../config.toml: not this one's
    assert validated == [site / "config.toml", moved / "config.toml"]
    assert "newer workshop" in (moved / "out" / "atom.xml").read_text()
    assert "newer workshop" not in (site / "out" / "atom.xml").read_text()


def test_a_long_scan_on_a_terminal_goes_to_the_cli_for_its_progress_bar(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with pytest.raises(quickbuild._NotHere):
        with quickbuild._no_bar(quickbuild.PROGRESS_BAR_AT, "Reading posts"):
            pass
    with quickbuild._no_bar(quickbuild.PROGRESS_BAR_AT - 1, "Reading posts") as bar:
        bar.update(1)


# -- a first build: entry IDs made as the posts are inserted -------------------------------------

def test_a_first_build_publishes_as_it_inserts_exactly_as_publishing_after(tmp_path, monkeypatch):
    early, late = make_site(tmp_path / "early"), make_site(tmp_path / "late")
    for site in (early, late):  # the same entry ID as week-1 (same name, same date): made unique, in id order
        twin = site / "posts/weeknotes/week-1.twin.markdown"
        twin.write_text("Twin.\n\n:kind: blog\n:created_at: 2024-03-01 09:00:00 +00:00\n:page_title: Twin\n")
        os.utime(twin, ns=(0, 1_700_000_000 * 10**9))
    want = full_build(early, FrozenClock(NOW))
    import publisher.build as build_module

    real_sync = build_module.sync
    monkeypatch.setattr(build_module, "sync", lambda *args, publish=None, **kwargs: real_sync(*args, **kwargs))
    got = full_build(late, FrozenClock(NOW))
    assert want.published == got.published > 0
    assert rows(early) == rows(late) and outputs(early) == outputs(late)
    ids = {row[1]: row[22] for row in rows(early)}
    assert ids["weeknotes/week-1.snip.markdown"] == "tag:fixture.example.net,2024-03-01:/week-1"
    assert ids["weeknotes/week-1.twin.markdown"] == "tag:fixture.example.net,2024-03-01:/week-1-2"


def test_a_config_that_does_not_validate_goes_to_the_cli_which_reports_it(tmp_path):
    site = make_site(tmp_path)
    config = site / "config.toml"
    config.write_text(config.read_text().replace("entries = 5", "entries = 0"))
    assert quickbuild.build(config) is False
    result = subprocess.run([sys.executable, "-m", "publisher", "build"], cwd=site, capture_output=True, text=True,
                            env={**os.environ, "PUBLISHER_CONFIG": "config.toml"})
    assert result.returncode == 1 and "feeds.entries" in result.stderr
    assert not (site / "state" / "publisher.db").exists()


# -- a new database made by LiteStore is the one the migrations make ------------------------------

SCHEMA_QUERY = "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master ORDER BY rowid"


def test_litestore_makes_a_new_database_exactly_as_the_migrations_do(tmp_path, caplog):
    from publisher.state import Store

    full = Store(f"sqlite:///{tmp_path / 'full.db'}", clock=FrozenClock(NOW))
    full.migrate()
    full.close()
    caplog.clear()
    lite = LiteStore(f"sqlite:///{tmp_path / 'new' / 'lite.db'}", clock=FrozenClock(NOW))
    assert not (tmp_path / "new").exists()  # made when first used, as a Builder first uses its Store
    with caplog.at_level("INFO", logger="publisher"):
        assert lite.index() == {}
    lite.close()
    with sqlite3.connect(tmp_path / "full.db") as a, sqlite3.connect(tmp_path / "new" / "lite.db") as b:
        assert b.execute(SCHEMA_QUERY).fetchall() == a.execute(SCHEMA_QUERY).fetchall()
        rows = "SELECT * FROM schema_migrations ORDER BY version"
        assert b.execute(rows).fetchall() == a.execute(rows).fetchall()
        assert [row[0] for row in b.execute(rows)] == [version for version, _, _ in MIGRATIONS]
        assert b.execute("PRAGMA journal_mode").fetchone() == a.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert [r.getMessage() for r in caplog.records] == [
        f"state database migrated to version {version} ({name})" for version, name, _ in MIGRATIONS]


def test_litestore_leaves_a_schema_another_process_just_made(tmp_path, monkeypatch, caplog):
    url = f"sqlite:///{tmp_path / 'lite.db'}"
    made = LiteStore(url, clock=FrozenClock(NOW))
    made.index()
    made.close()
    with sqlite3.connect(tmp_path / "lite.db") as db:
        before = db.execute(SCHEMA_QUERY).fetchall(), db.execute("SELECT * FROM schema_migrations").fetchall()
    monkeypatch.setattr(litestore.os.path, "isfile", lambda path: False)  # it looked missing a moment ago
    caplog.clear()
    with caplog.at_level("INFO", logger="publisher"):
        again = LiteStore(url, clock=FrozenClock(datetime(2030, 1, 1, tzinfo=timezone.utc)))
        assert again.index() == {}
        again.close()
    with sqlite3.connect(tmp_path / "lite.db") as db:
        assert (db.execute(SCHEMA_QUERY).fetchall(), db.execute("SELECT * FROM schema_migrations").fetchall()) == before
    assert not caplog.records


def test_the_first_build_of_a_new_site_is_the_full_paths_row_for_row(tmp_path):
    full, quick = make_site(tmp_path / "full"), make_site(tmp_path / "quick")
    want = run_cli(full, "build", "--config", "config.toml", "--log-level", "INFO")  # the full CLI
    got = run_cli(quick, "build")
    assert "heavy: ['pydantic']" in got.stdout and "sqlalchemy" in want.stdout
    assert printed(got, quick)[0][:-1] == printed(want, full)[0][:-1]
    assert [line.replace("publisher.litestore", "publisher.state") for line in printed(got, quick)[1]] == \
           printed(want, full)[1]
    with sqlite3.connect(full / "state/publisher.db") as a, sqlite3.connect(quick / "state/publisher.db") as b:
        assert b.execute(SCHEMA_QUERY).fetchall() == a.execute(SCHEMA_QUERY).fetchall()
        columns = "version, name"  # applied_at: when each ran
        assert b.execute(f"SELECT {columns} FROM schema_migrations").fetchall() == \
               a.execute(f"SELECT {columns} FROM schema_migrations").fetchall()
        # the quick path's new database took its first posts through a rollback journal, then went over to WAL
        assert b.execute("PRAGMA journal_mode").fetchone() == a.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert outputs(quick) == outputs(full)
    mask = [i for i, name in enumerate(litestore.POST_COLUMNS) if name not in ("first_published_at", "entry_updated")]
    assert [[row[i] for i in mask] for row in rows(quick)] == [[row[i] for i in mask] for row in rows(full)]


def test_the_garbage_collector_is_back_on_when_the_full_cli_takes_over(tmp_path, monkeypatch):
    import gc

    from publisher import entry

    monkeypatch.chdir(tmp_path)  # no config.toml here: the quick build steps aside for the CLI to report it
    seen = []
    monkeypatch.setattr(quickbuild, "build", lambda path, started: seen.append(gc.isenabled()) or False)
    assert entry._quick_build(["build"]) is False
    assert seen == [False] and gc.isenabled()


def test_a_first_build_starts_reading_ahead_before_pydantic_is_imported(tmp_path):
    """The helper reads posts while pydantic is imported and validates: importing it first would leave the
    helper nothing to overlap (pydantic takes longer to import than to validate)."""
    site = make_site(tmp_path)
    probe = ("import sys\nfrom publisher import forked, sync\nforked.worth_forking = lambda: True\n"
             "real = sync.ReadAhead.__init__\n"
             "def init(self, *args):\n    print('pydantic imported:', 'pydantic' in sys.modules)\n"
             "    real(self, *args)\n"
             "sync.ReadAhead.__init__ = init\nfrom publisher.entry import main\nsys.argv = ['publisher', 'build']\nmain()")
    result = subprocess.run([sys.executable, "-c", probe], cwd=site, capture_output=True, text=True, check=True)
    assert "pydantic imported: False" in result.stdout and "8 new" in result.stdout
