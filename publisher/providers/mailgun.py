"""Mailgun: ``POST /v3/{domain}/messages`` with batch sending (at most 1,000 recipients a call).

The letter is sent once per batch as a template: its placeholders become
recipient variables (``%recipient.name%`` in the text part, ``%recipient.name_html%``,
HTML-escaped, in the HTML part) and ``recipient-variables`` carries each recipient's
values, so Mailgun sends every recipient their own message (batch sending
without recipient variables would show every address in To).  Per-recipient
headers use the same mechanism: ``h:List-Unsubscribe: %recipient.list_unsubscribe%``
and ``h:Message-Id: %recipient.message_id%`` (Mailgun honours a Message-Id given
this way).  ``v:delivery-id`` and ``v:digest-id`` come back in Mailgun's webhooks.

Mailgun answers one ``id`` for the whole call; it is stored as every recipient's
``provider_id``.  Mailgun has no escape for ``%recipient.`` in content: a post that
literally contains ``%recipient.name%`` would be filled in.

Form fields are sent as multipart/form-data (as in Mailgun's documentation); the
parts shared by every batch are encoded once per letter.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from publisher.mail.letter import Letter, Recipient
from publisher.providers._http import (
    HttpProvider,
    Rejected,
    Variables,
    jstr,
    clean,
    convert,
    display_address,
    one_line,
    shared_headers,
    unsubscribe_mailto,
)
from publisher.providers.base import Result

_RECIPIENT_WORDS = ("address", "recipient", "'to'", '"to"', " to ")


@dataclass(frozen=True, slots=True)
class Prepared:
    letter: Letter
    boundary: str
    head: bytes  # every shared form field, encoded
    variables: Variables


class MailgunProvider(HttpProvider):
    """Batch sending through Mailgun's messages API."""

    type: ClassVar[str] = "mailgun"
    max_batch = 1000

    def __init__(self, config: Any, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.path = f"v3/{quote(config.domain, safe='')}/messages"

    def auth_headers(self, key: str) -> dict[str, str]:
        token = base64.b64encode(f"api:{key}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def prepare(self, letter: Letter) -> Prepared:
        boundary = _boundary(letter)
        fields = [
            ("from", display_address(letter.from_address, letter.from_name)),
            ("subject", clean(letter.subject)),
            ("text", convert(letter.text, lambda field: f"%recipient.{field}%")),
            ("html", convert(letter.html, lambda field: f"%recipient.{field}_html%")),
        ]
        fields += [(f"h:{name}", value) for name, value in shared_headers(letter).items()]
        if letter.reply_to:
            fields.append(("h:Reply-To", clean(letter.reply_to)))
        fields += [
            ("h:List-Unsubscribe", f"<%recipient.unsubscribe_url%>{unsubscribe_mailto(letter)}"),
            ("h:Message-Id", "%recipient.message_id%"),
            ("v:delivery-id", "%recipient.delivery_id%"),
        ]
        if letter.digest_id is not None:
            fields.append(("v:digest-id", str(letter.digest_id)))
        head = b"".join(_part(boundary, name, value) for name, value in fields)
        variables = Variables(letter, str, lambda field: f"{field}_html", extra=("unsubscribe_url",))
        return Prepared(letter, boundary, head, variables)

    def deliver(self, prepared: Prepared, batch: Sequence[Recipient]) -> list[Result]:
        body = self._body(prepared, batch)
        response = self.post(self.path, body, f"multipart/form-data; boundary={prepared.boundary}")
        provider_id = _answer(response).get("id")
        return [Result(r.delivery_id, "sent", None, None, provider_id) for r in batch]  # positional: cheaper

    def _body(self, prepared: Prepared, batch: Sequence[Recipient]) -> bytes:
        to_head = f'--{prepared.boundary}\r\nContent-Disposition: form-data; name="to"\r\n\r\n'
        to = [f"{to_head}{display_address(recipient.email, recipient.name)}\r\n" for recipient in batch]
        members = prepared.variables.json
        recipient_variables = ", ".join([
            f'{jstr(r.email)}: {{{members(r)}, "message_id": {jstr(one_line(r.message_id))}, '
            f'"delivery_id": "{r.delivery_id}"}}'
            for r in batch
        ])
        parts = [prepared.head, "".join(to).encode(),
                 _part(prepared.boundary, "recipient-variables", "{" + recipient_variables + "}")]
        parts.append(f"--{prepared.boundary}--\r\n".encode("ascii"))
        return b"".join(parts)

    def recipient_fault(self, error: Rejected) -> bool:
        """Mailgun rejects the whole call (400) for one bad address: narrow it down."""
        if error.status != 400:
            return False
        message = _answer_bytes(error.body).get("message", error.line)
        return any(word in f" {message.lower()} " for word in _RECIPIENT_WORDS)


def _part(boundary: str, name: str, value: str) -> bytes:
    return f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def _boundary(letter: Letter) -> str:
    while True:
        boundary = "publisher-" + secrets.token_hex(12)
        if boundary not in letter.html and boundary not in letter.text:
            return boundary


def _answer(response: Any) -> dict[str, Any]:
    return _answer_bytes(response.content)


def _answer_bytes(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
