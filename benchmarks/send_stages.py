"""The sending benchmark's stages: SMTP against smtp-source, the HTTP batch path, and peak memory.

Each stage returns table rows (:class:`~send_report.Figure`).  A stage whose
publisher module does not exist yet reports "skipped: <module> not available
yet" instead of failing; any other error becomes an ERROR row with its reason.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import send_data
import send_postfix
import send_rss
from send_report import Figure, failed, rate, ratio, skipped

HERE = Path(__file__).resolve().parent
SMTP_TARGET = 0.6  # x smtp-source
HTTP_TARGET = 150_000.0  # recipients/s
MEMORY_TARGET = 150.0  # MiB


@dataclass(frozen=True)
class Prepared:
    """The run's site folder, its state database (subscribers + one digest), and that digest."""

    work: Path
    root: Path
    db: Path
    digest: send_data.Digest
    note: str | None  # why the digest was inserted rather than composed
    subscribers: int


@dataclass(frozen=True)
class SendRun:
    sent: int
    seconds: float
    counts: dict[str, int]
    line: str  # the Sender's own report line

    @property
    def rate(self) -> float:
        return rate(self.sent, self.seconds)


def prepare(work: Path, subscribers: int) -> Prepared:
    """Subscribers (cached template) copied into the run's site, and the digest composed there."""
    from publisher.state import Store

    root = work / "site"
    template = send_data.subscribers_db(work, subscribers)
    db = root / "state" / "publisher.db"
    url = send_data.fresh_copy(template, db)
    config = send_data.make_config(root)
    store = Store(url)
    try:
        digest, note = send_data.make_digest(config, store)
    finally:
        store.close()
    return Prepared(work, root, db, digest, note, subscribers)


def stage_store(prepared: Prepared, name: str) -> tuple[str, Any]:
    """A fresh copy of the prepared database for one stage: its URL and an open Store."""
    from publisher.state import Store

    url = send_data.fresh_copy(prepared.db, prepared.work / f"stage-{name}.db")
    return url, Store(url)


def guarded(measures: list[tuple[str, str]], run: Callable[[], list[Figure]], target: float | None = None,
            at_least: bool = True) -> list[Figure]:
    """The stage's rows, or one skipped/ERROR row per measure when it could not run."""
    try:
        return run()
    except ModuleNotFoundError as exc:
        return [skipped(measure, unit, f"{exc.name} not available yet", target, at_least) for measure, unit in measures]
    except Exception as exc:  # noqa: BLE001 - reported in the table, the other stages still run
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return [failed(measure, unit, reason, target, at_least) for measure, unit in measures]


def send_with_sender(prepared: Prepared, name: str, provider: str, environ: dict[str, str] | None = None,
                     **config: Any) -> SendRun:
    """``Sender(config, store).send(digest_id)`` on a fresh copy of the database, timed."""
    from publisher.delivery import Sender

    url, store = stage_store(prepared, name)
    try:
        settings = send_data.make_config(prepared.root, database=url, provider=provider, **config)
        sender = Sender(settings, store, environ=environ or send_data.ENVIRON)
        started = time.perf_counter()
        report = sender.send(prepared.digest.digest_id)
        seconds = time.perf_counter() - started
        counts = send_data.delivery_counts(store, prepared.digest.digest_id)
    finally:
        store.close()
    line = report.line() if hasattr(report, "line") else str(report)
    return SendRun(counts.get("sent", 0), seconds, counts, line)


def check_all_sent(run: SendRun, expected: int, what: str) -> str:
    """'' when every subscriber's delivery is recorded sent, else the problem (shown in the table)."""
    if run.sent != expected:
        return f"{what}: {run.sent} of {expected} recorded sent ({run.counts}); "
    return ""


# -- SMTP -------------------------------------------------------------------------------------------

SMTP_MEASURES = [("SMTP smtp-source (same message, same sink)", "msg/s"),
                 ("SMTP ours: Sender + ledger -> smtp-sink", "msg/s"),
                 ("SMTP ours / smtp-source", "x"),
                 ("SMTP provider alone (no ledger) -> smtp-sink", "msg/s")]


def smtp_stage(prepared: Prepared, tools: send_postfix.Tools, pool: int, reps: int = 2) -> list[Figure]:
    return guarded(SMTP_MEASURES, lambda: _smtp(prepared, tools, pool, reps))


def message_file(prepared: Prepared) -> tuple[Path, int]:
    """One recipient's encoded message written for ``smtp-source -F``, and its size in bytes."""
    from publisher.mail.mime import MimeEncoder
    from publisher.state import Store

    config = send_data.make_config(prepared.root)
    store = Store(f"sqlite:///{prepared.db}")
    try:
        letter = send_data.letter_for(config, store, prepared.digest.digest_id)
    finally:
        store.close()
    message = MimeEncoder().encode(letter, send_data.sample_recipient(config, prepared.digest.digest_id))
    return send_postfix.write_message_file(message, prepared.work / "message.eml"), len(message)


def _smtp(prepared: Prepared, tools: send_postfix.Tools, pool: int, reps: int) -> list[Figure]:
    """Rounds of (smtp-source, ours), then smtp-source once more; then the provider alone, once."""
    path, size = message_file(prepared)
    count = prepared.subscribers
    sources, ours, missing = [], [], None
    with send_postfix.Sink(tools) as sink:
        for _ in range(max(1, reps)):
            sources.append(send_postfix.run_source(tools, sink.port, messages=count, sessions=pool, message_file=path))
            try:
                ours.append(_our_smtp(prepared, sink, pool))
            except ModuleNotFoundError as exc:  # the baseline is still worth having
                missing = exc.name
                break
        sources.append(send_postfix.run_source(tools, sink.port, messages=count, sessions=pool, message_file=path))
        alone = guarded([SMTP_MEASURES[3]], lambda: [_smtp_provider_only(prepared, sink, pool)])
    baseline = statistics.median(run.rate for run in sources)
    problems = "".join(f"smtp-source counted {run.counted} of {count}; " for run in sources if run.counted != count)
    source_row = Figure(SMTP_MEASURES[0][0], baseline, "msg/s",
                        detail=f"{problems}median of {len(sources)} runs, -s {pool} -d, {size:,} B message: "
                               f"{samples([run.rate for run in sources])} msg/s (interleaved with ours)")
    if missing:
        return [source_row, *(skipped(measure, unit, f"{missing} not available yet", target)
                              for (measure, unit), target in zip(SMTP_MEASURES[1:3], (None, SMTP_TARGET))), *alone]
    middle = sorted(ours, key=lambda run: run.rate)[len(ours) // 2]
    mine = statistics.median(run.rate for run in ours)
    checks = "".join(dict.fromkeys(run.problems for run in ours))
    ours_row = Figure(SMTP_MEASURES[1][0], mine, "msg/s",
                      detail=f"{checks}median of {len(ours)} sends, each from a fresh database, pool {pool}, incl. "
                             f"enqueue: {samples([run.rate for run in ours])} msg/s; {middle.line}")
    versus = Figure(SMTP_MEASURES[2][0], ratio(mine, baseline), "x", SMTP_TARGET,
                    detail=f"{checks}{mine:,.0f} / {baseline:,.0f} msg/s (medians), {count:,} messages each")
    return [source_row, ours_row, versus, *alone]


@dataclass(frozen=True)
class SmtpRun:
    rate: float
    line: str
    problems: str  # '' when the ledger and the sink agree that every message went


def _our_smtp(prepared: Prepared, sink: send_postfix.Sink, pool: int) -> SmtpRun:
    before = settled(sink)
    run = send_with_sender(prepared, "smtp", "sink", smtp_port=sink.port, pool=pool)
    arrived = settled(sink) - before
    problems = check_all_sent(run, prepared.subscribers, "ledger")
    if arrived != run.sent:
        problems += f"smtp-sink received {arrived} messages, ledger says {run.sent} sent; "
    return SmtpRun(run.rate, run.line, problems)


def _smtp_provider_only(prepared: Prepared, sink: send_postfix.Sink, pool: int) -> Figure:
    """Every subscriber through the smtp provider's ``send`` (Recipients made before): the ledger's share shows."""
    from publisher.providers import make_provider

    url, store = stage_store(prepared, "smtp-alone")
    try:
        config = send_data.make_config(prepared.root, database=url, smtp_port=sink.port, pool=pool)
        letter = send_data.letter_for(config, store, prepared.digest.digest_id)
        provider = make_provider("sink", config.providers["sink"], environ=send_data.ENVIRON)
        batches = list(recipients(store, config, provider.max_batch))
    finally:
        store.close()
    before = settled(sink)
    sent, calls, seconds = _drive(provider, letter, batches)
    arrived = settled(sink) - before
    problems = "" if sent == arrived == prepared.subscribers else \
        f"{sent} sent, smtp-sink received {arrived} of {prepared.subscribers}; "
    return Figure(SMTP_MEASURES[3][0], rate(sent, seconds), "msg/s",
                  detail=f"{problems}pool {pool}, {calls} send() calls of <= {provider.max_batch}, {seconds:.2f} s")


def settled(sink: send_postfix.Sink, wait: float = 2.0) -> int:
    """The sink's message counter once it has stopped moving (it is written as messages end)."""
    deadline = time.monotonic() + wait
    last = sink.counts().messages
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = sink.counts().messages
        if now == last:
            return now
        last = now
    return last


# -- HTTP -------------------------------------------------------------------------------------------

def http_measures(provider: str) -> list[tuple[str, str]]:
    return [(f"HTTP {provider}: provider batches", "recipients/s"),
            (f"HTTP {provider}: Sender + ledger", "recipients/s")]


def http_stage(prepared: Prepared, provider: str, server: Any, reps: int = 5) -> list[Figure]:
    """Provider batches (median of ``reps`` passes) and the whole Sender (median of ``(reps + 1) // 2`` sends)."""
    measures = http_measures(provider)
    batches = guarded(measures[:1], lambda: [_provider_only(prepared, provider, server, measures[0][0], reps)],
                      HTTP_TARGET)
    whole = guarded(measures[1:], lambda: [_http_sender(prepared, provider, server, measures[1][0],
                                                        (reps + 1) // 2)], None)
    return batches + whole


def recipients(store: Any, config: Any, batch: int) -> Iterator[list[Any]]:
    """The list's active subscribers as Recipients, ``batch`` at a time, streamed from the database."""
    from sqlalchemy import select

    from publisher.mail.letter import Recipient
    from publisher.schema import subscribers, subscriptions

    query = (select(subscribers.c.id, subscribers.c.email, subscribers.c.name, subscribers.c.secret)
             .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
             .where(subscriptions.c.list == send_data.LIST, subscriptions.c.status == "active")
             .order_by(subscribers.c.id))
    link = _link_maker(config)
    domain = config.message_id_domain
    with store.engine.connect() as conn:
        for part in conn.execution_options(yield_per=batch).execute(query).partitions(batch):
            yield [Recipient(row.id, row.id, row.email, row.name, f"<d1.s{row.id}.0123456789ab@{domain}>",
                             link(row.id, row.secret)) for row in part]


def _link_maker(config: Any) -> Callable[[int, str], str]:
    try:
        from publisher.tokens import Signer, unsubscribe_url
    except ModuleNotFoundError:
        return lambda subscriber_id, secret: f"{config.web_url}unsubscribe/{'x' * 86}"
    signer = Signer(send_data.SECRET.encode())
    return lambda subscriber_id, secret: unsubscribe_url(config, signer, subscriber_id, secret, send_data.LIST)


def _provider_only(prepared: Prepared, name: str, server: Any, measure: str, reps: int) -> Figure:
    """Every subscriber through ``provider.send`` in max_batch calls: the HTTP path alone, no ledger.

    The Recipients (signed unsubscribe links included) are made first and timed apart: the figure is the
    provider's own work (personalisation, encoding, POST, reading the answers) per recipient.
    """
    from publisher.providers import make_provider

    url, store = stage_store(prepared, f"{name}-batches")
    try:
        config = send_data.make_config(prepared.root, database=url, http_url=server.url,
                                       mailgun_domain=server.mailgun_domain)
        letter = send_data.letter_for(config, store, prepared.digest.digest_id)
        provider = make_provider(name, config.providers[name], environ=send_data.environ_with(server.keys))
        started = time.perf_counter()
        batches = list(recipients(store, config, provider.max_batch))
        making = time.perf_counter() - started
    finally:
        store.close()
    rates, problems = [], ""
    for _ in range(max(1, reps)):
        server.reset()
        sent, calls, seconds = _drive(provider, letter, batches)
        problems = problems or _server_check(server, sent, prepared.subscribers)
        rates.append(rate(sent, seconds))
    return Figure(measure, statistics.median(rates), "recipients/s", HTTP_TARGET,
                  detail=f"{problems}median of {len(rates)} passes of {calls} calls of <= {provider.max_batch}: "
                         f"{samples(rates)}; making the Recipients before: {making:.2f} s")


def samples(rates: list[float]) -> str:
    return " ".join(f"{value:,.0f}" for value in rates)


def _drive(provider: Any, letter: Any, batches: list[list[Any]]) -> tuple[int, int, float]:
    sent = calls = 0
    started = time.perf_counter()
    with provider:
        for batch in batches:
            results = provider.send(letter, batch)
            sent += sum(result.outcome == "sent" for result in results)
            calls += 1
    return sent, calls, time.perf_counter() - started


def _server_check(server: Any, sent: int, expected: int) -> str:
    """'' when the server counted exactly the ``sent`` recipients and that is everyone, else the problem."""
    stats = server.stats()
    if stats is None:
        return f"{server.name} keeps no counts: not cross-checked; " if sent == expected else \
            f"{sent} of {expected} sent; "
    if sent == stats["recipients"] == expected:
        return ""
    return f"{sent} sent, server counted {stats['recipients']}, of {expected}; "


def _http_sender(prepared: Prepared, name: str, server: Any, measure: str, reps: int) -> Figure:
    runs, problems = [], ""
    for _ in range(max(1, reps)):
        server.reset()
        run = send_with_sender(prepared, name, name, environ=send_data.environ_with(server.keys),
                               http_url=server.url, mailgun_domain=server.mailgun_domain)
        problems = problems or _server_check(server, run.sent, prepared.subscribers)
        runs.append(run)
    middle = sorted(runs, key=lambda run: run.rate)[len(runs) // 2]
    # Shown, not judged: the 150,000 recipients/s is for the HTTP batch path (the row above);
    # its "with the ledger on" applies to the SMTP target.  This row is the whole send, ledger included.
    return Figure(measure, middle.rate, "recipients/s", None,
                  detail=f"{problems}median of {len(runs)} sends, each from a fresh database, incl. enqueue: "
                         f"{samples([run.rate for run in runs])}; {middle.line}")


# -- memory -----------------------------------------------------------------------------------------

MEMORY_MEASURE = ("peak RSS, sending to {count:,} subscribers", "MiB")


def memory_stage(prepared: Prepared, count: int, timeout: float) -> list[Figure]:
    measure = MEMORY_MEASURE[0].format(count=count)
    return guarded([(measure, "MiB")], lambda: [_memory(prepared, count, timeout, measure)], MEMORY_TARGET, False)


def _memory(prepared: Prepared, count: int, timeout: float, measure: str) -> Figure:
    from publisher.state import Store

    template = send_data.subscribers_db(prepared.work, count)
    url = send_data.fresh_copy(template, prepared.work / "stage-memory.db")
    source, dest = Store(f"sqlite:///{prepared.db}"), Store(url)
    try:
        digest_id = send_data.copy_digest(source, dest, prepared.digest.digest_id)
    finally:
        source.close()
        dest.close()
    argv = [sys.executable, str(HERE / "send_memory.py"), "--root", str(prepared.root), "--database", url,
            "--digest", str(digest_id)]
    status, output, seconds, peak_kib = run_child(argv, timeout)
    if status != 0:
        raise RuntimeError(f"send_memory.py exited with status {status}: {output.strip()[-300:]}")
    result = json.loads(output.strip().splitlines()[-1])
    problems = "" if result["sent"] == count else f"{result['sent']} of {count} sent; "
    return Figure(measure, peak_kib / 1024, "MiB", MEMORY_TARGET, at_least=False,
                  detail=f"{problems}{result['how']}, {seconds:.1f} s, {rate(result['sent'], seconds):,.0f} msg/s")


def run_child(argv: list[str], timeout: float) -> tuple[int, str, float, int]:
    """Run a child to completion (killed after ``timeout`` s): status, output, seconds, its own ru_maxrss KiB.

    It is started through send_rss.py, a small launcher: a direct child would report this (big) process's
    peak RSS as well as its own (ru_maxrss survives exec).
    """
    launcher = [sys.executable, str(HERE / "send_rss.py"), str(timeout), *argv]
    done = subprocess.run(launcher, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    output = done.stdout + done.stderr
    measured = send_rss.parse_last_line(done.stdout)
    if measured is None:
        raise RuntimeError(f"send_rss.py gave no measurement (status {done.returncode}): {output.strip()[-300:]}")
    kib, status, seconds = measured
    if seconds > timeout:
        output += f"\nkilled after {timeout:.0f} s"
    return status, output.rsplit("RSS ", 1)[0], seconds, kib
