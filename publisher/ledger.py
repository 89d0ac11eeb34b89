"""The delivery ledger: one row per (digest, subscriber), written durably around every hand-off.

A row moves ``queued -> sending -> sent | deferred | failed``; a deferred row
becomes claimable again at its ``next_attempt_at``.  Every step is a short
transaction of a few set-based statements, so the per-message cost is a
fraction of the send itself (no per-row SELECT, no per-row commit):

- :meth:`Ledger.enqueue` is ONE ``INSERT .. SELECT`` from the list's active
  subscriptions: a million subscribers never pass through Python.  It adds
  only the rows that are missing, so running it twice adds nothing.
- :meth:`Ledger.claim` moves up to ``limit`` rows to ``sending`` (attempts +1)
  and commits *before* the provider sees anything; :meth:`Ledger.record`
  commits the outcomes of a whole batch right after the provider answers.

One sender per digest: :meth:`Ledger.acquire` is one atomic ``UPDATE digests``
that takes the lease only when nobody holds it, the caller already holds it,
or the holder's lease expired.  Two daemons on one database never send the
same digest at the same time; the loser is told who holds it until when.

In-doubt policy.  A row found in ``sending`` by a sender that has just
acquired the digest was claimed by a sender that died (kill -9, power cut,
a bug) or lost its lease between the claim commit and the record commit.
Nobody knows whether the provider accepted it.  Such rows are put back to
``queued`` with the reason ``"in doubt after interrupted send"`` and sent
again with the SAME Message-ID, which is stored in the row: receivers and
providers deduplicate on it, and a possible duplicate is judged better than a
possibly lost message.  Their number is logged (WARNING), reported in
``SendReport.in_doubt``, and stays queryable: the reason is kept when the
resend succeeds (:meth:`Ledger.in_doubt`).  Rows recorded ``sent`` are never
claimed again, so nothing recorded sent is resent.

Durability.  Each claim and each record is its own commit.  On SQLite the
store runs WAL with ``synchronous=NORMAL``: a commit survives the process
being killed at any point (the WAL is in the OS before COMMIT returns); only
an OS crash or power cut can lose the last commits, and losing a claim or a
record only rolls a row back to a state from which it is sent again (a
duplicate with the same Message-ID), never to ``sent`` and never to nothing.
``synchronous=FULL`` (an fsync per commit) closes that window too at a cost
measured in ``benchmarks``; pass ``durable=True`` to have the ledger's own
transactions run with it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from datetime import datetime, timedelta
from typing import Any, Iterator

from sqlalchemy import Connection, String, and_, bindparam, case, cast, exists, func, insert, literal, or_, select, update

from publisher.backoff import Backoff, is_throttle
from publisher.clock import Clock
from publisher.errors import DigestError, StateError
from publisher.schema import UTCDateTime, deliveries, digests, subscribers, subscriptions

log = logging.getLogger(__name__)

IN_DOUBT = "in doubt after interrupted send"
MAX_ATTEMPTS = 8  # with the default backoff: about two days from the first try to giving up
STATES = ("queued", "sending", "sent", "deferred", "failed")
OPEN_STATES = ("queued", "sending", "deferred")
_REASON_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row handed to this sender: everything a Recipient needs, without another query."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str | None
    secret: str
    message_id: str
    attempts: int


@dataclass(slots=True)
class Recorded:
    """What one :meth:`Ledger.record` call wrote."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    gave_up: int = 0
    bounced: int = 0
    throttled: bool = False  # some deferral said "too fast" (421, 429, Retry-After)
    retry_after: float | None = None  # the longest Retry-After among the results
    next_attempt_at: datetime | None = None  # the earliest retry scheduled


@dataclass(frozen=True, slots=True)
class Holder:
    owner: str | None
    lease_until: datetime | None


BounceHook = Callable[[Connection, int, str], None]  # (the record's transaction, subscriber_id, list)


@dataclass
class _Plan:
    sent: list[int] = field(default_factory=list)
    provider_ids: list[tuple[str, int]] = field(default_factory=list)
    deferred: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    bounces: list[int] = field(default_factory=list)


class Ledger:
    """The deliveries table and the digests' sending lease (one state database)."""

    def __init__(self, store: Any, clock: Clock | None = None, *, backoff: Backoff | None = None,
                 max_attempts: int = MAX_ATTEMPTS, bounce: BounceHook | None = None, durable: bool = False) -> None:
        self.store = store
        self.clock = clock or getattr(store, "clock", None) or Clock()
        self.backoff = backoff or Backoff()
        self.max_attempts = max_attempts
        self.bounce = bounce or self._record_bounce
        self.durable = durable

    # -- transactions -----------------------------------------------------------

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A ledger transaction; with ``durable`` on SQLite its commit is fsynced (synchronous=FULL)."""
        if not (self.durable and self.store.engine.dialect.name == "sqlite"):
            with self.store.begin() as conn:
                yield conn
            return
        from sqlalchemy.exc import SQLAlchemyError

        from publisher.state import _reason, _safe_url

        try:
            with self.store.engine.connect() as conn:
                _pragma(conn, "FULL")  # it can't change inside a transaction: set it before BEGIN, on this connection
                try:
                    with conn.begin():
                        yield conn
                finally:
                    _pragma(conn, "NORMAL")  # the pooled connection goes back as the store made it
        except SQLAlchemyError as exc:
            raise StateError(_safe_url(self.store.url), _reason(exc)) from exc

    # -- queueing ---------------------------------------------------------------

    def enqueue(self, digest_id: int, list_name: str, domain: str) -> int:
        """Queue the digest for every active subscriber of ``list_name`` not queued yet; return how many were added."""
        now = self.clock.now()
        with self._begin() as conn:
            nonce = _nonce(conn, digest_id, list_name)
            added = conn.execute(_enqueue_statement(digest_id, list_name, domain, nonce, now)).rowcount
            total = select(func.count()).where(deliveries.c.digest_id == digest_id).scalar_subquery()
            conn.execute(update(digests).where(digests.c.id == digest_id).values(recipients=total))
        log.info("digest %d: queued %d recipient(s) of list %s", digest_id, added, list_name)
        return added

    def has_deliveries(self, digest_id: int) -> bool:
        with self.store.begin() as conn:
            return conn.scalar(select(exists().where(deliveries.c.digest_id == digest_id))) is True

    # -- the lease --------------------------------------------------------------

    def acquire(self, digest_id: int, owner: str, seconds: float) -> bool:
        """Take (or extend) the right to send ``digest_id``; False when another live sender holds it."""
        now = self.clock.now()
        free = or_(digests.c.owner.is_(None), digests.c.owner == owner, digests.c.lease_until.is_(None),
                   digests.c.lease_until < now)
        stmt = update(digests).where(digests.c.id == digest_id, free)
        with self.store.begin() as conn:
            taken = conn.execute(stmt.values(owner=owner, lease_until=now + timedelta(seconds=seconds))).rowcount
        return taken == 1

    def renew(self, digest_id: int, owner: str, seconds: float) -> bool:
        """Push the lease on; False when it was lost to another sender (stop sending then)."""
        stmt = update(digests).where(digests.c.id == digest_id, digests.c.owner == owner)
        with self.store.begin() as conn:
            return conn.execute(stmt.values(lease_until=self.clock.now() + timedelta(seconds=seconds))).rowcount == 1

    def release(self, digest_id: int, owner: str) -> None:
        stmt = update(digests).where(digests.c.id == digest_id, digests.c.owner == owner)
        with self.store.begin() as conn:
            conn.execute(stmt.values(owner=None, lease_until=None))

    def holder(self, digest_id: int) -> Holder | None:
        query = select(digests.c.owner, digests.c.lease_until).where(digests.c.id == digest_id)
        with self.store.begin() as conn:
            row = conn.execute(query).first()
        return None if row is None else Holder(row.owner, row.lease_until)

    # -- digest status ----------------------------------------------------------

    def digest(self, digest_id: int) -> Any:
        """The digest's row (id, list, status, recipients, owner, lease_until), or None."""
        columns = (digests.c.id, digests.c.list, digests.c.status, digests.c.recipients, digests.c.owner,
                   digests.c.lease_until, digests.c.finished_at)
        with self.store.begin() as conn:
            return conn.execute(select(*columns).where(digests.c.id == digest_id)).first()

    def start(self, digest_id: int) -> None:
        """composed -> sending."""
        stmt = update(digests).where(digests.c.id == digest_id, digests.c.status == "composed")
        with self.store.begin() as conn:
            conn.execute(stmt.values(status="sending"))

    def finish(self, digest_id: int, owner: str) -> bool:
        """sending -> sent and release the lease, only if no row is left queued, sending or deferred."""
        open_rows = exists().where(deliveries.c.digest_id == digest_id, deliveries.c.state.in_(OPEN_STATES))
        stmt = update(digests).where(digests.c.id == digest_id, digests.c.owner == owner, ~open_rows)
        stmt = stmt.values(status="sent", finished_at=self.clock.now(), owner=None, lease_until=None)
        with self._begin() as conn:
            return conn.execute(stmt).rowcount == 1

    # -- claiming and recording -------------------------------------------------

    def reclaim_in_doubt(self, digest_id: int) -> int:
        """Put rows left in ``sending`` by a dead sender back to queued (call only while holding the lease)."""
        stmt = update(deliveries).where(deliveries.c.digest_id == digest_id, deliveries.c.state == "sending")
        with self._begin() as conn:
            count = conn.execute(stmt.values(state="queued", reason=IN_DOUBT, updated_at=self.clock.now())).rowcount
        if count:
            log.warning("digest %d: %d message(s) in doubt after an interrupted send; resending them with the "
                        "same Message-ID", digest_id, count)
        return count

    def claim(self, digest_id: int, limit: int) -> list[Claimed]:
        """Up to ``limit`` queued or due deferred rows, moved to ``sending`` (attempts +1) in one committed transaction."""
        now = self.clock.now()
        with self._begin() as conn:
            rows = _take(conn, digest_id, deliveries.c.state == "queued", limit, now)
            if len(rows) < limit:
                due = and_(deliveries.c.state == "deferred", deliveries.c.next_attempt_at <= now)
                rows += _take(conn, digest_id, due, limit - len(rows), now)
        rows.sort(key=itemgetter(0))
        return [Claimed(*row) for row in rows]

    def requeue(self, delivery_ids: Sequence[int]) -> int:
        """Claimed rows that were never handed over go back to queued, their attempt not counted."""
        if not delivery_ids:
            return 0
        stmt = update(deliveries).where(deliveries.c.id.in_(list(delivery_ids)), deliveries.c.state == "sending")
        stmt = stmt.values(state="queued", attempts=deliveries.c.attempts - 1, updated_at=self.clock.now())
        with self._begin() as conn:
            return conn.execute(stmt).rowcount

    def record(self, results: Iterable[Any]) -> Recorded:
        """Write a batch's outcomes (provider Results) in one transaction; hard bounces go to the subscriptions."""
        results = list(results)
        summary = Recorded()
        if not results:
            return summary
        now = self.clock.now()
        with self._begin() as conn:
            attempts = _touch(conn, [r.delivery_id for r in results if r.outcome == "deferred"], now)
            plan = self._plan(results, attempts, now, summary)
            _write(conn, plan, now)
            bounced = _bounce_targets(conn, plan.bounces)
            for subscriber_id, list_name in bounced:  # in the same commit as the failure itself
                self.bounce(conn, subscriber_id, list_name)
        summary.bounced = len(bounced)
        return summary

    def _plan(self, results: list[Any], attempts: dict[int, int], now: datetime, summary: Recorded) -> _Plan:
        plan = _Plan()
        for result in results:
            if result.outcome == "sent":
                plan.sent.append(result.delivery_id)
                if result.provider_id is not None:
                    plan.provider_ids.append((str(result.provider_id)[:255], result.delivery_id))
                summary.sent += 1
            elif result.outcome == "deferred":
                self._plan_deferral(plan, result, attempts.get(result.delivery_id, self.max_attempts), now, summary)
            else:
                plan.failed.append({"_id": result.delivery_id, "_reason": _one_line(result.reason) or "failed"})
                summary.failed += 1
                if result.bounce:
                    plan.bounces.append(result.delivery_id)
        return plan

    def _plan_deferral(self, plan: _Plan, result: Any, attempts: int, now: datetime, summary: Recorded) -> None:
        reason = _one_line(result.reason) or "deferred"
        if result.retry_after is not None:
            summary.retry_after = max(summary.retry_after or 0.0, float(result.retry_after))
        summary.throttled = summary.throttled or is_throttle(result.reason, result.retry_after)
        if attempts >= self.max_attempts:
            plan.failed.append({"_id": result.delivery_id, "_reason": f"gave up after {attempts} attempts: {reason}"})
            summary.failed += 1
            summary.gave_up += 1
            return
        at = now + timedelta(seconds=self.backoff.delay(attempts, result.retry_after))
        plan.deferred.append({"_id": result.delivery_id, "_reason": reason, "_at": at})
        summary.deferred += 1
        summary.next_attempt_at = at if summary.next_attempt_at is None else min(summary.next_attempt_at, at)

    def _record_bounce(self, conn: Connection, subscriber_id: int, list_name: str) -> None:
        from publisher.subscribers import Subscribers

        Subscribers(self.store, clock=self.clock).record_bounce(subscriber_id, list_name, hard=True, conn=conn)

    # -- reading ----------------------------------------------------------------

    def counts(self, digest_id: int) -> dict[str, int]:
        """Rows per state (every state present, zeros included)."""
        query = select(deliveries.c.state, func.count()).where(deliveries.c.digest_id == digest_id)
        with self.store.begin() as conn:
            found = {state: count for state, count in conn.execute(query.group_by(deliveries.c.state))}
        return {state: found.get(state, 0) for state in STATES} | found

    def failures(self, digest_id: int, limit: int | None = None) -> list[Any]:
        """Failed rows (email, reason, attempts, updated_at), oldest first."""
        columns = (deliveries.c.id, deliveries.c.subscriber_id, deliveries.c.email, deliveries.c.reason,
                   deliveries.c.attempts, deliveries.c.updated_at)
        query = select(*columns).where(deliveries.c.digest_id == digest_id, deliveries.c.state == "failed")
        with self.store.begin() as conn:
            return list(conn.execute(query.order_by(deliveries.c.id).limit(limit)))

    def in_doubt(self, digest_id: int) -> int:
        """How many rows were ever found in doubt (resent or still waiting)."""
        query = select(func.count()).where(deliveries.c.digest_id == digest_id, deliveries.c.reason == IN_DOUBT)
        with self.store.begin() as conn:
            return conn.scalar(query) or 0

    def next_retry_at(self, digest_id: int) -> datetime | None:
        """When the earliest deferred row becomes due."""
        query = select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.digest_id == digest_id, deliveries.c.state == "deferred")
        with self.store.begin() as conn:
            return conn.scalar(query)

    def pending_digests(self) -> list[int]:
        """Digests not finished: composed (not sent yet) or sending (rows left, or a sender died before the end)."""
        query = select(digests.c.id).where(digests.c.status.in_(("composed", "sending"))).order_by(digests.c.id)
        with self.store.begin() as conn:
            return list(conn.scalars(query))


def _pragma(conn: Connection, level: str) -> None:
    if conn.in_transaction():
        conn.rollback()
    conn.exec_driver_sql(f"PRAGMA synchronous={level}")
    conn.commit()


# -- statements -------------------------------------------------------------------


def message_id(digest_id: int, subscriber_id: int, nonce: str, domain: str) -> str:
    """The Message-ID of one digest to one subscriber (what :func:`_enqueue_statement` computes in SQL)."""
    return f"<d{digest_id}.s{subscriber_id}.{nonce}@{domain}>"


def _nonce(conn: Connection, digest_id: int, list_name: str) -> str:
    """8 characters fixed per digest, so Message-IDs stay unique across installations sharing a domain."""
    query = select(digests.c.list, digests.c.scheduled_for, digests.c.created_at).where(digests.c.id == digest_id)
    row = conn.execute(query).first()
    if row is None:
        raise DigestError(list_name, f"no digest {digest_id} in the state database; compose it first")
    seed = f"{digest_id}|{row.list}|{row.scheduled_for.isoformat()}|{row.created_at.isoformat()}"
    return base64.b32encode(hashlib.sha256(seed.encode()).digest()[:5]).decode().lower()


def _enqueue_statement(digest_id: int, list_name: str, domain: str, nonce: str, now: datetime) -> Any:
    mid = literal(f"<d{digest_id}.s", String) + cast(subscribers.c.id, String) + literal(f".{nonce}@{domain}>", String)
    already = exists().where(deliveries.c.digest_id == digest_id, deliveries.c.subscriber_id == subscriptions.c.subscriber_id)
    source = (
        select(literal(digest_id), subscribers.c.id, subscribers.c.email, literal("queued"), literal(0), mid,
               literal(now, UTCDateTime))
        .select_from(subscriptions.join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id))
        .where(subscriptions.c.list == list_name, subscriptions.c.status == "active", ~already)
        .order_by(subscriptions.c.subscriber_id)
    )
    columns = ["digest_id", "subscriber_id", "email", "state", "attempts", "message_id", "updated_at"]
    return insert(deliveries).from_select(columns, source)


_NAME = select(subscribers.c.name).where(subscribers.c.id == deliveries.c.subscriber_id).scalar_subquery()
_SECRET = select(subscribers.c.secret).where(subscribers.c.id == deliveries.c.subscriber_id).scalar_subquery()
_CLAIMED = (deliveries.c.id, deliveries.c.subscriber_id, deliveries.c.email, _NAME, _SECRET, deliveries.c.message_id,
            deliveries.c.attempts)  # in Claimed's order


def _take(conn: Connection, digest_id: int, condition: Any, limit: int, now: datetime) -> list[Any]:
    """One UPDATE .. RETURNING (the name and secret by subqueries): a write first, so SQLite locks before reading."""
    if limit <= 0:
        return []
    ids = select(deliveries.c.id).where(deliveries.c.digest_id == digest_id, condition).order_by(deliveries.c.id)
    stmt = update(deliveries).where(deliveries.c.id.in_(ids.limit(limit)))
    stmt = stmt.values(state="sending", attempts=deliveries.c.attempts + 1, updated_at=now)
    return conn.execute(stmt.returning(*_CLAIMED)).all()


def _touch(conn: Connection, delivery_ids: list[int], now: datetime) -> dict[int, int]:
    """The attempts of rows about to be deferred (read by a write, for SQLite's lock order)."""
    if not delivery_ids:
        return {}
    stmt = update(deliveries).where(deliveries.c.id.in_(delivery_ids)).values(updated_at=now)
    return {row[0]: row[1] for row in conn.execute(stmt.returning(deliveries.c.id, deliveries.c.attempts))}


_BY_ID = deliveries.c.id == bindparam("_id")
_SENT = update(deliveries).where(deliveries.c.id.in_(bindparam("_ids", expanding=True))).values(
    state="sent", next_attempt_at=None, updated_at=bindparam("_now", type_=UTCDateTime),
    reason=case((deliveries.c.reason == IN_DOUBT, deliveries.c.reason), else_=None))  # an in-doubt mark stays
# A row someone else already settled (after our lease was lost) is not downgraded.
_DEFERRED = update(deliveries).where(_BY_ID, deliveries.c.state == "sending").values(
    state="deferred", reason=bindparam("_reason"), next_attempt_at=bindparam("_at", type_=UTCDateTime),
    updated_at=bindparam("_now", type_=UTCDateTime))
_FAILED = update(deliveries).where(_BY_ID, deliveries.c.state == "sending").values(
    state="failed", reason=bindparam("_reason"), next_attempt_at=None, updated_at=bindparam("_now", type_=UTCDateTime))
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": ":{n}", "named": ":p{n}"}
_CHUNK = 5000  # ids per IN list, well under any driver's parameter limit


def _write(conn: Connection, plan: _Plan, now: datetime) -> None:
    for start in range(0, len(plan.sent), _CHUNK):
        conn.execute(_SENT, {"_ids": plan.sent[start:start + _CHUNK], "_now": now})
    if plan.provider_ids:
        _set_provider_ids(conn, plan.provider_ids)
    for statement, rows in ((_DEFERRED, plan.deferred), (_FAILED, plan.failed)):
        if rows:
            for row in rows:
                row["_now"] = now
            conn.execute(statement, rows)


def _set_provider_ids(conn: Connection, pairs: list[tuple[str, int]]) -> None:
    """Per-row values straight to the driver's executemany: SQLAlchemy's per-row parameter work costs more than SQLite's."""
    style = conn.dialect.paramstyle
    if style in ("qmark", "format", "pyformat"):
        mark = _PLACEHOLDER[style]
        conn.exec_driver_sql(f"UPDATE deliveries SET provider_id = {mark} WHERE id = {mark}", pairs)
        return
    stmt = update(deliveries).where(_BY_ID).values(provider_id=bindparam("_pid"))
    conn.execute(stmt, [{"_pid": pid, "_id": delivery_id} for pid, delivery_id in pairs])


def _bounce_targets(conn: Connection, delivery_ids: list[int]) -> list[tuple[int, str]]:
    if not delivery_ids:
        return []
    query = (select(deliveries.c.subscriber_id, digests.c.list)
             .join_from(deliveries, digests, digests.c.id == deliveries.c.digest_id)
             .where(deliveries.c.id.in_(delivery_ids)))
    return [(row.subscriber_id, row.list) for row in conn.execute(query)]


def _one_line(reason: str | None) -> str | None:
    if reason is None:
        return None
    text = " ".join(str(reason).split())
    return text[:_REASON_LIMIT]
