"""The database side of the subscriber pages: look-ups and the status changes a visitor can make.

Each function is synchronous (handlers run them in the thread pool) and each
change is one conditional UPDATE, so a repeated or concurrent request changes
nothing twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from publisher.schema import subscribers, subscriptions
from publisher.subscribers import STOPPED

MINE = ("pending", "active")  # what a visitor's unsubscribe stops (bounced and complained stay as they are)


def subscriber(ctx: Any, subscriber_id: int) -> Any:
    """The subscriber row (id, email, name, secret, created_at, updated_at) or None."""
    with ctx.store.begin() as conn:
        return conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()


def by_email(ctx: Any, email: str) -> Any:
    with ctx.store.begin() as conn:
        return conn.execute(select(subscribers).where(subscribers.c.email == email)).first()


def status(ctx: Any, subscriber_id: int, list_name: str) -> str | None:
    """The subscription's status, or None when they have none on that list."""
    query = select(subscriptions.c.status).where(subscriptions.c.subscriber_id == subscriber_id,
                                                 subscriptions.c.list == list_name)
    with ctx.store.begin() as conn:
        return conn.scalar(query)


def statuses(ctx: Any, subscriber_id: int) -> dict[str, str]:
    """``{list: status}`` for every subscription the subscriber has."""
    query = select(subscriptions.c.list, subscriptions.c.status).where(subscriptions.c.subscriber_id == subscriber_id)
    with ctx.store.begin() as conn:
        return {row.list: row.status for row in conn.execute(query)}


def unsubscribe(ctx: Any, subscriber_id: int, list_name: str) -> bool:
    """Stop a pending or active subscription; True if this call changed it."""
    stmt = update(subscriptions).where(subscriptions.c.subscriber_id == subscriber_id,
                                       subscriptions.c.list == list_name, subscriptions.c.status.in_(MINE))
    with ctx.store.begin() as conn:
        return conn.execute(stmt.values(status="unsubscribed", status_at=ctx.clock.now())).rowcount > 0


def activate(ctx: Any, subscriber_id: int, list_name: str) -> bool:
    """Make the subscription active (the confirm button, a resubscribe); True if it changed."""
    row = subscriber(ctx, subscriber_id)
    if row is None:
        return False
    before = status(ctx, subscriber_id, list_name)
    ctx.subscribers.add(row.email, None, [list_name], status="active", resubscribe=True)
    return before != "active"


def ensure_pending(ctx: Any, subscriber_id: int, list_name: str) -> None:
    """Give the subscriber a pending subscription to ``list_name`` if they have none (before a confirmation mail)."""
    row = subscriber(ctx, subscriber_id)
    if row is not None and status(ctx, subscriber_id, list_name) is None:
        ctx.subscribers.add(row.email, None, [list_name], status="pending")


def stopped(value: str | None) -> bool:
    return value in STOPPED
