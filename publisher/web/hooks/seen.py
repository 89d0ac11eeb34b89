"""What the webhooks have seen already, kept in the ``meta`` table for a few days.

Keys are ``hook:`` plus a hash of what was seen (a provider's event ID, a Mailgun
token, a message already counted as soft-bounced), so no address is stored; the
value is the zero-padded Unix time it was first seen, a space, and an optional
note (the body hash a Mailgun token was used with).  Entries older than
:data:`KEEP` are deleted now and then.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection, delete, select

from publisher.schema import meta

PREFIX = "hook:"
KEEP = 3 * 86400  # seconds: longer than any provider retries, and than any signature stays fresh


def key(*parts: object) -> str:
    return PREFIX + hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8")).hexdigest()[:48]


def first_seen(conn: Connection, name: str, now: datetime, note: str = "") -> str | None:
    """Record ``name`` as seen; None if it is new, else the note it was first seen with."""
    from publisher.suppress import _insert_ignore

    value = f"{int(now.timestamp()):012d} {note}"
    if _insert_ignore(conn, meta, {"key": name, "value": value}, ["key"]):
        return None
    stored = conn.scalar(select(meta.c.value).where(meta.c.key == name)) or ""
    return stored.partition(" ")[2]


def prune(conn: Connection, now: datetime) -> int:
    """Forget entries older than :data:`KEEP`; return how many."""
    cutoff = f"{int(now.timestamp()) - KEEP:012d}"
    stmt = delete(meta).where(meta.c.key.startswith(PREFIX, autoescape=True), meta.c.value < cutoff)
    return conn.execute(stmt).rowcount
