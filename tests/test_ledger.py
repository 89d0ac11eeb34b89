"""The delivery ledger on real SQLite files: enqueue, the lease, claim, record, in-doubt rows."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from publisher.backoff import Backoff
from publisher.clock import FrozenClock
from publisher.ledger import IN_DOUBT, Ledger
from publisher.providers.base import Result
from publisher.state import Store

NOW = datetime(2026, 3, 6, 16, 0, tzinfo=timezone.utc)
STAMP = "2026-03-01 09:00:00.000000"
DOMAIN = "news.example.org"


def open_store(path, clock=None) -> Store:
    store = Store(f"sqlite:///{path}", clock=clock or FrozenClock(NOW))
    store.migrate()
    return store


def add_subscribers(store: Store, count: int, *, list_name: str = "weekly", status: str = "active",
                    start: int = 1) -> list[int]:
    """``count`` subscribers (ids from ``start``) with a subscription to ``list_name`` in ``status``."""
    with store.begin() as conn:
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO subscribers (id, email, name, secret, created_at, updated_at) "
            "SELECT i, 'reader' || i || '@example.org', 'Reader ' || i, 'secret' || i, ?, ? FROM n",
            (start, start + count - 1, STAMP, STAMP))
        conn.exec_driver_sql(
            "INSERT INTO subscriptions (subscriber_id, list, status, created_at, status_at, soft_bounces) "
            "SELECT id, ?, ?, ?, ?, 0 FROM subscribers WHERE id BETWEEN ? AND ?",
            (list_name, status, STAMP, STAMP, start, start + count - 1))
    return list(range(start, start + count))


def add_digest(store: Store, list_name: str = "weekly", digest_id: int = 1, status: str = "composed") -> int:
    with store.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO digests (id, list, scheduled_for, cutoff, post_ids, subject, html, text, status, "
            "recipients, created_at) VALUES (?, ?, ?, ?, '[]', 'News', '<p>hi @@PUBLISHER:name@@</p>', "
            "'hi @@PUBLISHER:name@@', ?, 0, ?)",
            (digest_id, list_name, f"2026-03-0{digest_id} 16:00:00.000000", STAMP, status, STAMP))
    return digest_id


def rows(store: Store, digest_id: int = 1) -> list:
    with store.begin() as conn:
        return list(conn.exec_driver_sql(
            "SELECT id, subscriber_id, email, state, attempts, next_attempt_at, reason, message_id, provider_id "
            "FROM deliveries WHERE digest_id = ? ORDER BY id", (digest_id,)))


def digest_row(store: Store, digest_id: int = 1):
    with store.begin() as conn:
        return conn.exec_driver_sql("SELECT status, recipients, owner, lease_until, finished_at FROM digests "
                                    "WHERE id = ?", (digest_id,)).one()


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def store(tmp_path, clock):
    return open_store(tmp_path / "state.db", clock)


# -- enqueue ------------------------------------------------------------------------


def test_enqueue_queues_each_active_subscriber_of_the_list_once(store, clock):
    active = add_subscribers(store, 5)
    add_subscribers(store, 2, status="unsubscribed", start=10)
    add_subscribers(store, 1, status="bounced", start=20)
    add_subscribers(store, 3, list_name="monthly", start=30)
    add_digest(store)
    ledger = Ledger(store, clock)
    assert ledger.enqueue(1, "weekly", DOMAIN) == 5
    assert ledger.enqueue(1, "weekly", DOMAIN) == 0
    found = rows(store)
    assert [row.subscriber_id for row in found] == active
    assert {row.state for row in found} == {"queued"}
    assert [row.email for row in found] == [f"reader{i}@example.org" for i in active]
    assert digest_row(store).recipients == 5
    assert ledger.counts(1) == {"queued": 5, "sending": 0, "sent": 0, "deferred": 0, "failed": 0}


def test_message_ids_are_unique_per_digest_and_subscriber_and_stable_across_enqueues(store, clock):
    add_subscribers(store, 3)
    add_digest(store, digest_id=1)
    add_digest(store, digest_id=2)
    ledger = Ledger(store, clock)
    ledger.enqueue(1, "weekly", DOMAIN)
    ledger.enqueue(2, "weekly", DOMAIN)
    first = {row.subscriber_id: row.message_id for row in rows(store, 1)}
    second = {row.subscriber_id: row.message_id for row in rows(store, 2)}
    for subscriber_id, message_id in first.items():
        assert re.fullmatch(rf"<d1\.s{subscriber_id}\.[a-z2-7]{{8}}@news\.example\.org>", message_id), message_id
    assert len(set(first.values()) | set(second.values())) == 6
    add_subscribers(store, 1, start=4)  # joins later: a second enqueue adds just them, with the same digest part
    assert ledger.enqueue(1, "weekly", DOMAIN) == 1
    again = {row.subscriber_id: row.message_id for row in rows(store, 1)}
    assert {k: again[k] for k in first} == first
    assert again[4] == first[1].replace(".s1.", ".s4.")


def test_enqueue_of_an_unknown_digest_is_an_error(store, clock):
    from publisher.errors import DigestError

    with pytest.raises(DigestError, match="no digest 7"):
        Ledger(store, clock).enqueue(7, "weekly", DOMAIN)


# -- the lease ----------------------------------------------------------------------


def test_only_one_of_two_daemons_holds_a_digest_until_its_lease_expires(tmp_path, clock):
    first = open_store(tmp_path / "state.db", clock)
    second = Store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)  # another process on the same file
    add_digest(first)
    a, b = Ledger(first, clock), Ledger(second, clock)
    assert a.acquire(1, "host:1:a", 300)
    assert not b.acquire(1, "host:2:b", 300)
    assert b.holder(1).owner == "host:1:a"
    assert b.holder(1).lease_until == NOW + timedelta(seconds=300)
    assert a.acquire(1, "host:1:a", 300)  # re-entrant for its holder
    assert not b.renew(1, "host:2:b", 300)
    clock.advance(seconds=200)
    assert a.renew(1, "host:1:a", 300)  # pushed to NOW + 500
    clock.advance(seconds=250)
    assert not b.acquire(1, "host:2:b", 300)
    clock.advance(seconds=51)
    assert b.acquire(1, "host:2:b", 300)  # the holder went quiet: its lease expired
    assert not a.renew(1, "host:1:a", 300)
    b.release(1, "host:2:b")
    assert digest_row(first).owner is None
    assert a.acquire(1, "host:1:a", 60)


# -- claim and record ---------------------------------------------------------------


def test_claim_takes_at_most_limit_rows_and_commits_them_as_sending(tmp_path, store, clock):
    add_subscribers(store, 25)
    add_digest(store)
    ledger = Ledger(store, clock)
    ledger.enqueue(1, "weekly", DOMAIN)
    claimed = ledger.claim(1, 10)
    assert len(claimed) == 10
    assert [c.delivery_id for c in claimed] == sorted(c.delivery_id for c in claimed)
    assert all(c.attempts == 1 for c in claimed)
    assert claimed[0].name == f"Reader {claimed[0].subscriber_id}"
    assert claimed[0].secret == f"secret{claimed[0].subscriber_id}"
    other = Store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)  # committed: another connection sees it
    assert Ledger(other, clock).counts(1)["sending"] == 10
    assert len(ledger.claim(1, 10)) == 10
    assert len(ledger.claim(1, 10)) == 5
    assert ledger.claim(1, 10) == []


def test_deferred_rows_are_claimed_again_only_when_due(store, clock):
    add_subscribers(store, 3)
    add_digest(store)
    ledger = Ledger(store, clock, backoff=Backoff(jitter=0))
    ledger.enqueue(1, "weekly", DOMAIN)
    claimed = ledger.claim(1, 10)
    recorded = ledger.record([Result(claimed[0].delivery_id, "deferred", reason="smtp 451 try later"),
                              Result(claimed[1].delivery_id, "sent", provider_id="abc"),
                              Result(claimed[2].delivery_id, "failed", reason="smtp 550 no such user")])
    assert (recorded.sent, recorded.deferred, recorded.failed) == (1, 1, 1)
    found = {row.id: row for row in rows(store)}
    deferred = found[claimed[0].delivery_id]
    assert deferred.state == "deferred" and deferred.reason == "smtp 451 try later"
    assert ledger.next_retry_at(1) == NOW + timedelta(seconds=300)
    assert found[claimed[1].delivery_id].provider_id == "abc"
    assert [f.reason for f in ledger.failures(1)] == ["smtp 550 no such user"]
    clock.advance(seconds=299)
    assert ledger.claim(1, 10) == []
    clock.advance(seconds=1)
    again = ledger.claim(1, 10)
    assert [(c.delivery_id, c.attempts) for c in again] == [(claimed[0].delivery_id, 2)]


def test_retry_after_is_a_floor_for_the_next_attempt(store, clock):
    add_subscribers(store, 2)
    add_digest(store)
    ledger = Ledger(store, clock, backoff=Backoff(jitter=0))
    ledger.enqueue(1, "weekly", DOMAIN)
    first, second = ledger.claim(1, 10)
    recorded = ledger.record([Result(first.delivery_id, "deferred", reason="http 429", retry_after=7200),
                              Result(second.delivery_id, "deferred", reason="http 429", retry_after=10)])
    assert recorded.throttled and recorded.retry_after == 7200
    when = {row.id: datetime.fromisoformat(row.next_attempt_at).replace(tzinfo=timezone.utc) for row in rows(store)}
    assert when[first.delivery_id] == NOW + timedelta(seconds=7200)
    assert when[second.delivery_id] == NOW + timedelta(seconds=300)  # the backoff is longer than its Retry-After


def test_a_message_deferred_max_attempts_times_fails_with_the_last_reason(store, clock):
    add_subscribers(store, 1)
    add_digest(store)
    ledger = Ledger(store, clock, max_attempts=3)
    ledger.enqueue(1, "weekly", DOMAIN)
    for attempt in (1, 2, 3):
        (claimed,) = ledger.claim(1, 10)
        assert claimed.attempts == attempt
        ledger.record([Result(claimed.delivery_id, "deferred", reason=f"smtp 452 mailbox full ({attempt})")])
        clock.advance(days=2)
    assert ledger.claim(1, 10) == []
    (failure,) = ledger.failures(1)
    assert failure.reason == "gave up after 3 attempts: smtp 452 mailbox full (3)"
    assert ledger.counts(1)["failed"] == 1


def test_a_hard_bounce_goes_to_the_bounce_hook_with_subscriber_and_list(store, clock):
    add_subscribers(store, 3)
    add_digest(store)
    bounced = []
    ledger = Ledger(store, clock, bounce=lambda conn, subscriber_id, list_name: bounced.append((subscriber_id, list_name)))
    ledger.enqueue(1, "weekly", DOMAIN)
    claimed = ledger.claim(1, 10)
    recorded = ledger.record([Result(claimed[0].delivery_id, "failed", reason="smtp 550 5.1.1 unknown", bounce=True),
                              Result(claimed[1].delivery_id, "failed", reason="smtp 554 policy"),
                              Result(claimed[2].delivery_id, "sent")])
    assert bounced == [(claimed[0].subscriber_id, "weekly")]
    assert recorded.bounced == 1


def test_a_hard_bounce_marks_the_subscription_bounced(store, clock):
    pytest.importorskip("publisher.subscribers", reason="publisher.subscribers not written yet")
    add_subscribers(store, 2)
    add_digest(store)
    ledger = Ledger(store, clock)
    ledger.enqueue(1, "weekly", DOMAIN)
    first, second = ledger.claim(1, 10)
    ledger.record([Result(first.delivery_id, "failed", reason="smtp 550 unknown user", bounce=True),
                   Result(second.delivery_id, "sent")])
    with store.begin() as conn:
        statuses = dict(conn.exec_driver_sql("SELECT subscriber_id, status FROM subscriptions").all())
    assert statuses == {first.subscriber_id: "bounced", second.subscriber_id: "active"}


def test_requeue_gives_back_rows_never_handed_over_without_counting_an_attempt(store, clock):
    add_subscribers(store, 4)
    add_digest(store)
    ledger = Ledger(store, clock)
    ledger.enqueue(1, "weekly", DOMAIN)
    claimed = ledger.claim(1, 4)
    assert ledger.requeue([c.delivery_id for c in claimed[2:]]) == 2
    assert [(row.state, row.attempts) for row in rows(store)] == [("sending", 1)] * 2 + [("queued", 0)] * 2


def test_rows_left_sending_are_put_back_in_doubt_and_keep_the_mark_once_sent(store, clock):
    add_subscribers(store, 5)
    add_digest(store)
    ledger = Ledger(store, clock)
    ledger.enqueue(1, "weekly", DOMAIN)
    done = ledger.claim(1, 2)
    ledger.record([Result(c.delivery_id, "sent") for c in done])
    abandoned = ledger.claim(1, 2)  # a sender died here: never recorded
    assert ledger.reclaim_in_doubt(1) == 2
    found = {row.id: row for row in rows(store)}
    assert {found[c.delivery_id].state for c in abandoned} == {"queued"}
    assert {found[c.delivery_id].reason for c in abandoned} == {IN_DOUBT}
    resent = ledger.claim(1, 10)
    assert {c.delivery_id for c in resent} == {c.delivery_id for c in abandoned} | {rows(store)[-1].id}
    assert {c.message_id for c in resent if c.delivery_id in {a.delivery_id for a in abandoned}} == {
        c.message_id for c in abandoned}
    ledger.record([Result(c.delivery_id, "sent") for c in resent])
    assert ledger.in_doubt(1) == 2
    assert ledger.counts(1)["sent"] == 5


def test_a_stale_sender_does_not_downgrade_a_row_someone_else_settled(store, clock):
    add_subscribers(store, 1)
    add_digest(store)
    ledger = Ledger(store, clock)
    ledger.enqueue(1, "weekly", DOMAIN)
    (claimed,) = ledger.claim(1, 1)
    ledger.record([Result(claimed.delivery_id, "sent")])
    ledger.record([Result(claimed.delivery_id, "failed", reason="late answer from a stale sender")])
    assert ledger.counts(1)["sent"] == 1


def test_pending_digests_are_those_composed_or_sending(store, clock):
    add_digest(store, digest_id=1, status="sent")
    add_digest(store, digest_id=2, status="sending")
    add_digest(store, digest_id=3, status="composed")
    assert Ledger(store, clock).pending_digests() == [2, 3]


def test_finish_marks_sent_only_when_nothing_is_left(store, clock):
    add_subscribers(store, 2)
    add_digest(store)
    ledger = Ledger(store, clock)
    ledger.enqueue(1, "weekly", DOMAIN)
    assert ledger.acquire(1, "me", 60)
    ledger.start(1)
    first, second = ledger.claim(1, 2)
    ledger.record([Result(first.delivery_id, "sent"), Result(second.delivery_id, "deferred", reason="451")])
    assert not ledger.finish(1, "me")
    assert digest_row(store).status == "sending"
    clock.advance(days=1)
    (again,) = ledger.claim(1, 2)
    ledger.record([Result(again.delivery_id, "sent")])
    assert ledger.finish(1, "me")
    row = digest_row(store)
    assert (row.status, row.owner, row.lease_until) == ("sent", None, None)
    assert row.finished_at is not None


@pytest.mark.parametrize("durable", [False, True])
def test_both_durability_settings_record_the_same(tmp_path, clock, durable):
    store = open_store(tmp_path / "state.db", clock)
    add_subscribers(store, 30)
    add_digest(store)
    ledger = Ledger(store, clock, durable=durable)
    ledger.enqueue(1, "weekly", DOMAIN)
    claimed = ledger.claim(1, 30)
    ledger.record([Result(c.delivery_id, "sent", provider_id=f"p{c.delivery_id}") for c in claimed])
    assert [row.provider_id for row in rows(store)] == [f"p{row.id}" for row in rows(store)]
    with store.begin() as conn:  # the pooled connection is back to the store's setting (NORMAL = 1)
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1


# -- the driver-level SQLite statements and the portable ones agree ---------------------------------


def _scenario(store, clock) -> tuple[list, list, list]:
    """Enqueue, claim, record a mix (one shared provider ID, unique ones, none, deferred, failed), claim again."""
    add_subscribers(store, 40)
    add_digest(store)
    ledger = Ledger(store, clock, backoff=Backoff(jitter=0))
    assert ledger.enqueue(1, "weekly", DOMAIN) == 40
    assert ledger.enqueue(1, "weekly", DOMAIN) == 0
    with store.begin() as conn:  # one row came back from an interrupted send: its mark must survive "sent"
        conn.exec_driver_sql("UPDATE deliveries SET reason = ? WHERE id = 3", (IN_DOUBT,))
    first = ledger.claim(1, 30)
    results = [Result(c.delivery_id, "sent", provider_id="batch-1") for c in first[:20]]
    results += [Result(c.delivery_id, "sent", provider_id=f"own-{c.delivery_id}") for c in first[20:24]]
    results += [Result(c.delivery_id, "sent") for c in first[24:26]]
    results += [Result(first[26].delivery_id, "deferred", reason="http 429"),
                Result(first[27].delivery_id, "failed", reason="bad\naddress")]
    recorded = ledger.record(results)  # first[28:] stay sending: the provider never answered for them
    assert (recorded.sent, recorded.deferred, recorded.failed) == (26, 1, 1)
    clock.advance(days=1)
    second = ledger.claim(1, 100)
    return first, second, rows(store)


def test_the_sqlite_fast_path_and_the_portable_statements_write_the_same_rows(tmp_path, monkeypatch):
    import publisher.ledger as ledger_module

    fast = _scenario(open_store(tmp_path / "fast.db", FrozenClock(NOW)), FrozenClock(NOW))
    monkeypatch.setattr(ledger_module, "_fast_sqlite", lambda conn: False)
    portable = _scenario(open_store(tmp_path / "portable.db", FrozenClock(NOW)), FrozenClock(NOW))
    assert fast == portable
    first, second, found = fast
    by_id = {row.id: row for row in found}
    assert [by_id[c.delivery_id].provider_id for c in first[:26]] == (
        ["batch-1"] * 20 + [f"own-{c.delivery_id}" for c in first[20:24]] + [None, None])
    assert by_id[3].state == "sent" and by_id[3].reason == IN_DOUBT
    assert {by_id[c.delivery_id].reason for c in first[:26] if c.delivery_id != 3} == {None}
    assert (by_id[first[27].delivery_id].state, by_id[first[27].delivery_id].reason) == ("failed", "bad address")
    # the second claim: the 10 rows still queued, then the deferred row now due; never the 2 left sending
    assert [c.delivery_id for c in second] == sorted([row.id for row in found if row.id > 30]
                                                    + [first[26].delivery_id])
    assert all(c.attempts == (2 if c.delivery_id == first[26].delivery_id else 1) for c in second)
    assert second[0].secret == f"secret{second[0].subscriber_id}" and second[0].name == f"Reader {second[0].subscriber_id}"


def test_the_portable_enqueue_statement_is_idempotent_too(store, clock):
    from publisher.ledger import _enqueue_statement

    add_subscribers(store, 12)
    add_digest(store)
    with store.begin() as conn:
        statement = _enqueue_statement(1, "weekly", DOMAIN, "nonce123", NOW, "some-other-database")
        assert "ON CONFLICT" not in str(statement)
        assert conn.execute(statement).rowcount == 12
    add_subscribers(store, 3, start=100)
    with store.begin() as conn:
        assert conn.execute(_enqueue_statement(1, "weekly", DOMAIN, "nonce123", NOW, "other")).rowcount == 3
    assert sorted(row.subscriber_id for row in rows(store)) == list(range(1, 13)) + [100, 101, 102]
