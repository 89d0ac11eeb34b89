"""Injection: hostile titles, names, addresses and bodies, and secrets that must never be printed.

One hostile site is built, composed, sent (outbox) and served once; four checks read what came out:

- ``injection headers``: CR, LF and other controls (``\\r \\n \\x00 \\x0b \\x0c \\u2028 \\u0085``...) in
  post titles, list titles, From names, subscriber names and addresses never make a header: every
  digest and confirmation email, parsed with the stdlib email parser, has exactly the expected
  header set, each once, no control character in a value, and its two parts;
- ``injection templates``: ``{{ 7*7 }}``, ``{% raw %}``, ``{{ config }}`` and ``{{ ''.__class__ }}``
  in post bodies and titles, subscriber names and addresses come out literally (between markers)
  in the feeds, the digest HTML and text, the web copy and the web pages, never evaluated;
- ``injection html``: ``<script>`` and ``"><img onerror>`` in subscriber names (and post titles,
  and an address with a quote) are escaped in every page (preferences, confirm, unsubscribe,
  archive) and every email (digest, confirmation);
- ``injection secrets``: the SMTP password, the Mailgun/Postmark/SendGrid API keys, the server
  secret and the webhook keys (distinctive values) never appear, raw, base64 or URL-encoded, in
  anything printed: every log record at DEBUG (a root handler), error messages, HTTP answers,
  mails, and stdout/stderr of CLI subprocesses, across real operations that succeed and fail
  (wrong SMTP password against a local AUTH server, wrong API keys against the local mail API,
  bad config paths, webhooks with bad signatures).

``messages`` = cases checked, ``errors`` = violations (each quoted in the notes).
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import hashlib
import hmac
import html
import json
import logging
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from .report import Row

REPO = Path(__file__).resolve().parents[2]
UTC = timezone.utc
BUILD_AT = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)
SLOT = datetime(2024, 3, 8, 16, 0, tzinfo=UTC)  # a Friday
SHOWN = 4  # violations quoted per row

# Distinctive values, each with characters that URL-encoding changes; none may ever be printed.
SECRETS = {
    "smtp password": "smtpPW-9f3+Kq/7xZ=vR2@#mL8w!",
    "wrong smtp password": "smtpBAD-4t6+Wn/2yQ=pC9@#kS1e!",
    "mailgun key": "key-mg+Secret/4Hx=9QpL2vN7wKz",
    "postmark token": "pm-Token+7Gd/2Yb=KkP4nR8sVq1",
    "sendgrid key": "SG.sg+Secret/8Jf=3LmQ6tW2xYz0",
    "wrong api key": "WRONG-key+Bd3/Qy=7Hn2Lp9Vc4",
    "server secret": "srv-Secret+Pz5/Tk=8Wm3Nq6Rb1X",
    "mailgun signing key": "mgsig-Key+Vh2/Lc=6Qd9Ws4Jt7N",
    "postmark webhook password": "pmhook-Pass+Kf8/Rx=3Zn5Bv1Gm",
}

# -- hostile values ---------------------------------------------------------------------------------

CONTROLS = {"CR": "\r", "LF": "\n", "CRLF": "\r\n", "NUL": "\x00", "VT": "\x0b", "FF": "\x0c", "LS": "\u2028",
            "NEL": "\u0085", "PS": "\u2029", "ESC": "\x1b", "DEL": "\x7f", "TAB": "\t"}
CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
TEMPLATES = {"1": "{{ 7*7 }}", "2": "{% raw %}", "3": "{{ config }}", "4": "{{ ''.__class__ }}",
             "5": "{# gone #}", "6": "{{ recipient.email }}"}
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
ADDRESS_QUOTE = "x'onmouseover=alert'@inj.example.org"  # a valid address whose quote would break an attribute
ADDRESS_TEMPLATE = "zq7{{7*7}}qz7@inj.example.org"  # braces and * are allowed in a local part


def marked(key: str) -> str:
    """A template literal between unique markers: ``ZQ1{{ 7*7 }}QZ1``."""
    return f"ZQ{key}{TEMPLATES[key]}QZ{key}"


def yaml_quoted(text: str) -> str:
    """``text`` as a YAML double-quoted scalar with every control written as an escape."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or 0x7f <= ord(char) <= 0x9f or char in "\u2028\u2029":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def hostile_header_texts(what: str) -> list[str]:
    texts = [f"{what} {name}{char}Bcc: {what.lower()}-{name.lower()}@evil.example" for name, char in CONTROLS.items()]
    texts.append(f"{what}\r\n\r\nbody injected\r\nX-Evil: 1")
    texts.append(f"{what}\n X-Folded: 1")
    texts.append(f"=?utf-8?q?{what}=0D=0ABcc:_x@evil.example?=")
    return texts


# -- the outcome ------------------------------------------------------------------------------------


@dataclass
class Check:
    scenario: str
    trials: int = 0
    cases: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def case(self, ok: bool, problem: str) -> None:
        self.cases += 1
        if not ok:
            self.violations.append(problem)

    def row(self) -> Row:
        shown = [f"VIOLATION: {v[:400]}" for v in self.violations[:SHOWN]]
        more = [f"... and {len(self.violations) - SHOWN} more"] if len(self.violations) > SHOWN else []
        return Row(self.scenario, trials=self.trials, messages=self.cases, errors=len(self.violations),
                   notes=[*self.notes, *shown, *more])


class Capture(logging.Handler):
    """Every log record of every logger at DEBUG, formatted with its traceback, while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as exc:  # noqa: BLE001 - a record that can't be formatted is still evidence
            self.lines.append(f"UNFORMATTABLE {record.name}: {record.msg!r} {record.args!r} ({exc})")

    @contextlib.contextmanager
    def installed(self) -> Iterator[Capture]:
        root, publisher = logging.getLogger(), logging.getLogger("publisher")
        saved = (root.level, publisher.level, publisher.propagate, list(publisher.handlers))
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        publisher.setLevel(logging.NOTSET)
        publisher.propagate = True
        publisher.handlers[:] = []
        try:
            yield self
        finally:
            root.removeHandler(self)
            root.setLevel(saved[0])
            publisher.setLevel(saved[1])
            publisher.propagate = saved[2]
            publisher.handlers[:] = saved[3]


# -- the hostile site -------------------------------------------------------------------------------

LIST_TITLE = "Weekly\u2028Bcc: list-ls@evil.example\u0085X-Evil: nel " + SCRIPT + " " + marked("1")
FROM_NAME = "News\u2028Bcc: from@evil.example\u0085X-Evil: from"


def toml_string(text: str) -> str:
    return json.dumps(text)  # JSON escapes are TOML basic-string escapes


def site_config(extra: str = "") -> str:
    return f"""
[site]
title = "Injection Co-op"
url = "https://inj.example.org/"
timezone = "UTC"

[posts]
root = "posts"

[feeds]
output = "public/feeds"
url = "https://inj.example.org/feeds/"
entries = 50

[state]
directory = "state"

[mail]
unsubscribe_mailto = "unsubscribe@inj.example.org"

[web]
url = "https://inj.example.org/newsletter/"
signups_per_address = 50
signups_per_client = 500

[lists.weekly]
title = {toml_string(LIST_TITLE)}
description = {toml_string("About " + marked("2") + " " + SCRIPT)}
schedule = "0 16 * * fri"
timezone = "UTC"
from_address = "news@inj.example.org"
from_name = {toml_string(FROM_NAME)}
reply_to = "office@inj.example.org"
subject = "{{{{ list.title }}}}: {{{{ posts[0].title }}}} and {{{{ posts | length }}}} more"
max_posts = 100

[providers.outbox]
type = "outbox"
directory = "outbox"
{extra}
"""


def post_files() -> dict[str, str]:
    """Posts whose titles carry controls, template syntax and HTML, and whose bodies carry template syntax."""
    posts: dict[str, str] = {}
    for number, title in enumerate(hostile_header_texts("Title")):
        posts[f"blog/ctl-{number}.snip.markdown"] = snip(f"Body of control post {number}.", title,
                                                         f"2024-03-07 10:{number:02d}:00 +00:00")
    body = "\n\n".join(marked(key) for key in TEMPLATES)
    posts["blog/templates.snip.markdown"] = snip(
        f"Template syntax in a body:\n\n{body}\n\nAnd in HTML: <p>{marked('3')}</p>",
        "Templates " + marked("1") + " " + marked("4"), "2024-03-07 11:00:00 +00:00")
    posts["blog/html-title.snip.markdown"] = snip("A post with HTML in its title.", f"HTML {SCRIPT} {IMG}",
                                                  "2024-03-07 11:30:00 +00:00")
    posts["blog/front.md"] = ("---\ntitle: " + yaml_quoted("Front\r\nBcc: fm@evil.example " + marked("4")) +
                              "\ndate: 2024-03-07 12:00:00 +00:00\nkind: blog\n---\n\n" + marked("1") +
                              "\n\n{% for x in y %}" + marked("6") + "{% endfor %}\n")
    return posts


def snip(body: str, title: str, created: str) -> str:
    return f"{body}\n\n:created_at: {created}\n:page_title: {yaml_quoted(title)}\n:kind: blog\n"


SUBSCRIBER_NAMES = [*hostile_header_texts("Name"), SCRIPT, IMG, f"Ann {marked('1')}", f"Bo {marked('4')} {IMG}"]
BAD_ADDRESSES = [f"evil{char}@inj.example.org" for char in CONTROLS.values()] + [
    "a@inj.example.org\r\nBcc: b@evil.example", "a@inj.example.org\nBcc: b@evil.example", "\u2028a@inj.example.org",
    '"a\r\nb"@inj.example.org', "a@inj.example.org\x00", "<script>@inj.example.org"]


@dataclass
class Mail:
    origin: str
    raw: bytes
    parsed: Any


@dataclass
class World:
    """Everything the hostile site produced."""

    root: Path
    config: Any
    mails: list[Mail] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # what -> text (feeds, web copy, pages, parts)
    pages: dict[str, str] = field(default_factory=dict)  # web pages (HTML)
    rejected: dict[str, str] = field(default_factory=dict)  # hostile input -> how it was refused
    accepted: dict[str, str] = field(default_factory=dict)  # hostile input -> the address kept
    problems: list[str] = field(default_factory=list)  # anything that went wrong building the world
    log: Capture = field(default_factory=Capture)
    subscribers: dict[str, int] = field(default_factory=dict)  # email -> id
    letter: Any = None  # the digest's letter, to encode for addresses that never got into the database


ENVIRON = {"PUBLISHER_SECRET": SECRETS["server secret"]}


def build_world(work: Path) -> World:
    from publisher.build import build_once
    from publisher.clock import FrozenClock
    from publisher.config import load_config

    root = work / "site"
    for relative, text in post_files().items():
        path = root / "posts" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "config.toml").write_text(site_config(), encoding="utf-8")
    config = load_config(root / "config.toml")
    world = World(root, config)
    clock = FrozenClock(BUILD_AT)
    with world.log.installed():
        report = build_once(config, clock=clock)
        world.problems += [f"build: {problem}" for problem in report.errors]
        from publisher.state import Store

        store = Store(config.database_url, clock=clock)
        store.migrate()
        add_subscribers(world, store)
        send_digest(world, store, clock)
        read_feeds(world)
        serve_pages(world, store, clock)
        store.close()
        read_outbox(world)
    return world


def add_subscribers(world: World, store: Any) -> None:
    from sqlalchemy import update

    from publisher.errors import SubscriberError
    from publisher.schema import subscribers
    from publisher.subscribers import Subscribers

    api = Subscribers(store)
    for number, name in enumerate(SUBSCRIBER_NAMES):
        address = f"reader{number}@inj.example.org"
        world.subscribers[address] = api.add(address, name=name, lists=["weekly"])
    for address in (ADDRESS_QUOTE, ADDRESS_TEMPLATE):
        world.subscribers[address] = api.add(address, name=IMG, lists=["weekly"])
    for address in BAD_ADDRESSES:
        try:
            api.add(address, name="x", lists=["weekly"])
        except SubscriberError as exc:
            world.rejected[address] = str(exc)
            continue
        from publisher.subscribers import normalise_email

        world.accepted[address] = normalise_email(address)  # accepted: only if what is kept is clean
    # Defence in depth: names and an address that reached the database some other way (an old import, SQL).
    for number, name in enumerate(hostile_header_texts("Raw")):
        address = f"raw{number}@inj.example.org"
        world.subscribers[address] = sid = api.add(address, lists=["weekly"])
        with store.begin() as conn:
            conn.execute(update(subscribers).where(subscribers.c.id == sid).values(name=name))


def send_digest(world: World, store: Any, clock: Any) -> None:
    from publisher.delivery import Sender
    from publisher.digest import Composer

    clock.set(SLOT + timedelta(seconds=5))
    composed = Composer(world.config, store, clock=clock).compose("weekly", SLOT)
    if composed is None:
        world.problems.append("no digest was composed")
        return
    world.letter = composed.letter
    if composed.web_copy is not None:
        world.texts["digest web copy"] = composed.web_copy.read_text(encoding="utf-8")
    report = Sender(world.config, store, clock=clock, environ=ENVIRON, sleep=lambda s: None).send(composed.digest_id)
    world.texts["send report"] = report.line()


def read_feeds(world: World) -> None:
    for path in sorted(world.config.output_dir.rglob("*")):
        if path.is_file() and path.suffix in (".xml", ".json", ".atom", ".rss", ".html"):
            world.texts[f"feed {path.relative_to(world.config.output_dir)}"] = path.read_text(encoding="utf-8")


def read_outbox(world: World) -> None:
    outbox = world.root / "outbox"
    for path in sorted(outbox.rglob("*.eml")):
        raw = path.read_bytes()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        origin = "confirmation" if path.parent.name == "test" else "digest"
        world.mails.append(Mail(f"{origin} {path.name}", raw, parsed))
        for part in parsed.walk():
            if part.get_content_maintype() == "text":
                world.texts[f"{origin} {path.name} {part.get_content_type()}"] = part.get_content()


def serve_pages(world: World, store: Any, clock: Any) -> None:
    import httpx

    from publisher.tokens import unsubscribe_url
    from publisher.web.mailer import confirm_url, preferences_url
    from publisher.web.server import start_in_thread

    handle = start_in_thread(world.config, clock=clock, environ=ENVIRON, port=0, store=store)
    try:
        client = httpx.Client(base_url=handle.url, timeout=30)
        ctx = handle.ctx

        def path(url: str) -> str:
            return urlsplit(url).path.removeprefix(ctx.base_path)

        def get(what: str, where: str) -> httpx.Response:
            response = client.get(where)
            world.pages[f"{what} ({response.status_code})"] = response.text
            return response

        for what, where in (("index", ""), ("subscribe form", "subscribe/weekly"), ("archive", "archive"),
                            ("archive list", "archive/weekly"), ("archive digest", "archive/weekly/1")):
            get(what, where)
        from publisher.subscribers import Subscribers

        api = Subscribers(store)
        for address, sid in world.subscribers.items():
            row = api.get(address)
            if row is None:
                continue
            get(f"preferences {address}", path(preferences_url(ctx, sid, row.secret)))
            get(f"confirm {address}", path(confirm_url(ctx, sid, row.secret, "weekly")))
            page = get(f"unsubscribe {address}", path(unsubscribe_url(world.config, ctx.signer, sid, row.secret, "weekly")))
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            if address in (ADDRESS_QUOTE, ADDRESS_TEMPLATE) and csrf:
                done = client.post(path(unsubscribe_url(world.config, ctx.signer, sid, row.secret, "weekly")),
                                   data={"csrf": csrf.group(1)})
                world.pages[f"unsubscribed {address} ({done.status_code})"] = done.text
        sign_ups(world, client)
        client.close()
    finally:
        handle.stop()


def sign_ups(world: World, client: Any) -> None:
    """The subscribe form with hostile names and addresses; good addresses get a confirmation mail."""
    form = client.get("subscribe/weekly")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if csrf is None:
        world.problems.append("no CSRF field on the subscribe form")
        return
    attempts = [(f"signup{n}@inj.example.org", name) for n, name in enumerate(SUBSCRIBER_NAMES[:6])]
    attempts += [(ADDRESS_TEMPLATE, SCRIPT), ("zq8{{7*7}}qz8@inj.example.org", IMG), ("q'x@inj.example.org", marked("3"))]
    attempts += [(address, "x") for address in BAD_ADDRESSES]
    for address, name in attempts:
        response = client.post("subscribe/weekly", data={"csrf": csrf.group(1), "email": address, "name": name})
        world.pages[f"sign-up {address!r} ({response.status_code})"] = response.text
        if response.status_code >= 500:
            world.problems.append(f"sign-up of {address!r} answered {response.status_code}")
        api = client.post("api/lists/weekly/subscribe", json={"email": address, "name": name})
        world.pages[f"api sign-up {address!r} ({api.status_code})"] = api.text
        if api.status_code >= 500:
            world.problems.append(f"API sign-up of {address!r} answered {api.status_code}")


# -- headers --------------------------------------------------------------------------------------------

EXPECTED_HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version", "list-id", "list-unsubscribe",
                    "list-unsubscribe-post", "reply-to", "precedence", "content-type"}


def check_headers(world: World) -> Row:
    check = Check("injection headers", trials=len(world.mails))
    for mail in world.mails:
        head = mail.raw.split(b"\r\n\r\n", 1)[0]
        names = [line.split(b":", 1)[0].decode("ascii", "replace").lower()
                 for line in head.split(b"\r\n") if line and line[:1] not in (b" ", b"\t")]
        check.case(sorted(names) == sorted(EXPECTED_HEADERS),
                   f"{mail.origin}: header lines {sorted(names)} instead of {sorted(EXPECTED_HEADERS)}")
        check.case(sorted(k.lower() for k in mail.parsed.keys()) == sorted(EXPECTED_HEADERS),
                   f"{mail.origin}: the email parser reads headers {sorted(mail.parsed.keys())}")
        check.case(b"\r\n" not in head.replace(b"\r\n ", b"").replace(b"\r\n\t", b"").replace(b"\r\n", b"\n")
                   and b"\r" not in head.replace(b"\r\n", b"") and b"\n" not in head.replace(b"\r\n", b""),
                   f"{mail.origin}: a bare CR or LF in the header block")
        check.case(all(0x20 <= byte < 0x7f or byte in (0x0d, 0x0a, 0x09) for byte in head),
                   f"{mail.origin}: a raw control or 8-bit byte in the header block")
        for name in mail.parsed.keys():
            value = str(mail.parsed[name])
            check.case(not CONTROL_RE.search(value), f"{mail.origin}: {name} holds a control character: {value!r}")
            check.case("evil.example" not in value.lower() or name.lower() in ("subject", "to", "from", "list-id"),
                       f"{mail.origin}: {name} names an injected address: {value!r}")
        for name in ("to", "from", "reply-to"):
            if name in mail.parsed:
                addresses = mail.parsed[name].addresses
                check.case(len(addresses) == 1 and "evil" not in addresses[0].addr_spec,
                           f"{mail.origin}: {name} has addresses {[a.addr_spec for a in addresses]}")
        parts = [part.get_content_type() for part in mail.parsed.iter_parts()]
        check.case(parts == ["text/plain", "text/html"], f"{mail.origin}: parts {parts}")
        check.case(not mail.parsed.defects, f"{mail.origin}: parser defects {mail.parsed.defects}")
    digests = sum(mail.origin.startswith("digest") for mail in world.mails)
    confirmations = len(world.mails) - digests
    check.case(digests >= len(SUBSCRIBER_NAMES), f"only {digests} digest emails were sent")
    check.case(confirmations >= 3, f"only {confirmations} confirmation emails were sent")
    for address in BAD_ADDRESSES:
        kept = world.accepted.get(address)
        check.case(address in world.rejected or (kept is not None and not CONTROL_RE.search(kept)),
                   f"the address {address!r} was accepted as {kept!r}")
    check.notes.append(f"{digests} digest and {confirmations} confirmation emails parsed; "
                       f"{len(world.rejected)} hostile addresses refused with SubscriberError, "
                       f"{len(world.accepted)} accepted once cleaned ({sorted(world.accepted.values())})")
    check_config_refuses_controls(check, world)
    check_encoder_refuses(check, world)
    for problem in world.problems:
        check.case(False, problem)
    return check.row()


def check_encoder_refuses(check: Check, world: World) -> None:
    """An address that reached the database some other way (old data, SQL) still never makes a header:
    the encoder refuses it (SubscriberError) or writes exactly the expected headers."""
    from publisher.errors import SubscriberError
    from publisher.mail.letter import Recipient
    from publisher.mail.mime import MimeEncoder

    if world.letter is None:
        return
    encoder = MimeEncoder()
    for number, address in enumerate(BAD_ADDRESSES):
        recipient = Recipient(number, number, address, "Name\r\nBcc: n@evil.example", f"<r{number}@inj.example.org>",
                              f"https://inj.example.org/newsletter/unsubscribe/T\r\nBcc: u@evil.example{number}")
        try:
            raw = encoder.encode(world.letter, recipient)
        except SubscriberError:
            check.case(True, "")
            continue
        head = raw.split(b"\r\n\r\n", 1)[0]
        names = [line.split(b":", 1)[0].decode("ascii", "replace").lower()
                 for line in head.split(b"\r\n") if line and line[:1] not in (b" ", b"\t")]
        check.case(sorted(names) == sorted(EXPECTED_HEADERS), f"encoding for {address!r} made headers {names}")


def check_config_refuses_controls(check: Check, world: World) -> None:
    """A list title or From name with CR/LF/other C0 controls is refused when the config is loaded."""
    from publisher.config import load_config
    from publisher.errors import ConfigError

    path = world.root / "hostile-config.toml"
    for name, char in CONTROLS.items():
        if ord(char[0]) >= 0x80 or char == "\t":
            continue  # U+2028, U+0085 are allowed in a title: the mail layer makes them spaces (checked above)
        for key in ("title", "from_name", "subject"):
            text = site_config().replace(f"\n{key} = ", f"\n{key} = {toml_string('X' + char + 'Bcc: a@evil.example')}\n"
                                         f"old_{key} = ", 1)
            path.write_text(text, encoding="utf-8")
            try:
                load_config(path)
            except ConfigError as exc:
                check.case(key in str(exc) or any(key in p for p in exc.problems),
                           f"lists.weekly.{key} with {name}: refused without naming the key: {exc}")
                continue
            check.case(False, f"lists.weekly.{key} holding {name} was accepted")


# -- templates ------------------------------------------------------------------------------------------

MARKER_RE = re.compile(r"ZQ(\d)(.{0,60}?)QZ\1", re.DOTALL)  # bounded: a summary may cut a marker short
ADDRESS_MARKER_RE = re.compile(r"zq([78])(.{0,30}?)qz\1", re.DOTALL)


def canon(text: str) -> str:
    """A literal as it may legitimately come out: entities decoded, tags dropped, and Markdown's emphasis
    marks gone (``__class__`` is bold ``class`` in Markdown: formatting, not evaluation)."""
    text = html.unescape(html.unescape(text))
    return re.sub(r"<[^>]*>|[*_]", "", text)


def plain(text: str) -> str:
    """HTML or XML text with tags dropped and entities decoded (twice: feeds escape escaped HTML)."""
    text = re.sub(r"<[^>]*>", "", text)
    return html.unescape(html.unescape(text))


def check_templates(world: World) -> Row:
    check = Check("injection templates")
    outputs = {**world.texts, **world.pages, **{f"{m.origin} headers": "\n".join(f"{k}: {v}" for k, v in m.parsed.items()) for m in world.mails}}
    check.trials = len(outputs)
    found: dict[str, int] = {}
    for what, text in outputs.items():
        for flat in {text, plain(text), _json_strings(text)}:
            for key, inner in MARKER_RE.findall(flat):
                if key in TEMPLATES:
                    ok = canon(inner) == canon(TEMPLATES[key])
                    check.case(ok, f"{what}: ZQ{key}...QZ{key} holds {inner!r}, not {TEMPLATES[key]!r}")
                    found[what] = found.get(what, 0) + 1
            for key, inner in ADDRESS_MARKER_RE.findall(flat):
                check.case(inner == "{{7*7}}", f"{what}: the address marker holds {inner!r}")
        check.case("ZQ1" + "49" + "QZ1" not in text and "zq7" + "49" not in text, f"{what}: '49' where 7*7 was written")
        check.case("<class 'str'>" not in text and "&lt;class &#39;str&#39;&gt;" not in text,
                   f"{what}: a Python class name rendered")
        check.case("SiteConfig(" not in text and "secret_env" not in text, f"{what}: the config object rendered")
    must = [what for what in outputs if what.startswith(("digest ", "feed ")) and "headers" not in what]
    must += ["digest web copy", "archive digest (200)"]
    for what in must:
        check.case(found.get(what, 0) > 0, f"{what}: no template literal found at all (lost, or evaluated away?)")
    check.notes.append(f"{sum(found.values())} template literals found intact across {len(found)} outputs "
                       f"(feeds, digest HTML/text, web copy, web pages, headers)")
    return check.row()


def _json_strings(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


# -- HTML ---------------------------------------------------------------------------------------------

RAW_HTML = [SCRIPT, "<img src=x", "onerror=alert(1)>", "'onmouseover=alert'"]


def check_html(world: World) -> Row:
    check = Check("injection html")
    htmls = {what: text for what, text in world.pages.items() if not what.startswith("api sign-up")}
    htmls.update({what: text for what, text in world.texts.items()
                  if what.endswith("text/html") or what == "digest web copy"})
    check.trials = len(htmls)
    for what, text in htmls.items():
        for raw in RAW_HTML:
            check.case(raw not in text, f"{what}: unescaped {raw!r}")
    names_shown = sum("&lt;script&gt;alert(1)&lt;/script&gt;" in text for what, text in world.pages.items()
                      if what.startswith("preferences"))
    check.case(names_shown >= 2, f"the preferences pages show the escaped <script> name {names_shown} times")
    quoted = sum("x&#39;onmouseover=alert&#39;" in text or "x&#x27;onmouseover=alert&#x27;" in text
                 for text in htmls.values())
    check.case(quoted >= 3, f"the address with quotes is shown escaped on only {quoted} pages/emails")
    for what, text in world.pages.items():
        if what.startswith("api sign-up"):
            check.case(SCRIPT not in text or text.lstrip().startswith("{"), f"{what}: HTML in a non-JSON answer")
    pages = sum(1 for what in world.pages if what.split(" ")[0] in ("preferences", "confirm", "unsubscribe"))
    mails = sum(1 for what in htmls if what.endswith("text/html"))
    check.notes.append(f"{pages} preferences/confirm/unsubscribe pages, {mails} HTML email parts, "
                       f"{len(htmls) - pages - mails} other pages checked")
    return check.row()


# -- secrets ------------------------------------------------------------------------------------------



def encodings(secret: str) -> dict[str, str]:
    """The forms a secret could be printed in: raw, URL-encoded, and base64 at any alignment."""
    data = secret.encode("utf-8")
    forms = {"raw": secret, "url": quote(secret, safe=""), "url/": quote(secret), "url+": quote_plus(secret),
             "json": json.dumps(secret)[1:-1]}
    for offset in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * offset + data).decode("ascii")
            start = (offset * 4 + 2) // 3 + (1 if offset else 0)
            forms[f"{name}@{offset}"] = text[start:-4]  # the part that does not depend on the neighbours
    return forms


def find_secrets(text: str, where: str) -> list[str]:
    found = []
    for name, secret in SECRETS.items():
        for form, value in encodings(secret).items():
            if value and value in text:
                found.append(f"{where}: the {name} ({form})")
    return found


def secrets_environ(**extra: str) -> dict[str, str]:
    return {"PUBLISHER_SECRET": SECRETS["server secret"], "MAILGUN_WEBHOOK_SIGNING_KEY": SECRETS["mailgun signing key"],
            "POSTMARK_WEBHOOK_USER": "hooks", "POSTMARK_WEBHOOK_PASSWORD": SECRETS["postmark webhook password"],
            **extra}


def secrets_config(smtp_port: int, api_url: str, domain: str) -> str:
    lists = ""
    for name, provider in (("smtp-ok", "smtp-ok"), ("smtp-bad", "smtp-bad"), ("mailgun-ok", "mailgun-ok"),
                           ("mailgun-bad", "mailgun-bad"), ("postmark-ok", "postmark-ok"),
                           ("postmark-bad", "postmark-bad"), ("sendgrid-ok", "sendgrid-ok"),
                           ("sendgrid-bad", "sendgrid-bad")):
        lists += (f'\n[lists.{name}]\ntitle = "{name}"\nschedule = "0 0 1 1 *"\nfrom_address = "news@inj.example.org"\n'
                  f'provider = "{provider}"\n')
    providers = f"""
[providers.smtp-ok]
type = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
username = "ann"
password_env = "TRUST_SMTP_PASSWORD"
timeout = 10

[providers.smtp-bad]
type = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
username = "ann"
password_env = "TRUST_SMTP_WRONG"
timeout = 10
"""
    for kind, env in (("mailgun", "api_key_env"), ("postmark", "server_token_env"), ("sendgrid", "api_key_env")):
        for suffix, variable in (("ok", f"TRUST_{kind.upper()}_KEY"), ("bad", "TRUST_WRONG_KEY")):
            providers += f'\n[providers.{kind}-{suffix}]\ntype = "{kind}"\nbase_url = "{api_url}"\n{env} = "{variable}"\ntimeout = 10\n'
            if kind == "mailgun":
                providers += f'domain = "{domain}"\n'
    return f"""
[site]
title = "Secrets"
url = "https://inj.example.org/"

[posts]
root = "posts"

[state]
directory = "state"
{lists}
{providers}
"""


def provider_environ() -> dict[str, str]:
    return {"TRUST_SMTP_PASSWORD": SECRETS["smtp password"], "TRUST_SMTP_WRONG": SECRETS["wrong smtp password"],
            "TRUST_MAILGUN_KEY": SECRETS["mailgun key"], "TRUST_POSTMARK_KEY": SECRETS["postmark token"],
            "TRUST_SENDGRID_KEY": SECRETS["sendgrid key"], "TRUST_WRONG_KEY": SECRETS["wrong api key"]}


def check_secrets(work: Path, world_log: list[str], world_texts: list[str]) -> Row:
    from tests.servers.mailapi import DOMAIN, MailApi
    from tests.servers.smtp import SmtpServer

    check = Check("injection secrets")
    printed: list[tuple[str, str]] = [("world log", "\n".join(world_log)), *(("world output", t) for t in world_texts)]
    root = work / "secrets"
    (root / "posts" / "blog").mkdir(parents=True, exist_ok=True)
    created = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S +00:00")
    (root / "posts" / "blog" / "hello.snip.markdown").write_text(snip("Hello.", "Hello", created), encoding="utf-8")
    keys = {"mailgun": SECRETS["mailgun key"], "postmark": SECRETS["postmark token"], "sendgrid": SECRETS["sendgrid key"]}
    capture = Capture()
    with SmtpServer(users={"ann": SECRETS["smtp password"]}) as smtp, MailApi(keys) as api, capture.installed():
        (root / "config.toml").write_text(secrets_config(smtp.port, api.url, DOMAIN), encoding="utf-8")
        environ = {**secrets_environ(), **provider_environ()}
        outcomes = in_process_sends(check, root, environ, printed)
        printed += cli_runs(check, root, environ)
        printed += webhook_requests(check, root, environ)
        check.case(any(ok for _, ok in smtp.logins) and any(not ok for _, ok in smtp.logins),
                   f"the SMTP server saw logins {smtp.logins}: the AUTH paths were not both exercised")
        check.case(len(api.requests) >= 3, f"the mail API got {len(api.requests)} requests")
        check.notes.append(f"sends: {outcomes}; SMTP logins {smtp.logins}")
    printed.append(("log at DEBUG", "\n".join(capture.lines)))
    check.trials = len(printed)
    for where, text in printed:
        for found in find_secrets(text, where):
            check.case(False, found)
        check.cases += 1
    check.notes.append(f"{len(capture.lines) + len(world_log)} log records and {len(printed)} outputs searched "
                       f"for {len(SECRETS)} secrets in {len(encodings('x'))} encodings each")
    return check.row()


def in_process_sends(check: Check, root: Path, environ: dict[str, str], printed: list[tuple[str, str]]) -> list[str]:
    """Every list sent in-process (good and wrong credentials); errors and reports kept as printed text."""
    from publisher.config import load_config
    from publisher.errors import PublisherError
    from publisher.newsletter import Newsletter
    from publisher.state import Store
    from publisher.subscribers import Subscribers

    config = load_config(root / "config.toml")
    store = Store(config.database_url)
    store.migrate()
    from publisher.build import build_once

    build_once(config)
    for name in config.lists:
        Subscribers(store).add(f"reader@{name}.inj.example.org", name="Reader", lists=[name])
    outcomes = []
    for name in config.lists:
        try:
            outcome = Newsletter(config, store, environ=environ).send_now(name)
            outcomes.append(f"{name}: {outcome.line()}")
            printed.append((f"send {name}", outcome.line()))
        except PublisherError as exc:
            outcomes.append(f"{name}: {type(exc).__name__}")
            printed.append((f"send {name} error", "".join(traceback.format_exception(exc))))
        except Exception as exc:  # noqa: BLE001
            check.case(False, f"send {name}: unexpected {type(exc).__name__}: {exc}")
            printed.append((f"send {name} crash", "".join(traceback.format_exception(exc))))
    from sqlalchemy import select

    from publisher.schema import deliveries

    with store.begin() as conn:
        for row in conn.execute(select(deliveries.c.state, deliveries.c.reason)):
            printed.append(("ledger reason", f"{row.state} {row.reason}"))
    for name in ("smtp-ok", "mailgun-ok", "postmark-ok", "sendgrid-ok"):
        check.case(any(o.startswith(f"{name}:") and " 1 sent" in o for o in outcomes),
                   f"{name}: the send with the right credentials did not go through: {outcomes}")
    store.close()
    return outcomes


def cli_runs(check: Check, root: Path, environ: dict[str, str]) -> list[tuple[str, str]]:
    """CLI subprocesses at DEBUG with the secrets in their environment: stdout and stderr kept."""
    env = {**os.environ, **environ, "PYTHONPATH": str(REPO)}
    env.pop("PUBLISHER_CONFIG", None)
    config = str(root / "config.toml")
    broken = root / "broken.toml"
    broken.write_text((root / "config.toml").read_text() + '\n[providers.extra]\ntype = "smtp"\npassword_env = "X Y"\n')
    debug = ["--config", config, "--log-level", "DEBUG"]
    runs = [
        ["check", "--config", str(root / "missing" / "config.toml")],
        ["check", "--config", str(broken)],
        ["digest", "send", "smtp-bad", *debug],
        ["digest", "send", "mailgun-bad", *debug],
        ["digest", "send", "postmark-bad", *debug],
        ["digest", "preview", "smtp-ok", "--latest", "--to", "me@inj.example.org", *debug],
        ["digest", "preview", "sendgrid-bad", "--latest", "--to", "me@inj.example.org", *debug],
        ["deliveries", *debug],
    ]
    printed = []
    for args in runs:
        shown = " ".join(arg for arg in args if not arg.startswith("/"))
        try:
            done = subprocess.run([sys.executable, "-m", "publisher", *args], env=env, cwd=root,
                                  capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired as exc:
            check.case(False, f"publisher {shown} did not finish in 120 s")
            printed.append((f"cli {shown}", f"{exc.stdout}{exc.stderr}"))
            continue
        output = done.stdout + done.stderr
        check.case("Traceback" not in output, f"publisher {shown}: a traceback: {output[-300:]!r}")
        printed.append((f"cli {shown} (exit {done.returncode})", output))
    return printed


def webhook_requests(check: Check, root: Path, environ: dict[str, str]) -> list[tuple[str, str]]:
    """Webhooks with bad signatures and wrong passwords (and one good one), answers kept."""
    import httpx

    from publisher.config import load_config
    from publisher.web.server import start_in_thread

    config = load_config(root / "config.toml")
    handle = start_in_thread(config, environ=environ, port=0)
    printed = []
    try:
        client = httpx.Client(base_url=handle.url, timeout=30)
        stamp, token = str(int(datetime.now(UTC).timestamp())), "tok-" + os.urandom(8).hex()
        good = hmac.new(SECRETS["mailgun signing key"].encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        event = {"event": "failed", "severity": "permanent", "recipient": "nobody@inj.example.org"}
        bodies = [
            ("mailgun bad signature", "mailgun", {"signature": {"timestamp": stamp, "token": token, "signature": "0" * 64},
                                                   "event-data": event}, {}),
            ("mailgun key as signature", "mailgun", {"signature": {"timestamp": stamp, "token": token + "x",
                                                                    "signature": SECRETS["mailgun signing key"]},
                                                      "event-data": event}, {}),
            ("mailgun good", "mailgun", {"signature": {"timestamp": stamp, "token": token, "signature": good},
                                         "event-data": event}, {}),
            ("postmark wrong password", "postmark", {"RecordType": "Bounce", "Type": "HardBounce"},
             {"authorization": "Basic " + base64.b64encode(b"hooks:" + SECRETS["wrong smtp password"].encode()).decode()}),
            ("postmark good", "postmark", {"RecordType": "Bounce", "Type": "HardBounce", "Email": "nobody@inj.example.org"},
             {"authorization": "Basic " + base64.b64encode(
                 b"hooks:" + SECRETS["postmark webhook password"].encode()).decode()}),
            ("sendgrid unconfigured", "sendgrid", [{"event": "bounce"}],
             {"x-twilio-email-event-webhook-signature": "MEUCIQ==", "x-twilio-email-event-webhook-timestamp": stamp}),
        ]
        for what, provider, body, headers in bodies:
            response = client.post(f"webhooks/{provider}", content=json.dumps(body).encode(), headers=headers)
            check.case(response.status_code < 500, f"{what}: answered {response.status_code}")
            printed.append((f"webhook {what} ({response.status_code})", f"{response.headers}\n{response.text}"))
        client.close()
    finally:
        handle.stop()
    return printed


# -- entry point ----------------------------------------------------------------------------------------


def run(work: Path, *, quick: bool) -> list[Row]:
    world = build_world(work)
    rows = [check_headers(world), check_templates(world), check_html(world)]
    world_texts = [*world.texts.values(), *world.pages.values(), *(m.raw.decode("utf-8", "replace") for m in world.mails),
                   *world.rejected.values()]
    rows.append(check_secrets(work, world.log.lines, world_texts))
    return rows
