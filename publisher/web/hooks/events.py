"""What a provider's webhook tells us, in one shape for every provider."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

KINDS = ("hard", "soft", "complaint", "unsubscribe")


class HookError(Exception):
    """A request the webhook refuses: ``status`` and a one-line ``message`` for the response."""

    status = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class Malformed(HookError):
    status = 400


class Unauthorized(HookError):
    status = 401


class Forbidden(HookError):
    status = 403


@dataclass(frozen=True, slots=True)
class Event:
    """One bounce, complaint or unsubscribe, as the provider reported it.

    ``delivery_id`` is our ``deliveries.id`` when the provider echoed it back (Mailgun
    ``v:delivery-id``, Postmark ``Metadata.delivery_id``, SendGrid ``custom_args``);
    ``message_id`` is our Message-ID when the provider reports it; ``email`` is the
    recipient.  ``event_id`` is the provider's own ID of the event (retries repeat
    it); ``detail`` is a short reason for the log (never an address).
    """

    provider: str
    kind: str  # one of KINDS
    email: str | None
    delivery_id: int | None = None
    message_id: str | None = None
    event_id: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Verified:
    """An authenticated request: its payload, and for Mailgun the one-use token it was signed with."""

    payload: Any
    token: str | None = None  # a token seen once may come back only with the very same body
    body_hash: str | None = None


def json_body(body: bytes) -> Any:
    """The request body as JSON, or Malformed saying why not."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Malformed("the body is not UTF-8") from exc
    except ValueError as exc:
        raise Malformed(f"the body is not JSON ({exc.args[0] if exc.args else exc})") from exc


def as_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} must be a JSON object")
    return value


def text(value: Any) -> str | None:
    """A non-empty string field, or None."""
    return (value.strip() or None) if isinstance(value, str) else None


def number(value: Any) -> int | None:
    """A positive integer given as a number or as digits (our delivery IDs), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None  # beyond a database integer: not one of ours
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 19:
        return int(value.strip()) or None
    return None
