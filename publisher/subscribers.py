"""Subscribers and their per-list subscriptions in the state database.

A subscriber is one normalised email address with an optional name and a random
secret that signs their links (:mod:`publisher.tokens`).  Each (subscriber, list)
pair has a status: ``pending`` (not confirmed), ``active``, or one of the stopped
statuses ``unsubscribed``, ``bounced`` and ``complained``.  Rows are never deleted:
a stopped subscription is what keeps an import or a re-add from mailing that
address again.

Transitions:

- ``add`` and ``import_csv`` create subscriptions, turn ``pending`` into ``active``
  and refresh names; they never touch a stopped subscription (``add`` can with
  ``resubscribe=True``, for an operator acting on a new request) and never turn
  ``active`` back into ``pending``.
- ``remove`` unsubscribes (pending, active or bounced become unsubscribed).
- ``record_bounce`` and ``record_complaint`` stop live subscriptions.
- ``set_status`` sets any status: the unsubscribe and confirm links use it.

Imports stream: the CSV is read one row at a time and written in chunks of
:data:`CHUNK` rows, each in its own transaction.  An interrupted import can simply
be run again: every step is idempotent.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, case, func, select, update

from publisher.clock import Clock
from publisher.csvio import read_records, write_rows
from publisher.errors import SubscriberError
from publisher.schema import subscribers, subscriptions

log = logging.getLogger(__name__)

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
LIVE = ("pending", "active")
STOPPED = frozenset({"unsubscribed", "bounced", "complained"})
CHUNK = 1000  # rows per import transaction
IN_SLICE = 500  # values per SQL IN (...): under every SQLite's variable limit
MAX_PROBLEMS = 1000  # problem rows an ImportReport keeps (it counts them all)
NAME_MAX = 200
EXPORT_COLUMNS = ("email", "name", "list", "status", "status_at")

# Control characters (C0, DEL, C1), line/paragraph separators, bidi overrides,
# BOM and lone surrogates: none may reach a header, a page or a log line.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


# -- values ----------------------------------------------------------------------


def normalise_email(text: str) -> str:
    """The canonical form of an address, or SubscriberError saying what is wrong with it.

    email-validator checks the syntax (no DNS) and normalises Unicode and the
    domain; the local part is lower-cased too.  RFC 5321 lets a mailbox be
    case-sensitive but none in use are, and keeping ``Ann@`` and ``ann@`` apart would
    let an address that unsubscribed come back under another spelling.
    """
    from email_validator import EmailNotValidError, validate_email

    value = (text or "").strip()
    if not value:
        raise SubscriberError("email", "no address given")
    try:
        info = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise SubscriberError(_shown(value), str(exc)) from exc
    return f"{info.local_part.lower()}@{info.domain.lower()}"


def clean_name(text: str | None) -> str | None:
    """A display name with every control character gone and runs of space collapsed; None when empty."""
    if text is None:
        return None
    cleaned = " ".join(_UNSAFE.sub(" ", text).split())[:NAME_MAX].strip()
    return cleaned or None


def _shown(value: str) -> str:
    """A user-supplied value safe to quote in a one-line message."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _check_status(status: str, allowed: Sequence[str] = STATUSES) -> None:
    if status not in allowed:
        raise SubscriberError(f"status {status!r}", f"use one of {', '.join(allowed)}")


def _check_list(list_name: str) -> None:
    if not list_name or len(list_name) > 100:
        raise SubscriberError(f"list {list_name!r}", "a list name has 1 to 100 characters")


# -- reports ---------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did.  Every data row is counted in exactly one of the four counts."""

    path: str
    list_name: str
    added: int = 0  # new subscriptions (new subscribers, or known ones new to this list)
    updated: int = 0  # already pending or active: kept (pending made active), name refreshed
    skipped: int = 0  # unsubscribed, bounced or complained: left alone
    bad: int = 0  # rows that could not be read or hold no valid address
    skipped_rows: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first MAX_PROBLEMS
    bad_rows: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first MAX_PROBLEMS

    @property
    def rows(self) -> int:
        return self.added + self.updated + self.skipped + self.bad

    def skip(self, line: int, reason: str) -> None:
        self.skipped += 1
        if len(self.skipped_rows) < MAX_PROBLEMS:
            self.skipped_rows.append((line, reason))

    def reject(self, line: int, reason: str) -> None:
        self.bad += 1
        if len(self.bad_rows) < MAX_PROBLEMS:
            self.bad_rows.append((line, reason))

    def line(self) -> str:
        return (f"{self.path}: {self.rows} rows into list {self.list_name}: {self.added} added, "
                f"{self.updated} already subscribed, {self.skipped} skipped (unsubscribed, bounced or complained), "
                f"{self.bad} bad")


@dataclass(frozen=True, slots=True)
class _Known:
    """A subscriber found for an import row, with their status on the list (None: not subscribed)."""

    id: int
    name: str | None
    status: str | None
    status_at: datetime | None


# -- the store ---------------------------------------------------------------------


class Subscribers:
    """Subscribers and subscriptions in one state database."""

    def __init__(self, store: Any, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or getattr(store, "clock", None) or Clock()

    @contextmanager
    def _tx(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.store.begin() as own:
                yield own

    # -- one subscriber ----------------------------------------------------------

    def add(self, email: str, name: str | None = None, lists: Iterable[str] = (), status: str = "active", *,
            resubscribe: bool = False) -> int:
        """Add or update a subscriber and subscribe them to ``lists``; return their ID.

        A stopped subscription stays stopped (with a warning) unless ``resubscribe``.
        An address erased on request (:mod:`publisher.suppress`) is refused unless
        ``resubscribe`` (their own new request), which lifts the suppression.
        """
        from publisher import suppress

        _check_status(status, LIVE)
        address, name = normalise_email(email), clean_name(name)
        lists = list(lists)
        for list_name in lists:
            _check_list(list_name)
        now = self.clock.now()
        with self.store.begin() as conn:
            if suppress.is_suppressed(conn, address):
                if not resubscribe:
                    raise SubscriberError(address, "erased on request; only their own new sign-up can add them again")
                suppress.unsuppress(conn, address)
            subscriber_id = self._ensure(conn, address, name, now)
            for list_name in lists:
                self._subscribe(conn, subscriber_id, address, list_name, status, now, resubscribe)
        return subscriber_id

    def _ensure(self, conn: Connection, email: str, name: str | None, now: datetime) -> int:
        _insert_ignore(conn, subscribers, [_new_subscriber(email, name, now)], ["email"])
        row = conn.execute(select(subscribers.c.id, subscribers.c.name).where(subscribers.c.email == email)).one()
        if name is not None and name != row.name:
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(name=name, updated_at=now))
        return row.id

    def _subscribe(self, conn: Connection, subscriber_id: int, email: str, list_name: str, status: str,
                   now: datetime, resubscribe: bool) -> None:
        where = and_(subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list == list_name)
        current = conn.execute(select(subscriptions.c.status).where(where)).scalar()
        if current is None:
            _insert_ignore(conn, subscriptions, [_new_subscription(subscriber_id, list_name, status, now)],
                           ["subscriber_id", "list"])
        elif current in STOPPED and not resubscribe:
            log.warning("%s: %s on list %s; not re-subscribed (resubscribe only on their new request)",
                        email, current, list_name)
        elif current != status and (current in STOPPED or status == "active"):
            conn.execute(update(subscriptions).where(where).values(_status_values(status, now)))

    def set_status(self, subscriber_id: int, list_name: str, status: str, *, conn: Connection | None = None) -> bool:
        """Set one subscription's status (any transition); return whether it changed."""
        _check_status(status)
        where = and_(subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.list == list_name)
        with self._tx(conn) as tx:
            current = tx.execute(select(subscriptions.c.status).where(where)).scalar()
            if current is None:
                raise SubscriberError(f"subscriber {subscriber_id}", f"not subscribed to list {list_name}")
            if current == status:
                return False
            tx.execute(update(subscriptions).where(where).values(_status_values(status, self.clock.now())))
        return True

    def remove(self, email: str, list_name: str | None = None) -> int:
        """Unsubscribe ``email`` from one list or all; return how many subscriptions changed. Never deletes."""
        address = normalise_email(email)
        with self.store.begin() as conn:
            subscriber_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == address))
            if subscriber_id is None:
                raise SubscriberError(address, "not a subscriber")
            where = [subscriptions.c.subscriber_id == subscriber_id]
            if list_name is not None:
                where.append(subscriptions.c.list == list_name)
                if conn.scalar(select(subscriptions.c.id).where(*where)) is None:
                    raise SubscriberError(address, f"not subscribed to list {list_name}")
            stmt = update(subscriptions).where(*where, subscriptions.c.status.in_(("pending", "active", "bounced")))
            return conn.execute(stmt.values(status="unsubscribed", status_at=self.clock.now())).rowcount

    def record_bounce(self, subscriber_id: int, list_name: str | None, hard: bool, threshold: int = 3, *,
                      conn: Connection | None = None) -> str | None:
        """Count a bounce; a hard one, or the ``threshold``-th soft one, makes a live subscription bounced.

        ``list_name`` None applies it to every list.  Returns the status after
        (for one list; None when not subscribed).
        """
        now = self.clock.now()
        where = _where(subscriber_id, list_name)
        live = subscriptions.c.status.in_(LIVE)
        with self._tx(conn) as tx:
            if hard:
                tx.execute(update(subscriptions).where(*where, live).values(status="bounced", status_at=now))
            else:
                reached = and_(live, subscriptions.c.soft_bounces + 1 >= threshold)
                tx.execute(update(subscriptions).where(*where).values(
                    soft_bounces=subscriptions.c.soft_bounces + 1,
                    status=case((reached, "bounced"), else_=subscriptions.c.status),
                    status_at=case((reached, now), else_=subscriptions.c.status_at),
                ))
            return tx.scalar(select(subscriptions.c.status).where(*where).limit(1))

    def record_complaint(self, subscriber_id: int, list_name: str | None, *, conn: Connection | None = None) -> None:
        """The subscriber marked a message as spam: stop mailing them on that list (None: every list)."""
        stmt = update(subscriptions).where(*_where(subscriber_id, list_name), subscriptions.c.status != "complained")
        with self._tx(conn) as tx:
            tx.execute(stmt.values(status="complained", status_at=self.clock.now()))

    # -- reading -----------------------------------------------------------------

    def get(self, email: str) -> Row[Any] | None:
        """The subscriber row (id, email, name, secret, created_at, updated_at) for an address, or None."""
        with self.store.begin() as conn:
            return conn.execute(select(subscribers).where(subscribers.c.email == normalise_email(email))).first()

    def secret(self, subscriber_id: int) -> str | None:
        """A subscriber's link-signing secret (None if unknown): the ``secret_for`` of ``Signer.verify``."""
        with self.store.begin() as conn:
            return conn.scalar(select(subscribers.c.secret).where(subscribers.c.id == subscriber_id))

    def count(self, list_name: str, status: str = "active") -> int:
        query = select(func.count()).where(subscriptions.c.list == list_name, subscriptions.c.status == status)
        with self.store.begin() as conn:
            return conn.scalar(query) or 0

    def iter(self, list_name: str | None = None, status: str | None = None, *,
             page: int = CHUNK) -> Iterator[Row[Any]]:
        """Subscriptions a page at a time (never all in memory), in subscriber order
        (for one list without a status: by status, then subscriber).

        Rows have ``id`` (the subscriber's), ``email``, ``name``, ``list``, ``status``,
        ``status_at``, ``confirmed_at``, ``soft_bounces``.  Without ``list_name`` there
        is one row per subscription, and one with ``list`` None for a subscriber with
        none (unless ``status`` is given).
        """
        if status is not None:
            _check_status(status)
        if list_name is not None and status is None:
            # One status at a time: each walk follows the (list, status, subscriber_id) index with no sort,
            # so a page costs the same at the end of a million rows as at the start.
            for each in STATUSES:
                yield from self._pages(self._list_page, list_name, each, page)
        else:
            yield from self._pages(self._list_page if list_name is not None else self._all_page, list_name, status, page)

    def _pages(self, pages: Any, list_name: str | None, status: str | None, size: int) -> Iterator[Row[Any]]:
        last = 0
        while rows := pages(last, list_name, status, size):
            yield from rows
            last = rows[-1].id

    def _list_page(self, last: int, list_name: str | None, status: str | None, size: int) -> list[Row[Any]]:
        query = _ROWS.join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        where = [subscriptions.c.list == list_name, subscriptions.c.subscriber_id > last]
        if status is not None:
            where.append(subscriptions.c.status == status)
        with self.store.begin() as conn:
            return list(conn.execute(query.where(*where).order_by(subscriptions.c.subscriber_id).limit(size)))

    def _all_page(self, last: int, _list: str | None, status: str | None, size: int) -> list[Row[Any]]:
        """A page of subscribers (by ID) with all their subscriptions: a page ends on a subscriber."""
        ids = select(subscribers.c.id).where(subscribers.c.id > last)
        on = subscriptions.c.subscriber_id == subscribers.c.id
        if status is not None:
            on = and_(on, subscriptions.c.status == status)
            ids = ids.where(select(subscriptions.c.id).where(on).exists())
        ids = ids.order_by(subscribers.c.id).limit(size)
        query = _ROWS.outerjoin(subscriptions, on).where(subscribers.c.id.in_(ids.scalar_subquery()))
        with self.store.begin() as conn:
            return list(conn.execute(query.order_by(subscribers.c.id, subscriptions.c.list)))

    # -- CSV -----------------------------------------------------------------------

    def import_csv(self, path: str | Path, list_name: str, status: str = "active") -> ImportReport:
        """Subscribe each address in the CSV (columns ``email``, optional ``name``) to ``list_name``.

        Bad rows are reported with their line and reason and the rest imported; a
        stopped subscription is never re-activated (reported as skipped).
        """
        _check_status(status, LIVE)
        _check_list(list_name)
        report = ImportReport(str(path), list_name)
        chunk: dict[str, tuple[int, str | None]] = {}
        for line, fields in read_records(path, ("email",), ("name",)):
            row = _import_row(fields)
            if isinstance(row, str):
                report.reject(line, row)
                continue
            if row[0] in chunk or len(chunk) >= CHUNK:  # a repeated address applies after the earlier row
                self._import_chunk(chunk, list_name, status, report)
                chunk = {}
            chunk[row[0]] = (line, row[1])
        if chunk:
            self._import_chunk(chunk, list_name, status, report)
        log.info("%s", report.line())
        return report

    def _import_chunk(self, chunk: dict[str, tuple[int, str | None]], list_name: str, status: str,
                      report: ImportReport) -> None:
        from publisher import suppress

        now = self.clock.now()
        with self.store.begin() as conn:
            for email in suppress.suppressed_among(conn, list(chunk)):
                report.skip(chunk.pop(email)[0], f"{email}: erased on request; an import never re-adds")
            known = _lookup(conn, list_name, list(chunk))
            new = [email for email in chunk if email not in known]
            if new:
                _insert_ignore(conn, subscribers, [_new_subscriber(e, chunk[e][1], now) for e in new], ["email"])
                known.update(_lookup(conn, list_name, new))
            plan = _Plan()
            for email, (line, name) in chunk.items():
                plan.row(report, email, line, name, known[email], list_name, status, now)
            plan.apply(conn, list_name, now)

    def export_csv(self, path: str | Path, list_name: str | None = None) -> int:
        """Write ``email,name,list,status,status_at`` rows (streaming); return how many."""
        rows = ((row.email, row.name or "", row.list or "", row.status or "",
                 row.status_at.isoformat(timespec="seconds") if row.status_at else "")
                for row in self.iter(list_name))
        return write_rows(path, EXPORT_COLUMNS, rows)


_ROWS = select(
    subscribers.c.id, subscribers.c.email, subscribers.c.name, subscriptions.c.list, subscriptions.c.status,
    subscriptions.c.status_at, subscriptions.c.confirmed_at, subscriptions.c.soft_bounces,
).select_from(subscribers)


# -- import helpers ----------------------------------------------------------------


def _import_row(fields: dict[str, str] | str) -> tuple[str, str | None] | str:
    """``(email, name)`` of a CSV record, or the reason it is rejected."""
    if isinstance(fields, str):
        return fields
    if not fields.get("email", "").strip():
        return "no email address"
    try:
        return normalise_email(fields["email"]), clean_name(fields.get("name"))
    except SubscriberError as exc:
        return str(exc)


@dataclass
class _Plan:
    """The writes one import chunk needs, grouped for executemany."""

    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    names: list[dict[str, Any]] = field(default_factory=list)
    activate: list[dict[str, Any]] = field(default_factory=list)

    def row(self, report: ImportReport, email: str, line: int, name: str | None, known: _Known, list_name: str,
            status: str, now: datetime) -> None:
        if known.status is None:
            self.subscriptions.append(_new_subscription(known.id, list_name, status, now))
            report.added += 1
            return
        if known.status in STOPPED:
            since = f" since {known.status_at:%Y-%m-%d}" if known.status_at else ""
            report.skip(line, f"{email}: {known.status}{since}; an import never re-subscribes")
            return
        report.updated += 1
        if name is not None and name != known.name:
            self.names.append({"_id": known.id, "name": name, "updated_at": now})
        if known.status == "pending" and status == "active":
            self.activate.append({"_id": known.id})

    def apply(self, conn: Connection, list_name: str, now: datetime) -> None:
        if self.subscriptions:
            _insert_ignore(conn, subscriptions, self.subscriptions, ["subscriber_id", "list"])
        if self.names:
            stmt = update(subscribers).where(subscribers.c.id == bindparam("_id"))
            conn.execute(stmt.values(name=bindparam("name"), updated_at=bindparam("updated_at")), self.names)
        if self.activate:
            stmt = update(subscriptions).where(subscriptions.c.subscriber_id == bindparam("_id"),
                                               subscriptions.c.list == list_name, subscriptions.c.status == "pending")
            conn.execute(stmt.values(_status_values("active", now)), self.activate)


def _lookup(conn: Connection, list_name: str, emails: Sequence[str]) -> dict[str, _Known]:
    """The known subscribers among ``emails``, with their status on ``list_name``."""
    on = and_(subscriptions.c.subscriber_id == subscribers.c.id, subscriptions.c.list == list_name)
    query = select(subscribers.c.id, subscribers.c.email, subscribers.c.name, subscriptions.c.status,
                   subscriptions.c.status_at).select_from(subscribers.outerjoin(subscriptions, on))
    found: dict[str, _Known] = {}
    for start in range(0, len(emails), IN_SLICE):
        part = emails[start:start + IN_SLICE]
        for row in conn.execute(query.where(subscribers.c.email.in_(part))):
            found[row.email] = _Known(row.id, row.name, row.status, row.status_at)
    return found


# -- rows and statements -------------------------------------------------------------


def _new_subscriber(email: str, name: str | None, now: datetime) -> dict[str, Any]:
    return {"email": email, "name": name, "secret": secrets.token_hex(16), "created_at": now, "updated_at": now}


def _new_subscription(subscriber_id: int, list_name: str, status: str, now: datetime) -> dict[str, Any]:
    return {"subscriber_id": subscriber_id, "list": list_name, "status": status, "created_at": now,
            "status_at": now, "confirmed_at": now if status == "active" else None, "soft_bounces": 0}


def _status_values(status: str, now: datetime) -> dict[str, Any]:
    """The columns a move to ``status`` sets (becoming active confirms, once, and clears soft bounces)."""
    values: dict[str, Any] = {"status": status, "status_at": now}
    if status == "active":
        values["confirmed_at"] = func.coalesce(subscriptions.c.confirmed_at, now)
        values["soft_bounces"] = 0
    return values


def _where(subscriber_id: int, list_name: str | None) -> list[Any]:
    where = [subscriptions.c.subscriber_id == subscriber_id]
    if list_name is not None:
        where.append(subscriptions.c.list == list_name)
    return where


def _insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT the rows, skipping any that conflict on ``keys`` (SQLite and PostgreSQL; plain INSERT elsewhere)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        conn.execute(table.insert(), rows)
        return
    conn.execute(insert(table).on_conflict_do_nothing(index_elements=keys), rows)
