"""The sending benchmark's data: its config, a state database of N subscribers, and one composed digest.

A database per subscriber count is made once under ``benchmarks/work/send/``
(``subscribers-N-vV.db``, renamed into place only when complete) and copied for
each stage, so every stage starts from a list that has never been sent to.
The digest is composed by ``publisher.digest.compose.Composer`` from a small
generated site when that module exists; otherwise a ``digests`` row of the same
size, with the per-recipient placeholders, is inserted directly.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench_corpus import AUTHORS, make_post

DATA_VERSION = 1
LIST = "bench"
SITE_URL = "https://bench.example.org/"
SECRET = "bench-server-secret-not-a-real-one"
ENVIRON = {"PUBLISHER_SECRET": SECRET, "MAILGUN_API_KEY": "key-bench", "SENDGRID_API_KEY": "SG.bench",
           "POSTMARK_SERVER_TOKEN": "bench-token"}
KEY_NAMES = {"mailgun": "MAILGUN_API_KEY", "sendgrid": "SENDGRID_API_KEY", "postmark": "POSTMARK_SERVER_TOKEN"}


def environ_with(keys: dict[str, str]) -> dict[str, str]:
    """The benchmark's environment with the API keys a server wants (provider type -> key)."""
    return {**ENVIRON, **{KEY_NAMES[kind]: key for kind, key in keys.items() if kind in KEY_NAMES}}


# The digest's moment: posts are created just after NOW_SLOT, built at BUILT, composed at COMPOSED,
# for the every-minute slot SCHEDULED (fixed, so the digest is the same on every machine).
NOW_SLOT = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
BUILT = NOW_SLOT + timedelta(seconds=30)
COMPOSED = NOW_SLOT + timedelta(seconds=50)
SCHEDULED = NOW_SLOT + timedelta(minutes=1)
DIGEST_POSTS = 7  # about 50 KB of HTML once composed (inlined CSS included)
CHUNK = 20_000


# -- config -------------------------------------------------------------------------------------

def config_data(root: Path, *, smtp_port: int = 25, pool: int = 4, http_url: str = "http://127.0.0.1:9/",
                provider: str = "sink", database: str | None = None,
                mailgun_domain: str | None = None) -> dict[str, Any]:
    """The benchmark's config as the TOML would read: one list, one provider of each kind."""
    return {
        "site": {"title": "Bench Co-op", "url": SITE_URL, "timezone": "UTC",
                 "authors": dict(AUTHORS)},
        "posts": {"root": "posts", "folders": ["weeknotes", "blog"]},
        "feeds": {"output": "public/feeds", "per_kind": False, "per_author": False},
        "state": {"directory": "state", **({"database": database} if database else {})},
        "lists": {LIST: {"title": "Bench weekly", "schedule": "* * * * *", "timezone": "UTC",
                         "from_address": "news@bench.example.org", "from_name": "Bench Co-op",
                         "reply_to": "hello@bench.example.org", "provider": provider,
                         "max_posts": DIGEST_POSTS}},
        "providers": {
            "sink": {"type": "smtp", "host": "127.0.0.1", "port": smtp_port, "security": "none", "pool": pool},
            "mailgun": {"type": "mailgun", "domain": mailgun_domain or "bench.example.org",
                        "base_url": http_url},
            "sendgrid": {"type": "sendgrid", "base_url": http_url},
            "postmark": {"type": "postmark", "base_url": http_url},
            "outbox": {"type": "outbox", "directory": "outbox"},
        },
        "mail": {"secret_env": "PUBLISHER_SECRET", "unsubscribe_mailto": "unsubscribe@bench.example.org"},
    }


def make_config(root: Path, **kwargs: Any) -> Any:
    """The config written to ``root/config.toml`` (the build's stamp reads the file) and loaded from there."""
    from publisher.config import load_config

    root.mkdir(parents=True, exist_ok=True)
    path = root / "config.toml"
    path.write_text(to_toml(config_data(root, **kwargs)), encoding="utf-8")
    return load_config(path)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """TOML for nested dicts of strings, numbers, booleans and lists of strings (all the config needs)."""
    plain = [f"{key} = {toml_value(value)}" for key, value in data.items() if not isinstance(value, dict)]
    lines = ([f"[{prefix}]"] if prefix and plain else []) + plain
    tables = [to_toml(value, f"{prefix}.{key}" if prefix else key) for key, value in data.items()
              if isinstance(value, dict)]
    return "\n".join(part for part in ["\n".join(lines), *tables] if part) + "\n"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def with_provider(config: Any, provider: str) -> Any:
    """The same config with the list sending through ``provider``."""
    lists = {LIST: config.lists[LIST].model_copy(update={"provider": provider})}
    return config.model_copy(update={"lists": lists})


# -- subscribers --------------------------------------------------------------------------------

def subscriber_rows(count: int, seed: int = 7) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(subscriber, subscription) rows: reader0000001@... with a name most of the time and a random secret."""
    rng = random.Random(seed)
    now = NOW_SLOT - timedelta(days=30)
    for number in range(1, count + 1):
        name = None if number % 5 == 0 else f"Reader {number}"
        subscriber = {"id": number, "email": f"reader{number:07d}@example.org", "name": name,
                      "secret": f"{rng.getrandbits(128):032x}", "created_at": now, "updated_at": now}
        subscription = {"subscriber_id": number, "list": LIST, "status": "active", "created_at": now,
                        "status_at": now, "confirmed_at": now, "soft_bounces": 0}
        yield subscriber, subscription


def subscribers_db(work: Path, count: int) -> Path:
    """The template database with ``count`` active subscribers of the list (made once, then reused)."""
    path = work / f"subscribers-{count}-v{DATA_VERSION}.db"
    if path.exists():
        return path
    work.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    fill_subscribers(f"sqlite:///{partial}", count)
    partial.rename(path)
    return path


def fill_subscribers(url: str, count: int) -> None:
    """Migrate the database at ``url`` and bulk-insert the subscribers and their subscriptions."""
    from publisher.schema import subscribers, subscriptions
    from publisher.state import Store

    store = Store(url)
    try:
        store.migrate()
        rows = subscriber_rows(count)
        while chunk := [pair for _, pair in zip(range(CHUNK), rows)]:
            with store.begin() as conn:
                conn.execute(subscribers.insert(), [pair[0] for pair in chunk])
                conn.execute(subscriptions.insert(), [pair[1] for pair in chunk])
    finally:
        store.close()


def fresh_copy(template: Path, dest: Path) -> str:
    """A copy of the template database at ``dest`` (any older copy removed); its SQLAlchemy URL."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, dest)
    return f"sqlite:///{dest}"


# -- the digest ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Digest:
    digest_id: int
    how: str  # "composed" (Composer) or "inserted" (the fallback row)
    html_bytes: int
    text_bytes: int


def write_site_posts(root: Path, count: int = DIGEST_POSTS, seed: int = 11) -> None:
    """``count`` generated posts created one second apart just after NOW_SLOT (so they are the digest's)."""
    for index in range(count):
        snip = make_post(seed, index, count)
        created = (NOW_SLOT + timedelta(seconds=index + 1)).strftime("%Y-%m-%d %H:%M:%S +0000")
        lines = [line for line in snip.text.splitlines() if not line.startswith((":created_at:", ":updated_at:",
                                                                                  ":draft:"))]
        text = "\n".join(lines) + f"\n:created_at: {created}\n:updated_at: {created}\n"
        path = root / "posts" / snip.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def compose_digest(config: Any, store: Any) -> Digest:
    """The digest composed by the Composer from a generated site (built at BUILT, composed at COMPOSED)."""
    from publisher.build import Builder
    from publisher.clock import FrozenClock
    from publisher.digest.compose import Composer

    write_site_posts(config.base_dir)
    builder = Builder(config, clock=FrozenClock(BUILT))
    try:
        builder.build(force=True)
    finally:
        builder.close()
    composed = Composer(config, store, clock=FrozenClock(COMPOSED)).compose(LIST, SCHEDULED)
    if composed is None or composed.digest_id is None:
        raise RuntimeError("the Composer found nothing new to send in the generated site")
    return _sized(store, composed.digest_id, "composed")


def insert_digest(store: Any, posts: int = 12, seed: int = 11) -> Digest:
    """A stored digest row of the usual size (about 50 KB of HTML) with the placeholders, no Composer needed."""
    from publisher.schema import digests

    html, text = synthetic_digest(posts, seed)
    row = {"list": LIST, "scheduled_for": SCHEDULED, "since": NOW_SLOT, "cutoff": COMPOSED,
           "post_ids": json.dumps(list(range(1, posts + 1))), "subject": f"Bench weekly: {posts} new posts",
           "html": html, "text": text, "summaries_only": False, "status": "composed", "recipients": 0,
           "created_at": COMPOSED}
    with store.begin() as conn:
        digest_id = conn.execute(digests.insert().values(**row)).inserted_primary_key[0]
    return _sized(store, digest_id, "inserted")


def _sized(store: Any, digest_id: int, how: str) -> Digest:
    from sqlalchemy import select

    from publisher.schema import digests

    with store.begin() as conn:
        row = conn.execute(select(digests.c.html, digests.c.text).where(digests.c.id == digest_id)).one()
    return Digest(digest_id, how, len(row.html.encode()), len(row.text.encode()))


def synthetic_digest(posts: int, seed: int) -> tuple[str, str]:
    """HTML and text of a digest of ``posts`` generated posts (paragraphs only), with the placeholders."""
    import html as _html

    parts_html = ['<html><body><p>Hello @@PUBLISHER:name@@,</p>']
    parts_text = ["Hello @@PUBLISHER:name@@,", ""]
    for index in range(posts):
        snip = make_post(seed, index, posts)
        body = snip.text[: snip.text.rfind("\n\n:")]
        url = f"{SITE_URL}{snip.name}"
        paragraphs = [p for p in body.split("\n\n") if p and not p.startswith(("```", "|", "[ref"))]
        parts_html.append(f'<h2><a href="{url}">{_html.escape(snip.title)}</a></h2>')
        parts_html.extend(f"<p>{_html.escape(p)}</p>" for p in paragraphs)
        parts_text.extend([snip.title, "=" * len(snip.title), "", *paragraphs, "", f"Read it: {url}", ""])
    parts_html.append('<p><a href="@@PUBLISHER:unsubscribe_url@@">Unsubscribe</a> (@@PUBLISHER:email@@)</p>'
                      "</body></html>")
    parts_text.append("Unsubscribe: @@PUBLISHER:unsubscribe_url@@")
    return "\n".join(parts_html), "\n".join(parts_text)


def make_digest(config: Any, store: Any) -> tuple[Digest, str | None]:
    """The digest to send, composed when the Composer exists; else inserted, with the reason why."""
    try:
        return compose_digest(config, store), None
    except ModuleNotFoundError as exc:
        return insert_digest(store), f"{exc.name} not available yet: digest row inserted directly"
    except Exception as exc:  # noqa: BLE001 - the fallback keeps the benchmark useful; the reason is printed
        return insert_digest(store), f"Composer failed ({type(exc).__name__}: {exc}): digest row inserted directly"


def copy_digest(source: Any, dest: Any, digest_id: int) -> int:
    """The digest row ``digest_id`` of one state database inserted into another; its new id."""
    from sqlalchemy import select

    from publisher.schema import digests

    with source.begin() as conn:
        row = dict(conn.execute(select(digests).where(digests.c.id == digest_id)).one()._mapping)
    row.pop("id")
    with dest.begin() as conn:
        return int(conn.execute(digests.insert().values(**row)).inserted_primary_key[0])


def delivery_counts(store: Any, digest_id: int) -> dict[str, int]:
    """Deliveries of the digest per state, read straight from the table."""
    from sqlalchemy import func, select

    from publisher.schema import deliveries

    query = (select(deliveries.c.state, func.count()).where(deliveries.c.digest_id == digest_id)
             .group_by(deliveries.c.state))
    with store.begin() as conn:
        return {state: count for state, count in conn.execute(query)}


# -- one message, as sent -----------------------------------------------------------------------

def letter_for(config: Any, store: Any, digest_id: int) -> Any:
    """The digest's Letter: ``Composer.letter`` when it exists, else made from the stored row."""
    try:
        from publisher.digest.compose import Composer
    except ModuleNotFoundError:
        return _letter_from_row(config, store, digest_id)
    return Composer(config, store).letter(digest_id)


def _letter_from_row(config: Any, store: Any, digest_id: int) -> Any:
    from sqlalchemy import select

    from publisher.mail.letter import Letter
    from publisher.schema import digests

    with store.begin() as conn:
        row = conn.execute(select(digests).where(digests.c.id == digest_id)).one()
    settings = config.lists[LIST]
    return Letter(subject=row.subject, from_address=settings.from_address, from_name=settings.from_name,
                  reply_to=settings.reply_to, list_id=f"{settings.title} <{LIST}.{config.message_id_domain}>",
                  list_name=LIST, unsubscribe_mailto=config.mail.unsubscribe_mailto, date=row.cutoff,
                  html=row.html, text=row.text, digest_id=digest_id)


def unsubscribe_link(config: Any, subscriber_id: int, secret: str) -> str:
    """The real signed link when publisher.tokens exists, else one of the same length."""
    try:
        from publisher.tokens import Signer, unsubscribe_url
    except ModuleNotFoundError:
        return f"{config.web_url}unsubscribe/{'x' * 86}"
    return unsubscribe_url(config, Signer(SECRET.encode()), subscriber_id, secret, LIST)


def sample_recipient(config: Any, digest_id: int) -> Any:
    """Subscriber 1's Recipient, as the sender would make it."""
    from publisher.mail.letter import Recipient

    subscriber, _ = next(subscriber_rows(1))
    message_id = f"<{digest_id}.1.0123456789abcdef@{config.message_id_domain}>"
    return Recipient(1, 1, subscriber["email"], subscriber["name"], message_id,
                     unsubscribe_link(config, 1, subscriber["secret"]))
