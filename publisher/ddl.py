"""The state database's migrations as plain SQL text, importable without SQLAlchemy.

:mod:`publisher.schema` runs them through SQLAlchemy (any database);
:mod:`publisher.litestore` runs the very same text through ``sqlite3`` when a
build creates a new SQLite database without importing SQLAlchemy.  ``{ID}``
stands for the dialect's auto-numbered primary key.  Each migration is written
against the schema as it was at its version: never edit one, add the next.
"""

from __future__ import annotations

#: (version, name, statements), in order.
STEPS: list[tuple[int, str, tuple[str, ...]]] = [
    (1, "posts table", ("""
        CREATE TABLE posts (
            id {ID},
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
            id {ID},
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
        id {ID},
        email VARCHAR(320) NOT NULL UNIQUE,
        name TEXT,
        secret VARCHAR(64) NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE subscriptions (
        id {ID},
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
        id {ID},
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
        id {ID},
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
    "CREATE INDEX ix_deliveries_digest_state ON deliveries (digest_id, state, id)",
    )),
    (4, "meta and suppressions", (
        "CREATE TABLE meta (key VARCHAR(100) PRIMARY KEY, value TEXT NOT NULL)", """
        CREATE TABLE suppressions (
            id {ID},
            email_hash VARCHAR(64) NOT NULL UNIQUE,
            reason VARCHAR(32) NOT NULL,
            created_at TIMESTAMP NOT NULL
        )""")),
    (5, "partial indexes of unpublished and deleted posts", (
        # a build looks for both every time: without these, each is a scan of every post
        "CREATE INDEX ix_posts_unpublished ON posts (id) WHERE entry_id IS NULL",
        "CREATE INDEX ix_posts_deleted ON posts (id) WHERE deleted_at IS NOT NULL",
    )),
]

LATEST = max(version for version, _, _ in STEPS)


def sqlite(statement: str) -> str:
    """A statement as it runs on SQLite."""
    return statement.replace("{ID}", "INTEGER PRIMARY KEY")
