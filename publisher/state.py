"""The state database: what publisher knows about every post file between builds.

SQLAlchemy Core over SQLite by default (any SQLAlchemy URL works, so
PostgreSQL can serve later).  The store opens the database, brings its schema
up to date with the migrations in :mod:`publisher.schema`, and offers the few
queries the build needs.  On SQLite, the bulk post writes and the large reads
of a first build go through the driver itself (:mod:`publisher.litestore`),
storing exactly what SQLAlchemy stores.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, create_engine, event, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from publisher import litestore
from publisher.clock import Clock
from publisher.errors import StateError
from publisher.litestore import IndexRow

__all__ = ["IndexRow", "Store"]
from publisher.schema import MIGRATIONS, builds, posts, schema_migrations

log = logging.getLogger(__name__)


class Store:
    """One state database."""

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = url
        self.clock = clock or Clock()
        self.engine = _engine(url)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction; database errors become StateError."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except (SQLAlchemyError, sqlite3.Error) as exc:  # sqlite3: the driver-level bulk paths
            raise StateError(_safe_url(self.url), _reason(exc)) from exc

    # -- schema -----------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply every pending migration; return the versions applied."""
        with self.begin() as conn:
            schema_migrations.create(conn, checkfirst=True)
            done = set(conn.scalars(select(schema_migrations.c.version)))
        newest = max(version for version, _, _ in MIGRATIONS)
        if done and max(done) > newest:
            raise StateError(
                _safe_url(self.url),
                f"schema version {max(done)} is newer than this publisher knows ({newest}); upgrade publisher",
            )
        applied = [version for version, name, step in MIGRATIONS if version not in done and self._apply(version, name, step)]
        return applied

    def _apply(self, version: int, name: str, step: Any) -> bool:
        with self.begin() as conn:
            step(conn)
            conn.execute(schema_migrations.insert().values(version=version, name=name, applied_at=self.clock.now()))
        log.info("state database migrated to version %d (%s)", version, name)
        return True

    # -- posts ------------------------------------------------------------

    def index(self, paths: Collection[str] | None = None) -> dict[str, IndexRow]:
        """The stored post files by path: every one (a plain query: ten thousand rows are read on a full sync), or
        those at ``paths`` and the deleted ones."""
        with self.begin() as conn:
            if paths is None:
                rows = conn.exec_driver_sql(litestore.INDEX_QUERY).fetchall()
            else:
                query = text(litestore.INDEX_AT_PATHS.format(paths=":paths"))
                rows = conn.execute(query.bindparams(bindparam("paths", expanding=True)),
                                    {"paths": sorted(paths)}).fetchall()
        return litestore.index_rows(rows)

    def insert_posts(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert post rows; on SQLite through the driver itself, storing exactly what SQLAlchemy stores."""
        if conn.dialect.name == "sqlite":
            litestore.insert_posts(conn.connection.dbapi_connection, rows)
            return
        for batch in litestore.group_by_columns(rows, ()).values():
            conn.execute(posts.insert(), batch)

    def update_posts(self, conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
        """Update rows by id; each dict holds ``id`` and the columns to set (grouped by column set)."""
        if conn.dialect.name == "sqlite":
            litestore.update_posts(conn.connection.dbapi_connection, rows)
            return
        for keys, batch in litestore.group_by_columns(rows, ("id",)).items():
            stmt = update(posts).where(posts.c.id == bindparam("_id")).values({k: bindparam(k) for k in keys})
            conn.execute(stmt, [{"_id": row["id"], **{k: row[k] for k in keys}} for row in batch])

    def unpublished(self, conn: Connection, now: datetime, kinds: Sequence[str]) -> list[Any]:
        """Visible posts that have no entry ID yet (what making one needs, not whole rows)."""
        if conn.dialect.name == "sqlite":  # ten thousand rows on a first build: plain tuples from the driver
            return litestore.unpublished(conn.connection.dbapi_connection, now, kinds)
        columns = (posts.c.id, posts.c.name, posts.c.kind, posts.c.author, posts.c.created_local)
        query = select(*columns).where(_visible(now, kinds), posts.c.entry_id.is_(None)).order_by(posts.c.id)
        return list(conn.execute(query))

    def entry_ids(self, conn: Connection) -> set[str]:
        if conn.dialect.name == "sqlite":
            return litestore.entry_ids(conn.connection.dbapi_connection)
        return set(conn.scalars(select(posts.c.entry_id).where(posts.c.entry_id.is_not(None))))

    def next_due(self, now: datetime, kinds: Sequence[str]) -> datetime | None:
        """When the next future-dated post becomes visible."""
        query = select(func.min(posts.c.created_at)).where(_live(kinds), posts.c.created_at > now)
        with self.begin() as conn:
            return conn.scalar(query)

    def feed_rows(self, now: datetime, kinds: Sequence[str], limit: int, **match: str) -> list[Any]:
        """The newest visible posts, optionally matching ``kind=`` or ``author=``."""
        query = select(posts).where(_visible(now, kinds), *(posts.c[key] == value for key, value in match.items()))
        query = query.order_by(posts.c.created_at.desc(), posts.c.id.desc()).limit(limit)
        with self.begin() as conn:
            return list(conn.execute(query))

    def distinct(self, column: str, kinds: Sequence[str]) -> list[str]:
        """Every value of ``column`` among posts that are not broken (deleted ones too, so their feeds empty)."""
        col = posts.c[column]
        query = select(col).where(posts.c.error.is_(None), col.is_not(None), _kind_filter(kinds)).distinct().order_by(col)
        with self.begin() as conn:
            return list(conn.scalars(query))

    def errors(self) -> list[tuple[str, str]]:
        query = select(posts.c.path, posts.c.error).where(posts.c.error.is_not(None), posts.c.deleted_at.is_(None))
        with self.begin() as conn:
            return [(row.path, row.error) for row in conn.execute(query.order_by(posts.c.path))]

    def record_build(self, **counts: Any) -> None:
        with self.begin() as conn:
            conn.execute(builds.insert().values(**counts))


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StateError(_safe_url(url), f"can't open: {exc}; check state.database") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _live(kinds: Sequence[str]) -> Any:
    return and_(posts.c.error.is_(None), posts.c.deleted_at.is_(None), posts.c.draft.is_(False), _kind_filter(kinds))


def _visible(now: datetime, kinds: Sequence[str]) -> Any:
    return and_(_live(kinds), posts.c.created_at <= now)


def _kind_filter(kinds: Sequence[str]) -> Any:
    return posts.c.kind.in_(list(kinds)) if kinds else and_(True)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL too broken to parse is shown without its userinfo
        return url.split("@")[-1]


def _reason(exc: Exception) -> str:
    original = getattr(exc, "orig", None)
    text = (str(original or exc).splitlines() or [type(exc).__name__])[0]
    if "locked" in text:
        return f"{text}: another process holds the database; it will be retried"
    if "disk I/O error" in text or "database or disk is full" in text:
        return f"{text}: the disk may be full or a file size limit reached; free space and it will be retried"
    return text
