"""The state database: migrations, not "delete the database"."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest
from sqlalchemy import inspect

from publisher.clock import FrozenClock
from publisher.errors import StateError
from publisher.schema import MIGRATIONS, metadata
from publisher.state import Store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def store_at(tmp_path, name="state.db") -> Store:
    return Store(f"sqlite:///{tmp_path / name}", clock=FrozenClock(NOW))


def test_a_new_database_gets_every_migration_once(tmp_path):
    store = store_at(tmp_path)
    assert store.migrate() == [version for version, _, _ in MIGRATIONS]
    assert store.migrate() == []
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = db.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert [row[0] for row in rows] == [version for version, _, _ in MIGRATIONS]


def test_migrations_build_exactly_the_declared_schema(tmp_path):
    store = store_at(tmp_path)
    store.migrate()
    inspector = inspect(store.engine)
    for table in metadata.sorted_tables:
        migrated = {column["name"] for column in inspector.get_columns(table.name)}
        assert migrated == {column.name for column in table.columns}, table.name


def test_an_old_database_is_upgraded_keeping_its_data(tmp_path):
    store = store_at(tmp_path)
    first_version, first_name, first_step = MIGRATIONS[0]
    with store.begin() as conn:
        from publisher.schema import schema_migrations

        schema_migrations.create(conn)
        first_step(conn)
        conn.execute(schema_migrations.insert().values(version=first_version, name=first_name, applied_at=NOW))
        conn.exec_driver_sql(
            "INSERT INTO posts (path, mtime_ns, size, content_hash, draft, entry_id) "
            "VALUES ('a.snip.markdown', 1, 2, 'h', 0, 'tag:x,2020-01-01:/a')")
    assert store.migrate() == [version for version, _, _ in MIGRATIONS[1:]]
    with store.begin() as conn:
        assert conn.exec_driver_sql("SELECT entry_id FROM posts").scalar() == "tag:x,2020-01-01:/a"
        assert conn.exec_driver_sql("SELECT count(*) FROM builds").scalar() == 0


def test_a_database_from_a_newer_publisher_is_refused(tmp_path):
    store = store_at(tmp_path)
    store.migrate()
    with store.begin() as conn:
        conn.exec_driver_sql("INSERT INTO schema_migrations VALUES (999, 'future', '2030-01-01 00:00:00')")
    with pytest.raises(StateError, match="schema version 999 is newer than this publisher knows"):
        store.migrate()


def test_errors_name_the_database_without_its_password(tmp_path):
    with pytest.raises(StateError) as info:
        Store("postgresql+nosuchdriver://user:s3cret@localhost/db")
    assert "s3cret" not in str(info.value)
    assert "state.database" in str(info.value)


def test_a_corrupt_database_file_is_a_clear_error(tmp_path):
    (tmp_path / "state.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError) as info:
        store_at(tmp_path).migrate()
    assert str(tmp_path / "state.db") in str(info.value)
    assert "\n" not in str(info.value)


def test_datetimes_round_trip_aware_in_utc(tmp_path):
    store = store_at(tmp_path)
    store.migrate()
    from publisher.schema import posts

    local = datetime.fromisoformat("2013-01-25T14:27:26+05:30")
    with store.begin() as conn:
        conn.execute(posts.insert().values(path="p", mtime_ns=1, size=1, content_hash="h", draft=False, created_at=local))
        stored = conn.execute(posts.select()).one().created_at
    assert stored == local and stored.tzinfo == timezone.utc


# -- the driver-level bulk writes store exactly what SQLAlchemy would -----------------

_ROW = {"mtime_ns": 1_700_000_000_123_456_789, "size": 42, "content_hash": "abc", "error": None, "name": "week-1",
        "title": "Week 1 <&>", "kind": "blog", "author": None, "draft": True,
        "created_at": datetime.fromisoformat("2013-01-25T14:27:26.5+05:30"),
        "updated_at": datetime.fromisoformat("2024-02-29T23:59:59+00:00"), "created_key": None,
        "created_local": "2013-01-25T14:27:26.500000+05:30", "meta": '{"tags": []}', "deleted_at": None}


def _stored(tmp_path, path):
    with sqlite3.connect(tmp_path / "state.db") as db:
        return db.execute("SELECT * FROM posts WHERE path = ?", (path,)).fetchone()[2:]


def test_bulk_inserts_and_updates_store_what_sqlalchemy_stores(tmp_path):
    from sqlalchemy import update

    from publisher.schema import posts

    store = store_at(tmp_path)
    store.migrate()
    changes = {"draft": False, "deleted_at": datetime(2024, 5, 1, 12, 30, 1, 7, tzinfo=timezone.utc),
               "entry_updated": datetime.fromisoformat("2024-05-01T08:00:00-04:00"), "html": "<p>x</p>"}
    with store.begin() as conn:
        store.insert_posts(conn, [{"path": "ours", **_ROW}])
        conn.execute(posts.insert(), [{"path": "theirs", **_ROW}])
    assert _stored(tmp_path, "ours") == _stored(tmp_path, "theirs")
    with store.begin() as conn:
        ours, theirs = (conn.execute(posts.select().where(posts.c.path == p)).one().id for p in ("ours", "theirs"))
        store.update_posts(conn, [{"id": ours, **changes}])
        conn.execute(update(posts).where(posts.c.id == theirs).values(**changes))
        read_back = conn.execute(posts.select().where(posts.c.id == ours)).one()
    assert _stored(tmp_path, "ours") == _stored(tmp_path, "theirs")
    assert read_back.deleted_at == changes["deleted_at"] and read_back.created_at == _ROW["created_at"]
    assert read_back.draft is False and read_back.html == "<p>x</p>"


def test_bulk_writes_refuse_unknown_columns_and_naive_times(tmp_path):
    store = store_at(tmp_path)
    store.migrate()
    with pytest.raises(KeyError), store.begin() as conn:
        store.insert_posts(conn, [{"path": "p", **_ROW, "nope; DROP TABLE posts": 1}])
    with pytest.raises(ValueError), store.begin() as conn:
        store.insert_posts(conn, [{"path": "p", **_ROW, "created_at": datetime(2020, 1, 1)}])
    assert store.index() == {}


def test_index_reads_every_row(tmp_path):
    store = store_at(tmp_path)
    store.migrate()
    with store.begin() as conn:
        store.insert_posts(conn, [{"path": "a", **_ROW}, {"path": "b", **_ROW, "deleted_at": NOW}])
    index = store.index()
    assert sorted(index) == ["a", "b"]
    assert (index["a"].deleted, index["b"].deleted) == (False, True)
    assert index["a"].mtime_ns == _ROW["mtime_ns"] and index["a"].content_hash == "abc"
