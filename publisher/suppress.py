"""Suppressed addresses: kept only as a salted hash, so nobody can be added back silently.

When a person is forgotten (GDPR erasure, :mod:`publisher.forget`) every row that
names them is deleted; what stays is ``sha256(salt + normalised address)`` in the
``suppressions`` table.  The salt is random, made once per installation and kept in
the ``meta`` table (key ``suppression_salt``): without the database the hashes
can't be tested against a list of guessed addresses.

Every path that adds an address (``subscribers add``, ``import``, the sign-up
form) asks :func:`is_suppressed` (or :func:`suppressed_among` for a batch) first
and refuses, or skips with a reason, when it answers True.  An operator who has a
new, explicit request from that person lifts it with :func:`unsuppress`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import Connection, Table, delete, select

from publisher.schema import meta, suppressions

SALT_KEY = "suppression_salt"
REASONS = ("forgotten", "complained", "bounced", "unsubscribed", "manual")
IN_SLICE = 500  # hashes per SQL IN (...)


def _normalise(email: str) -> str:
    from publisher.subscribers import normalise_email

    return normalise_email(email)


def email_hash(salt: str, email: str) -> str:
    """The stored form of an address: hex sha256 of the salt followed by the normalised address."""
    return hashlib.sha256((salt + _normalise(email)).encode("utf-8")).hexdigest()


def read_salt(conn: Connection) -> str | None:
    """The installation's salt, or None when nothing was ever suppressed."""
    return conn.scalar(select(meta.c.value).where(meta.c.key == SALT_KEY))


def ensure_salt(conn: Connection) -> str:
    """The installation's salt, made (32 random bytes, hex) and stored the first time."""
    salt = read_salt(conn)
    if salt is None:
        _insert_ignore(conn, meta, {"key": SALT_KEY, "value": secrets.token_hex(32)}, ["key"])
        salt = read_salt(conn)
    assert salt is not None
    return salt


def hasher(conn: Connection) -> Callable[[str], str] | None:
    """A function hashing addresses with this installation's salt (None: nothing suppressed yet)."""
    salt = read_salt(conn)
    return None if salt is None else (lambda email: email_hash(salt, email))


def suppress(conn: Connection, email: str, reason: str, now: datetime) -> bool:
    """Suppress an address for good; True if it was not suppressed already."""
    if reason not in REASONS:
        raise ValueError(f"suppression reason {reason!r}: use one of {', '.join(REASONS)}")
    digest = email_hash(ensure_salt(conn), email)
    return _insert_ignore(conn, suppressions, {"email_hash": digest, "reason": reason, "created_at": now},
                          ["email_hash"]) > 0


def is_suppressed(conn: Connection, email: str) -> bool:
    """Whether an address was suppressed (forgotten): adding it again must be refused."""
    hash_of = hasher(conn)
    if hash_of is None:
        return False
    found = conn.scalar(select(suppressions.c.id).where(suppressions.c.email_hash == hash_of(email)))
    return found is not None


def suppressed_among(conn: Connection, emails: Iterable[str]) -> set[str]:
    """The suppressed addresses among ``emails`` (already normalised; for imports, one query per 500)."""
    hash_of = hasher(conn)
    if hash_of is None:
        return set()
    by_hash = {hash_of(email): email for email in emails}
    hashes = list(by_hash)
    found: set[str] = set()
    for start in range(0, len(hashes), IN_SLICE):
        part = hashes[start:start + IN_SLICE]
        found.update(conn.scalars(select(suppressions.c.email_hash).where(suppressions.c.email_hash.in_(part))))
    return {by_hash[digest] for digest in found}


def unsuppress(conn: Connection, email: str) -> bool:
    """Lift a suppression (the person asked again, explicitly); True if there was one."""
    hash_of = hasher(conn)
    if hash_of is None:
        return False
    return conn.execute(delete(suppressions).where(suppressions.c.email_hash == hash_of(email))).rowcount > 0


def _insert_ignore(conn: Connection, table: Table, row: dict[str, object], keys: list[str]) -> int:
    """INSERT a row unless it conflicts on ``keys``; return the number of rows inserted."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - other databases: check first, then insert
        column = table.c[keys[0]]
        if conn.scalar(select(column).where(column == row[keys[0]])) is not None:
            return 0
        return conn.execute(table.insert().values(row)).rowcount
    return conn.execute(insert(table).values(row).on_conflict_do_nothing(index_elements=keys)).rowcount
