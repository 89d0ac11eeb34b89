"""Mailgun's webhooks: a JSON body ``{"signature": {...}, "event-data": {...}}``.

Authentication: ``signature.signature`` is the hex HMAC-SHA256, keyed with the
webhook signing key, of ``signature.timestamp`` followed by ``signature.token``.
That signature does not cover the event data, so a token is good for one body
only: a token seen before with another body is refused as a replay (the same body
again is a retry, answered 200 and applied once).  Timestamps more than
:data:`MAX_AGE` old, or :data:`MAX_SKEW` ahead, are refused as stale.

Events: ``failed`` with severity ``permanent`` is a hard bounce (except reasons
``suppress-complaint``, ``suppress-unsubscribe``: what Mailgun already knew, and
``old``: retries exhausted, counted as soft); severity ``temporary`` is a soft
bounce; ``complained`` and ``unsubscribed`` are what they say.  Everything else
(delivered, opened, ...) is ignored.  ``v:delivery-id`` comes back in
``user-variables``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from publisher.web.hooks.events import Event, Forbidden, Malformed, Verified, as_object, json_body, number, text

NAME = "mailgun"
MAX_AGE = 15 * 60  # seconds a signature stays usable (what Mailgun's own examples use)
MAX_SKEW = 5 * 60  # seconds a timestamp may be ahead of our clock
_SUPPRESSED = {"suppress-bounce": "hard", "suppress-complaint": "complaint", "suppress-unsubscribe": "unsubscribe"}


def env_names(web: Any) -> tuple[str, ...]:
    return (web.mailgun_signing_key_env,)


def load(values: tuple[str, ...]) -> bytes:
    return values[0].encode("utf-8")


def sign(key: bytes, timestamp: str, token: str) -> str:
    """The signature Mailgun sends for ``timestamp`` and ``token`` (hex)."""
    return hmac.new(key, (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()


def verify(key: bytes, headers: Any, body: bytes, now: float) -> Verified:
    data = as_object(json_body(body), "the body")
    signature = data.get("signature")
    if not isinstance(signature, dict):
        raise Forbidden("no Mailgun signature in the body")
    timestamp, token, given = (str(signature.get(k, "")) for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given) or not hmac.compare_digest(
            sign(key, timestamp, token).encode(), given.lower().encode("utf-8", "surrogatepass")):
        raise Forbidden("the Mailgun signature does not match")
    try:
        age = now - float(timestamp)
    except ValueError as exc:
        raise Forbidden("the Mailgun signature timestamp is not a number") from exc
    if age > MAX_AGE or age < -MAX_SKEW:
        raise Forbidden("the Mailgun signature timestamp is stale")
    return Verified(data.get("event-data"), token=token, body_hash=hashlib.sha256(body).hexdigest())


def events(payload: Any) -> list[Event]:
    data = as_object(payload, "event-data")
    name = text(data.get("event"))
    if name is None:
        raise Malformed("event-data.event is missing")
    kind = _kind(name, text(data.get("severity")), text(data.get("reason")))
    if kind is None:
        return []
    variables = data.get("user-variables") if isinstance(data.get("user-variables"), dict) else {}
    headers = (data.get("message") or {}).get("headers") if isinstance(data.get("message"), dict) else None
    message_id = text(headers.get("message-id")) if isinstance(headers, dict) else None
    event_id = text(data.get("id"))
    return [Event(NAME, kind, text(data.get("recipient")), number(variables.get("delivery-id")), message_id,
                  f"{event_id}:{data.get('timestamp')}" if event_id else None,
                  f"{name} {data.get('severity') or ''} {data.get('reason') or ''}".strip())]


def _kind(name: str, severity: str | None, reason: str | None) -> str | None:
    if name == "failed":
        if severity == "permanent":
            return "soft" if reason == "old" else _SUPPRESSED.get(reason or "", "hard")
        return "soft"
    return {"complained": "complaint", "unsubscribed": "unsubscribe"}.get(name)
