"""Unit tests of the web service's parts that need no server: rate limits, log redaction, headers, CSRF."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from publisher.clock import FrozenClock
from publisher.tokens import Signer
from publisher.web.accesslog import redact
from publisher.web.ratelimit import RateLimiter
from publisher.web.security import BodyLimit, Csrf, SecurityHeaders

START = datetime(2026, 3, 6, 12, 0, tzinfo=timezone.utc)


# -- rate limiter -------------------------------------------------------------------


def test_the_window_slides_one_hit_at_a_time() -> None:
    clock = FrozenClock(START)
    limiter = RateLimiter(clock, window=3600)
    assert limiter.hit("k", 2)
    clock.advance(minutes=30)
    assert limiter.hit("k", 2)
    assert not limiter.hit("k", 2)
    assert limiter.retry_after("k", 2) == 1800
    clock.advance(minutes=30)  # the first hit has left the window, the second has not
    assert limiter.hit("k", 2)
    assert not limiter.hit("k", 2)
    assert limiter.hit("other", 2)


def test_refused_hits_are_not_counted() -> None:
    clock = FrozenClock(START)
    limiter = RateLimiter(clock, window=60)
    assert limiter.hit("k", 1)
    for _ in range(100):
        assert not limiter.hit("k", 1)
    clock.advance(seconds=60)
    assert limiter.hit("k", 1) and limiter.retry_after("k", 5) == 0


def test_memory_is_bounded_by_max_keys() -> None:
    limiter = RateLimiter(FrozenClock(START), max_keys=100)
    for n in range(1000):
        limiter.hit(f"client:{n}", 5)
    assert len(limiter) <= 100
    assert limiter.hit("client:999", 2)  # the most recent keys are the ones kept
    assert not limiter.hit("client:999", 2)


# -- log redaction --------------------------------------------------------------------


def test_token_segments_and_query_strings_are_cut() -> None:
    assert redact("/newsletter/unsubscribe/abc?x=1") == "/newsletter/unsubscribe/…"
    assert redact("/confirm/AbC_-x") == "/confirm/…"
    assert redact("/newsletter/preferences/t/extra") == "/newsletter/preferences/…/extra"
    assert redact("/newsletter/unsubscribe") == "/newsletter/unsubscribe"
    assert redact("/newsletter/unsubscribe/") == "/newsletter/unsubscribe/"
    assert redact("/newsletter/subscribe/weekly") == "/newsletter/subscribe/weekly"
    assert redact("/feeds/" + "a" * 40) == "/feeds/…"


@given(subscriber_id=st.integers(0, 10**9), list_name=st.text(min_size=1, max_size=40),
       purpose=st.sampled_from(["unsubscribe", "confirm", "preferences"]),
       prefix=st.sampled_from(["", "/newsletter", "/a/b"]), suffix=st.sampled_from(["", "/", "?q=1", "/x"]))
def test_no_token_survives_redaction(subscriber_id: int, list_name: str, purpose: str, prefix: str,
                                     suffix: str) -> None:
    token = Signer(b"k" * 32).token(subscriber_id, "secret", list_name, purpose)
    path = f"{prefix}/{purpose}/{token}{suffix}"
    redacted = redact(path)
    assert token not in redacted and redacted.startswith(f"{prefix}/{purpose}/…")


# -- middleware -------------------------------------------------------------------------


def run_app(app: Any, body_chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None) -> list[dict]:
    sent: list[dict] = []
    chunks = list(body_chunks)

    async def receive() -> dict:
        body = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers or []}
    asyncio.run(app(scope, receive, send))
    return sent


async def reading_app(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_route_keeps_its_own_csp_and_gets_every_other_header() -> None:
    sent = run_app(SecurityHeaders(reading_app, https=True), [b""])
    headers = dict(sent[0]["headers"])
    assert headers[b"content-security-policy"] == b"default-src 'none'; style-src 'unsafe-inline'"
    assert headers[b"x-frame-options"] == b"DENY" and headers[b"cache-control"] == b"no-store"
    assert headers[b"strict-transport-security"].startswith(b"max-age=")


def test_the_body_limit_counts_a_streamed_body() -> None:
    sent = run_app(BodyLimit(reading_app, limit=10), [b"12345", b"67890", b"1"])
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    ok = run_app(BodyLimit(reading_app, limit=10), [b"12345", b"67890"])
    assert ok[0]["status"] == 200
    declared = run_app(BodyLimit(reading_app, limit=10), [], headers=[(b"content-length", b"11")])
    assert declared[0]["status"] == 413


def test_a_csrf_token_belongs_to_its_session_and_its_server_secret() -> None:
    csrf = Csrf(b"s" * 32, https=False, path="/")
    session, new = csrf.session({})
    assert new and csrf.session({csrf.cookie_name: session}) == (session, False)
    token = csrf.token(session)
    assert csrf.valid({csrf.cookie_name: session}, token)
    other, _ = csrf.session({})
    assert not csrf.valid({csrf.cookie_name: other}, token)
    assert not csrf.valid({}, token) and not csrf.valid({csrf.cookie_name: session}, None)
    assert not Csrf(b"t" * 32, https=False, path="/").valid({csrf.cookie_name: session}, token)
    assert csrf.session({csrf.cookie_name: "short"})[1]  # a malformed cookie is replaced
