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
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, NamedTuple

from publisher import ddl
from publisher.clock import Clock
from publisher.errors import StateError

log = logging.getLogger(__name__)

#: The schema version (``max(MIGRATIONS)``) whose posts and builds tables this module reads and writes.
SCHEMA_VERSION = 5

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

#: (version, name, statements) of every migration up to :data:`SCHEMA_VERSION`: the very text
#: ``publisher.schema`` runs (from :mod:`publisher.ddl`), as it runs on SQLite.
MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
    (version, name, tuple(ddl.sqlite(statement) for statement in statements))
    for version, name, statements in ddl.STEPS if version <= SCHEMA_VERSION
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
    if value.tzinfo is timezone.utc:  # most of a first build's: twice as fast
        return value.isoformat(" ", "microseconds")[:26]
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
        self._journal_until_posts = self._wal_now = False
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
            for pragma in ("busy_timeout=10000", "synchronous=NORMAL", "foreign_keys=ON"):
                db.execute(f"PRAGMA {pragma}")
            # A new, empty database takes its first posts through its rollback journal, then goes over to WAL (see
            # insert_posts): rows written to a WAL are copied again into the database at the checkpoint.
            fresh = new and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            if not fresh:
                db.execute("PRAGMA journal_mode=WAL")
            if new:
                _make_schema(db, self._clock)
            version = db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        except sqlite3.Error as exc:
            db.close()
            raise Refused(f"{path}: {exc}") from exc
        if version != SCHEMA_VERSION:
            db.close()
            raise Refused(f"{path}: schema version {version}, this module knows {SCHEMA_VERSION}")
        self._journal_until_posts = fresh
        return db

    def close(self) -> None:
        if self._connection is not None:
            if self._journal_until_posts:  # a new database that took no posts: WAL, as every database here
                try:
                    self._connection.execute("PRAGMA journal_mode=WAL")
                except sqlite3.Error:
                    pass  # another process has it: its next open sets WAL
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
            if self._wal_now:
                self._wal_now = self._journal_until_posts = False
                self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise StateError(self.url, str(exc).splitlines()[0]) from exc

    def index(self, paths: Collection[str] | None = None) -> dict[str, IndexRow]:
        query, params = index_query(paths)
        with self.begin() as conn:
            rows = conn.execute(query, params).fetchall()
        return index_rows(rows)

    def insert_posts(self, conn: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
        insert_posts(conn, rows)
        self._wal_now = self._journal_until_posts and bool(rows)  # the first posts of a new database: then WAL

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


INDEX_QUERY = "SELECT id, path, mtime_ns, size, content_hash, deleted_at IS NOT NULL, created_key FROM posts"
#: The rows at some paths, and the deleted ones (which a new file may be a rename of); a UNION, not an OR, so
#: that each part is looked up in its index.
INDEX_AT_PATHS = f"{INDEX_QUERY} WHERE path IN {{paths}} UNION {INDEX_QUERY} WHERE deleted_at IS NOT NULL"


def index_query(paths: Collection[str] | None) -> tuple[str, list[str]]:
    """The query of the stored posts' index rows: all of them, or those at ``paths`` and the deleted ones."""
    if paths is None:
        return INDEX_QUERY, []
    return INDEX_AT_PATHS.format(paths=f"({', '.join('?' * len(paths))})"), sorted(paths)


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
