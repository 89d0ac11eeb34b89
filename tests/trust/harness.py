"""Shared helpers for the trust scenarios: sites with N subscribers, counting receivers, sender processes, the ledger.

Everything here runs real code on loopback: the receivers are the project's
test servers (``tests.servers``) living in the calling process, so they
outlive the sender processes the scenarios kill; the senders are separate
Python processes on one SQLite state database.

API (stable: other trust scenarios import it)
---------------------------------------------

``make_site(directory, *, subscribers, list_name="trust", schedule="0 * * * *") -> Site``
    A tiny site (three posts written here), built once by the real builder, with
    ``subscribers`` active subscribers (``reader00001@example.net``...) imported
    through ``Subscribers.import_csv``.  Takes about 1 s per 10,000 subscribers.
    ``Site.slot`` is the list's slot this site's posts belong to (the latest
    hourly slot at creation time): every digest composed for it holds the posts.

``Site.copy(directory) -> Site``
    A copy (posts, config, state database) for one trial: far cheaper than
    ``make_site`` again.  Compose/send in the copy never touch the original.

``Site.configure(receiver, *, extra="")``
    (Re)writes ``config.toml`` so the list sends through ``receiver``
    (its ``provider_toml()``); ``extra`` is appended (more TOML sections).

``Site.env() -> dict``
    The environment a sender process needs (secrets for the test receivers).

``CountingSmtp()`` / ``CountingApi(api)``
    :class:`tests.servers.smtp.SmtpServer` and :class:`tests.servers.mailapi.MailApi`
    that keep only ``(recipient, Message-ID)`` per received copy (10,000 full
    digests are not held in memory).  Both: context managers,
    ``.copies() -> dict[str, list[str]]`` (recipient -> Message-IDs of every copy
    received), ``.count`` (copies so far), ``.provider_toml() -> str``.
    ``CountingSmtp(hold_after=k)`` holds the k+1-th message's DATA until
    ``.release()`` (a gate that keeps a sender mid-send without any sleep).
    ``CountingApi`` speaks ``api`` = "mailgun" or "postmark"; ``.cut`` counts requests whose
    client vanished mid-request (socketserver's traceback for them is not printed).

``make_receiver(kind, **kwargs)``
    ``CountingSmtp(**kwargs)`` for "smtp", ``CountingApi(kind)`` for "mailgun"/"postmark" (not started).

``log_problems(text) -> list[str]``
    The lines of a process's log that must never appear: tracebacks, ERROR and CRITICAL.

``spawn_sender(site, *, lease=2.0, once=False, log=None) -> Sender``
    Starts ``python -m tests.trust.send_driver`` on ``site`` (see that module):
    composes or finds the digest of ``site.slot`` and sends what is left, with a
    ``lease``-second sending lease.  ``Sender.wait_started(timeout)`` blocks until
    the process is about to compose/send (imports done); ``Sender.kill()`` sends
    SIGKILL and returns whether the process was still running;
    ``Sender.wait(timeout) -> int``; ``Sender.stderr() -> str`` (its log, when
    ``log`` names a file: its stderr goes there).

``spawn_daemon(site, *, log) -> subprocess.Popen``
    ``python -m publisher run --config ...`` with its stderr in ``log``.

``ledger(site) -> LedgerView``
    The state database read directly: ``.rows`` (email -> DeliveryRow(state,
    message_id, in_doubt, reason)), ``.digests`` (DigestRow(id, status, owner,
    lease_until)), ``.counts`` (state -> rows), ``.lease_left()`` (seconds until
    the sending lease ends).

``tally(site, receiver) -> Tally``
    Per subscriber, at the receiver: ``messages`` (copies received), ``lost``
    (active subscribers with no copy and no ``failed`` ledger row), ``duplicates``
    (copies beyond one), ``in_doubt`` (rows the ledger marks in doubt),
    ``unexplained`` (extra copies for a row NOT in doubt, or whose copies'
    Message-IDs differ from each other or from the ledger's), ``strangers``
    (copies to an address that is no subscriber), ``problems`` (up to 5
    human-readable lines).

``python_env(extra) -> dict``: ``os.environ`` plus ``extra`` and the project on ``PYTHONPATH``.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.servers.mailapi import DOMAIN, KEYS, MailApi
from tests.servers.smtp import SmtpServer

ROOT = Path(__file__).resolve().parents[2]
SECRET = "trust-suite-server-secret"
ENV_KEYS = {"PUBLISHER_SECRET": SECRET, "MAILGUN_API_KEY": KEYS["mailgun"],
            "POSTMARK_SERVER_TOKEN": KEYS["postmark"], "SENDGRID_API_KEY": KEYS["sendgrid"]}
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.+?)\r?$", re.IGNORECASE | re.MULTILINE)

SITE_TOML = """\
[site]
title = "Trust Co-op"
url = "https://trust.example.net/"
timezone = "UTC"
author = "Trust Co-op"

[posts]
root = "posts"
folders = ["news"]

[feeds]
output = "out"
entries = 5
per_kind = false
per_author = false

[state]
directory = "state"

[log]
level = "INFO"

[schedule]
build_every = "1h"

[mail]
secret_env = "PUBLISHER_SECRET"
unsubscribe_mailto = "unsubscribe@trust.example.net"

[web]
url = "https://trust.example.net/newsletter/"

[lists.{list_name}]
title = "Trust weekly"
schedule = "{schedule}"
timezone = "UTC"
from_address = "news@trust.example.net"
from_name = "Trust Co-op"
provider = "receiver"
grace = "3h"
"""

POST = """\
# {title}

A short note number {n} for the trust suite, with [a link](/elsewhere) and some words to fill a paragraph.

Second paragraph of note {n}.

:created_at: {created}
:kind: blog
:author: trust-writer
"""


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PUBLISHER_CONFIG", None)
    return env


# -- the site ---------------------------------------------------------------------------------------------------


@dataclass
class Site:
    root: Path
    list_name: str
    slot: datetime
    subscribers: int
    schedule: str = "0 * * * *"
    provider_toml: str = '[providers.receiver]\ntype = "outbox"\ndirectory = "outbox"\n'
    extra: str = ""

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def database(self) -> Path:
        return self.root / "state" / "publisher.db"

    def emails(self) -> list[str]:
        return [address(i) for i in range(1, self.subscribers + 1)]

    def configure(self, receiver: Any = None, *, extra: str | None = None) -> None:
        if receiver is not None:
            self.provider_toml = receiver.provider_toml()
        if extra is not None:
            self.extra = extra
        text = SITE_TOML.format(list_name=self.list_name, schedule=self.schedule)
        self.config_path.write_text(text + "\n" + self.provider_toml + "\n" + self.extra)

    def copy(self, directory: Path) -> Site:
        shutil.copytree(self.root, directory)
        return Site(directory, self.list_name, self.slot, self.subscribers, self.schedule, self.provider_toml,
                    self.extra)

    def env(self) -> dict[str, str]:
        return python_env(ENV_KEYS)


def address(i: int) -> str:
    return f"reader{i:05d}@example.net"


def make_site(directory: Path, *, subscribers: int, list_name: str = "trust", schedule: str = "0 * * * *") -> Site:
    """A built site with ``subscribers`` active subscribers on ``list_name`` (see the module docstring)."""
    from publisher.build import Builder
    from publisher.config import load_config
    from publisher.state import Store
    from publisher.subscribers import Subscribers

    now = datetime.now(timezone.utc).replace(microsecond=0)
    slot = now.replace(minute=0, second=0)
    directory.mkdir(parents=True, exist_ok=True)
    site = Site(directory, list_name, slot, subscribers, schedule)
    _write_posts(directory / "posts" / "news", now)
    site.configure()
    config = load_config(site.config_path)
    builder = Builder(config)
    try:
        builder.build()
    finally:
        builder.close()
    store = Store(config.database_url)
    try:
        store.migrate()
        rows = directory / "subscribers.csv"
        with rows.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["email", "name"])
            writer.writerows([address(i), f"Reader {i}"] for i in range(1, subscribers + 1))
        report = Subscribers(store).import_csv(rows, list_name)
        if getattr(report, "bad", 0):
            raise RuntimeError(f"import of test subscribers reported bad rows: {report.line()}")
    finally:
        store.close()
    _checkpoint(site.database)
    return site


def _write_posts(folder: Path, now: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 4):
        created = (now - timedelta(seconds=n)).strftime("%Y-%m-%d %H:%M:%S +0000")
        (folder / f"note-{n}.snip.markdown").write_text(POST.format(title=f"Trust note {n}", n=n, created=created))


def _checkpoint(database: Path) -> None:
    """Fold the WAL into the database file so a copy of the folder is complete."""
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# -- receivers --------------------------------------------------------------------------------------------------


class CountingSmtp(SmtpServer):
    """An aiosmtpd receiver that keeps (recipient, Message-ID) per copy; optionally holds DATA after k messages."""

    def __init__(self, *, hold_after: int | None = None, hold_timeout: float = 20.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kept: list[tuple[str, str]] = []
        self.hold_after = hold_after
        self.hold_timeout = hold_timeout
        self.held = threading.Event()  # set when the gate first closed on a message
        self._gate = threading.Event()

    def _record(self, envelope: Any, smtp: Any) -> None:  # runs in the server's thread
        found = _MESSAGE_ID.search(bytes(envelope.original_content).partition(b"\r\n\r\n")[0])
        message_id = found.group(1).decode("ascii", "replace").strip() if found else ""
        with self._lock:
            count = len(self.kept)
            self.kept.extend((rcpt.lower(), message_id) for rcpt in envelope.rcpt_tos)
        if self.hold_after is not None and count >= self.hold_after and not self._gate.is_set():
            self.held.set()
            self._gate.wait(self.hold_timeout)  # the sender waits for its "250" meanwhile

    def release(self) -> None:
        self._gate.set()

    def stop(self) -> None:
        self.release()
        super().stop()

    @property
    def count(self) -> int:
        return len(self.kept)

    def copies(self) -> dict[str, list[str]]:
        return _group(self.kept)

    def provider_toml(self) -> str:
        return (f'[providers.receiver]\ntype = "smtp"\nhost = "127.0.0.1"\nport = {self.port}\n'
                f'security = "none"\npool = 2\ntimeout = 30\n')


class CountingApi(MailApi):
    """The local Mailgun/Postmark API, keeping (recipient, Message-ID) per copy."""

    def __init__(self, api: str = "mailgun") -> None:
        if api not in ("mailgun", "postmark"):
            raise ValueError(f"CountingApi speaks mailgun or postmark, not {api}")
        super().__init__()
        self.api = api
        self.kept: list[tuple[str, str]] = []
        self.cut = 0  # requests whose client went away mid-request (a killed sender)

    def start(self, port: int = 0) -> CountingApi:
        super().start(port)
        self._server.handle_error = self._client_gone  # type: ignore[union-attr, method-assign]
        return self

    def _client_gone(self, request: Any, client_address: Any) -> None:
        """socketserver prints a traceback when a client vanishes mid-request: expected here, so counted instead."""
        with self._lock:
            self.cut += 1

    def record(self, api: str, request: Any, messages: Any, count: int) -> None:
        pairs = [(email.lower(), _header(message.get("headers") or {}, "message-id")) for email, message in messages]
        with self._lock:
            self.calls[api] += 1
            self.recipients[api] += count
            self.kept.extend(pairs)

    @property
    def count(self) -> int:
        return len(self.kept)

    def copies(self) -> dict[str, list[str]]:
        return _group(self.kept)

    def provider_toml(self) -> str:
        if self.api == "mailgun":
            return (f'[providers.receiver]\ntype = "mailgun"\ndomain = "{DOMAIN}"\nbase_url = "{self.url}"\n'
                    f'api_key_env = "MAILGUN_API_KEY"\n')
        return (f'[providers.receiver]\ntype = "postmark"\nbase_url = "{self.url}"\n'
                f'server_token_env = "POSTMARK_SERVER_TOKEN"\n')


def _header(headers: dict[str, Any], name: str) -> str:
    for key, value in headers.items():
        if str(key).lower() == name:
            return str(value).strip()
    return ""


def _group(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for rcpt, message_id in list(pairs):
        grouped[rcpt].append(message_id)
    return dict(grouped)


def make_receiver(kind: str, **kwargs: Any) -> CountingSmtp | CountingApi:
    return CountingSmtp(**kwargs) if kind == "smtp" else CountingApi(kind)


def log_problems(text: str) -> list[str]:
    return [line for line in text.splitlines()
            if line.startswith("Traceback") or " ERROR " in line or " CRITICAL " in line]


# -- sender processes -------------------------------------------------------------------------------------------


class Sender:
    """A ``tests.trust.send_driver`` process."""

    def __init__(self, process: subprocess.Popen, log: Path | None) -> None:
        self.process = process
        self.log = log
        self.started_at: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_started(self, timeout: float = 30.0) -> bool:
        """Block until the driver says it starts working (its first stdout line); False if it ended first."""
        assert self.process.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        self.started_at = time.monotonic()
        return bool(result and result[0].startswith("started"))

    def kill(self) -> bool:
        """SIGKILL; True when the process was still running."""
        running = self.process.poll() is None
        if running:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._close()
        return running

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout)
        self._close()
        return code

    def _close(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace") if self.log is not None and self.log.exists() else ""


def spawn_sender(site: Site, *, lease: float = 2.0, once: bool = False, log: Path | None = None) -> Sender:
    command = [sys.executable, "-m", "tests.trust.send_driver", "--config", str(site.config_path),
               "--list", site.list_name, "--slot", site.slot.isoformat(), "--lease", str(lease)]
    if once:
        command.append("--once")
    err = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(command, cwd=ROOT, env=site.env(), stdout=subprocess.PIPE, stderr=err,
                                   stdin=subprocess.DEVNULL, text=True)
    finally:
        if log is not None:
            err.close()
    return Sender(process, log)


def spawn_daemon(site: Site, *, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "publisher", "run", "--config", str(site.config_path)]
    with log.open("ab") as err:
        return subprocess.Popen(command, cwd=site.root, env=site.env(), stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL)


# -- the ledger -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRow:
    state: str
    message_id: str
    in_doubt: bool
    reason: str | None


@dataclass(frozen=True)
class DigestRow:
    id: int
    status: str
    owner: str | None
    lease_until: datetime | None  # aware UTC


@dataclass
class LedgerView:
    rows: dict[str, DeliveryRow]
    digests: list[DigestRow]
    counts: dict[str, int]

    def lease_left(self, now: datetime | None = None) -> float:
        """Seconds until the latest digest's sending lease ends (0 when nobody holds it)."""
        held = [d.lease_until for d in self.digests if d.owner and d.lease_until]
        if not held:
            return 0.0
        return max(0.0, (max(held) - (now or datetime.now(timezone.utc))).total_seconds())


def ledger(site: Site) -> LedgerView:
    """The deliveries and digests of ``site``'s state database (read directly, read-only)."""
    from publisher.ledger import IN_DOUBT

    conn = sqlite3.connect(f"file:{site.database}?mode=ro", uri=True, timeout=30)
    try:
        query = "SELECT id, status, owner, lease_until FROM digests ORDER BY id"
        digests = [DigestRow(int(i), str(s), o, _utc(u)) for i, s, o, u in conn.execute(query)]
        rows: dict[str, DeliveryRow] = {}
        counts: dict[str, int] = defaultdict(int)
        query = "SELECT email, state, message_id, reason FROM deliveries ORDER BY id"
        for email, state, message_id, reason in conn.execute(query):
            rows[email.lower()] = DeliveryRow(state, message_id, reason == IN_DOUBT, reason)
            counts[state] += 1
    finally:
        conn.close()
    return LedgerView(rows, digests, dict(counts))


def _utc(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# -- counting ---------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    messages: int = 0
    lost: int = 0
    duplicates: int = 0
    in_doubt: int = 0
    unexplained: int = 0
    strangers: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("messages", "lost", "duplicates", "in_doubt", "unexplained", "strangers"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.extend(other.problems[: max(0, 5 - len(self.problems))])

    def note(self, text: str) -> None:
        if len(self.problems) < 5:
            self.problems.append(text)


def tally(site: Site, receiver: Any, view: LedgerView | None = None) -> Tally:
    """Count every subscriber's copies at ``receiver`` against the ledger (see the module docstring)."""
    view = view or ledger(site)
    copies = receiver.copies()
    result = Tally(messages=sum(len(ids) for ids in copies.values()))
    result.in_doubt = sum(1 for row in view.rows.values() if row.in_doubt)
    for email in site.emails():
        _judge(result, email, copies.pop(email, []), view.rows.get(email))
    for email, ids in copies.items():
        result.strangers += len(ids)
        result.note(f"{len(ids)} cop(ies) to {email}, who is no subscriber")
    return result


def _judge(result: Tally, email: str, ids: list[str], row: DeliveryRow | None) -> None:
    if not ids:
        if row is None or row.state != "failed":
            result.lost += 1
            result.note(f"{email}: no copy received (ledger: {row.state if row else 'no row'})")
        return
    extra = len(ids) - 1
    result.duplicates += extra
    expected = row.message_id if row is not None else None
    if any(i != expected for i in ids):
        result.unexplained += max(extra, 1)
        result.note(f"{email}: Message-IDs {sorted(set(ids))} differ from the ledger's {expected}")
    elif extra and not row.in_doubt:
        result.unexplained += extra
        result.note(f"{email}: {len(ids)} copies but the ledger never reported the row in doubt")
