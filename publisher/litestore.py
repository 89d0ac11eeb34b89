"""The posts table of a SQLite state database through the standard library's ``sqlite3`` alone.

Two users:

* :class:`publisher.state.Store` writes post rows in bulk through these
  driver-level functions when its database is SQLite (SQLAlchemy's per-row work
  is most of the cost of a first build's ten thousand inserts);
* :class:`LiteStore` offers exactly the post methods a build needs, so that
  ``publisher build`` on SQLite runs without importing SQLAlchemy (see
  :mod:`publisher.quickbuild`).  It makes a NEW database itself, with the very
  statements the migrations of :mod:`publisher.schema` run on SQLite and the
  same ``schema_migrations`` rows (:data:`MIGRATIONS`; a test holds the two
  schemas equal, ``sqlite_master`` row for row).

Values are stored and read back exactly as SQLAlchemy stores and reads them
(``UTCDateTime`` as ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, booleans as 0/1).
:data:`SCHEMA_VERSION` is the newest migration whose tables this module
knows: a database at any other version is refused (:class:`Refused`), and the
caller takes the SQLAlchemy path.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections import namedtuple
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, NamedTuple

from publisher.clock import Clock
from publisher.errors import StateError

log = logging.getLogger(__name__)

#: The schema version (``max(MIGRATIONS)``) whose posts and builds tables this module reads and writes.
SCHEMA_VERSION = 4

_DATETIME, _BOOL = "datetime", "bool"
#: Every column of the posts table, and how its values are bound (None: as given).
POST_COLUMNS: dict[str, str | None] = {
    "id": None, "path": None, "mtime_ns": None, "size": None, "content_hash": None, "error": None, "name": None,
    "title": None, "kind": None, "author": None, "draft": _BOOL, "created_at": _DATETIME, "updated_at": _DATETIME,
    "created_key": None, "created_local": None, "meta": None, "html": None, "summary": None, "html_hash": None,
    "rendered_from": None, "render_key": None, "entry_updated": _DATETIME, "entry_id": None,
    "first_published_at": _DATETIME, "deleted_at": _DATETIME,
}
BUILD_COLUMNS: dict[str, str | None] = {
    "id": None, "started_at": _DATETIME, "finished_at": _DATETIME, "scanned": None, "parsed": None,
    "rendered": None, "deleted": None, "errors": None, "written": None,
}


# -- the schema of a new database, as publisher.schema makes it on SQLite ---------------------

#: The table SQLAlchemy makes for ``publisher.schema.schema_migrations``, as SQLite keeps its statement.
SCHEMA_MIGRATIONS_DDL = ("CREATE TABLE schema_migrations (\n\tversion INTEGER NOT NULL, \n\tname VARCHAR(200) NOT NULL, "
                         "\n\tapplied_at DATETIME NOT NULL, \n\tPRIMARY KEY (version)\n)")

#: (version, name, statements) of every migration up to :data:`SCHEMA_VERSION`, as ``publisher.schema``
#: runs them on SQLite (``{ID}`` as ``INTEGER PRIMARY KEY``), white space included: SQLite keeps the text.
MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
    (1, "posts table", ("""
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
        )""", "CREATE INDEX ix_posts_created_at ON posts (created_at)")),
    (2, "builds table", ("""
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
        )""",)),
    (3, "subscribers, subscriptions, digests, deliveries", (
        """CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email VARCHAR(320) NOT NULL UNIQUE,
        name TEXT,
        secret VARCHAR(64) NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )""",
        """CREATE TABLE subscriptions (
        id INTEGER PRIMARY KEY,
        subscriber_id INTEGER NOT NULL,
        list VARCHAR(100) NOT NULL,
        status VARCHAR(16) NOT NULL,
        created_at TIMESTAMP NOT NULL,
        status_at TIMESTAMP NOT NULL,
        confirmed_at TIMESTAMP,
        soft_bounces INTEGER NOT NULL DEFAULT 0,
        CONSTRAINT uq_subscriptions_subscriber_list UNIQUE (subscriber_id, list)
    )""",
        "CREATE INDEX ix_subscriptions_list_status ON subscriptions (list, status, subscriber_id)",
        """CREATE TABLE digests (
        id INTEGER PRIMARY KEY,
        list VARCHAR(100) NOT NULL,
        scheduled_for TIMESTAMP NOT NULL,
        since TIMESTAMP,
        cutoff TIMESTAMP NOT NULL,
        post_ids TEXT NOT NULL,
        subject TEXT NOT NULL,
        html TEXT NOT NULL,
        text TEXT NOT NULL,
        summaries_only BOOLEAN NOT NULL DEFAULT FALSE,
        status VARCHAR(16) NOT NULL,
        recipients INTEGER NOT NULL DEFAULT 0,
        owner VARCHAR(200),
        lease_until TIMESTAMP,
        created_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        CONSTRAINT uq_digests_list_slot UNIQUE (list, scheduled_for)
    )""",
        """CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        digest_id INTEGER NOT NULL,
        subscriber_id INTEGER NOT NULL,
        email VARCHAR(320) NOT NULL,
        state VARCHAR(16) NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMP,
        reason TEXT,
        message_id VARCHAR(255) NOT NULL,
        provider_id VARCHAR(255),
        updated_at TIMESTAMP NOT NULL,
        CONSTRAINT uq_deliveries_digest_subscriber UNIQUE (digest_id, subscriber_id)
    )""",
        "CREATE INDEX ix_deliveries_digest_state ON deliveries (digest_id, state, id)")),
    (4, "meta and suppressions", ("CREATE TABLE meta (key VARCHAR(100) PRIMARY KEY, value TEXT NOT NULL)", """
        CREATE TABLE suppressions (
            id INTEGER PRIMARY KEY,
            email_hash VARCHAR(64) NOT NULL UNIQUE,
            reason VARCHAR(32) NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""")),
]


class Refused(Exception):
    """This database is not one LiteStore can serve (not a plain SQLite file, another schema version)."""


class IndexRow(NamedTuple):
    """What the scan compares a file with: its stored stat and content hash (a tuple: 10,000 are read a build)."""

    id: int
    path: str
    mtime_ns: int
    size: int
    content_hash: str
    deleted: int  # 1 for a post whose file is gone (a tombstone kept for renames), else 0
    created_key: str | None  # the post's explicit created_at as written, to recognise a renamed file


class PostRow(namedtuple("PostRow", list(POST_COLUMNS))):
    """A whole posts row, read as SQLAlchemy reads it (attributes, and ``_mapping`` as a row has)."""

    __slots__ = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self))


Unpublished = namedtuple("Unpublished", ["id", "name", "kind", "author", "created_local"])


# -- values as SQLAlchemy stores them --------------------------------------------

def sqlite_datetime(value: datetime) -> str:
    """An aware datetime as a UTCDateTime column holds it in SQLite (SQLAlchemy's DATETIME storage format)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the state database")
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def read_datetime(value: str | None) -> datetime | None:
    """A stored UTCDateTime read back aware, as SQLAlchemy reads it."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


_BINDS = {_DATETIME: sqlite_datetime, _BOOL: int}


# -- bulk writes at the driver level ----------------------------------------------

def insert_posts(dbapi: Any, rows: Iterable[dict[str, Any]]) -> None:
    """Insert rows (dicts of column -> value) through the DB-API connection ``dbapi``."""
    for keys, batch in group_by_columns(rows, ()).items():
        sql = f"INSERT INTO posts ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})"
        _executemany(dbapi, sql, keys, batch, POST_COLUMNS)


def update_posts(dbapi: Any, rows: Iterable[dict[str, Any]]) -> None:
    """Update rows by id; each dict holds ``id`` and the columns to set (grouped by column set)."""
    for keys, batch in group_by_columns(rows, ("id",)).items():
        assignments = ", ".join(f"{key} = ?" for key in keys)
        _executemany(dbapi, f"UPDATE posts SET {assignments} WHERE id = ?", (*keys, "id"), batch, POST_COLUMNS)


def group_by_columns(rows: Iterable[dict[str, Any]],
                     skip: tuple[str, ...]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Rows grouped by the columns they set, sorted (``skip``: keys that are not set, such as ``id``).

    An unknown column is a KeyError here: SQL is never built from one.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    columns: dict[tuple[str, ...], tuple[str, ...]] = {}
    for row in rows:
        written = tuple(row)
        keys = columns.get(written)
        if keys is None:
            keys = columns[written] = tuple(sorted(key for key in written if key not in skip))
            for key in keys:
                POST_COLUMNS[key]  # noqa: B018 - KeyError for an unknown column
        groups.setdefault(keys, []).append(row)
    return groups


def _executemany(dbapi: Any, sql: str, keys: tuple[str, ...], rows: Sequence[dict[str, Any]],
                 types: dict[str, str | None]) -> None:
    converters = [(index, _BINDS[types[key]]) for index, key in enumerate(keys) if types[key]]
    get = itemgetter(*keys)
    params = [list(get(row)) for row in rows] if len(keys) > 1 else [[row[keys[0]]] for row in rows]
    done: dict[Any, Any] = {}  # the same times recur (a build's "now", updated_at = created_at): convert once
    for values in params if converters else ():
        for index, convert in converters:
            value = values[index]
            if value is not None:
                stored = done.get(value)
                if stored is None:
                    stored = done[value] = convert(value)
                values[index] = stored
    cursor = dbapi.cursor()
    try:
        cursor.executemany(sql, params)
    finally:
        cursor.close()


# -- reads at the driver level ---------------------------------------------------------

def unpublished(dbapi: Any, now: datetime, kinds: Sequence[str]) -> list[Unpublished]:
    """Visible posts that have no entry ID yet (what making one needs), by id."""
    where, params = _visible(now, kinds)
    query = f"SELECT id, name, kind, author, created_local FROM posts WHERE {where} AND entry_id IS NULL ORDER BY id"
    cursor = dbapi.cursor()
    try:
        return list(map(Unpublished._make, cursor.execute(query, params)))
    finally:
        cursor.close()


def entry_ids(dbapi: Any) -> set[str]:
    cursor = dbapi.cursor()
    try:
        return {row[0] for row in cursor.execute("SELECT entry_id FROM posts WHERE entry_id IS NOT NULL")}
    finally:
        cursor.close()


# -- the store ----------------------------------------------------------------------

_ROW_READERS = [(index, read_datetime if kind == _DATETIME else bool)
                for index, kind in enumerate(POST_COLUMNS.values()) if kind]
_LIVE = "error IS NULL AND deleted_at IS NULL AND draft = 0"


def sqlite_path(url: str) -> str:
    """The file of a plain ``sqlite:///PATH`` URL; Refused for anything else (memory, options, other drivers)."""
    path = url.removeprefix("sqlite:///")
    if path == url or not path or "?" in path or path.startswith(":memory:") or path.startswith("file:"):
        raise Refused(f"not a plain SQLite file URL: {url}")
    return path


class LiteStore:
    """The post methods of :class:`publisher.state.Store`, over ``sqlite3`` (SQLite files only).

    A database file that does not exist yet is made at :data:`SCHEMA_VERSION` when first used, as a Builder
    first uses its Store (``clock``: the migrations' ``applied_at``); one that exists is checked now.
    """

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = url
        self._path = sqlite_path(url)
        self._clock = clock or Clock()
        self._connection = self._open(new=False) if os.path.isfile(self._path) else None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = self._open(new=True)
        return self._connection

    def _open(self, *, new: bool) -> sqlite3.Connection:
        path = self._path
        try:
            if new:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise Refused(f"{path}: {exc}") from exc
        try:
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", "foreign_keys=ON"):
                db.execute(f"PRAGMA {pragma}")
            if new:
                _make_schema(db, self._clock)
            version = db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        except sqlite3.Error as exc:
            db.close()
            raise Refused(f"{path}: {exc}") from exc
        if version != SCHEMA_VERSION:
            db.close()
            raise Refused(f"{path}: schema version {version}, this module knows {SCHEMA_VERSION}")
        return db

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @contextmanager
    def begin(self) -> Iterator[sqlite3.Connection]:
        """A transaction; database errors become StateError."""
        try:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(self.url, str(exc).splitlines()[0]) from exc

    def index(self) -> dict[str, IndexRow]:
        query = "SELECT id, path, mtime_ns, size, content_hash, deleted_at IS NOT NULL, created_key FROM posts"
        with self.begin() as conn:
            rows = conn.execute(query).fetchall()
        return index_rows(rows)

    def insert_posts(self, conn: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
        insert_posts(conn, rows)

    def update_posts(self, conn: sqlite3.Connection, rows: Iterable[dict[str, Any]]) -> None:
        update_posts(conn, rows)

    def unpublished(self, conn: sqlite3.Connection, now: datetime, kinds: Sequence[str]) -> list[Unpublished]:
        return unpublished(conn, now, kinds)

    def entry_ids(self, conn: sqlite3.Connection) -> set[str]:
        return entry_ids(conn)

    def next_due(self, now: datetime, kinds: Sequence[str]) -> datetime | None:
        where, params = _live(kinds)
        with self.begin() as conn:
            found = conn.execute(f"SELECT min(created_at) FROM posts WHERE {where} AND created_at > ?",
                                 [*params, sqlite_datetime(now)]).fetchone()[0]
        return read_datetime(found)

    def feed_rows(self, now: datetime, kinds: Sequence[str], limit: int, **match: str) -> list[PostRow]:
        where, params = _visible(now, kinds)
        for key, value in match.items():
            POST_COLUMNS[key]  # noqa: B018 - KeyError for an unknown column
            where += f" AND {key} = ?"
            params.append(value)
        query = (f"SELECT {', '.join(POST_COLUMNS)} FROM posts WHERE {where} "
                 "ORDER BY created_at DESC, id DESC LIMIT ?")
        with self.begin() as conn:
            return [_post_row(row) for row in conn.execute(query, [*params, limit])]

    def distinct(self, column: str, kinds: Sequence[str]) -> list[str]:
        POST_COLUMNS[column]  # noqa: B018 - KeyError for an unknown column
        where, params = _kind_filter(kinds)
        query = (f"SELECT DISTINCT {column} FROM posts WHERE error IS NULL AND {column} IS NOT NULL AND {where} "
                 f"ORDER BY {column}")
        with self.begin() as conn:
            return [row[0] for row in conn.execute(query, params)]

    def record_build(self, **counts: Any) -> None:
        keys = tuple(counts)
        for key in keys:
            BUILD_COLUMNS[key]  # noqa: B018 - KeyError for an unknown column
        sql = f"INSERT INTO builds ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})"
        with self.begin() as conn:
            _executemany(conn, sql, keys, [counts], BUILD_COLUMNS)


def _make_schema(db: sqlite3.Connection, clock: Clock) -> None:
    """Every migration, as :meth:`publisher.state.Store.migrate` applies them to an empty database (unless
    another process just did)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        made = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone() is None
        if made:
            db.execute(SCHEMA_MIGRATIONS_DDL)
        for version, name, statements in MIGRATIONS if made else ():
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                       (version, name, sqlite_datetime(clock.now())))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    for version, name, _ in MIGRATIONS if made else ():
        log.info("state database migrated to version %d (%s)", version, name)


def index_rows(rows: Iterable[tuple[Any, ...]]) -> dict[str, IndexRow]:
    """The index by path from rows of (id, path, mtime_ns, size, content_hash, deleted 0/1, created_key)."""
    return {row.path: row for row in map(IndexRow._make, rows)}


def _post_row(row: tuple[Any, ...]) -> PostRow:
    values = list(row)
    for index, read in _ROW_READERS:
        if values[index] is not None:
            values[index] = read(values[index])
    return PostRow(*values)


def _kind_filter(kinds: Sequence[str]) -> tuple[str, list[Any]]:
    if not kinds:
        return "1 = 1", []
    return f"kind IN ({', '.join('?' * len(kinds))})", list(kinds)


def _live(kinds: Sequence[str]) -> tuple[str, list[Any]]:
    where, params = _kind_filter(kinds)
    return f"{_LIVE} AND {where}", params


def _visible(now: datetime, kinds: Sequence[str]) -> tuple[str, list[Any]]:
    where, params = _live(kinds)
    return f"{where} AND created_at <= ?", [*params, sqlite_datetime(now)]
