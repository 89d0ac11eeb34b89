"""The ``digests`` rows: stored before anything is sent, read back to resend the same content."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from publisher.schema import digests


def find(conn: Connection, list_name: str, scheduled_for: datetime) -> Any | None:
    query = select(digests).where(digests.c.list == list_name, digests.c.scheduled_for == scheduled_for)
    return conn.execute(query).first()


def get(conn: Connection, digest_id: int) -> Any | None:
    return conn.execute(select(digests).where(digests.c.id == digest_id)).first()


def reserve(conn: Connection, list_name: str, scheduled_for: datetime, since: datetime | None, cutoff: datetime,
            now: datetime) -> int:
    """Insert the slot's row (content to follow in the same transaction); IntegrityError if the slot is taken."""
    values = {"list": list_name, "scheduled_for": scheduled_for, "since": since, "cutoff": cutoff, "post_ids": "[]",
              "subject": "", "html": "", "text": "", "summaries_only": False, "status": "composed",
              "recipients": 0, "created_at": now}
    return int(conn.execute(digests.insert().values(values)).inserted_primary_key[0])


def fill(conn: Connection, digest_id: int, *, post_ids: list[int], subject: str, html: str, text: str,
         summaries_only: bool) -> None:
    values = {"post_ids": json.dumps(post_ids), "subject": subject, "html": html, "text": text,
              "summaries_only": summaries_only}
    conn.execute(update(digests).where(digests.c.id == digest_id).values(values))


def post_ids(row: Any) -> list[int]:
    return [int(i) for i in json.loads(row.post_ids)]
