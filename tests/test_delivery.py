"""Sending a digest: lease, claim/send/record loop, retries, crashes, two daemons; backoff and the rate governor."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from publisher.backoff import Backoff, RateGovernor, is_throttle
from publisher.clock import FrozenClock
from publisher.config import Config
from publisher.delivery import Sender, _claim_size
from publisher.errors import DeliveryError
from publisher.ledger import IN_DOUBT, Ledger
from publisher.providers.base import Provider, Result
from publisher.state import Store
from tests.test_ledger import NOW, add_digest, add_subscribers, digest_row, open_store, rows

ENVIRON = {"PUBLISHER_SECRET": "a-test-server-secret-of-32-bytes!"}


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs in the dying sender (see `abandon`)."""


class FakeProvider(Provider):
    """Hands nothing anywhere: remembers each message it accepted; outcomes and failures are scripted."""

    type = "fake"

    def __init__(self, max_batch: int = 50, outcome=None, before=None) -> None:
        super().__init__(None, name="fake", environ={})
        self.max_batch = max_batch
        self.outcome = outcome or (lambda recipient, call: Result(recipient.delivery_id, "sent"))
        self.before = before  # (call number, batch) -> None; may raise
        self.accepted: list[str] = []  # message IDs handed over
        self.recipients: list = []
        self.calls = 0

    def send(self, letter, batch):
        assert len(batch) <= self.max_batch
        self.calls += 1
        if self.before is not None:
            self.before(self.calls, batch)
        results = [self.outcome(recipient, self.calls) for recipient in batch]
        for recipient, result in zip(batch, results):
            if result.outcome == "sent":
                self.accepted.append(recipient.message_id)
                self.recipients.append(recipient)
        return results


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def config(tmp_path):
    return Config.model_validate({
        "site": {"title": "News", "url": "https://news.example.org/"},
        "posts": {"root": "posts"},
        "state": {"directory": "state"},
        "lists": {"weekly": {"title": "Weekly", "schedule": "0 16 * * fri", "from_address": "news@news.example.org"}},
        "path": tmp_path / "config.toml",
    })


@pytest.fixture
def store(tmp_path, clock):
    return open_store(tmp_path / "state.db", clock)


def make_sender(config, store, clock, provider, **kwargs) -> Sender:
    slept = kwargs.pop("slept", [])
    return Sender(config, store, clock=clock, environ=ENVIRON, provider=provider, sleep=slept.append,
                  monotonic=lambda: 0.0, **kwargs)


def sent_ids(store, digest_id=1) -> set[str]:
    return {row.message_id for row in rows(store, digest_id) if row.state == "sent"}


# -- the whole run ------------------------------------------------------------------


def test_a_send_delivers_each_active_subscriber_once_and_marks_the_digest_sent(config, store, clock):
    add_subscribers(store, 120)
    add_subscribers(store, 5, status="unsubscribed", start=500)
    add_digest(store)
    provider = FakeProvider(max_batch=50)
    progress = type("Bar", (), {"length": 10**9, "done": 0, "update": lambda self, n: setattr(self, "done", self.done + n)})()
    report = make_sender(config, store, clock, provider).send(1, progress=progress)
    assert (report.sent, report.failed, report.deferred, report.in_doubt, report.finished) == (120, 0, 0, 0, True)
    assert sorted(provider.accepted) == sorted(sent_ids(store))
    assert len(set(provider.accepted)) == 120
    assert (progress.length, progress.done) == (120, 120)
    recipient = provider.recipients[0]
    assert recipient.unsubscribe_url.startswith("https://news.example.org/newsletter/unsubscribe/")
    assert recipient.name == f"Reader {recipient.subscriber_id}"
    row = digest_row(store)
    assert (row.status, row.recipients, row.owner) == ("sent", 120, None)
    assert report.line().startswith("digest 1: 120 sent, 0 failed, 0 deferred, 0 in doubt in ")
    again = make_sender(config, store, clock, provider).send(1)
    assert again.finished and again.sent == 0 and provider.calls == 3


def test_every_recipient_gets_their_own_verifiable_unsubscribe_link(config, store, clock):
    from publisher.tokens import Signer, server_secret, unsubscribe_url

    add_subscribers(store, 130)
    add_digest(store)
    provider = FakeProvider(max_batch=40)
    make_sender(config, store, clock, provider).send(1)
    signer = Signer(server_secret(config, ENVIRON))
    prefix = "https://news.example.org/newsletter/unsubscribe/"
    secrets = {i: f"secret{i}" for i in range(1, 131)}
    assert len(provider.recipients) == 130
    for recipient in provider.recipients:
        assert recipient.unsubscribe_url == unsubscribe_url(config, signer, recipient.subscriber_id,
                                                            secrets[recipient.subscriber_id], "weekly")
        token = recipient.unsubscribe_url.removeprefix(prefix)
        assert signer.verify(token, "unsubscribe", secrets.get, NOW) == (recipient.subscriber_id, "weekly")


def test_twenty_thousand_subscribers_are_claimed_in_bounded_batches_and_sent_exactly_once(config, store, clock):
    add_subscribers(store, 20_000)
    add_digest(store)
    provider = FakeProvider(max_batch=200)
    sender = make_sender(config, store, clock, provider, claim_size=500)
    claims = []
    real_claim = sender.ledger.claim

    def spy(digest_id, limit):
        claimed = real_claim(digest_id, limit)
        claims.append((limit, len(claimed)))
        return claimed

    sender.ledger.claim = spy
    report = sender.send(1)
    assert report.sent == 20_000 and report.finished
    assert all(got <= limit == 600 for limit, got in claims)  # 500 rounded up to whole provider batches
    assert sum(got for _, got in claims) == 20_000
    assert Counter(provider.accepted).most_common(1)[0][1] == 1
    assert set(provider.accepted) == sent_ids(store)


def test_claim_size_is_whole_provider_batches():
    assert _claim_size(1, 500) == 500
    assert _claim_size(200, 500) == 600
    assert _claim_size(1000, 500) == 1000


# -- one sender per digest ----------------------------------------------------------


def test_of_two_daemons_on_one_database_exactly_one_sends(tmp_path, config, store, clock):
    add_subscribers(store, 60)
    add_digest(store)
    other_store = Store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    second_provider = FakeProvider()
    second = make_sender(config, other_store, clock, second_provider, owner="host-b:2:bbbb")
    during = []
    first_provider = FakeProvider(before=lambda call, batch: during.append(second.send(1)) if call == 1 else None)
    first = make_sender(config, store, clock, first_provider, owner="host-a:1:aaaa")
    report = first.send(1)
    (blocked,) = during
    assert blocked.held_by == "host-a:1:aaaa"
    assert blocked.held_until == NOW + timedelta(seconds=300)
    assert blocked.sent == 0 and not blocked.finished
    assert "being sent by host-a:1:aaaa" in blocked.line()
    assert second_provider.calls == 0
    assert report.sent == 60 and len(first_provider.accepted) == 60


# -- crashes and in-doubt rows ------------------------------------------------------


def abandon(sender: Sender) -> None:
    """Make ``sender`` die like kill -9 on a Crash: no requeue, no record, no lease release."""
    sender.ledger.requeue = lambda ids: 0
    sender.ledger.release = lambda digest_id, owner: None
    real_record = sender.ledger.record
    sender.ledger.record = lambda results: real_record([]) if Crash.raised else real_record(results)


def test_a_sender_killed_mid_batch_is_resumed_resending_only_the_rows_in_doubt(tmp_path, config, store, clock):
    add_subscribers(store, 100)
    add_digest(store)
    Crash.raised = False

    def die_on_third_call(call, batch):
        if call == 3:
            provider.accepted.extend(r.message_id for r in batch[:4])  # handed over, never recorded
            Crash.raised = True
            raise Crash()

    provider = FakeProvider(max_batch=10, before=die_on_third_call)
    dying = make_sender(config, store, clock, provider, claim_size=10, owner="dead:1:0000")
    abandon(dying)
    with pytest.raises(Crash):
        dying.send(1)
    recorded_sent = sent_ids(store)
    assert len(recorded_sent) == 20
    in_flight = {row.message_id for row in rows(store) if row.state == "sending"}
    assert len(in_flight) == 10

    restarted = open_store(tmp_path / "state.db", clock)  # the daemon comes back: a new process
    resumed_provider = FakeProvider(max_batch=10)
    early = make_sender(config, restarted, clock, resumed_provider).send(1)
    assert early.held_by == "dead:1:0000"  # the dead sender's lease still runs
    clock.advance(seconds=301)
    report = make_sender(config, restarted, clock, resumed_provider).send(1)
    assert report.in_doubt == 10 and report.finished and report.sent == 80
    assert set(resumed_provider.accepted) & recorded_sent == set()  # nothing recorded sent is sent again
    assert in_flight <= set(resumed_provider.accepted)  # in doubt: resent with the same Message-IDs
    assert len(resumed_provider.accepted) == 80
    assert Ledger(restarted, clock).in_doubt(1) == 10
    assert {row.reason for row in rows(store) if row.message_id in in_flight} == {IN_DOUBT}
    assert " 10 in doubt " in report.line()


# -- retries ------------------------------------------------------------------------


def test_retry_after_is_honoured_and_the_run_reports_when_to_come_back(config, store, clock):
    add_subscribers(store, 30)
    add_digest(store)

    def busy_first(recipient, call):
        if recipient.subscriber_id <= 10 and call == 1:
            return Result(recipient.delivery_id, "deferred", reason="http 429 slow down", retry_after=3600)
        return Result(recipient.delivery_id, "sent")

    provider = FakeProvider(max_batch=10, outcome=busy_first)
    slept: list[float] = []
    report = make_sender(config, store, clock, provider, slept=slept, claim_size=10).send(1)
    assert (report.sent, report.deferred, report.finished) == (0, 10, False)
    assert report.queued == 20  # a 1-hour Retry-After ends the run: no sleeping an hour in the daemon
    assert report.next_retry_at >= NOW + timedelta(seconds=3600)
    assert max(slept, default=0) < 3600
    assert digest_row(store).status == "sending"
    clock.set(report.next_retry_at)
    final = make_sender(config, store, clock, provider, claim_size=10).send(1)
    assert final.finished and final.sent == 30
    assert len(provider.accepted) == 30


def test_a_message_always_deferred_is_given_up_after_max_attempts(config, store, clock):
    add_subscribers(store, 3)
    add_digest(store)

    def full_mailbox(recipient, call):
        if recipient.subscriber_id == 2:
            return Result(recipient.delivery_id, "deferred", reason="smtp 452 4.2.2 mailbox full")
        return Result(recipient.delivery_id, "sent")

    provider = FakeProvider(outcome=full_mailbox)
    reports = [make_sender(config, store, clock, provider).send(1)]
    while not reports[-1].finished:
        assert reports[-1].next_retry_at is not None
        clock.set(reports[-1].next_retry_at)
        reports.append(make_sender(config, store, clock, provider).send(1))
    assert len(reports) == 8
    assert timedelta(days=1) < clock.now() - NOW < timedelta(days=3)
    (failure,) = Ledger(store, clock).failures(1)
    assert failure.reason == "gave up after 8 attempts: smtp 452 4.2.2 mailbox full"
    assert reports[-1].failed == 1 and digest_row(store).status == "sent"


def test_a_hard_bounce_marks_the_subscription_bounced(config, store, clock):
    pytest.importorskip("publisher.subscribers", reason="publisher.subscribers not written yet")
    add_subscribers(store, 4)
    add_digest(store)

    def unknown_user(recipient, call):
        if recipient.subscriber_id == 3:
            return Result(recipient.delivery_id, "failed", reason="smtp 550 5.1.1 user unknown", bounce=True)
        return Result(recipient.delivery_id, "sent")

    report = make_sender(config, store, clock, FakeProvider(outcome=unknown_user)).send(1)
    assert (report.sent, report.failed, report.finished) == (3, 1, True)
    with store.begin() as conn:
        statuses = dict(conn.exec_driver_sql("SELECT subscriber_id, status FROM subscriptions").all())
    assert statuses == {1: "active", 2: "active", 3: "bounced", 4: "active"}


def test_a_transient_whole_batch_failure_defers_it_and_three_in_a_row_end_the_run(config, store, clock):
    add_subscribers(store, 100)
    add_digest(store)

    def flaky(call, batch):
        if call >= 2:
            raise DeliveryError("fake", "connection dropped", transient=True)

    provider = FakeProvider(max_batch=10, before=flaky)
    report = make_sender(config, store, clock, provider, claim_size=20).send(1)
    counts = Ledger(store, clock).counts(1)
    assert report.sent == 10
    assert counts["deferred"] == 30  # calls 2, 3 and 4 failed
    assert counts["queued"] == 60 and counts["sending"] == 0
    assert {row.attempts for row in rows(store) if row.state == "queued"} == {0}  # never handed over: no attempt counted
    assert report.next_retry_at is not None and report.next_retry_at > NOW
    assert {row.reason for row in rows(store) if row.state == "deferred"} == {"connection dropped"}


def test_a_permanent_provider_error_requeues_the_batch_and_is_raised(config, store, clock):
    add_subscribers(store, 30)
    add_digest(store)

    def refused(call, batch):
        raise DeliveryError("fake", "authentication failed; check FAKE_PASSWORD", transient=False)

    sender = make_sender(config, store, clock, FakeProvider(max_batch=10, before=refused))
    with pytest.raises(DeliveryError, match="authentication failed"):
        sender.send(1)
    assert [(row.state, row.attempts) for row in rows(store)] == [("queued", 0)] * 30
    assert digest_row(store).owner is None  # the lease is released: the next run may start at once


def test_throttling_results_slow_the_sender_down(config, store, clock):
    add_subscribers(store, 40)
    add_digest(store)

    def throttled(recipient, call):
        if call == 1 and recipient.subscriber_id == 1:
            return Result(recipient.delivery_id, "deferred", reason="smtp 421 4.7.0 too many messages", retry_after=5)
        return Result(recipient.delivery_id, "sent")

    slept: list[float] = []
    sender = make_sender(config, store, clock, FakeProvider(max_batch=10, outcome=throttled), slept=slept,
                         claim_size=10)
    report = sender.send(1)
    assert report.sent == 39 and report.deferred == 1
    assert sender.governor.rate is not None  # still below the learned pace
    assert 5 in slept  # the Retry-After pause, taken between batches


# -- backoff and the governor -------------------------------------------------------


def test_backoff_grows_to_a_ceiling_and_spans_about_two_days_over_eight_attempts():
    backoff = Backoff(jitter=0)
    delays = [backoff.delay(n) for n in range(1, 8)]
    assert delays == sorted(delays) and delays[0] == 300 and max(delays) == backoff.ceiling
    assert 1.5 * 86400 < sum(backoff.schedule(8)) < 2.5 * 86400


def test_backoff_jitter_stays_within_its_band_and_retry_after_is_a_floor():
    low, high = Backoff(random=lambda: 0.0), Backoff(random=lambda: 0.999999)
    assert low.delay(2) == pytest.approx(900 * 0.8)
    assert high.delay(2) == pytest.approx(900 * 1.2, rel=1e-5)
    assert low.delay(1, retry_after=4000) == 4000
    assert low.delay(1, retry_after=10) == 240
    assert high.delay(20) == high.ceiling
    assert low.delay(1, retry_after=10**9) == low.longest_wait


def test_throttle_signals_are_recognised():
    assert is_throttle("smtp 421 4.7.0 try again later")
    assert is_throttle("http 429 Too Many Requests")
    assert is_throttle("anything", retry_after=3)
    assert not is_throttle("smtp 452 4.2.2 mailbox full")


def test_the_governor_halves_on_throttle_and_creeps_back_to_unlimited():
    now = [0.0]
    slept: list[float] = []
    governor = RateGovernor(sleep=slept.append, monotonic=lambda: now[0], step=0.25)
    governor.done(100, 1.0)  # learns 100 messages/s unthrottled
    assert governor.wait(100) == 0 and governor.rate is None
    assert governor.throttle(retry_after=2)
    assert governor.rate == 50
    assert governor.wait(50) == pytest.approx(2)  # the Retry-After pause
    now[0] = 2.0
    assert governor.wait(50) == pytest.approx(1)  # 50 messages at 50/s after the previous 50
    governor.throttle()
    assert governor.rate == 25
    rates = []
    while governor.rate is not None:
        governor.done(10, 0.1)
        rates.append(governor.rate)
    assert rates == [50, 75, None]  # +25 (a quarter of the learned 100/s) per clean batch, then unlimited
    assert not governor.throttle(retry_after=3600)  # too long to wait inside a run


def test_a_dead_local_owner_is_recognised_and_a_live_or_remote_one_is_not():
    import os
    import socket
    import subprocess
    import sys

    from publisher.delivery import owner_is_dead

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = socket.gethostname()
    assert owner_is_dead(f"{host}:{child.pid}:abcd")
    assert not owner_is_dead(f"{host}:{os.getpid()}:abcd")  # ourselves
    assert not owner_is_dead(f"{host}:1:abcd")  # init is alive
    assert not owner_is_dead(f"another-host.example:{child.pid}:abcd")
    assert not owner_is_dead("garbage")


def test_a_lease_held_by_a_dead_sender_of_this_host_is_taken_over_before_it_expires(config, store, clock):
    import socket
    import subprocess
    import sys

    add_subscribers(store, 30)
    add_digest(store)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{socket.gethostname()}:{child.pid}:dead"
    assert Ledger(store, clock).acquire(1, dead, 300)  # the dead sender's lease runs for five more minutes
    provider = FakeProvider()
    report = make_sender(config, store, clock, provider).send(1)
    assert report.finished and report.sent == 30 and len(provider.accepted) == 30
    add_digest(store, digest_id=2)
    assert Ledger(store, clock).acquire(2, "other-host.example:1:live", 300)  # not ours to judge: wait
    held = make_sender(config, store, clock, FakeProvider()).send(2)
    assert held.held_by == "other-host.example:1:live" and held.sent == 0
