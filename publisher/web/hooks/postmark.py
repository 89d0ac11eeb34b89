"""Postmark's webhooks: one JSON record per request, protected by HTTP basic auth.

The webhook URL is configured in Postmark as ``https://USER:PASSWORD@host/webhooks/postmark``;
both are compared in constant time with the configured values.  Postmark stops
retrying when it gets 403, so a wrong password answers 401 (and the retries show
up in Postmark's log until the configuration is fixed).

Records: ``Bounce`` (``Type`` HardBounce and BadEmailAddress are hard; SoftBounce,
Transient, DnsError, SpamNotification and Blocked are soft; a SpamComplaint or
Unsubscribe type is that; the rest, such as AutoResponder, is ignored),
``SpamComplaint``, and ``SubscriptionChange`` (``SuppressSending`` true: by
``SuppressionReason`` HardBounce, SpamComplaint, or ManualSuppression =
unsubscribed; a reactivation never re-subscribes anyone).  Delivery, Open and
Click records are ignored.  ``Metadata.delivery_id`` carries our delivery ID.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from publisher.web.hooks.events import Event, Malformed, Unauthorized, Verified, as_object, json_body, number, text

NAME = "postmark"
HARD = {"HardBounce", "BadEmailAddress"}
SOFT = {"SoftBounce", "Transient", "DnsError", "SpamNotification", "Blocked"}
_BOUNCE_OTHER = {"SpamComplaint": "complaint", "Unsubscribe": "unsubscribe"}
_SUPPRESSION = {"HardBounce": "hard", "SpamComplaint": "complaint", "ManualSuppression": "unsubscribe"}
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="publisher webhooks", charset="UTF-8"'}


def env_names(web: Any) -> tuple[str, ...]:
    return (web.postmark_webhook_user_env, web.postmark_webhook_password_env)


def load(values: tuple[str, ...]) -> tuple[bytes, bytes]:
    return values[0].encode("utf-8"), values[1].encode("utf-8")


def verify(credentials: tuple[bytes, bytes], headers: Any, body: bytes, now: float) -> Verified:
    user, password = _basic(headers.get("authorization", ""))
    same_user = hmac.compare_digest(user, credentials[0])
    same_password = hmac.compare_digest(password, credentials[1])
    if not (same_user and same_password):
        raise Unauthorized("wrong or missing webhook credentials", _CHALLENGE)
    return Verified(json_body(body))


def _basic(header: str) -> tuple[bytes, bytes]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return b"", b""
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return b"", b""
    user, _, password = decoded.partition(b":")
    return user, password


def events(payload: Any) -> list[Event]:
    data = as_object(payload, "the body")
    record = text(data.get("RecordType"))
    if record is None:
        raise Malformed("RecordType is missing")
    kind, email, event_id = _classify(record, data)
    if kind is None:
        return []
    metadata = data.get("Metadata") if isinstance(data.get("Metadata"), dict) else {}
    detail = f"{record} {data.get('Type') or data.get('SuppressionReason') or ''}".strip()
    return [Event(NAME, kind, email, number(metadata.get("delivery_id")), None, event_id, detail)]


def _classify(record: str, data: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(kind or None, recipient, event ID) of one record."""
    if record in ("Bounce", "SpamComplaint"):
        kind = "complaint" if record == "SpamComplaint" else _bounce_kind(text(data.get("Type")))
        return kind, text(data.get("Email")), f"{record}:{data.get('ID')}" if data.get("ID") is not None else None
    if record == "SubscriptionChange":
        if data.get("SuppressSending") is not True:
            return None, None, None
        kind = _SUPPRESSION.get(text(data.get("SuppressionReason")) or "", "unsubscribe")
        recipient = text(data.get("Recipient"))
        return kind, recipient, f"{record}:{data.get('MessageID')}:{recipient}:{data.get('ChangedAt')}"
    return None, None, None


def _bounce_kind(bounce_type: str | None) -> str | None:
    if bounce_type in HARD:
        return "hard"
    if bounce_type in SOFT:
        return "soft"
    return _BOUNCE_OTHER.get(bounce_type or "")
