"""SendGrid's Signed Event Webhook: a JSON array of events, signed with ECDSA P-256.

``X-Twilio-Email-Event-Webhook-Signature`` is a base64 DER ECDSA signature
(SHA-256) of ``X-Twilio-Email-Event-Webhook-Timestamp`` followed by the raw body;
the verification key (SendGrid's "public key", base64 DER SubjectPublicKeyInfo,
or PEM) comes from the environment.  A timestamp older than :data:`MAX_AGE` is
refused; a replayed body is harmless because each ``sg_event_id`` is applied once.

Events: ``bounce`` (``type`` bounce is hard, ``blocked`` soft), ``dropped`` (by
reason: Bounced Address and Invalid are hard, Spam Reporting Address a complaint,
Unsubscribed Address and Group Unsubscribe unsubscribed; other reasons, such as
Spam Content, say nothing about the address and are ignored), ``spamreport``,
``unsubscribe`` and ``group_unsubscribe``.  ``custom_args`` come back as
top-level fields of each event (``delivery_id``), or under ``custom_args``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from publisher.web.hooks.events import Event, Forbidden, Malformed, Verified, json_body, number, text

NAME = "sendgrid"
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
MAX_AGE = 36 * 3600  # SendGrid retries for up to 24 hours
MAX_SKEW = 5 * 60
_DROPPED = {"bounced address": "hard", "invalid": "hard", "spam reporting address": "complaint",
            "unsubscribed address": "unsubscribe", "group unsubscribe": "unsubscribe"}
_SIMPLE = {"spamreport": "complaint", "unsubscribe": "unsubscribe", "group_unsubscribe": "unsubscribe"}


def env_names(web: Any) -> tuple[str, ...]:
    return (web.sendgrid_verification_key_env,)


def load(values: tuple[str, ...]) -> Any:
    """The verification key from its base64 DER (or PEM) text; ValueError when it is not a P-256 key."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    value = values[0].strip()
    try:
        key = load_pem_public_key(value.encode()) if value.startswith("-----") else \
            load_der_public_key(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError("not a base64 DER or PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify(key: Any, headers: Any, body: bytes, now: float) -> Verified:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    signature, timestamp = headers.get(SIGNATURE, ""), headers.get(TIMESTAMP, "")
    if not signature or not timestamp:
        raise Forbidden("no SendGrid signature headers")
    try:
        key.verify(base64.b64decode(signature, validate=True), timestamp.encode("utf-8") + body,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise Forbidden("the SendGrid signature does not match") from exc
    if not timestamp.isdigit() or not -MAX_SKEW <= now - int(timestamp) <= MAX_AGE:
        raise Forbidden("the SendGrid signature timestamp is stale")
    return Verified(json_body(body))


def events(payload: Any) -> list[Event]:
    if not isinstance(payload, list):
        raise Malformed("the body must be a JSON array of events")
    found = []
    for index, item in enumerate(payload):
        if not isinstance(item, dict) or text(item.get("event")) is None:
            raise Malformed(f"event {index} is not an object with an 'event' field")
        event = _event(item)
        if event is not None:
            found.append(event)
    return found


def _event(item: dict[str, Any]) -> Event | None:
    name = str(item["event"])
    kind = _kind(name, text(item.get("type")), text(item.get("reason")))
    if kind is None:
        return None
    custom = item.get("custom_args") if isinstance(item.get("custom_args"), dict) else {}
    delivery_id = number(item.get("delivery_id")) or number(custom.get("delivery_id"))
    detail = f"{name} {item.get('type') or item.get('reason') or ''}".strip()
    return Event(NAME, kind, text(item.get("email")), delivery_id, text(item.get("smtp-id")),
                 text(item.get("sg_event_id")), detail)


def _kind(name: str, bounce_type: str | None, reason: str | None) -> str | None:
    if name == "bounce":
        return "soft" if bounce_type == "blocked" else "hard"
    if name == "dropped":
        return _DROPPED.get((reason or "").lower())
    return _SIMPLE.get(name)
