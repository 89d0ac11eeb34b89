"""The state database's tables (SQLAlchemy Core) and the migrations that make them.

The tables below describe the *current* schema.  A database is brought to it by
the ordered migrations in :data:`MIGRATIONS`; each migration is written against
the schema as it was at its version, never against these definitions, so that
old databases upgrade the same way forever.  Schema changes are new migrations,
never "delete the database".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as naive UTC (SQLite has no time zones); read back aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state database")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", String(1024), nullable=False, unique=True),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("error", Text),
    Column("name", String(512)),
    Column("title", Text),
    Column("kind", String(255)),
    Column("author", String(255)),
    Column("draft", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Column("created_key", String(64)),
    Column("created_local", String(64)),
    Column("meta", Text),
    Column("html", Text),
    Column("summary", Text),
    Column("html_hash", String(64)),
    Column("rendered_from", String(64)),
    Column("render_key", String(64)),
    Column("entry_updated", UTCDateTime),
    Column("entry_id", Text),
    Column("first_published_at", UTCDateTime),
    Column("deleted_at", UTCDateTime),
    Index("ix_posts_created_at", "created_at"),
)

builds = Table(
    "builds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("scanned", Integer, nullable=False),
    Column("parsed", Integer, nullable=False),
    Column("rendered", Integer, nullable=False),
    Column("deleted", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("written", Integer, nullable=False),
)


def _m1_initial(conn: Connection) -> None:
    conn.execute(text("""
        CREATE TABLE posts (
            id INTEGER PRIMARY KEY,
            path VARCHAR(1024) NOT NULL UNIQUE,
            mtime_ns BIGINT NOT NULL,
            size BIGINT NOT NULL,
            content_hash VARCHAR(64) NOT NULL,
            error TEXT,
            name VARCHAR(512),
            title TEXT,
            kind VARCHAR(255),
            author VARCHAR(255),
            draft BOOLEAN NOT NULL DEFAULT FALSE,
            created_at TIMESTAMP,
            updated_at TIMESTAMP,
            created_key VARCHAR(64),
            created_local VARCHAR(64),
            meta TEXT,
            html TEXT,
            summary TEXT,
            html_hash VARCHAR(64),
            rendered_from VARCHAR(64),
            render_key VARCHAR(64),
            entry_updated TIMESTAMP,
            entry_id TEXT,
            first_published_at TIMESTAMP,
            deleted_at TIMESTAMP
        )"""))
    conn.execute(text("CREATE INDEX ix_posts_created_at ON posts (created_at)"))


def _m2_builds(conn: Connection) -> None:
    conn.execute(text("""
        CREATE TABLE builds (
            id INTEGER PRIMARY KEY,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL,
            scanned INTEGER NOT NULL,
            parsed INTEGER NOT NULL,
            rendered INTEGER NOT NULL,
            deleted INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            written INTEGER NOT NULL
        )"""))


Migration = tuple[int, str, Callable[[Connection], None]]

MIGRATIONS: list[Migration] = [
    (1, "posts table", _m1_initial),
    (2, "builds table", _m2_builds),
]
