"""Storage trouble: a locked state database, a full disk under the outbox, a posts folder that vanishes mid-build.

Each scenario checks: a clear one-line error (the project's own, naming what
failed and saying it is retried), a later retry that completes, and nothing
corrupted (``PRAGMA integrity_check``, ledger counts, every subscriber exactly
once, feeds always whole).

- locked db: another *process* holds ``BEGIN EXCLUSIVE`` on the SQLite file for
  longer than the store's busy_timeout (10 s) while a build is reading posts
  and while a digest send has just handed a batch to the outbox (both run at
  once, so the scenario costs one wait, not two).
- full disk: the sending process runs with ``RLIMIT_FSIZE`` below the size of
  some messages (``setrlimit`` in a ``preexec_fn``, SIGXFSZ ignored so the write
  fails with EFBIG), so the outbox fails mid-digest; the database keeps
  working (its WAL was pre-grown and a reader keeps it, so SQLite never has to
  extend a file).  A later run without the limit completes.
- posts vanish: the posts folder is renamed away while the build reads the
  changed posts (from the sync's progress hook), then put back; later the
  folder is deleted outright, and a sub-folder is deleted for good.

``python -m tests.trust.storage send CONFIG DIGEST_ID NOW`` is the sending
process of the full-disk scenario (a Sender on a FrozenClock at NOW).
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import xml.dom.minidom
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.trust.faults import LIST, compose
from tests.trust.harness import ENV_KEYS, ROOT, Site, make_site, python_env
from tests.trust.report import Row

LOCKER = """\
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""
BUSY_TIMEOUT = 10.0  # publisher.state's PRAGMA busy_timeout
HOOK_WAIT = 60.0


def _clock() -> Any:
    from publisher.clock import FrozenClock

    return FrozenClock(datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5))


def integrity(database: Path) -> str:
    conn = sqlite3.connect(database, timeout=30)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def counts(database: Path, digest_id: int) -> dict[str, int]:
    conn = sqlite3.connect(database, timeout=30)
    try:
        query = "SELECT state, count(*) FROM deliveries WHERE digest_id = ? GROUP BY state"
        return dict(conn.execute(query, (digest_id,)).fetchall())
    finally:
        conn.close()


def outbox_files(site: Site) -> tuple[dict[str, int], int, int]:
    """(recipient -> .eml files addressed to them, temporary files left, files unreadable)."""
    import email
    import email.policy

    per: dict[str, int] = {}
    broken = 0
    folder = site.root / "outbox"
    for path in folder.rglob("*.eml") if folder.is_dir() else []:
        if path.name.startswith("."):
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        to = message.get("To")
        if to is None or not message.get("Message-ID"):
            broken += 1
            continue
        address = to.addresses[0].addr_spec.lower()
        per[address] = per.get(address, 0) + 1
    temporary = len([p for p in folder.rglob(".tmp-*")]) if folder.is_dir() else 0
    return per, temporary, broken


def one_line_error(exc: BaseException | None, *needles: str) -> str | None:
    """None when ``exc`` is a PublisherError whose message is one line holding every needle; else the problem."""
    from publisher.errors import PublisherError

    if exc is None:
        return "no error raised"
    text = str(exc)
    if not isinstance(exc, PublisherError):
        return f"not the project's error: {type(exc).__name__}: {text}"
    if "\n" in text:
        return f"error of several lines: {text!r}"
    missing = [n for n in needles if n not in text]
    return f"error {text!r} lacks {missing}" if missing else None


def feeds_whole(out: Path) -> list[str]:
    """Problems with the feed files: unparsable XML/JSON, temporary files left."""
    import json

    problems = []
    for path in sorted(out.rglob("*")) if out.is_dir() else []:
        if path.name.startswith(".") and path.suffix == ".tmp":
            problems.append(f"{path.name}: temporary file left")
        elif path.suffix == ".xml":
            try:
                xml.dom.minidom.parse(str(path))
            except Exception as exc:  # noqa: BLE001 - any parse failure is the finding
                problems.append(f"{path.name}: not whole XML ({exc})")
        elif path.suffix == ".json":
            try:
                json.loads(path.read_text())
            except ValueError as exc:
                problems.append(f"{path.name}: not whole JSON ({exc})")
    return problems


# -- locked database ----------------------------------------------------------------------------------------------


class Gate:
    """Hooks in the build and the send report that they got there, then wait until the database is locked."""

    def __init__(self, parties: int) -> None:
        self.reached = threading.Semaphore(0)
        self.parties = parties
        self.locked = threading.Event()

    def arrive(self) -> None:
        self.reached.release()
        self.locked.wait(HOOK_WAIT)

    def wait_all(self) -> bool:
        return all(self.reached.acquire(timeout=HOOK_WAIT) for _ in range(self.parties))


class HookedOutbox:
    """The real outbox provider; on its ``at``-th batch it writes the batch, then waits at the gate."""

    def __init__(self, real: Any, gate: Gate, at: int = 2, max_batch: int = 25) -> None:
        self.real, self.gate, self.at, self.max_batch = real, gate, at, max_batch
        self.name, self.calls = real.name, 0

    def send(self, letter: Any, batch: Any) -> Any:
        results = self.real.send(letter, batch)
        self.calls += 1
        if self.calls == self.at:
            self.gate.arrive()  # the messages are written; the ledger's record comes next
        return results


class Outcome:
    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.seconds = 0.0


def _locked_build(site: Site, clock: Any, gate: Gate, outcome: Outcome) -> None:
    from contextlib import contextmanager

    from publisher.build import Builder
    from publisher.config import load_config

    @contextmanager
    def progress(total: int, label: str) -> Any:
        class Bar:
            hit = False

            def update(self, n: int) -> None:
                if not Bar.hit:
                    Bar.hit = True
                    gate.arrive()
        yield Bar()

    builder = Builder(load_config(site.config_path), clock=clock, progress=progress)
    started = time.monotonic()
    try:
        builder.build()
    except BaseException as exc:  # noqa: BLE001 - judged by the scenario
        outcome.error = exc
    finally:
        outcome.seconds = time.monotonic() - started
        builder.close()


def _locked_send(site: Site, clock: Any, digest_id: int, gate: Gate, outcome: Outcome) -> None:
    from publisher.config import load_config
    from publisher.delivery import Sender
    from publisher.providers import make_provider
    from publisher.state import Store

    config = load_config(site.config_path)
    store = Store(config.database_url, clock=clock)
    real = make_provider("receiver", config.providers["receiver"], environ=ENV_KEYS, clock=clock,
                         base_dir=config.base_dir)
    sender = Sender(config, store, clock=clock, environ=ENV_KEYS, provider=HookedOutbox(real, gate), claim_size=25)
    started = time.monotonic()
    try:
        sender.send(digest_id)
    except BaseException as exc:  # noqa: BLE001 - judged by the scenario
        outcome.error = exc
    finally:
        outcome.seconds = time.monotonic() - started
        store.close()


def _new_post(site: Site, name: str, title: str, clock: Any) -> None:
    created = (clock.now() - timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S +0000")
    body = f"# {title}\n\nA post written while the database was locked.\n\n:created_at: {created}\n:kind: blog\n"
    (site.root / "posts" / "news" / f"{name}.snip.markdown").write_text(body)


def _send_to_end(site: Site, clock: Any, digest_id: int) -> list[Any]:
    """Later runs (a new sender each time, as the daemon's sweep) until the digest is finished."""
    from publisher.config import load_config
    from publisher.delivery import Sender
    from publisher.state import Store

    config = load_config(site.config_path)
    store = Store(config.database_url, clock=clock)
    reports = []
    try:
        for _ in range(10):
            report = Sender(config, store, clock=clock, environ=ENV_KEYS).send(digest_id)
            reports.append(report)
            if report.finished:
                break
            clock.advance(seconds=max(60.0, ((report.held_until or report.next_retry_at or clock.now())
                                             - clock.now()).total_seconds() + 1))
    finally:
        store.close()
    return reports


def locked_db(work: Path, *, subscribers: int) -> Row:
    site = make_site(work / "locked", subscribers=subscribers, list_name=LIST)
    clock = _clock()
    digest_id = compose(site, clock)
    _new_post(site, "written-under-lock", "Written under lock", clock)
    out = site.root / "out"
    feed_before = (out / "atom.xml").read_bytes()
    gate = Gate(2)
    built, sent = Outcome(), Outcome()
    threads = [threading.Thread(target=_locked_build, args=(site, clock, gate, built)),
               threading.Thread(target=_locked_send, args=(site, clock, digest_id, gate, sent))]
    for thread in threads:
        thread.start()
    problems: list[str] = []
    reached = gate.wait_all()
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(site.database)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None
        if locker.stdout.readline().strip() != "locked":
            problems.append("the locking process could not lock the database")
        held_from = time.monotonic()
        gate.locked.set()
        for thread in threads:
            thread.join(120)
        held = time.monotonic() - held_from
    finally:
        gate.locked.set()
        assert locker.stdin is not None
        locker.stdin.write("\n")
        locker.stdin.close()
        locker.wait(30)
    if not reached:
        problems.append("the build or the send never reached its hook")
    database = site.config_path.parent / "state" / "publisher.db"
    for what, outcome in (("build", built), ("send", sent)):
        problem = one_line_error(outcome.error, str(database), "it will be retried")
        if problem:
            problems.append(f"{what}: {problem}")
        if outcome.seconds < BUSY_TIMEOUT - 0.5:
            problems.append(f"{what}: gave up after {outcome.seconds:.1f} s, before the busy timeout")
    if (out / "atom.xml").read_bytes() != feed_before:
        problems.append("the feed changed although the build failed")
    problems += feeds_whole(out)
    status = integrity(site.database)
    if status != "ok":
        problems.append(f"integrity_check: {status}")
    stuck = counts(site.database, digest_id)
    # the retry: a build, then the send (after the dead run's lease ends)
    from publisher.build import Builder
    from publisher.config import load_config

    builder = Builder(load_config(site.config_path), clock=clock)
    try:
        rebuilt = builder.build()
    finally:
        builder.close()
    if b"Written under lock" not in (out / "atom.xml").read_bytes():
        problems.append(f"the retried build did not publish the new post ({rebuilt.line()})")
    reports = _send_to_end(site, clock, digest_id)
    return _locked_row(site, digest_id, problems, built, sent, held, stuck, reports)


def _locked_row(site: Site, digest_id: int, problems: list[str], built: Outcome, sent: Outcome, held: float,
                stuck: dict[str, int], reports: list[Any]) -> Row:
    per, temporary, broken = outbox_files(site)
    final = counts(site.database, digest_id)
    emails = site.emails()
    lost = sum(1 for e in emails if per.get(e, 0) == 0)
    extra = sum(max(per.get(e, 0) - 1, 0) for e in emails)
    in_doubt = sum(r.in_doubt for r in reports)
    if final != {"sent": len(emails)}:
        problems.append(f"ledger at the end: {final}")
    if temporary or broken:
        problems.append(f"outbox: {temporary} temporary, {broken} unreadable files")
    status = integrity(site.database)
    if status != "ok":
        problems.append(f"integrity_check after the retry: {status}")
    row = Row("storage locked db", trials=2, messages=sum(per.values()), lost=lost, duplicates=extra,
              in_doubt=in_doubt, errors=len(problems), unexplained=extra)
    held_by = [r for r in reports if r.held_by]
    row.notes.append(f"lock held {held:.0f} s; build failed after {built.seconds:.1f} s, send after "
                     f"{sent.seconds:.1f} s: {str(sent.error or built.error)[:160]}")
    row.notes.append(f"ledger after the failure {stuck}; retry: {len(reports)} run(s), "
                     f"{len(held_by)} waited for the dead run's lease; {in_doubt} in doubt resent")
    row.notes += problems[:5]
    return row


# -- full disk ----------------------------------------------------------------------------------------------------


def _pad_names(site: Site, first_long: int) -> None:
    """Subscribers from ``first_long`` on get a 200-character name: their messages are larger."""
    conn = sqlite3.connect(site.database, timeout=30)
    try:
        conn.execute("UPDATE subscribers SET name = substr('Reader ' || id || ' ' || ?, 1, 200) WHERE id >= ?",
                     ("Longname " * 30, first_long))
        conn.commit()
    finally:
        conn.close()


def _message_sizes(site: Site, clock: Any, digest_id: int) -> tuple[int, int]:
    """(largest short-name message, smallest long-name message), encoded exactly as the sender will."""
    from publisher.config import load_config
    from publisher.digest.compose import Composer
    from publisher.ledger import _nonce, message_id
    from publisher.mail.letter import Recipient
    from publisher.mail.mime import MimeEncoder
    from publisher.state import Store
    from publisher.tokens import Signer, server_secret, unsubscribe_url

    config = load_config(site.config_path)
    store = Store(config.database_url, clock=clock)
    try:
        letter = Composer(config, store, clock=clock).letter(digest_id)
        with store.begin() as conn:
            nonce = _nonce(conn, digest_id, LIST)
            people = conn.exec_driver_sql("SELECT id, email, name, secret FROM subscribers ORDER BY id").fetchall()
    finally:
        store.close()
    prepared = MimeEncoder().prepare(letter)
    signer = Signer(server_secret(config, ENV_KEYS))
    sizes = []
    for i, email, name, secret in people:
        recipient = Recipient(0, i, email, name, message_id(digest_id, i, nonce, config.message_id_domain),
                              unsubscribe_url(config, signer, i, secret, LIST))
        sizes.append((len(name) > 60, len(prepared.encode(recipient))))
    return max(s for long, s in sizes if not long), min(s for long, s in sizes if long)


def _big_posts(site: Site, clock: Any) -> None:
    """Four long posts (a digest near the 102 KB HTML limit): messages larger than the ledger's WAL use."""
    import random

    from publisher.build import Builder
    from publisher.config import load_config

    rng = random.Random(1)
    words = "alpha beta gamma delta epsilon river stone cloud paper garden window market".split()
    for n in range(4):
        paragraphs = "\n\n".join(" ".join(rng.choice(words) for _ in range(120)) for _ in range(28))
        _write(site.root / "posts" / "news" / f"long-{n}.snip.markdown", f"Long post {n}",
               clock.now() - timedelta(seconds=30 + n), "\n\n" + paragraphs)
    builder = Builder(load_config(site.config_path), clock=clock)
    try:
        builder.build()
    finally:
        builder.close()


class WalKeeper:
    """A connection that pre-grows the WAL (and the free pages of the database) and keeps them while open."""

    def __init__(self, database: Path, megabytes: int = 4) -> None:
        self.conn = sqlite3.connect(database, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self.conn.execute("CREATE TABLE trust_pad (x BLOB)")
        self.conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                          "INSERT INTO trust_pad SELECT randomblob(4000) FROM n", (megabytes * 256,))
        self.conn.execute("DROP TABLE trust_pad")
        self.conn.execute("PRAGMA wal_checkpoint(RESTART)")

    def close(self) -> None:
        self.conn.close()


def _limited(limit: int):  # type: ignore[no-untyped-def]
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return preexec


def _send_process(site: Site, digest_id: int, now: datetime, limit: int | None) -> subprocess.CompletedProcess:
    env = python_env(ENV_KEYS)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, "-m", "tests.trust.storage", "send", str(site.config_path), str(digest_id),
               now.isoformat()]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=_limited(limit) if limit else None)


def full_disk(work: Path, *, subscribers: int) -> Row:
    site = make_site(work / "disk", subscribers=subscribers, list_name=LIST)
    first_long = subscribers // 3 + 1
    _pad_names(site, first_long)
    clock = _clock()
    _big_posts(site, clock)
    digest_id = compose(site, clock)
    short, long = _message_sizes(site, clock, digest_id)
    limit = (short + long) // 2
    problems: list[str] = []
    keeper = WalKeeper(site.database)
    try:
        first = _send_process(site, digest_id, clock.now(), limit)
    finally:
        keeper.close()
    written, temporary, broken = outbox_files(site)
    after_first = counts(site.database, digest_id)
    log = first.stderr
    lines = [line for line in log.splitlines() if "File too large" in line or line.startswith("error: ")]
    if not lines:
        problems.append(f"no error line in the sender's output: {log.strip().splitlines()[-2:]}")
    elif "disk" not in lines[0] and "File too large" not in lines[0]:
        problems.append(f"unclear error: {lines[0]}")
    if "Traceback" in log:
        problems.append(f"the limited sender crashed: {log.strip().splitlines()[-1:]}")
    if first.returncode == 0 and after_first.get("sent", 0) == subscribers:
        problems.append("the limit did not stop the send")
    if temporary or broken:
        problems.append(f"after the failed run: {temporary} temporary, {broken} unreadable files")
    clock.advance(hours=2)
    second = _send_process(site, digest_id, clock.now(), None)
    return _disk_row(site, digest_id, problems, limit, short, long, written, after_first, lines, second)


def _disk_row(site: Site, digest_id: int, problems: list[str], limit: int, short: int, long: int,
              written: dict[str, int], after_first: dict[str, int], lines: list[str],
              second: subprocess.CompletedProcess) -> Row:
    per, temporary, broken = outbox_files(site)
    emails = site.emails()
    final = counts(site.database, digest_id)
    if second.returncode != 0 or "finished" not in second.stdout:
        problems.append(f"the later run did not finish: {second.stdout.strip()} {second.stderr.strip()[-200:]}")
    if final != {"sent": len(emails)}:
        problems.append(f"ledger at the end: {final}")
    if temporary or broken:
        problems.append(f"outbox at the end: {temporary} temporary, {broken} unreadable files")
    status = integrity(site.database)
    if status != "ok":
        problems.append(f"integrity_check: {status}")
    lost = sum(1 for e in emails if per.get(e, 0) == 0)
    extra = sum(max(per.get(e, 0) - 1, 0) for e in emails)
    row = Row("storage full disk", trials=2, messages=sum(per.values()), lost=lost, duplicates=extra,
              errors=len(problems), unexplained=extra)
    error = lines[0].split(": ", 1)[-1] if lines else "?"
    first_failed = "the outbox" if lines and "File too large" in lines[0] else "the state database"
    row.notes.append(f"RLIMIT_FSIZE {limit} B (messages {short}..{long} B): {first_failed} failed first, "
                     f"{len(written)} of {len(emails)} .eml written: {error[:150]}")
    row.notes.append(f"ledger after the failed run {after_first}; later run: {second.stdout.strip()[:120]}")
    row.notes += problems[:5]
    return row


def send_main(config_path: str, digest_id: str, now: str) -> int:
    """The full-disk scenario's sending process."""
    from publisher.cli import _setup_logging
    from publisher.clock import FrozenClock
    from publisher.config import load_config
    from publisher.delivery import Sender
    from publisher.errors import PublisherError
    from publisher.state import Store

    config = load_config(config_path)
    _setup_logging("INFO")
    clock = FrozenClock(datetime.fromisoformat(now))
    store = Store(config.database_url, clock=clock)
    try:
        report = Sender(config, store, clock=clock, environ=os.environ, sleep=lambda s: None).send(int(digest_id))
    except PublisherError as exc:  # as the CLI does: one line, exit status 1
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        store.close()
    print(report.line(), flush=True)
    return 0


# -- posts vanish -------------------------------------------------------------------------------------------------


def _write(path: Path, title: str, created: datetime, extra: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = created.strftime("%Y-%m-%d %H:%M:%S +0000")
    path.write_text(f"# {title}\n\nBody of {title}.{extra}\n\n:created_at: {stamp}\n:kind: blog\n")


def _posts_state(database: Path) -> dict[str, tuple[str | None, bool]]:
    conn = sqlite3.connect(database, timeout=30)
    try:
        rows = conn.execute("SELECT path, content_hash, deleted_at IS NOT NULL FROM posts").fetchall()
    finally:
        conn.close()
    return {path: (digest, bool(deleted)) for path, digest, deleted in rows}


def _stale(site: Site, state: dict[str, tuple[str | None, bool]]) -> list[str]:
    """Posts on disk whose stored content is not what the file holds (or missing, or marked deleted)."""
    from publisher.sync import content_hash

    root = site.root / "posts"
    stale = []
    for path in sorted(root.rglob("*.snip.markdown")):
        key = path.relative_to(root).as_posix()
        stored = state.get(key)
        if stored is None or stored[1] or stored[0] != content_hash(path.read_bytes()):
            stale.append(key)
    return stale


def posts_vanish(work: Path) -> Row:
    from contextlib import contextmanager

    from publisher.build import Builder
    from publisher.config import load_config

    site = make_site(work / "vanish", subscribers=1, list_name=LIST)
    clock = _clock()
    news = site.root / "posts" / "news"
    base = clock.now() - timedelta(minutes=30)
    for n in range(1, 7):
        _write(news / f"extra-{n}.snip.markdown", f"Extra post {n}", base + timedelta(minutes=n))
    for n in (1, 2):
        _write(news / "archive" / f"old-{n}.snip.markdown", f"Archived post {n}", base - timedelta(days=n))
    config = load_config(site.config_path)
    problems: list[str] = []
    builds = 0

    def build(progress: Any = None) -> tuple[Any, BaseException | None]:
        nonlocal builds
        builds += 1
        builder = Builder(config, clock=clock, **({"progress": progress} if progress else {}))
        try:
            return builder.build(), None
        except Exception as exc:  # noqa: BLE001 - judged below
            return None, exc
        finally:
            builder.close()

    first, error = build()
    if error is not None:
        problems.append(f"first build: {error}")
    # changes to read: three posts edited, two new
    clock.advance(minutes=5)
    for n in (1, 2, 3):
        _write(news / f"extra-{n}.snip.markdown", f"Extra post {n} (edited)", base + timedelta(minutes=n),
               extra=" Edited.")
    for n in (7, 8):
        _write(news / f"extra-{n}.snip.markdown", f"Extra post {n}", clock.now() - timedelta(minutes=1))
    moved = news.with_name("news.moved")

    @contextmanager
    def vanish(total: int, label: str) -> Any:
        class Bar:
            def update(self, n: int) -> None:
                if news.exists():
                    news.rename(moved)  # gone between the scan and the reads
        yield Bar()

    during, error = build(vanish)
    state = _posts_state(site.database)
    deleted_during = sorted(p for p, (_, gone) in state.items() if gone)
    if error is not None and one_line_error(error, str(site.root / "posts")) is not None:
        problems.append(f"build while the folder vanished: {one_line_error(error)}")
    if deleted_during:
        problems.append(f"posts marked deleted while their folder was only away: {deleted_during}")
    problems += feeds_whole(site.root / "out")
    moved.rename(news)
    clock.advance(minutes=5)
    after, error = build()
    stale = _stale(site, _posts_state(site.database))
    if error is not None:
        problems.append(f"retry build: {error}")
    if stale:
        problems.append(f"the retry did not rebuild {len(stale)} changed post(s), e.g. {stale[0]} "
                        f"({after.line() if after else ''})")
    return _vanish_end(site, config, clock, build, problems, builds, during, stale)


def _vanish_end(site: Site, config: Any, clock: Any, build: Any, problems: list[str], builds: int, during: Any,
                stale: list[str]) -> Row:
    import shutil

    news = site.root / "posts" / "news"
    feed = (site.root / "out" / "atom.xml").read_bytes()
    aside = site.root / "news.saved"
    shutil.copytree(news, aside)
    shutil.rmtree(news)
    clock.advance(minutes=5)
    _, gone_error = build()
    problem = one_line_error(gone_error, "posts folder not found", str(news))
    if problem:
        problems.append(f"folder deleted: {problem}")
    if any(gone for _, gone in _posts_state(site.database).values()):
        problems.append("posts marked deleted when the whole folder was missing (a scan error)")
    if (site.root / "out" / "atom.xml").read_bytes() != feed:
        problems.append("the feed changed although the build failed")
    shutil.copytree(aside, news)
    shutil.rmtree(news / "archive")  # these two are gone for good
    clock.advance(minutes=5)
    last, error = build()
    state = _posts_state(site.database)
    archived = {p: gone for p, (_, gone) in state.items() if p.startswith("news/archive/")}
    if error is not None or not archived or not all(archived.values()):
        problems.append(f"deleted sub-folder: {archived} ({error})")
    problems += feeds_whole(site.root / "out")
    status = integrity(site.database)
    if status != "ok":
        problems.append(f"integrity_check: {status}")
    live = sum(1 for _, gone in state.values() if not gone)
    row = Row("storage posts vanish", trials=builds + 2, messages=0, lost=len(_stale(site, state)),
              errors=len(problems))
    row.notes.append(f"folder renamed away mid-read: {during.line() if during else 'build failed'}; "
                     f"folder deleted: {str(gone_error)[:120]}")
    row.notes.append(f"{len(archived)} posts of a deleted sub-folder marked deleted; {live} live posts; "
                     f"{len(stale)} stale after the retry")
    row.notes += problems[:5]
    return row


def run(work: Path, *, quick: bool) -> list[Row]:
    subscribers = 100 if quick else 1000
    return [locked_db(work, subscribers=subscribers), full_disk(work, subscribers=30 if quick else 45),
            posts_vanish(work)]


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "send":
    sys.exit(send_main(*sys.argv[2:]))
