"""Faults injected by the receiving servers: every subscriber ends sent or failed with a reason, and the sender slows down.

One digest per provider goes to a real subscriber list (imported in bulk into
a real SQLite state database, composed by the real composer) through the real
provider, to a loopback test server that misbehaves on a seeded random plan:

- smtp (``tests.servers.smtp.SmtpServer``): 421 (and hang up), 451, 452, 550,
  554 at RCPT or end of DATA, connections dropped after the body (before the
  reply: the message lost, or kept -- the client can't know: "in doubt"), and
  stalls past the client timeout (1 s in the config);
- mailgun, postmark, sendgrid (``tests.servers.mailapi.MailApi``): 429 with
  Retry-After (some longer than the sender's 60 s pause limit), 500, 502, 503,
  stalls past the 1 s timeout, connections dropped without an answer, and
  per-recipient refusals: permanent (Postmark ErrorCode 406 inside a 200; a 400
  for the whole call on Mailgun/SendGrid, which the provider narrows down) and
  one-off (Postmark 429/100 inside a 200).

Time is a FrozenClock; the Sender gets a ``sleep`` that advances it (and a
``monotonic`` read from it), and each run is followed by a jump to the
report's ``next_retry_at``, so days of retries take seconds.  The scenario ends
when the digest is finished.  Then, per subscriber: ``sent`` and received
exactly once (or more, only for a row the sender recorded in doubt, every copy
with the ledger's Message-ID), or ``failed`` with a reason -- and failed exactly
when the server refused that address permanently.  "Slows down when told":
no message is retried before the time asked (Retry-After) or its backoff, the
server sees no request during a Retry-After pause, and each 421/429 halves the
sender's rate (its RateGovernor; recorded through the injected sleep).
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.servers.mailapi import DOMAIN, MailApi
from tests.servers.smtp import DROP, DROP_AFTER_ACCEPT, REPLIES, STALL, Plan
from tests.trust.harness import ENV_KEYS, CountingSmtp, Site, _group, _header, make_site
from tests.trust.report import Row

LIST = "trust"
BACKOFF_FLOOR = 240.0  # Backoff(): 300 s x (1 - 20 % jitter): no retry of a message comes sooner
MAX_RUNS = 600
SWEEP = 60.0  # the daemon's resume sweep: a run at most once a minute
SMTP_WEIGHTS: dict[str | int, float] = {421: 0.01, 451: 0.015, 452: 0.015, 550: 0.006, 554: 0.006,
                                        DROP: 0.008, DROP_AFTER_ACCEPT: 0.008, STALL: 0.0015}
# Every kind fires at least once: (stage, action), injected at every 7th decision until used up.
SMTP_FORCED = [("rcpt", 421), ("data", 451), ("rcpt", 452), ("rcpt", 550), ("data", 554), ("data", DROP),
               ("data", DROP_AFTER_ACCEPT), ("data", STALL), ("rcpt", STALL)]
HTTP_WEIGHTS = {"429": 0.08, "500": 0.04, "502": 0.04, "503": 0.04, "drop": 0.03, "stall": 0.006}
HTTP_FORCED = ["429", "500", "502", "503", "stall", "drop", "429"]
RETRY_AFTERS = (3.0, 7.0, 20.0, 45.0, 90.0)  # 90 > the governor's 60 s pause: the run stops, resumes later
PERMANENT_SHARE = 0.02  # addresses the API refuses for good
ONCE_SHARE = 0.03  # addresses refused once (Postmark: 429/100 inside a 200; Mailgun/SendGrid: a 400 once)


# -- time ---------------------------------------------------------------------------------------------------------


class FakeTime:
    """``sleep`` advances the frozen clock; ``monotonic`` reads it: a run's waits cost no real time."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.origin = clock.now()
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return (self.clock.now() - self.origin).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds > 0:
            self.clock.advance(seconds=seconds)


# -- receivers ------------------------------------------------------------------------------------------------------


class FaultySmtp(CountingSmtp):
    """The SMTP test server with a seeded random fault plan; logs (time, stage, address, action) per decision."""

    def __init__(self, seed: int, clock: Any, *, weights: dict[str | int, float] | None = None,
                 forced: list[tuple[str, str | int]] | None = None) -> None:
        super().__init__(stall_seconds=5.0)
        self.clock = clock
        self.decisions: list[tuple[datetime, str, str, str | None]] = []
        draw = Plan.random(seed, weights or SMTP_WEIGHTS).chooser
        pending = deque((stage, REPLIES[a] if isinstance(a, int) else a) for stage, a in (forced or SMTP_FORCED))
        count = [0]

        def choose(stage: str, addresses: list[str]) -> str | None:
            if stage not in ("rcpt", "data"):
                return None
            count[0] += 1
            action = None
            if pending and count[0] % 7 == 0 and pending[0][0] == stage:
                action = pending.popleft()[1]
            elif draw is not None:
                action = draw(stage, addresses)  # type: ignore[arg-type]
            self.decisions.append((clock.now(), stage, ",".join(a.lower() for a in addresses), action))
            return action

        self.plan = Plan(chooser=choose)  # type: ignore[arg-type]

    def provider_toml(self) -> str:
        return (f'[providers.receiver]\ntype = "smtp"\nhost = "127.0.0.1"\nport = {self.port}\n'
                'security = "none"\npool = 2\ntimeout = 1\n')

    def injected(self) -> Counter[str]:
        return Counter(_kind(action) for _, _, _, action in self.decisions if action is not None)

    def refused_for_good(self) -> set[str]:
        """Addresses that got a 5xx at RCPT or DATA (the sender must record them failed)."""
        return {address for _, _, address, action in self.decisions if action and action[:1] == "5"}


def _kind(action: str) -> str:
    return {DROP: "drop", DROP_AFTER_ACCEPT: "drop-after-accept", STALL: "stall"}.get(action, action[:3])


class FaultyApi(MailApi):
    """The local mail API with a seeded random fault per call; keeps (recipient, Message-ID) per copy."""

    def __init__(self, api: str, seed: int, clock: Any) -> None:
        super().__init__()
        self.api = api
        self.clock = clock
        self.rng = random.Random(seed)
        self.kept: list[tuple[str, str]] = []
        self.calls_log: list[tuple[datetime, str | None, float | None]] = []  # (time, fault kind, retry_after)
        self.permanent: set[str] = set()
        self.once: dict[str, int] = {}
        self._forced = deque(HTTP_FORCED)
        self._count = 0
        self._draw_lock = threading.Lock()

    def refuse(self, emails: list[str]) -> None:
        """Pick the addresses refused for good and those refused once (seeded)."""
        for email in emails:
            roll = self.rng.random()
            if roll < PERMANENT_SHARE:
                self.permanent.add(email)
                self.reject(email, 406)
            elif roll < PERMANENT_SHARE + ONCE_SHARE:
                code = self.rng.choice((429, 100)) if self.api == "postmark" else 406
                self.once[email] = code
                self.reject(email, code, once=True)

    def take_fault(self, api: str) -> Any:
        with self._draw_lock:
            self._count += 1
            kind = self._forced.popleft() if self._forced and self._count % 4 == 0 else self._roll()
            if kind is not None:
                self.fail(kind, api=api, retry_after=self.rng.choice(RETRY_AFTERS) if kind == "429" else None)
            fault = super().take_fault(api)
            retry = float(fault.retry_after) if fault is not None and fault.retry_after else None
            self.calls_log.append((self.clock.now(), fault.kind if fault is not None else None, retry))
            return fault

    def _roll(self) -> str | None:
        roll = self.rng.random()
        for kind, chance in HTTP_WEIGHTS.items():
            if roll < chance:
                return kind
            roll -= chance
        return None

    def record(self, api: str, request: Any, messages: Any, count: int) -> None:
        pairs = [(email.lower(), _header(message.get("headers") or {}, "message-id")) for email, message in messages]
        with self._lock:
            self.calls[api] += 1
            self.recipients[api] += count
            self.kept.extend(pairs)

    def copies(self) -> dict[str, list[str]]:
        return _group(self.kept)

    def injected(self) -> Counter[str]:
        counts = Counter(kind for _, kind, _ in self.calls_log if kind is not None)
        counts["refused for good"] = len(self.permanent)
        counts["refused once"] = len(self.once)
        return counts

    def provider_toml(self) -> str:
        common = f'base_url = "{self.url}"\nbatch = 25\ntimeout = 1\n'
        if self.api == "mailgun":
            return (f'[providers.receiver]\ntype = "mailgun"\ndomain = "{DOMAIN}"\n'
                    f'api_key_env = "MAILGUN_API_KEY"\n{common}')
        if self.api == "postmark":
            return f'[providers.receiver]\ntype = "postmark"\nserver_token_env = "POSTMARK_SERVER_TOKEN"\n{common}'
        return f'[providers.receiver]\ntype = "sendgrid"\napi_key_env = "SENDGRID_API_KEY"\n{common}'


# -- driving the sender -----------------------------------------------------------------------------------------


@dataclass
class Observed:
    """What the sender did, seen through the ledger's record() and the governor's throttle()."""

    results: list[tuple[datetime, int, str, str | None, float | None]] = field(default_factory=list)
    throttles: list[tuple[datetime, float | None, float | None, bool]] = field(default_factory=list)
    runs: int = 0
    errors: list[str] = field(default_factory=list)
    finished: bool = False


def drive(site: Site, clock: Any, fake: FakeTime, digest_id: int) -> Observed:
    """Run Sender.send until the digest is finished, jumping the clock to each next_retry_at."""
    from publisher.config import load_config
    from publisher.errors import PublisherError
    from publisher.state import Store

    config = load_config(site.config_path)
    store = Store(config.database_url, clock=clock)
    seen = Observed()
    try:
        while seen.runs < MAX_RUNS and not seen.finished:
            seen.runs += 1
            try:
                report = _one_run(config, store, clock, fake, digest_id, seen)
            except PublisherError as exc:  # a run may stop with an error; the next one carries on
                seen.errors.append(f"run {seen.runs}: {exc}")
                clock.advance(seconds=600)
                continue
            seen.finished = report.finished
            if not seen.finished:
                due = report.next_retry_at or clock.now() + timedelta(minutes=5)
                clock.set(max(clock.now() + timedelta(seconds=SWEEP), due + timedelta(seconds=1)))
    finally:
        store.close()
    return seen


def _one_run(config: Any, store: Any, clock: Any, fake: FakeTime, digest_id: int, seen: Observed) -> Any:
    from publisher.delivery import Sender

    sender = Sender(config, store, clock=clock, environ=ENV_KEYS, sleep=fake.sleep, monotonic=fake.monotonic)
    record, throttle = sender.ledger.record, sender.governor.throttle

    def spy_record(results: Any) -> Any:
        results = list(results)
        now = clock.now()
        seen.results.extend((now, r.delivery_id, r.outcome, r.reason, r.retry_after) for r in results)
        return record(results)

    def spy_throttle(retry_after: float | None = None) -> bool:
        before = sender.governor.rate
        waited_here = throttle(retry_after)
        seen.throttles.append((clock.now(), retry_after, before, waited_here))
        return waited_here

    sender.ledger.record = spy_record  # type: ignore[method-assign]
    sender.governor.throttle = spy_throttle  # type: ignore[method-assign]
    return sender.send(digest_id)


def compose(site: Site, clock: Any) -> int:
    from publisher.config import load_config
    from publisher.digest.compose import Composer
    from publisher.state import Store

    config = load_config(site.config_path)
    store = Store(config.database_url, clock=clock)
    try:
        composed = Composer(config, store, clock=clock).compose(LIST, site.slot)
    finally:
        store.close()
    if composed is None or composed.digest_id is None:
        raise RuntimeError("the trust site composed no digest")
    return composed.digest_id


# -- judging ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    id: int
    email: str
    state: str
    reason: str | None
    message_id: str


def deliveries(site: Site, digest_id: int) -> list[Delivery]:
    conn = sqlite3.connect(f"file:{site.database}?mode=ro", uri=True, timeout=30)
    try:
        query = "SELECT id, lower(email), state, reason, message_id FROM deliveries WHERE digest_id = ? ORDER BY id"
        return [Delivery(*row) for row in conn.execute(query, (digest_id,))]
    finally:
        conn.close()


def judge(name: str, site: Site, digest_id: int, copies: dict[str, list[str]], seen: Observed,
          refused_for_good: set[str], may_fail: frozenset[str] = frozenset()) -> Row:
    """The row: lost, duplicates (explained only by an in-doubt record), failures exactly where refused for good."""
    from publisher.ledger import IN_DOUBT

    rows = deliveries(site, digest_id)
    by_id = {row.id: row for row in rows}
    doubted = {by_id[d].email for _, d, outcome, reason, _ in seen.results
               if outcome == "deferred" and reason and "in doubt" in reason and d in by_id}
    doubted |= {row.email for row in rows if row.reason == IN_DOUBT}
    row = Row(name, trials=1, messages=sum(len(ids) for ids in copies.values()), in_doubt=len(doubted))
    problems: list[str] = []
    copies = dict(copies)
    emails = set(site.emails())
    for delivery in rows:
        refused = refused_for_good | ({delivery.email} if delivery.email in may_fail and delivery.state == "failed"
                                      else set())
        _judge_one(row, delivery, copies.pop(delivery.email, []), delivery.email in doubted, refused, problems)
    missing = emails - {d.email for d in rows}
    row.lost += len(missing)
    problems += [f"{email}: no ledger row" for email in sorted(missing)[:3]]
    strangers = sum(len(ids) for ids in copies.values())
    row.errors += strangers + len(seen.errors) + (0 if seen.finished else 1)
    if strangers:
        problems.append(f"{strangers} copies to addresses that are no subscriber")
    if not seen.finished:
        problems.append(f"digest not finished after {seen.runs} runs")
    problems += seen.errors[:3]
    row.notes += problems[:6]
    return row


def _judge_one(row: Row, delivery: Delivery, ids: list[str], doubted: bool, refused: set[str],
               problems: list[str]) -> None:
    if delivery.state == "sent" and not ids:
        row.lost += 1
        problems.append(f"{delivery.email}: recorded sent, never received")
    elif delivery.state == "failed" and not delivery.reason:
        row.lost += 1
        problems.append(f"{delivery.email}: failed without a reason")
    elif delivery.state not in ("sent", "failed"):
        row.lost += 1
        problems.append(f"{delivery.email}: left {delivery.state}")
    if (delivery.state == "failed") != (delivery.email in refused) and not _gave_up(delivery):
        row.errors += 1
        problems.append(f"{delivery.email}: {delivery.state} ({delivery.reason}) but "
                        f"{'refused' if delivery.email in refused else 'never refused'} for good by the server")
    extra = max(len(ids) - 1, 0)
    row.duplicates += extra
    if any(i != delivery.message_id for i in ids):
        row.unexplained += max(extra, 1)
        problems.append(f"{delivery.email}: Message-IDs {sorted(set(ids))} differ from the ledger's")
    elif extra and not doubted:
        row.unexplained += extra
        problems.append(f"{delivery.email}: {len(ids)} copies, never recorded in doubt")


def _gave_up(delivery: Delivery) -> bool:
    return delivery.state == "failed" and bool(delivery.reason) and delivery.reason.startswith("gave up")


def pacing(seen: Observed, rows: list[Delivery]) -> tuple[int, float, float]:
    """(retries sooner than asked or than the backoff, seconds asked by Retry-After in all, least margin)."""
    by_delivery: dict[int, list[tuple[datetime, str, float | None]]] = defaultdict(list)
    for when, delivery_id, outcome, _reason, retry_after in seen.results:
        by_delivery[delivery_id].append((when, outcome, retry_after))
    early, asked, margin = 0, 0.0, float("inf")
    for history in by_delivery.values():
        for (when, outcome, retry_after), (after, _, _) in zip(history, history[1:]):
            if outcome != "deferred":
                continue
            wanted = max(retry_after or 0.0, BACKOFF_FLOOR)
            gap = (after - when).total_seconds()
            asked += retry_after or 0.0
            margin = min(margin, gap - wanted)
            early += gap + 1e-6 < wanted
    return early, asked, (0.0 if margin == float("inf") else margin)


def pauses_broken(calls: list[tuple[datetime, str | None, float | None]]) -> tuple[int, int, float]:
    """HTTP: (requests the server got inside a Retry-After pause, 429s with Retry-After, seconds asked)."""
    broken = asked_count = 0
    asked = 0.0
    for (when, kind, retry_after), (later, _, _) in zip(calls, calls[1:]):
        if kind == "429" and retry_after:
            asked_count += 1
            asked += retry_after
            broken += (later - when).total_seconds() + 1e-6 < retry_after
    return broken, asked_count, asked


def slowdown_note(seen: Observed, fake: FakeTime) -> str:
    halvings = sum(1 for _, _, before, _ in seen.throttles)
    stops = sum(1 for _, _, _, here in seen.throttles if not here)
    slept = sum(s for s in fake.slept if s > 0)
    return (f"governor throttled {halvings}x (run stopped for a long Retry-After {stops}x), "
            f"slept {slept:.0f} s in {sum(1 for s in fake.slept if s > 0)} pauses")


# -- scenarios --------------------------------------------------------------------------------------------------


def _site(work: Path, name: str, subscribers: int) -> tuple[Site, Any, FakeTime]:
    from publisher.clock import FrozenClock

    site = make_site(work / name, subscribers=subscribers, list_name=LIST)
    clock = FrozenClock(datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5))
    return site, clock, FakeTime(clock)


def smtp_scenario(work: Path, *, subscribers: int, seed: int) -> Row:
    site, clock, fake = _site(work, "smtp", subscribers)
    with FaultySmtp(seed, clock) as server:
        site.configure(server)
        digest_id = compose(site, clock)
        seen = drive(site, clock, fake, digest_id)
        server.hang_up()
    row = judge("faults smtp", site, digest_id, server.copies(), seen, server.refused_for_good())
    early, asked, margin = pacing(seen, deliveries(site, digest_id))
    row.errors += early
    four21 = sum(1 for _, _, outcome, reason, _ in seen.results if outcome == "deferred" and reason
                 and reason.startswith("smtp 421"))
    halved = sum(1 for _, _, before, _ in seen.throttles)
    if four21 and not halved:
        row.errors += 1
        row.notes.append(f"{four21} 421 replies but the sender never slowed down")
    injected = ", ".join(f"{k} x{v}" for k, v in sorted(server.injected().items()))
    row.notes.insert(0, f"{subscribers} subscribers, seed {seed}, {seen.runs} runs; injected: {injected}")
    row.notes.insert(1, f"{slowdown_note(seen, fake)}; 421 seen {four21}x; retries early: {early} "
                        f"(least margin over backoff {margin:.0f} s)")
    return row


def http_scenario(work: Path, api: str, *, subscribers: int, seed: int) -> Row:
    site, clock, fake = _site(work, api, subscribers)
    with FaultyApi(api, seed, clock) as server:
        site.configure(server)
        server.refuse(site.emails())
        digest_id = compose(site, clock)
        seen = drive(site, clock, fake, digest_id)
    # Mailgun/SendGrid answer a one-off refusal with a 400 for the call: when the provider's narrowing meets
    # the address alone while the refusal holds, recording it failed (a 4xx is permanent) is right too.
    may_fail = frozenset(server.once) if api != "postmark" else frozenset()
    row = judge(f"faults {api}", site, digest_id, server.copies(), seen, server.permanent, may_fail)
    early, asked, margin = pacing(seen, deliveries(site, digest_id))
    broken, told, told_seconds = pauses_broken(server.calls_log)
    row.errors += early + broken
    injected = ", ".join(f"{k} x{v}" for k, v in sorted(server.injected().items()))
    row.notes.insert(0, f"{subscribers} subscribers, seed {seed}, {seen.runs} runs, {len(server.calls_log)} calls; "
                        f"injected: {injected}")
    row.notes.insert(1, f"{slowdown_note(seen, fake)}; Retry-After asked {told}x ({told_seconds:.0f} s), "
                        f"requests inside a pause: {broken}; message retries early: {early} "
                        f"(least margin {margin:.0f} s)")
    return row


def run(work: Path, *, quick: bool) -> list[Row]:
    subscribers = 300 if quick else 2000
    seed = 5
    rows = [smtp_scenario(work, subscribers=subscribers, seed=seed)]
    for offset, api in enumerate(("mailgun", "postmark", "sendgrid"), start=1):
        rows.append(http_scenario(work, api, subscribers=subscribers, seed=seed + offset))
    return rows
