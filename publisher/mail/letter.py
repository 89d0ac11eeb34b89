"""A digest email rendered once, and the cheap per-recipient personalisation.

The templates are rendered a single time per digest with *placeholders* where
per-recipient values go (``{{ recipient.name }}`` renders as ``@@PUBLISHER:name@@``).
Each recipient's copy is then the rendered text with the placeholders replaced:
no template run, no MIME tree per recipient.
"""

from __future__ import annotations

import html as _html
import re
from dataclasses import dataclass
from datetime import datetime

FIELDS = ("name", "email", "unsubscribe_url")


def placeholder(field: str) -> str:
    """The marker rendered where ``field`` goes; only ``@ : _ a-z``, so escaping never changes it."""
    return f"@@PUBLISHER:{field}@@"


class Placeholders:
    """What templates see as ``recipient``: every attribute renders as its placeholder."""

    def __getattr__(self, field: str) -> str:
        if field not in FIELDS:
            raise AttributeError(f"recipient has no {field!r}; use one of {', '.join(FIELDS)}")
        return placeholder(field)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One subscriber's copy of a digest: the values that differ per message."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str | None
    message_id: str  # "<...@domain>", deterministic per digest and subscriber
    unsubscribe_url: str  # https URL with a signed token

    def values(self) -> dict[str, str]:
        return {"name": self.name or "", "email": self.email, "unsubscribe_url": self.unsubscribe_url}


@dataclass(frozen=True, slots=True)
class Letter:
    """Everything a digest email shares across recipients."""

    subject: str
    from_address: str
    from_name: str | None
    reply_to: str | None
    list_id: str  # "Weekly news <weekly.coop.example.org>"
    list_name: str
    unsubscribe_mailto: str | None
    date: datetime
    html: str  # with placeholders
    text: str  # with placeholders
    digest_id: int | None = None  # None for previews and test sends

    def __post_init__(self) -> None:
        """Line breaks as LF, as made: a bare CR before a placeholder and an LF after it are two breaks whatever
        fills it (and the encoder, which encodes the text between placeholders once, sees them so)."""
        for name in ("html", "text"):
            object.__setattr__(self, name, getattr(self, name).replace("\r\n", "\n").replace("\r", "\n"))

    def html_for(self, recipient: Recipient) -> str:
        return fill(self.html, recipient.values(), escape=True)

    def text_for(self, recipient: Recipient) -> str:
        return fill(self.text, recipient.values(), escape=False)


_MARKER = re.compile(r"@@PUBLISHER:(\w+)@@")


def fill(template: str, values: dict[str, str], *, escape: bool) -> str:
    """Replace each placeholder with its value (HTML-escaped when ``escape``), in one pass:
    a value that happens to hold a placeholder is never filled in turn."""
    if "@@PUBLISHER:" not in template:
        return template

    def value(match: re.Match[str]) -> str:
        found = values.get(match.group(1))
        if found is None:
            return match.group(0)
        return _html.escape(found) if escape else found

    return _MARKER.sub(value, template)


def split(template: str) -> list[str | tuple[str]]:
    """The template as literal strings and ``(field,)`` slots, for encoders that pre-encode the literals."""
    parts: list[str | tuple[str]] = []
    rest = template
    while (start := rest.find("@@PUBLISHER:")) >= 0:
        end = rest.find("@@", start + 12)
        field = rest[start + 12 : end] if end >= 0 else ""
        if field not in FIELDS:
            parts.append(rest[: start + 12])
            rest = rest[start + 12 :]
            continue
        parts.extend([rest[:start], (field,)])
        rest = rest[end + 2 :]
    parts.append(rest)
    return [part for part in parts if part != ""]
