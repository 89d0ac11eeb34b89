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
    UniqueConstraint,
    text,
)

from publisher.ddl import STEPS


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

# -- digests and delivery (migration 3) ---------------------------------------

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # normalised by email-validator
    Column("name", Text),
    Column("secret", String(64), nullable=False),  # random, per subscriber: signs their links
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per (subscriber, list).  status: pending, active, unsubscribed, bounced, complained.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, nullable=False),
    Column("list", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("status_at", UTCDateTime, nullable=False),  # when status last changed
    Column("confirmed_at", UTCDateTime),
    Column("soft_bounces", Integer, nullable=False, default=0),
    UniqueConstraint("subscriber_id", "list", name="uq_subscriptions_subscriber_list"),
    Index("ix_subscriptions_list_status", "list", "status", "subscriber_id"),
)

# One row per digest: stored (with its rendered content) before anything is sent,
# so a resumed send sends the very same message.  status: composed, sending, sent.
digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("list", String(100), nullable=False),
    Column("scheduled_for", UTCDateTime, nullable=False),  # the schedule slot; one digest per slot
    Column("since", UTCDateTime),  # the previous digest's cutoff (exclusive); NULL for the first
    Column("cutoff", UTCDateTime, nullable=False),  # posts first published up to here (inclusive)
    Column("post_ids", Text, nullable=False),  # JSON list of posts.id, in digest order
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),  # rendered once, with per-recipient placeholders
    Column("text", Text, nullable=False),
    Column("summaries_only", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False),
    Column("recipients", Integer, nullable=False, default=0),
    Column("owner", String(200)),  # the sender holding the lease (host:pid:random)
    Column("lease_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    UniqueConstraint("list", "scheduled_for", name="uq_digests_list_slot"),
)

# The delivery ledger: one row per (digest, subscriber).
# state: queued, sending, sent, deferred, failed.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest_id", Integer, nullable=False),
    Column("subscriber_id", Integer, nullable=False),
    Column("email", String(320), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("reason", Text),
    Column("message_id", String(255), nullable=False),
    Column("provider_id", String(255)),  # the provider's own message ID, when it gives one
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("digest_id", "subscriber_id", name="uq_deliveries_digest_subscriber"),
    Index("ix_deliveries_digest_state", "digest_id", "state", "id"),
)

# -- the subscriber web service (migration 4) ---------------------------------

# Small settings the installation keeps for itself (e.g. "suppression_salt").
meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# Addresses erased on request (GDPR) or suppressed for good: only a salted hash
# of the normalised address is kept, so an import or a sign-up can't silently
# add the person back.
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email_hash", String(64), nullable=False, unique=True),
    Column("reason", String(32), nullable=False),  # forgotten, complained, ...
    Column("created_at", UTCDateTime, nullable=False),
)


def _id(conn: Connection) -> str:
    """An auto-numbered primary key column, in the dialect's own words."""
    if conn.dialect.name == "postgresql":
        return "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    return "INTEGER PRIMARY KEY"


def _step(statements: tuple[str, ...]) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        for statement in statements:
            conn.execute(text(statement.replace("{ID}", _id(conn))))

    return run


Migration = tuple[int, str, Callable[[Connection], None]]

MIGRATIONS: list[Migration] = [(version, name, _step(statements)) for version, name, statements in STEPS]
