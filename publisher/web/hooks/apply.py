"""Acting on a webhook event: find the subscriber, change their subscriptions, once.

- hard bounce: every live subscription of the address becomes ``bounced``;
- complaint: every subscription becomes ``complained``;
- unsubscribe (the provider's own unsubscribe or suppression): pending, active and
  bounced subscriptions become ``unsubscribed``;
- soft bounce: ``soft_bounces`` + 1 on the list the message belonged to (every list
  when unknown), and ``bounced`` on reaching ``web.soft_bounce_limit``.  A message
  counts once however many soft-bounce events it brings.

The subscriber is found by our delivery ID when the event carries it (and the
delivery was to the same address), else by our Message-ID, else by the address.
An unknown address (never subscribed, or forgotten) changes nothing.  Each event
is applied once: a provider's retry with the same event ID is a duplicate.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update

from publisher.errors import SubscriberError
from publisher.schema import deliveries, digests, subscribers, subscriptions
from publisher.web.hooks import seen
from publisher.web.hooks.events import Event

log = logging.getLogger(__name__)

_MESSAGE_ID = re.compile(r"^<?d(\d{1,18})\.s(\d{1,18})\.[A-Za-z0-9]+@[^>\s]+>?$")


@dataclass(frozen=True, slots=True)
class Target:
    subscriber_id: int
    list_name: str | None  # the list of the digest the event is about, when known


def apply(conn: Connection, event: Event, subscribers_api: Any, soft_limit: int, now: datetime) -> str:
    """Apply one event; return "applied", "duplicate" or "unmatched"."""
    if event.event_id and seen.first_seen(conn, seen.key("event", event.provider, event.event_id), now) is not None:
        return "duplicate"
    target = find(conn, event)
    if target is None:
        log.info("%s webhook: %s (%s) for an address that is not a subscriber; nothing to do",
                 event.provider, event.kind, event.detail)
        return "unmatched"
    if event.kind == "soft" and _counted(conn, event, target, now):
        return "duplicate"
    _act(conn, event.kind, target, subscribers_api, soft_limit, now)
    log.info("%s webhook: %s (%s) for subscriber %d", event.provider, event.kind, event.detail, target.subscriber_id)
    return "applied"


def _counted(conn: Connection, event: Event, target: Target, now: datetime) -> bool:
    """Whether the message this soft bounce is about was counted already (a message counts once)."""
    message = event.delivery_id or event.message_id
    if message is None:
        return False
    return seen.first_seen(conn, seen.key("soft", event.provider, message, target.subscriber_id), now) is not None


def _act(conn: Connection, kind: str, target: Target, api: Any, soft_limit: int, now: datetime) -> None:
    sid = target.subscriber_id
    if kind == "hard":
        api.record_bounce(sid, None, hard=True, conn=conn)
    elif kind == "soft":
        api.record_bounce(sid, target.list_name, hard=False, threshold=soft_limit, conn=conn)
    elif kind == "complaint":
        api.record_complaint(sid, None, conn=conn)
    elif kind == "unsubscribe":
        stopping = subscriptions.c.status.in_(("pending", "active", "bounced"))
        conn.execute(update(subscriptions).where(subscriptions.c.subscriber_id == sid, stopping)
                     .values(status="unsubscribed", status_at=now))
    else:  # pragma: no cover - the parsers only make KINDS
        raise ValueError(f"unknown event kind {kind!r}")


# -- finding the subscriber --------------------------------------------------------


def find(conn: Connection, event: Event) -> Target | None:
    email = _normalised(event.email)
    if event.delivery_id is not None:
        target = _by_delivery(conn, deliveries.c.id == event.delivery_id, email)
        if target is not None:
            return target
    target = _by_message_id(conn, event.message_id, email)
    if target is not None:
        return target
    if email is None:
        return None
    subscriber_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
    return None if subscriber_id is None else Target(subscriber_id, None)


def _by_message_id(conn: Connection, message_id: str | None, email: str | None) -> Target | None:
    """Our Message-ID (``<d{digest}.s{subscriber}.{nonce}@{domain}>``) names the ledger row; look it up by its key."""
    match = _MESSAGE_ID.match(message_id or "")
    if match is None or message_id is None:
        return None
    bracketed = message_id if message_id.startswith("<") else f"<{message_id}>"
    where = and_(deliveries.c.digest_id == int(match[1]), deliveries.c.subscriber_id == int(match[2]),
                 deliveries.c.message_id == bracketed)
    return _by_delivery(conn, where, email)


def _by_delivery(conn: Connection, where: Any, email: str | None) -> Target | None:
    query = (select(deliveries.c.subscriber_id, deliveries.c.email, digests.c.list)
             .select_from(deliveries.outerjoin(digests, digests.c.id == deliveries.c.digest_id)).where(where))
    row = conn.execute(query).first()
    if row is None or (email is not None and _normalised(row.email) != email):
        return None  # not ours (another installation's ID?): fall back to the address
    return Target(row.subscriber_id, row.list)


def _normalised(email: str | None) -> str | None:
    if not email:
        return None
    from publisher.subscribers import normalise_email

    try:
        return normalise_email(email)
    except SubscriberError:
        return None
