"""SendGrid: ``POST /v3/mail/send`` with one personalization per recipient (at most 1,000 a call).

The content is sent once per call with substitution tags: the letter's own
placeholders (``@@PUBLISHER:name@@``) in the text part take raw values, and
``@@PUBLISHER:name_html@@`` in the HTML part takes HTML-escaped ones; each
personalization carries its recipient's ``substitutions``, its own headers
(``List-Unsubscribe``, ``Message-ID``) and ``custom_args.delivery_id`` (echoed in
SendGrid's event webhook).  Shared headers (``List-Id``,
``List-Unsubscribe-Post``) are set once at the top level.

SendGrid answers 202 with an empty body and an ``X-Message-Id`` header for the
call; that is every recipient's ``provider_id`` (SendGrid's per-recipient
``sg_message_id`` in webhooks starts with it).  Should SendGrid replace our
Message-ID header, ``provider_id`` and ``custom_args.delivery_id`` still link
its events back to the delivery.  Display names with ``,`` or ``;`` are quoted
(SendGrid does not quote them itself in personalizations).

The JSON body is assembled from the per-call personalizations and the shared
part, which is encoded once per letter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from publisher.mail.letter import Letter, Recipient, placeholder
from publisher.providers._http import (
    HttpProvider,
    Rejected,
    Variables,
    clean,
    convert,
    jstr,
    list_unsubscribe,
    one_line,
    shared_headers,
    unsubscribe_mailto,
)
from publisher.providers.base import Result

PATH = "v3/mail/send"
_NEEDS_QUOTES = re.compile(r'[,;"<>()@\\]')


@dataclass(frozen=True, slots=True)
class Prepared:
    letter: Letter
    tail: bytes  # ',"from":...}' : everything after the personalizations
    variables: Variables  # substitution tag -> value
    mailto: str


class SendgridProvider(HttpProvider):
    """Personalized sending through SendGrid's v3 Mail Send API."""

    type: ClassVar[str] = "sendgrid"
    max_batch = 1000

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def prepare(self, letter: Letter) -> Prepared:
        shared: dict[str, Any] = {"from": json.loads(_address(letter.from_address, letter.from_name)),
                                  "subject": clean(letter.subject)}
        if letter.reply_to:
            shared["reply_to"] = {"email": clean(letter.reply_to)}
        shared["content"] = [
            {"type": "text/plain", "value": letter.text},
            {"type": "text/html", "value": convert(letter.html, lambda field: placeholder(f"{field}_html"))},
        ]
        shared["headers"] = shared_headers(letter)
        if letter.digest_id is not None:
            shared["custom_args"] = {"digest_id": str(letter.digest_id)}
        variables = Variables(letter, placeholder, lambda field: placeholder(f"{field}_html"))
        tail = b"," + json.dumps(shared).encode("ascii")[1:]
        return Prepared(letter, tail, variables, unsubscribe_mailto(letter))

    def deliver(self, prepared: Prepared, batch: Sequence[Recipient]) -> list[Result]:
        letter, members, mailto = prepared.letter, prepared.variables.json, prepared.mailto
        personalizations = ", ".join([
            f'{{"to": [{_address(r.email, r.name)}], "substitutions": {{{members(r)}}}, '
            f'"headers": {{"List-Unsubscribe": {jstr(list_unsubscribe(letter, r, mailto))}, '
            f'"Message-ID": {jstr(one_line(r.message_id))}}}, "custom_args": {{"delivery_id": "{r.delivery_id}"}}}}'
            for r in batch
        ])
        body = b'{"personalizations": [' + personalizations.encode("ascii") + b"]" + prepared.tail
        response = self.post(PATH, body, "application/json")
        provider_id = response.headers.get("x-message-id")
        return [Result(r.delivery_id, "sent", None, None, provider_id) for r in batch]  # positional: cheaper

    def recipient_fault(self, error: Rejected) -> bool:
        """A 400 whose errors point into ``personalizations``: narrow the batch down."""
        if error.status != 400:
            return False
        try:
            errors = json.loads(error.body).get("errors") or []
        except (ValueError, AttributeError):
            return False
        return any(str((item or {}).get("field") or "").startswith("personalizations") for item in errors)


def _address(email: str, name: str | None) -> str:
    """The JSON of a SendGrid address object."""
    name = clean(name) if name else ""
    if not name:
        return f'{{"email": {jstr(email)}}}'
    if _NEEDS_QUOTES.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f'{{"email": {jstr(email)}, "name": {jstr(name)}}}'

