"""The delivery ledger: one row per (digest, subscriber), written durably around every hand-off.

A row moves ``queued -> sending -> sent | deferred | failed``; a deferred row
becomes claimable again at its ``next_attempt_at``.  Every step is a short
transaction of a few set-based statements, so the per-message cost is a
fraction of the send itself (no per-row SELECT, no per-row commit):

- :meth:`Ledger.enqueue` is ONE ``INSERT .. SELECT`` from the list's active
  subscriptions: a million subscribers never pass through Python.  It adds
  only the rows that are missing (``ON CONFLICT DO NOTHING`` on the unique
  (digest, subscriber) key on SQLite and PostgreSQL, ``NOT EXISTS`` elsewhere),
  so running it twice adds nothing.
- :meth:`Ledger.claim` moves up to ``limit`` rows to ``sending`` (attempts +1)
  with one ``UPDATE .. WHERE id IN (SELECT .. LIMIT n) RETURNING`` and commits
  *before* the provider sees anything; :meth:`Ledger.record` commits the
  outcomes of a whole batch right after the provider answers: the sent rows of
  one provider ID (Mailgun and SendGrid answer one per call) in one
  ``UPDATE .. WHERE id IN (..)``.
- On SQLite (>= 3.35, the stdlib driver) claim and record run those very
  statements through the driver (plain tuples, times bound as the column
  stores them): SQLAlchemy's per-row work cost more than SQLite's.  Any other
  database gets the same statements built with SQLAlchemy Core.

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
from typing import Any, Iterator, NamedTuple

from sqlalchemy import Connection, String, and_, bindparam, case, cast, exists, func, insert, literal, or_, select, update

from publisher.backoff import Backoff, is_throttle
from publisher.clock import Clock
from publisher.errors import DigestError, StateError
from publisher.litestore import sqlite_datetime
from publisher.schema import UTCDateTime, deliveries, digests, subscribers, subscriptions

log = logging.getLogger(__name__)

IN_DOUBT = "in doubt after interrupted send"
MAX_ATTEMPTS = 8  # with the default backoff: about two days from the first try to giving up
STATES = ("queued", "sending", "sent", "deferred", "failed")
OPEN_STATES = ("queued", "sending", "deferred")
_REASON_LIMIT = 500


class Claimed(NamedTuple):
    """A row handed to this sender: everything a Recipient needs, without another query (a tuple: cheap to make)."""

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
    sent: dict[str | None, list[int]] = field(default_factory=dict)  # provider_id (or None) -> delivery ids
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
            added = conn.execute(_enqueue_statement(digest_id, list_name, domain, nonce, now, conn.dialect.name)).rowcount
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
                   digests.c.lease_until <= now)
        stmt = update(digests).where(digests.c.id == digest_id, free)
        with self.store.begin() as conn:
            taken = conn.execute(stmt.values(owner=owner, lease_until=now + timedelta(seconds=seconds))).rowcount
        return taken == 1

    def take_over(self, digest_id: int, dead: str, owner: str, seconds: float) -> bool:
        """Take the lease from ``dead`` (a sender known to have died) before it expires; False if it moved on."""
        stmt = update(digests).where(digests.c.id == digest_id, digests.c.owner == dead)
        with self.store.begin() as conn:
            values = {"owner": owner, "lease_until": self.clock.now() + timedelta(seconds=seconds)}
            return conn.execute(stmt.values(**values)).rowcount == 1

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
        """Up to ``limit`` queued or due deferred rows, moved to ``sending`` (attempts +1) in one committed transaction.

        Queued rows first (one ``UPDATE .. RETURNING``), then, only when those run short, due deferred ones.
        """
        now = self.clock.now()
        with self._begin() as conn:
            take = _take_sqlite if _fast_sqlite(conn) else _take
            rows = take(conn, digest_id, False, limit, now)
            if len(rows) < limit:
                rows += take(conn, digest_id, True, limit - len(rows), now)
        rows.sort(key=itemgetter(0))
        return list(map(Claimed._make, rows))

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
        results = results if isinstance(results, list) else list(results)
        summary = Recorded()
        if not results:
            return summary
        now = self.clock.now()
        with self._begin() as conn:
            deferred = [r.delivery_id for r in results if r.outcome == "deferred"]
            attempts = _touch(conn, deferred, now) if deferred else {}
            plan = self._plan(results, attempts, now, summary)
            _write(conn, plan, now)
            bounced = _bounce_targets(conn, plan.bounces)
            for subscriber_id, list_name in bounced:  # in the same commit as the failure itself
                self.bounce(conn, subscriber_id, list_name)
        summary.bounced = len(bounced)
        return summary

    def _plan(self, results: list[Any], attempts: dict[int, int], now: datetime, summary: Recorded) -> _Plan:
        plan = _Plan()
        sent = plan.sent
        for result in results:
            outcome = result.outcome
            if outcome == "sent":
                provider_id = result.provider_id
                group = sent.get(provider_id)
                if group is None:
                    group = sent[provider_id if provider_id is None else str(provider_id)[:255]] = []
                group.append(result.delivery_id)
            elif outcome == "deferred":
                self._plan_deferral(plan, result, attempts.get(result.delivery_id, self.max_attempts), now, summary)
            else:
                plan.failed.append({"_id": result.delivery_id, "_reason": _one_line(result.reason) or "failed"})
                summary.failed += 1
                if result.bounce:
                    plan.bounces.append(result.delivery_id)
        summary.sent = sum(map(len, sent.values()))
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


def _enqueue_statement(digest_id: int, list_name: str, domain: str, nonce: str, now: datetime, dialect: str) -> Any:
    """INSERT .. SELECT of the rows missing; on SQLite and PostgreSQL the unique (digest, subscriber) key itself
    skips the rows already there (``ON CONFLICT DO NOTHING``: no second lookup per row), elsewhere NOT EXISTS."""
    mid = literal(f"<d{digest_id}.s", String) + cast(subscribers.c.id, String) + literal(f".{nonce}@{domain}>", String)
    source = (
        select(literal(digest_id), subscribers.c.id, subscribers.c.email, literal("queued"), literal(0), mid,
               literal(now, UTCDateTime))
        .select_from(subscriptions.join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id))
        .where(subscriptions.c.list == list_name, subscriptions.c.status == "active")
        .order_by(subscriptions.c.subscriber_id)
    )
    columns = ["digest_id", "subscriber_id", "email", "state", "attempts", "message_id", "updated_at"]
    if dialect in ("sqlite", "postgresql"):
        from importlib import import_module

        upsert = import_module(f"sqlalchemy.dialects.{dialect}").insert
        return upsert(deliveries).from_select(columns, source).on_conflict_do_nothing(
            index_elements=["digest_id", "subscriber_id"])
    already = exists().where(deliveries.c.digest_id == digest_id,
                             deliveries.c.subscriber_id == subscriptions.c.subscriber_id)
    return insert(deliveries).from_select(columns, source.where(~already))


_NAME = select(subscribers.c.name).where(subscribers.c.id == deliveries.c.subscriber_id).scalar_subquery()
_SECRET = select(subscribers.c.secret).where(subscribers.c.id == deliveries.c.subscriber_id).scalar_subquery()
_CLAIMED = (deliveries.c.id, deliveries.c.subscriber_id, deliveries.c.email, _NAME, _SECRET, deliveries.c.message_id,
            deliveries.c.attempts)  # in Claimed's order


def _take(conn: Connection, digest_id: int, deferred: bool, limit: int, now: datetime) -> list[Any]:
    """One UPDATE .. RETURNING (the name and secret by subqueries): a write first, so SQLite locks before reading."""
    if limit <= 0:
        return []
    if deferred:
        condition = and_(deliveries.c.state == "deferred", deliveries.c.next_attempt_at <= now)
    else:
        condition = deliveries.c.state == "queued"
    ids = select(deliveries.c.id).where(deliveries.c.digest_id == digest_id, condition).order_by(deliveries.c.id)
    stmt = update(deliveries).where(deliveries.c.id.in_(ids.limit(limit)))
    stmt = stmt.values(state="sending", attempts=deliveries.c.attempts + 1, updated_at=now)
    return conn.execute(stmt.returning(*_CLAIMED)).all()


# The same statement as _take's, for SQLite (>= 3.35, RETURNING) straight through the driver: plain tuples, no
# per-row result processing.  Times are bound as the UTCDateTime column stores them (sqlite_datetime).
_TAKE_SQL = (
    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = ? "
    "WHERE id IN (SELECT id FROM deliveries WHERE digest_id = ? AND {condition} ORDER BY id LIMIT ?) "
    "RETURNING id, subscriber_id, email, "
    "(SELECT name FROM subscribers WHERE subscribers.id = deliveries.subscriber_id), "
    "(SELECT secret FROM subscribers WHERE subscribers.id = deliveries.subscriber_id), message_id, attempts"
)
_TAKE_QUEUED = _TAKE_SQL.format(condition="state = 'queued'")
_TAKE_DUE = _TAKE_SQL.format(condition="state = 'deferred' AND next_attempt_at <= ?")


def _fast_sqlite(conn: Connection) -> bool:
    """Whether the driver-level statements below apply: SQLite through the stdlib driver, with RETURNING."""
    import sqlite3

    return conn.dialect.name == "sqlite" and conn.dialect.driver == "pysqlite" and sqlite3.sqlite_version_info >= (3, 35)


def _take_sqlite(conn: Connection, digest_id: int, deferred: bool, limit: int, now: datetime) -> list[Any]:
    if limit <= 0:
        return []
    stamp = sqlite_datetime(now)
    if deferred:
        return _driver(conn, _TAKE_DUE, (stamp, digest_id, stamp, limit))
    return _driver(conn, _TAKE_QUEUED, (stamp, digest_id, limit))


def _driver(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        return cursor.execute(sql, params).fetchall()
    finally:
        cursor.close()


def _touch(conn: Connection, delivery_ids: list[int], now: datetime) -> dict[int, int]:
    """The attempts of rows about to be deferred (read by a write, for SQLite's lock order)."""
    if not delivery_ids:
        return {}
    stmt = update(deliveries).where(deliveries.c.id.in_(delivery_ids)).values(updated_at=now)
    return {row[0]: row[1] for row in conn.execute(stmt.returning(deliveries.c.id, deliveries.c.attempts))}


_BY_ID = deliveries.c.id == bindparam("_id")
_IN_DOUBT_STAYS = case((deliveries.c.reason == IN_DOUBT, deliveries.c.reason), else_=None)  # an in-doubt mark stays
_SENT_VALUES = {"state": "sent", "next_attempt_at": None, "updated_at": bindparam("_now", type_=UTCDateTime),
                "reason": _IN_DOUBT_STAYS}
_SENT = update(deliveries).where(deliveries.c.id.in_(bindparam("_ids", expanding=True))).values(_SENT_VALUES)
_SENT_PID = _SENT.values(provider_id=bindparam("_pid"))
# A row someone else already settled (after our lease was lost) is not downgraded.
_DEFERRED = update(deliveries).where(_BY_ID, deliveries.c.state == "sending").values(
    state="deferred", reason=bindparam("_reason"), next_attempt_at=bindparam("_at", type_=UTCDateTime),
    updated_at=bindparam("_now", type_=UTCDateTime))
_FAILED = update(deliveries).where(_BY_ID, deliveries.c.state == "sending").values(
    state="failed", reason=bindparam("_reason"), next_attempt_at=None, updated_at=bindparam("_now", type_=UTCDateTime))
_CHUNK = 5000  # ids per IN list, well under any driver's parameter limit
_SPREAD = 4  # sent rows of one provider ID up to this many are written one by one (executemany), more by IN lists

# _SENT and _SENT_PID for the SQLite driver: the IN list's markers are added per call.
_SENT_SQL = ("UPDATE deliveries SET state = 'sent', next_attempt_at = NULL, updated_at = ?{pid}, "
             "reason = CASE WHEN reason = ? THEN reason ELSE NULL END WHERE id IN ({ids})")
_SENT_ONE_SQL = _SENT_SQL.format(pid=", provider_id = ?", ids="?")


def _write(conn: Connection, plan: _Plan, now: datetime) -> None:
    if _fast_sqlite(conn):
        _write_sent_sqlite(conn, plan.sent, now)
    else:
        _write_sent(conn, plan.sent, now)
    for statement, rows in ((_DEFERRED, plan.deferred), (_FAILED, plan.failed)):
        if rows:
            for row in rows:
                row["_now"] = now
            conn.execute(statement, rows)


def _write_sent(conn: Connection, sent: dict[str | None, list[int]], now: datetime) -> None:
    """Sent rows by provider ID: one ``UPDATE .. WHERE id IN (..)`` per ID (Mailgun and SendGrid give one per call)."""
    for provider_id, ids in sent.items():
        for start in range(0, len(ids), _CHUNK):
            params = {"_ids": ids[start:start + _CHUNK], "_now": now}
            if provider_id is None:
                conn.execute(_SENT, params)
            else:
                conn.execute(_SENT_PID, params | {"_pid": provider_id})


def _write_sent_sqlite(conn: Connection, sent: dict[str | None, list[int]], now: datetime) -> None:
    """:func:`_write_sent` through the driver; IDs given to few rows each (Postmark's) by one executemany."""
    stamp = sqlite_datetime(now)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        singles = []
        for provider_id, ids in sent.items():
            if provider_id is not None and len(ids) <= _SPREAD:
                singles += [(stamp, provider_id, IN_DOUBT, delivery_id) for delivery_id in ids]
                continue
            for start in range(0, len(ids), _CHUNK):
                part = ids[start:start + _CHUNK]
                pid = "" if provider_id is None else ", provider_id = ?"
                head = (stamp,) if provider_id is None else (stamp, provider_id)
                cursor.execute(_SENT_SQL.format(pid=pid, ids=",".join("?" * len(part))), (*head, IN_DOUBT, *part))
        if singles:
            cursor.executemany(_SENT_ONE_SQL, singles)
    finally:
        cursor.close()


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
