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
