"""Fuzzing on a fixed budget: only the project's own errors come out, never a crash or a traceback.

Targets (one :class:`~tests.trust.report.Row` each, ``trials`` = inputs tried,
``errors`` = inputs that raised anything but the target's own error or broke an
invariant):

- ``fuzz snip`` / ``fuzz front matter``: :func:`publisher.snip.read_snip`,
  :func:`publisher.frontmatter.read_front_matter` (ValueError, their contract) and
  :func:`publisher.posts.read_post` (PostError) over arbitrary bytes and over
  structured but hostile attribute blocks (YAML tags, anchors, alias bombs,
  impossible dates, controls, BOMs, CRLF);
- ``fuzz config``: :func:`publisher.config.load_config` over arbitrary text and
  over a valid config mutated with wrong types, hostile values and unknown keys
  (ConfigError);
- ``fuzz csv import``: :meth:`publisher.subscribers.Subscribers.import_csv` over
  arbitrary bytes and well-formed files of hostile rows (SubscriberError); every
  data row is counted exactly once, the database grows by exactly what the report
  says and a stopped subscription is never re-activated;
- ``fuzz webhooks``: the parsing functions of :mod:`publisher.web.hooks` called
  directly (HookError), and arbitrary bodies and headers POSTed to the running web
  service: only 2xx/4xx answers, and nothing changes without valid authentication;
- ``fuzz tokens``: :meth:`publisher.tokens.Signer.verify` over arbitrary strings
  and mutations of valid tokens: TokenError, never accepted unless exact;
- ``fuzz cli``: ``publisher check`` and ``publisher build`` run in-process with
  click's CliRunner on fuzzed configs and posts: no "Traceback" in the output.

Each run draws one seed (``TRUST_SEED`` replays it) and prints it in the notes;
Hypothesis runs derandomised from it, with no example database, so a run is
reproducible from its seed.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import logging
import math
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from .report import Row

QUICK, FULL = 200, 5000
# Targets that do I/O per input (a database, HTTP, a whole CLI run) get a share of the budget.
SHARE = {"csv": 0.5, "webhooks http": 0.5, "cli": 0.2}
SAMPLES = 3  # unexpected failures quoted in the notes per target
NOW = datetime(2024, 3, 8, 12, 0, tzinfo=timezone.utc)


# -- the harness -----------------------------------------------------------------------------


class Violation(AssertionError):
    """An invariant broken by an input (as opposed to an unexpected exception)."""


@dataclass
class Tally:
    """Inputs tried and failures found for one target."""

    scenario: str
    trials: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def failed(self, value: object, problem: str) -> None:
        self.errors += 1
        if len(self.samples) < SAMPLES:
            shown = repr(value)
            self.samples.append(f"{problem} on {shown[:300]}{'...' if len(shown) > 300 else ''}")

    def row(self, seed: int, extra: list[str] | None = None) -> Row:
        notes = [f"{self.trials} inputs tried, seed {seed} (TRUST_SEED={seed} replays it)", *(extra or [])]
        notes += [f"UNEXPECTED: {sample}" for sample in self.samples]
        return Row(self.scenario, trials=self.trials, errors=self.errors, notes=notes)


def drive(tally: Tally, strategy: st.SearchStrategy[Any], check: Callable[[Any], None], *, examples: int,
          seed: int, explicit: tuple[Any, ...] = ()) -> None:
    """Run ``check`` on the ``explicit`` inputs (known-nasty cases, tried every run), then on
    ``examples`` inputs drawn from ``strategy``; count them and what went wrong.

    Failures are recorded, not raised, so one bad input does not hide the next:
    the budget is always spent in full.
    """

    def attempt(value: Any) -> None:
        tally.trials += 1
        try:
            check(value)
        except Violation as exc:
            tally.failed(value, f"violation: {exc}")
        except Exception as exc:  # noqa: BLE001 - this is what the suite looks for
            where = traceback.extract_tb(exc.__traceback__)[-1]
            tally.failed(value, f"{type(exc).__name__}: {str(exc)[:200]} at {Path(where.filename).name}:{where.lineno}")

    for value in explicit:
        attempt(value)

    @hypothesis_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, derandomize=False, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=True)
    @given(strategy)
    def target(value: Any) -> None:
        attempt(value)

    target()


def one_line(exc: BaseException) -> None:
    """The project's errors are one line (DEVELOPERS.md); a multi-line message is a violation."""
    message = str(exc)
    if "\n" in message or "Traceback" in message:
        raise Violation(f"{type(exc).__name__} message is not one line: {message[:200]!r}")


def budget(quick: bool, kind: str = "") -> int:
    base = QUICK if quick else FULL
    return max(20, int(base * SHARE.get(kind, 1.0)))


def run_seed() -> int:
    given_seed = os.environ.get("TRUST_SEED")
    return int(given_seed) if given_seed else random.SystemRandom().randrange(2**32)


# -- hostile values ---------------------------------------------------------------------------

CONTROLS = ["\r", "\n", "\r\n", "\x00", "\x0b", "\x0c", "\u2028", "\u2029", "\u0085", "\x1b", "\x7f", "\t", "\ufeff"]
YAML_HOSTILE = [
    "&a [1, 2]", "*a", "*undefined", "!!python/object/apply:os.system ['true']", "!!python/name:os.system",
    "!!binary AAAA", "!!binary not-base64!", "!!timestamp 2024-13-45", "!!int xyz", "!!float nope", "!!set {a, b}",
    "!!omap [a: 1]", "!custom x", "[", "]", "{", "}", "|", ">", "|-", "- x", "? x", "%YAML 1.1", "@x", "`x`",
    "'unterminated", '"unterminated', '"\\x00\\u2028"', '"\\uD800"', '"\\U0010FFFF"', "0x1F", "0o17", "0b101",
    "1e400", "-1e400", ".inf", "-.inf", ".nan", "1_000", "190:20:30", "99999999999999999999999999",
    "-99999999999999999999", "2024-02-30", "2024-13-01 25:61:61", "9999-12-31 23:59:59 +99:00", "0000-00-00",
    "0001-01-01 00:00:00 -23:59", "9999-12-31T23:59:59.999999999-23:59", "2024-03-08T12:00:00Z junk",
    "1710000000", "-62135596800", "253402300800", "yes", "no", "on", "off", "~", "null", "true", "TRUE", "",
    "a: b", "a #c", "{a: [b, {c: d}]}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "*", "&",
    "<%= raise %>", "{{ 7*7 }}", "{% raw %}", "\\", "'", '"', "é" * 50, "\U0001f600", "\ud7ff\ue000",
]
DATE_KEYS = ["created_at", "updated_at", "date", "updated", "lastmod"]
ATTRIBUTE_KEYS = ["page_title", "title", "author", "authors", "kind", "type", "tags", "draft", "erb", "render_as",
                  "extension", "slug", *DATE_KEYS]


def _bomb(levels: int) -> str:
    """A YAML alias expansion bomb ("billion laughs") of ``levels`` levels."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines)


_CACHE: dict[Any, st.SearchStrategy[Any]] = {}


def cached(key: Any, make: Callable[[], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One strategy object per key: building strategies inside composites is slow."""
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """Text with a fair share of controls, YAML syntax and non-BMP characters."""
    return cached(("texts", max_size), lambda: st.one_of(
        st.text(max_size=max_size),
        st.sampled_from(YAML_HOSTILE),
        st.lists(st.sampled_from(CONTROLS + YAML_HOSTILE[:30] + ["a", " ", ":", "#"]), max_size=8).map("".join),
    ))


def safe_texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """Like :func:`texts`, without lone surrogates (for what must be encoded as UTF-8)."""
    return cached(("safe", max_size),
                  lambda: texts(max_size).map(lambda s: s.encode("utf-8", "replace").decode("utf-8")))


@st.composite
def attribute_block(draw: Any, *, front_matter: bool) -> str:
    """Attribute lines, snip style (``:key: value``) or YAML style (``key: value``), hostile."""
    if draw(st.integers(0, 30)) == 0:
        return _bomb(draw(st.integers(3, 10)))
    lines = []
    keys = cached("keys", lambda: st.one_of(st.sampled_from(ATTRIBUTE_KEYS),
                                            st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.?!-]{0,10}", fullmatch=True)))
    values = cached("values", lambda: st.one_of(texts(), st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
        max_leaves=8).map(json.dumps)))
    for _ in range(draw(st.integers(1, 6))):
        key = draw(keys)
        value = draw(values)
        lines.append(f"{'' if front_matter else ':'}{key}:{draw(st.sampled_from([' ', '  ', chr(9), '']))}{value}")
        for _ in range(draw(st.integers(0, 2))):  # continuation lines
            lines.append(draw(st.sampled_from(["  - item", "  - ", "-", "- x", "\t- tab", "  key: v", "  ", "   *a"])))
    return "\n".join(lines)


def to_bytes(text: str, style: int) -> bytes:
    data = text.encode("utf-8", "surrogatepass" if style == 3 else "replace")
    if style == 1:
        data = data.replace(b"\n", b"\r\n")
    elif style == 2:
        data = b"\xef\xbb\xbf" + data
    return data


@st.composite
def snip_files(draw: Any) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:
        return to_bytes(draw(st.text(max_size=300)), draw(st.integers(0, 3)))
    body = draw(st.one_of(st.just(""), texts(80), st.sampled_from(["# Title", "Body :smile: text", ":x: y"])))
    gap = draw(st.sampled_from(["\n\n", "\n", "\n \n", "\n\t\n", "\n\n\n"]))
    text = body + gap + draw(attribute_block(front_matter=False)) + draw(st.sampled_from(["", "\n", "\n\n", " "]))
    return to_bytes(text, draw(st.integers(0, 3)))


@st.composite
def front_matter_files(draw: Any) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return to_bytes("---\n" + draw(st.text(max_size=300)), draw(st.integers(0, 3)))
    close = draw(st.sampled_from(["---", "...", "--- ", "----", ""]))
    body = draw(st.one_of(st.just(""), texts(80)))
    text = f"---\n{draw(attribute_block(front_matter=True))}\n{close}\n{body}"
    return to_bytes(text, draw(st.integers(0, 3)))


POST_PATHS = ["a.snip.markdown", "b.snip.html", "c.md", "d.markdown", "e.html", "f.htm", "g.txt", "h", ".markdown"]
MTIMES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**63, 2**63).map(float),
                   st.just(1.7e9))
ZONES = ["UTC", "Europe/London", "America/St_Johns", "Pacific/Kiritimati", "Asia/Kathmandu"]


def check_post(item: tuple[str, bytes, float, str]) -> None:
    from zoneinfo import ZoneInfo

    from publisher.errors import PostError
    from publisher.posts import read_post

    path, data, mtime, zone = item
    try:
        post = read_post(path, data, mtime, tz=ZoneInfo(zone))
    except PostError as exc:
        one_line(exc)
        return
    if post.created_at.tzinfo is None or post.updated_at.tzinfo is None:
        raise Violation("a post with a naive date")
    if not isinstance(post.title, str) or not post.title:
        raise Violation("a post without a title")
    json.dumps(post.attributes)  # JSON-safe, as promised (a TypeError here is a failure)


def check_split(text: str, split: Callable[[str], Any]) -> None:
    try:
        split(text)
    except ValueError as exc:  # the low-level parsers' documented error; read_post turns it into PostError
        one_line(exc)


def fuzz_posts(quick: bool, seed: int) -> list[Row]:
    from publisher.frontmatter import read_front_matter
    from publisher.snip import read_snip

    rows = []
    for scenario, files, split in (("fuzz snip", snip_files(), read_snip),
                                   ("fuzz front matter", front_matter_files(), read_front_matter)):
        tally = Tally(scenario)
        posts = st.tuples(st.sampled_from(POST_PATHS), files, MTIMES, st.sampled_from(ZONES))

        def check(item: tuple[str, bytes, float, str], split: Callable[[str], Any] = split) -> None:
            check_post(item)
            text = item[1].decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
            check_split(text, split)

        nasty = [b"", b"\xff\xfe", b"\xef\xbb\xbf", b"\n\n\n", b"---", b"---\n", b"---\n---\n",
                 b"Body\n\n:created_at: 2024-02-30", b"Body\n\n:page_title: *a", ("Body\n\n" + _bomb(9)).encode(),
                 ("---\n" + _bomb(9) + "\n---\nBody").encode(), b"x\n\n:tags: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                 b"---\ndate: 99999-01-01\n---\nx", b"x\n\n:created_at: 1e400", b"x\n\n:draft: \"\\uD800\"",
                 b"Body\n\n:x: !!timestamp nope\n", b"---\ndate: !!timestamp 2024-13-45 junk\n---\nBody\n",
                 b"Body\n\n:x: !!python/object/apply:os.system ['true']\n", b"Body\n\n:x: !!binary '!!'\n"]
        explicit = tuple((path, data, mtime, "UTC") for data in nasty for path in ("a.snip.markdown", "b.md")
                         for mtime in (1.7e9, float("nan"), 1e300))
        drive(tally, posts, check, examples=budget(quick), seed=seed, explicit=explicit)
        rows.append(tally.row(seed))
    return rows


# -- config ---------------------------------------------------------------------------------------

BASE_CONFIG: dict[str, Any] = {
    "site": {"title": "Fuzz Site", "url": "https://fuzz.example.org/", "timezone": "Europe/London"},
    "posts": {"root": "posts"},
    "feeds": {"output": "out"},
    "state": {"directory": "state"},
    "lists": {"weekly": {"title": "Weekly", "schedule": "0 16 * * fri", "from_address": "news@fuzz.example.org"}},
    "providers": {"outbox": {"type": "outbox"}, "relay": {"type": "smtp", "host": "127.0.0.1", "port": 2525}},
    "mail": {}, "web": {}, "render": {}, "schedule": {}, "log": {},
}
CONFIG_HOSTILE = [
    "* * * * * * *", "99 99 99 99 99", "0 16 * * fri#5", "L W ? * *", "*/0 * * * *", "0 16 31 2 *", "@reboot",
    "Europe/../../etc/passwd", "/etc/localtime", "../../../../etc/localtime", "UTC\x00", "Not/AZone", "",
    "http://", "javascript:alert(1)", "https://[::1", "http://exa mple.com/", "https://h:99999/", "ftp://x/",
    "a@b", "@", "a@[127.0.0.1]", '"quoted"@example.com', "news@example.org\r\nBcc: x@y.z", "news@xn--.org",
    "/", "..", "../..", "a\x00b", "x" * 300, "0", "-5m", "99999999999999999999d", "5 m", "1y",
    "1ABC", "A B", "$HOME", "{name}", "{bogus}", "{", "tag:{domain},{date}:/{name}", "{url}", "{{ 7*7 }}",
    "{% for %}", "DEBUG", "debug", "outbox", "smtp", "mailgun", "postmark", "sendgrid", "nope",
    "starttls", "tls", "none", "atom", "rss", "json",
]


def toml_value(value: Any) -> str:
    """A TOML value (inline form) for a value made of TOML's types."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are TOML basic-string escapes
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_document(data: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(str(key))} = {toml_value(value)}\n" for key, value in data.items())


def toml_values() -> st.SearchStrategy[Any]:
    return cached("toml", _toml_values)


def _toml_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.sampled_from(CONFIG_HOSTILE), safe_texts(30), st.integers(-2**63, 2**63 - 1), st.floats(),
        st.booleans(), st.datetimes(timezones=st.none() | st.just(timezone.utc)),
    )
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "title", "url", "x", "root", "1"]) | st.text(max_size=5), kids, max_size=3), max_leaves=6)


def config_paths() -> list[tuple[str, ...]]:
    """Every key a config can hold (by the models), plus sections and whole tables."""
    from publisher import config as cfg

    paths: list[tuple[str, ...]] = [("lists",), ("providers",), ("path",), ("unknown",)]
    sections = {"site": cfg.SiteConfig, "posts": cfg.PostsConfig, "render": cfg.RenderConfig, "feeds": cfg.FeedsConfig,
                "state": cfg.StateConfig, "schedule": cfg.ScheduleConfig, "log": cfg.LogConfig, "mail": cfg.MailConfig,
                "web": cfg.WebConfig}
    for name, model in sections.items():
        paths += [(name,), *((name, field) for field in model.model_fields)]
    paths += [("mail", "dkim", field) for field in cfg.DkimConfig.model_fields]
    paths += [("lists", "weekly", field) for field in cfg.ListConfig.model_fields]
    for model in (cfg.OutboxProvider, cfg.SmtpProvider, cfg.MailgunProvider, cfg.PostmarkProvider, cfg.SendgridProvider):
        paths += [("providers", "relay", field) for field in model.model_fields]
    paths += [("lists", "Bad Name"), ("lists", "x" * 70), ("providers", "relay", "type")]
    return paths


@st.composite
def config_documents(draw: Any, paths: list[tuple[str, ...]]) -> str:
    """TOML text: arbitrary, or the base config with 1-5 keys set to hostile values."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:
        fragments = ["[site]", "[lists.weekly]", "title = ", '"x"', "= 1", "[[a]]", "\n", "a.b.c = 1", "'''", '"""',
                     "x = [1, 'a']", "x = {a = 1}", "1979-05-27T07:32:00Z", "[site]\n[site]", "#", "\\u0000", "inf"]
        return toml_document(BASE_CONFIG) + "".join(draw(st.lists(st.sampled_from(fragments), max_size=8)))
    data = json.loads(json.dumps(BASE_CONFIG))
    for _ in range(draw(st.integers(1, 5))):
        path = draw(st.sampled_from(paths))
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if draw(st.integers(0, 9)) == 0:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = draw(toml_values())
    providers = data.get("providers")
    if isinstance(providers, dict) and providers.get("relay") == {}:
        data["providers"]["relay"] = {"type": draw(st.sampled_from(["smtp", "mailgun", "postmark", "sendgrid", "x"]))}
    return toml_document(data)


def fuzz_config(work: Path, quick: bool, seed: int) -> list[Row]:
    from publisher.config import load_config
    from publisher.errors import ConfigError

    folder = work / "config"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "config.toml"
    target.write_text(toml_document(BASE_CONFIG), encoding="utf-8")
    load_config(target)  # the base itself is valid: mutations are what fail
    tally = Tally("fuzz config")
    accepted = [0]

    def check(document: str) -> None:
        target.write_bytes(document.encode("utf-8", "surrogatepass"))
        try:
            load_config(target)
        except ConfigError as exc:
            one_line(exc)
            for problem in exc.problems:
                if "\n" in problem:
                    raise Violation(f"a problem line with a line break: {problem[:200]!r}") from None
            return
        accepted[0] += 1

    base = toml_document(BASE_CONFIG)
    explicit = ("", "\x00", "[site]\ntitle = 1\n", base + '"x" = "\\ud800"\n', base.replace('"UTC"', '"Europe/../../etc/passwd"'),
                base.replace('"Europe/London"', '"\\u0000"'), base.replace('"0 16 * * fri"', '"99 99 99 99 99"'),
                base.replace('"0 16 * * fri"', '"* * * * * * *"'), base.replace('"posts"', '[1, 2]'),
                base + '"web" = {"port" = 1e400}\n', base.replace('"Weekly"', '"W\\r\\nBcc: x@y.z"'))
    drive(tally, config_documents(config_paths()), check, examples=budget(quick), seed=seed, explicit=explicit)
    return [tally.row(seed, [f"{accepted[0]} of them valid configs"])]


# -- CSV import -----------------------------------------------------------------------------------

EMAILS = ["ann@example.org", "Ann@Example.ORG", " bob@example.org ", "o'neil+tag@example.org", "a{{7*7}}z@example.org",
          "ünï@exämple.org", "x@localhost", "x@[127.0.0.1]", "bad", "@example.org", "a@b@c", "a..b@example.org",
          '"q"@example.org', "a@example.org\r\nBcc: b@example.org", "a@-example.org", "", " ", "=cmd|' /C calc'!A0",
          "stop1@example.org", "stop2@example.org", "stop3@example.org"]
STOPPED = {"stop1@example.org": "unsubscribed", "stop2@example.org": "bounced", "stop3@example.org": "complained"}


@st.composite
def csv_files(draw: Any) -> tuple[bytes, int | None]:
    """(file bytes, data rows expected or None when the bytes are arbitrary)."""
    header = draw(st.sampled_from([["email", "name"], ["Email ", " NAME"], ["name", "email", "extra"], ["email"],
                                   ["e-mail", "name"], ["email", "email"], []]))
    if draw(st.integers(0, 3)) == 0:
        head = ",".join(header).encode() + draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
        return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + head + draw(st.binary(max_size=400)), None
    cell = st.one_of(st.sampled_from(EMAILS), safe_texts(30))
    rows = draw(st.lists(st.lists(cell, max_size=4), max_size=25))
    buffer = io.StringIO()
    ending = draw(st.sampled_from(["\r\n", "\n"]))
    # csv.writer quotes CR only when it is in the line terminator: quote everything with a bare LF
    writer = csv.writer(buffer, lineterminator=ending, quoting=csv.QUOTE_MINIMAL if ending == "\r\n" else csv.QUOTE_ALL)
    writer.writerow(header)
    written = 0
    for row in rows:
        row = [value.replace("\x00", "") for value in row]  # csv can't write NUL in every version
        writer.writerow(row)
        written += any(value.strip() for value in row)
    prefix = draw(st.sampled_from(["", "\ufeff", "\n\n"]))
    return (prefix + buffer.getvalue()).encode("utf-8"), written


def fuzz_csv(work: Path, quick: bool, seed: int) -> list[Row]:
    from sqlalchemy import func, select

    from publisher.errors import SubscriberError
    from publisher.schema import subscriptions
    from publisher.state import Store
    from publisher.subscribers import Subscribers

    folder = work / "csv"
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{folder / 'state.db'}")
    store.migrate()
    api = Subscribers(store)
    tally = Tally("fuzz csv import")
    counter = [0]
    imported = [0]

    def check(item: tuple[bytes, int | None]) -> None:
        data, expected = item
        counter[0] += 1
        list_name = f"list-{counter[0]}"
        for address, status in STOPPED.items():
            sid = api.add(address, lists=[list_name])
            api.set_status(sid, list_name, status)
        path = folder / f"import-{counter[0] % 3}.csv"
        path.write_bytes(data)
        with store.begin() as conn:
            before = conn.scalar(select(func.count()).where(subscriptions.c.list == list_name))
        try:
            report = api.import_csv(path, list_name)
        except SubscriberError as exc:
            one_line(exc)
            return
        imported[0] += report.rows
        with store.begin() as conn:
            after = conn.scalar(select(func.count()).where(subscriptions.c.list == list_name))
            stopped = dict(conn.execute(select(subscriptions.c.status, func.count()).where(
                subscriptions.c.list == list_name, subscriptions.c.status.in_(list(set(STOPPED.values()))))
                .group_by(subscriptions.c.status)).all())
        if report.added + report.updated + report.skipped + report.bad != report.rows:
            raise Violation(f"counts do not add up: {report.line()}")
        if expected is not None and report.rows != expected:
            raise Violation(f"{expected} data rows but the report counts {report.rows}: {report.line()}")
        if after - before != report.added:
            raise Violation(f"{after - before} new subscriptions but the report says {report.added} added")
        if stopped != {status: 1 for status in STOPPED.values()}:
            raise Violation(f"a stopped subscription changed: {stopped}")
        if report.bad != len(report.bad_rows) or report.skipped != len(report.skipped_rows):
            raise Violation("a bad or skipped row without its line and reason")
        if any("\n" in reason for _, reason in report.bad_rows + report.skipped_rows):
            raise Violation("a row reason with a line break")

    explicit = ((b"", None), (b"email\n\xff\xfe\n", None), (b'email\n"unterminated\nann@example.org\n', None),
                (b"\x00email\n", None), (b"email,name\r\nann@example.org,\x00\r\n", None), (b"name\nann\n", None),
                ("email\n" + "stop1@example.org\n" * 3 + "Stop2@Example.org\n", 4))
    explicit = tuple((data if isinstance(data, bytes) else data.encode(), rows) for data, rows in explicit)
    drive(tally, csv_files(), check, examples=budget(quick, "csv"), seed=seed, explicit=explicit)
    store.close()
    return [tally.row(seed, [f"{imported[0]} CSV data rows imported or rejected"])]


# -- webhooks -----------------------------------------------------------------------------------------

MAILGUN_KEY = "fuzz-mailgun-signing-key-0123456789"
POSTMARK_USER, POSTMARK_PASSWORD = "fuzz-hooks", "fuzz-postmark-password-0123456789"
HOOK_EMAILS = ["ann@example.org", "bob@example.org", "cy@example.org", "nobody@example.org", "ANN@EXAMPLE.ORG", "",
               "not an address", None, 5, ["ann@example.org"]]


def sendgrid_keys() -> tuple[Any, str]:
    """A P-256 key pair: (private key, public key as SendGrid shows it: base64 DER)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(public).decode("ascii")


def sendgrid_sign(private: Any, timestamp: str, body: bytes) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return base64.b64encode(private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode("ascii")


def json_values() -> st.SearchStrategy[Any]:
    return cached("json", _json_values)


def _json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
        | safe_texts(20) | st.sampled_from(HOOK_EMAILS[:5]),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(safe_texts(10), kids, max_size=4), max_leaves=12)


FIELDS = {
    "mailgun": {"event": ["failed", "complained", "unsubscribed", "delivered", "", 1],
                "severity": ["permanent", "temporary", None, 3], "reason": ["old", "suppress-bounce", "generic", None],
                "recipient": HOOK_EMAILS, "user-variables": [{"delivery-id": "1"}, {"delivery-id": -1}, [], "x"],
                "message": [{"headers": {"message-id": "<d1.s1.abc@example.org>"}}, {"headers": []}, [], "x"],
                "id": ["evt", "", None, 7], "timestamp": [1.5, "x", None]},
    "postmark": {"RecordType": ["Bounce", "SpamComplaint", "SubscriptionChange", "Delivery", "", None, 1],
                 "Type": ["HardBounce", "SoftBounce", "SpamComplaint", "Unsubscribe", "AutoResponder", None, []],
                 "Email": HOOK_EMAILS, "Recipient": HOOK_EMAILS, "ID": [1, "x", None, 2**80],
                 "SuppressSending": [True, False, "true", None], "SuppressionReason": ["HardBounce", "ManualSuppression", 1],
                 "Metadata": [{"delivery_id": "1"}, {"delivery_id": 10**30}, [], None], "MessageID": ["m", None]},
    "sendgrid": {"event": ["bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe", "open", "", 1],
                 "type": ["bounce", "blocked", None], "reason": ["Bounced Address", "Invalid", "Spam Content", None, 1],
                 "email": HOOK_EMAILS, "delivery_id": ["1", 1, -1, True, "9" * 30],
                 "custom_args": [{"delivery_id": "2"}, [], "x"], "sg_event_id": ["e1", None, 1], "smtp-id": ["<x>", 1]},
}


@st.composite
def hook_payloads(draw: Any, provider: str) -> Any:
    """Near-valid events: the provider's fields with right, wrong-typed and missing values, plus noise."""
    if draw(st.integers(0, 4)) == 0:
        return draw(json_values())
    fields = FIELDS[provider]
    event = {}
    for name, choices in fields.items():
        if draw(st.booleans()):
            event[name] = draw(cached((provider, name), lambda: st.one_of(st.sampled_from(choices), json_values())))
    event.update(draw(cached("extra", lambda: st.dictionaries(safe_texts(8), json_values(), max_size=2))))
    if provider == "sendgrid":
        others = draw(cached("others", lambda: st.lists(st.one_of(st.none(), json_values()), max_size=3)))
        return [event if other is None else other for other in [None, *others]]
    return event


@dataclass
class HookKeys:
    sendgrid_private: Any
    sendgrid_public: str

    @property
    def environ(self) -> dict[str, str]:
        return {"PUBLISHER_SECRET": "fuzz-publisher-secret-0123456789", "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
                "POSTMARK_WEBHOOK_USER": POSTMARK_USER, "POSTMARK_WEBHOOK_PASSWORD": POSTMARK_PASSWORD,
                "SENDGRID_WEBHOOK_VERIFICATION_KEY": self.sendgrid_public}

    def sign(self, provider: str, payload: Any, now: float, token: str) -> tuple[bytes, dict[str, str]]:
        """A body and headers that pass the provider's authentication."""
        stamp = str(int(now))
        if provider == "mailgun":
            signature = {"timestamp": stamp, "token": token,
                         "signature": hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()}
            return json.dumps({"signature": signature, "event-data": payload}).encode(), {}
        body = json.dumps(payload).encode()
        if provider == "postmark":
            basic = base64.b64encode(f"{POSTMARK_USER}:{POSTMARK_PASSWORD}".encode()).decode()
            return body, {"authorization": f"Basic {basic}"}
        return body, {"x-twilio-email-event-webhook-signature": sendgrid_sign(self.sendgrid_private, stamp, body),
                      "x-twilio-email-event-webhook-timestamp": stamp}


HEADER_NAMES = ["authorization", "content-type", "x-twilio-email-event-webhook-signature",
                "x-twilio-email-event-webhook-timestamp", "x-forwarded-for", "x-anything"]
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60),
    st.sampled_from(["Basic ", "Basic ::::", "Basic " + base64.b64encode(b"fuzz-hooks:wrong").decode(), "Bearer x",
                     "basic " + base64.b64encode(b"\xff\xfe:\x00").decode(), "1710000000", "-1", "99999999999999999999",
                     "MEUCIQ==", "application/json", "text/plain; charset=utf-16", "nan", "1e99"]),
).map(str.strip)  # HTTP forbids white space around a header value: httpx would refuse to send it


@st.composite
def hook_requests(draw: Any) -> tuple[str, bytes, dict[str, str], bool]:
    """(provider, body, headers, signed): arbitrary or forged requests, and some correctly signed ones."""
    provider = draw(st.sampled_from(sorted(FIELDS)))
    mode = draw(st.integers(0, 3))
    if mode == 0:
        body = draw(st.binary(max_size=300))
    elif mode == 1:
        body = json.dumps(draw(json_values())).encode()
    else:
        payload = draw(hook_payloads(provider))
        body = json.dumps({"signature": {"timestamp": draw(st.sampled_from(["1710000000", "x", ""])),
                                         "token": draw(safe_texts(10)), "signature": draw(safe_texts(64))},
                           "event-data": payload} if provider == "mailgun" else payload).encode()
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUES, max_size=4))
    signed = mode == 3 and draw(st.booleans())
    return provider, body, headers, signed


_MAILGUN_BODY = {"signature": {"timestamp": "1710000000", "token": "t", "signature": "\u00e9"}, "event-data": {}}
NASTY_HOOKS = (
    ("mailgun", json.dumps(_MAILGUN_BODY).encode(), {}, False),  # a non-ASCII signature
    ("mailgun", json.dumps({**_MAILGUN_BODY, "signature": {"timestamp": "nan", "token": "t", "signature": "0"}}).encode(),
     {}, False),
    ("mailgun", b'{"signature": [], "event-data": 1}', {}, False),
    ("mailgun", b"\xff", {}, False),
    ("postmark", b"{}", {"authorization": "Basic w6k6w6k="}, False),
    ("postmark", b"{}", {"authorization": "Basic Og=="}, False),  # ":" : empty user and password
    ("sendgrid", b"[]", {"x-twilio-email-event-webhook-signature": "!!", "x-twilio-email-event-webhook-timestamp": "1"},
     False),
    ("sendgrid", b"[]", {"x-twilio-email-event-webhook-signature": "MAYCAQACAQA=",
                         "x-twilio-email-event-webhook-timestamp": "99999999999999999999999"}, False),
    ("sendgrid", json.dumps([{"event": "bounce", "email": "ann@example.org"}] * 50).encode(), {}, True),
    ("postmark", json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "Email": "ann@example.org",
                             "Metadata": {"delivery_id": 10**30}}).encode(), {}, True),
)


def subscription_snapshot(store: Any) -> tuple[Any, ...]:
    from sqlalchemy import select

    from publisher.schema import subscriptions

    query = select(subscriptions.c.subscriber_id, subscriptions.c.list, subscriptions.c.status,
                   subscriptions.c.soft_bounces).order_by(subscriptions.c.id)
    with store.begin() as conn:
        return tuple(tuple(row) for row in conn.execute(query))


def hook_site(work: Path, environ: dict[str, str]) -> Any:
    from publisher.config import load_config

    work.mkdir(parents=True, exist_ok=True)
    (work / "posts").mkdir(exist_ok=True)
    (work / "config.toml").write_text(toml_document({
        "site": {"title": "Hooks", "url": "https://hooks.example.org/"}, "posts": {"root": "posts"},
        "state": {"directory": "state"}, "web": {"soft_bounce_limit": 2, "max_body": 4096},
        "lists": {"weekly": {"title": "Weekly", "schedule": "0 16 * * fri", "from_address": "news@hooks.example.org"}},
    }), encoding="utf-8")
    return load_config(work / "config.toml")


def fuzz_hook_functions(quick: bool, seed: int, keys: HookKeys) -> Row:
    from publisher.web.hooks import PROVIDERS
    from publisher.web.hooks.events import HookError

    loaded = {name: module.load(tuple(keys.environ[env] for env in module.env_names(_web_names())))
              for name, module in PROVIDERS.items()}
    tally = Tally("fuzz webhook parsers")

    def check(item: tuple[str, bytes, dict[str, str], bool]) -> None:
        provider, body, headers, signed = item
        module = PROVIDERS[provider]
        now = time.time()
        if signed:
            payload = json.loads(body) if provider != "mailgun" else json.loads(body).get("event-data")
            body, extra = keys.sign(provider, payload, now, hashlib.sha256(body).hexdigest()[:20])
            headers = {**headers, **extra}
        try:
            verified = module.verify(loaded[provider], {k.lower(): v for k, v in headers.items()}, body, now)
        except HookError as exc:
            one_line(exc)
            if signed:
                raise Violation(f"a correctly signed request refused: {exc.message}") from None
            return
        if not signed:
            raise Violation("an unsigned request passed authentication")
        try:
            module.events(verified.payload)
        except HookError as exc:
            one_line(exc)

    drive(tally, hook_requests(), check, examples=budget(quick), seed=seed, explicit=NASTY_HOOKS)
    return tally.row(seed)


def _web_names() -> Any:
    from publisher.config import WebConfig

    return WebConfig()


def fuzz_hook_http(work: Path, quick: bool, seed: int, keys: HookKeys) -> Row:
    import httpx

    from publisher.subscribers import Subscribers
    from publisher.web.server import start_in_thread

    config = hook_site(work / "hooks", keys.environ)
    handle = start_in_thread(config, environ=keys.environ, port=0)
    tally = Tally("fuzz webhooks http")
    statuses: dict[int, int] = {}
    tokens = iter(range(10**9))
    try:
        api = Subscribers(handle.ctx.store)
        for address in HOOK_EMAILS[:3]:
            api.add(address, lists=["weekly"])
        client = httpx.Client(base_url=handle.url, timeout=30)

        def check(item: tuple[str, bytes, dict[str, str], bool]) -> None:
            provider, body, headers, signed = item
            if signed:
                payload = json.loads(body) if provider != "mailgun" else json.loads(body).get("event-data")
                body, extra = keys.sign(provider, payload, time.time(), f"token-{seed}-{next(tokens)}")
                headers = {**headers, **extra}
            before = subscription_snapshot(handle.ctx.store)
            try:
                response = client.post(f"webhooks/{provider}", content=body, headers=headers)
            except httpx.TransportError:  # a connection the server dropped after an earlier answer: once more
                response = client.post(f"webhooks/{provider}", content=body, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500 or response.status_code < 200 or 300 <= response.status_code < 400:
                raise Violation(f"answered {response.status_code}: {response.text[:200]!r}")
            if "Traceback" in response.text:
                raise Violation("a traceback in the response")
            if not signed and subscription_snapshot(handle.ctx.store) != before:
                raise Violation(f"an unauthenticated request ({response.status_code}) changed subscriptions")
            if signed and response.status_code in (401, 403):
                raise Violation(f"a correctly signed request refused: {response.text[:200]!r}")

        drive(tally, hook_requests(), check, examples=budget(quick, "webhooks http"), seed=seed, explicit=NASTY_HOOKS)
        client.close()
    finally:
        handle.stop()
    shown = ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
    return tally.row(seed, [f"answers {shown}"])


def fuzz_webhooks(work: Path, quick: bool, seed: int) -> list[Row]:
    private, public = sendgrid_keys()
    keys = HookKeys(private, public)
    return [fuzz_hook_functions(quick, seed, keys), fuzz_hook_http(work, quick, seed, keys)]


# -- tokens -----------------------------------------------------------------------------------------

TOKEN_SECRETS = {1: "subscriber-one-secret", 2: "subscriber-two-secret", 3: ""}
PURPOSES = ["unsubscribe", "confirm", "preferences", "", "unsubscribe\x00"]


@st.composite
def token_cases(draw: Any, signer: Any) -> tuple[str, str, datetime, tuple[str, str, datetime | None] | None]:
    """(token, purpose, now, original) where original = (token, purpose, expiry) when derived from a valid token."""
    now = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9000, 1, 1), timezones=st.just(timezone.utc)))
    purpose = draw(st.sampled_from(PURPOSES))
    if draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(st.text(max_size=80), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=120))), purpose, now, None
    subscriber = draw(st.sampled_from(sorted(TOKEN_SECRETS)))
    expiry = draw(st.none() | st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9000, 1, 1),
                                           timezones=st.just(timezone.utc)))
    made_for = draw(st.sampled_from(PURPOSES))
    list_name = draw(st.one_of(st.sampled_from(["weekly", "*", ":", ""]), st.text(max_size=10)))
    token = signer.token(subscriber, TOKEN_SECRETS[subscriber], list_name, made_for, expiry)
    for _ in range(draw(st.integers(0, 3))):
        token = draw(mutations(token))
    return token, purpose, now, (signer.token(subscriber, TOKEN_SECRETS[subscriber], list_name, made_for, expiry),
                                 made_for, expiry)


def mutations(token: str) -> st.SearchStrategy[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. %\x00é"
    at = st.integers(0, max(len(token) - 1, 0))
    return st.one_of(
        st.tuples(at, st.sampled_from(alphabet)).map(lambda a: token[:a[0]] + a[1] + token[a[0] + 1:]),
        st.tuples(at, st.sampled_from(alphabet)).map(lambda a: token[:a[0]] + a[1] + token[a[0]:]),
        at.map(lambda i: token[:i] + token[i + 1:]),
        at.map(lambda i: token[:i]),
        st.sampled_from(["=", "==", "A", "\n", " ", "%3D"]).map(lambda s: token + s),
        st.just(token.swapcase()), st.just(token[::-1]),
        st.just(token + "=" * (-len(token) % 4)),  # padded: the same bytes, not the canonical spelling
        st.just(_unused_bits(token)),  # the same bytes again, spelled with the last character's spare bits set
    )


def _unused_bits(token: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if not token or token[-1] not in alphabet or len(token) % 4 not in (2, 3):
        return token
    spare = 0b1111 if len(token) % 4 == 2 else 0b11
    return token[:-1] + alphabet[alphabet.index(token[-1]) | spare]


def fuzz_tokens(quick: bool, seed: int) -> list[Row]:
    from publisher.errors import TokenError
    from publisher.tokens import Signer

    signer = Signer(b"fuzz-server-secret-0123456789abcdef")
    tally = Tally("fuzz tokens")
    accepted = [0]

    def secret_for(subscriber_id: int) -> str | None:
        return TOKEN_SECRETS.get(subscriber_id)

    def check(case: tuple[str, str, datetime, tuple[str, str, datetime | None] | None]) -> None:
        token, purpose, now, original = case
        try:
            signer.verify(token, purpose, secret_for, now)
        except TokenError as exc:
            one_line(exc)
            return
        accepted[0] += 1
        if original is None or token != original[0] or purpose != original[1]:
            raise Violation("a token that was not made for this purpose, or was altered, was accepted")
        if original[2] is not None and now >= original[2]:
            raise Violation("an expired token was accepted")

    good = signer.token(1, TOKEN_SECRETS[1], "weekly")
    explicit = tuple((token, "unsubscribe", NOW, (good, "unsubscribe", None)) for token in (
        "", "A" * 2000, good + "=", good + "==", good.upper(), good[:-1], " " + good, good + "\n", "\u0661" * 10,
        _unused_bits(good), "AQ", "AQ" + "A" * 43)) + ((good, "unsubscribe", NOW, (good, "unsubscribe", None)),
                                                      (good, "confirm", NOW, None))
    drive(tally, token_cases(signer), check, examples=budget(quick), seed=seed, explicit=explicit)
    return [tally.row(seed, [f"{accepted[0]} genuine tokens accepted, the rest refused with TokenError"])]


# -- the CLI ------------------------------------------------------------------------------------------


@st.composite
def cli_cases(draw: Any, paths: list[tuple[str, ...]]) -> tuple[str, list[tuple[str, bytes]], list[str]]:
    """(config text, [(post path, bytes)], command)."""
    valid = toml_document(BASE_CONFIG)
    config = draw(st.one_of(st.just(valid), config_documents(paths)))
    posts = draw(st.lists(st.tuples(st.sampled_from(["a.snip.markdown", "blog/b.md", "c.html", "weeknotes/d.snip.html"]),
                                    st.one_of(snip_files(), front_matter_files())), max_size=4))
    command = draw(st.sampled_from([["check"], ["build"], ["subscribers", "list"], ["digest", "preview", "weekly"],
                                    ["deliveries"]]))
    return config, posts, command


def fuzz_cli(work: Path, quick: bool, seed: int) -> list[Row]:
    import shutil

    from click.testing import CliRunner

    from publisher.cli import main

    tally = Tally("fuzz cli")
    runner = CliRunner()
    codes: dict[int, int] = {}
    counter = [0]
    publisher_log = logging.getLogger("publisher")
    saved = (list(publisher_log.handlers), publisher_log.level, publisher_log.propagate)

    def check(case: tuple[str, list[tuple[str, bytes]], list[str]]) -> None:
        config, posts, command = case
        counter[0] += 1
        root = work / "cli" / str(counter[0] % 4)
        shutil.rmtree(root, ignore_errors=True)
        (root / "posts").mkdir(parents=True)
        (root / "config.toml").write_bytes(config.encode("utf-8", "surrogatepass"))
        for name, data in posts:
            (root / "posts" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "posts" / name).write_bytes(data)
        try:
            result = runner.invoke(main, [*command, "--config", str(root / "config.toml"), "--log-level", "DEBUG"],
                                   catch_exceptions=True)
        finally:
            publisher_log.handlers[:], publisher_log.level, publisher_log.propagate = saved[0], saved[1], saved[2]
        codes[result.exit_code] = codes.get(result.exit_code, 0) + 1
        output = result.output + (result.stderr if hasattr(result, "stderr") else "")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise Violation(f"{' '.join(command)}: {type(result.exception).__name__}: {str(result.exception)[:200]}")
        if "Traceback" in output:
            raise Violation(f"{' '.join(command)}: a traceback in the output")

    valid = toml_document(BASE_CONFIG)
    explicit = tuple((valid, [("a.snip.markdown", data)], [command]) for data in (
        b"Body\n\n:x: !!timestamp nope\n", b"\xff\xfe", b"---\ntitle: [\n---\n") for command in ("check", "build"))
    drive(tally, cli_cases(config_paths()), check, examples=budget(quick, "cli"), seed=seed, explicit=explicit)
    shown = ", ".join(f"exit {code}: {count}" for code, count in sorted(codes.items()))
    return [tally.row(seed, [shown])]


# -- entry point ----------------------------------------------------------------------------------------


def run(work: Path, *, quick: bool) -> list[Row]:
    seed = run_seed()
    print(f"fuzz: seed {seed} (TRUST_SEED={seed} replays this run)", file=sys.stderr, flush=True)
    rows: list[Row] = []
    logging.getLogger("publisher").setLevel(logging.CRITICAL)  # the inputs are meant to make warnings
    try:
        rows += fuzz_posts(quick, seed)
        rows += fuzz_config(work, quick, seed)
        rows += fuzz_csv(work, quick, seed)
        rows += fuzz_webhooks(work, quick, seed)
        rows += fuzz_tokens(quick, seed)
        rows += fuzz_cli(work, quick, seed)
    finally:
        logging.getLogger("publisher").setLevel(logging.NOTSET)
    return rows
