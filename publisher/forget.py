"""Forgetting a person (GDPR erasure): ``publisher subscribers forget EMAIL``.

Everything that names them goes, in one transaction: their ``subscribers`` row,
every ``subscriptions`` row, and every ``deliveries`` row of the delivery ledger
(matched by subscriber and by address).  What stays is a salted hash of the
address in ``suppressions`` (:mod:`publisher.suppress`), so that a later import,
``subscribers add`` or sign-up can't silently add them back.  Messages the
``outbox`` provider wrote to them are deleted too (by their Message-ID, so nothing
is scanned).  Digests themselves stay: they hold no recipient's data (the web copy
shows neutral values), and a digest's ``recipients`` count is only a number.

Forgetting an address that is not in the database still records the hash: the
person asked not to be mailed, whether or not they were.

With SQLite the deletes run with ``secure_delete`` (the rows' bytes are zeroed, not
left in free pages) and the write-ahead log is checkpointed and truncated after, so
the address is gone from the database files, not only from its tables.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, or_, select

from publisher.clock import Clock
from publisher.schema import deliveries, subscribers, subscriptions
from publisher.suppress import suppress

log = logging.getLogger(__name__)


@dataclass
class ForgetReport:
    """What :func:`forget` erased.  Holds no address: only a short fingerprint for the log."""

    fingerprint: str  # 12 hex characters of sha256(address): tells reports apart, names nobody
    found: bool = False  # a subscriber row existed
    subscriptions: int = 0
    deliveries: int = 0
    files: int = 0  # outbox .eml files deleted
    newly_suppressed: bool = False  # False when the address was already suppressed
    problems: list[str] = field(default_factory=list)  # files that could not be deleted

    def line(self) -> str:
        if not self.found:
            return (f"forgotten {self.fingerprint}: no subscriber with that address; "
                    f"suppressed so that nobody can add it back")
        return (f"forgotten {self.fingerprint}: subscriber, {self.subscriptions} subscription(s), "
                f"{self.deliveries} delivery record(s) and {self.files} outbox file(s) erased; "
                f"only a salted hash is kept")


def forget(store: Any, config: Any, email: str, clock: Clock | None = None) -> ForgetReport:
    """Erase a person everywhere and keep only the salted hash of their address.

    ``email`` is normalised first (SubscriberError when it is not an address).
    """
    from publisher.subscribers import normalise_email

    address = normalise_email(email)
    now = (clock or getattr(store, "clock", None) or Clock()).now()
    report = ForgetReport(hashlib.sha256(address.encode("utf-8")).hexdigest()[:12])
    with store.begin() as conn:
        previous = _secure_delete(conn, "ON")
        messages = _erase(conn, address, report)
        report.newly_suppressed = suppress(conn, address, "forgotten", now)
        _secure_delete(conn, previous)
    _checkpoint(store)
    _delete_outbox_files(config, messages, report)
    log.info("%s", report.line())
    return report


def _secure_delete(conn: Connection, value: str | None) -> str | None:
    """SQLite: set ``secure_delete`` (deleted rows zeroed, not left in free pages); return the previous value."""
    if conn.dialect.name != "sqlite" or value is None:
        return None
    previous = conn.exec_driver_sql("PRAGMA secure_delete").scalar()
    conn.exec_driver_sql(f"PRAGMA secure_delete={'ON' if value in ('ON', '1', 1) else 'OFF'}")
    return str(previous)


def _checkpoint(store: Any) -> None:
    """SQLite in WAL mode: copy the WAL into the database and empty it, so old page images go too."""
    if store.engine.dialect.name != "sqlite":
        return
    with store.engine.connect() as conn:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
    if busy and busy[0]:
        log.info("the state database is in use: its write-ahead log keeps the erased rows' old pages until "
                 "the next checkpoint")


def _erase(conn: Connection, address: str, report: ForgetReport) -> list[tuple[int, str]]:
    """Delete the rows; return the (digest ID, Message-ID) of every delivery deleted."""
    subscriber_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == address))
    report.found = subscriber_id is not None
    mine = deliveries.c.email == address
    if subscriber_id is not None:
        mine = or_(mine, deliveries.c.subscriber_id == subscriber_id)
    messages = [(row.digest_id, row.message_id)
                for row in conn.execute(select(deliveries.c.digest_id, deliveries.c.message_id).where(mine))]
    report.deliveries = conn.execute(delete(deliveries).where(mine)).rowcount
    if subscriber_id is not None:
        report.subscriptions = conn.execute(
            delete(subscriptions).where(subscriptions.c.subscriber_id == subscriber_id)).rowcount
        conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id))
    return messages


def _outbox_folders(config: Any) -> list[Path]:
    return [config.resolve(Path(provider.directory)) for provider in config.providers.values()
            if getattr(provider, "type", None) == "outbox"]


def _delete_outbox_files(config: Any, messages: list[tuple[int, str]], report: ForgetReport) -> None:
    """Delete the outbox copies of the messages sent to the person (named by their Message-ID)."""
    folders = _outbox_folders(config)
    if not folders or not messages:
        return
    from publisher.providers.outbox import file_name

    for folder in folders:
        for digest_id, message_id in messages:
            path = folder / str(digest_id) / file_name(message_id)
            try:
                path.unlink()
                report.files += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                report.problems.append(f"{path}: {exc.strerror}; delete it by hand")
                log.warning("%s: can't delete (%s); delete it by hand", path, exc.strerror)


def personal_data(conn: Connection, subscriber_id: int) -> dict[str, Any]:
    """Everything stored about one subscriber, as JSON-ready data (the "download my data" export)."""
    person = conn.execute(select(subscribers.c.email, subscribers.c.name, subscribers.c.created_at,
                                 subscribers.c.updated_at).where(subscribers.c.id == subscriber_id)).first()
    if person is None:
        return {}
    lists = conn.execute(select(subscriptions.c.list, subscriptions.c.status, subscriptions.c.created_at,
                                subscriptions.c.status_at, subscriptions.c.confirmed_at, subscriptions.c.soft_bounces)
                         .where(subscriptions.c.subscriber_id == subscriber_id).order_by(subscriptions.c.list))
    sent = conn.execute(select(deliveries.c.digest_id, deliveries.c.state, deliveries.c.message_id,
                               deliveries.c.updated_at)
                        .where(deliveries.c.subscriber_id == subscriber_id).order_by(deliveries.c.id))
    return {"email": person.email, "name": person.name, "created_at": _iso(person.created_at),
            "updated_at": _iso(person.updated_at),
            "subscriptions": [_row(row) for row in lists], "deliveries": [_row(row) for row in sent]}


def _row(row: Any) -> dict[str, Any]:
    return {key: _iso(value) for key, value in row._mapping.items()}


def _iso(value: Any) -> Any:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else value
