"""Postmark: ``POST /email/batch`` (at most 500 messages a call), authenticated by ``X-Postmark-Server-Token``.

Postmark's batch endpoint takes complete messages and substitutes nothing
(outside its own stored templates), so each message carries its recipient's
bodies: the letter's placeholders filled in (HTML-escaped in ``HtmlBody``, raw in
``TextBody``), exactly as ``letter.html_for(r)`` / ``letter.text_for(r)``.  To keep
that cheap the letter is split once at its placeholders and each literal piece
JSON-encoded once; a message is then a join of pre-encoded bytes.

Each message sets ``MessageStream`` (config ``message_stream``, "broadcast" by
default: digests are bulk mail) and ``Headers`` with List-Unsubscribe,
List-Unsubscribe-Post, List-Id and our Message-ID; ``Metadata.delivery_id`` comes
back in Postmark's webhooks.  Postmark identifies messages by its own
``MessageID`` (a UUID, answered per message); that is stored as ``provider_id``.

The batch answers 200 even when some messages fail: each entry of the answer
(in request order) is checked.  ErrorCode 0 is sent; 406 (inactive recipient:
Postmark suppressed the address after a hard bounce or complaint) is failed as a
bounce; 429 and 100 (maintenance) are deferred; any other code is failed with
Postmark's message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from publisher.mail.letter import Letter, Recipient, split
from publisher.providers._http import escape as html_escape
from publisher.providers._http import (
    Deferred,
    HttpProvider,
    Rejected,
    clean,
    display_address,
    recipient_headers,
    shared_headers,
    unsubscribe_mailto,
)
from publisher.providers.base import Result

PATH = "email/batch"
TRANSIENT_CODES = frozenset({100, 429})
BOUNCE_CODES = frozenset({406})
RECIPIENT_CODES = frozenset({300, 406})

Pieces = list[bytes | str]  # pre-encoded JSON string content, or a field name to fill in


@dataclass(frozen=True, slots=True)
class Prepared:
    letter: Letter
    head: bytes  # '{"From":...,' : the fields every message shares
    html: Pieces
    text: Pieces
    shared_headers: list[dict[str, str]]
    mailto: str
    metadata: str  # ', "digest_id": "7"}' or '}'


class PostmarkProvider(HttpProvider):
    """Batches of complete messages through Postmark's batch API."""

    type: ClassVar[str] = "postmark"
    key_env_attr: ClassVar[str] = "server_token_env"
    max_batch = 500

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"X-Postmark-Server-Token": key}

    def prepare(self, letter: Letter) -> Prepared:
        shared: dict[str, Any] = {
            "From": display_address(letter.from_address, letter.from_name),
            "Subject": clean(letter.subject),
            "MessageStream": self.config.message_stream,
        }
        if letter.reply_to:
            shared["ReplyTo"] = clean(letter.reply_to)
        head = json.dumps(shared).encode("ascii")[:-1] + b","
        headers = [{"Name": name, "Value": value} for name, value in shared_headers(letter).items()]
        metadata = "}" if letter.digest_id is None else f', "digest_id": {json.dumps(str(letter.digest_id))}}}'
        return Prepared(letter, head, _pieces(letter.html), _pieces(letter.text), headers,
                        unsubscribe_mailto(letter), metadata)

    def deliver(self, prepared: Prepared, batch: Sequence[Recipient]) -> list[Result]:
        messages = [self._message(prepared, recipient) for recipient in batch]
        response = self.post(PATH, b"[" + b",".join(messages) + b"]", "application/json")
        try:
            answers = json.loads(response.content)
        except ValueError:
            answers = None
        if not isinstance(answers, list) or len(answers) != len(batch):
            raise Deferred(f"http {response.status_code} with an unreadable batch answer")
        return [_result(recipient, answer) for recipient, answer in zip(batch, answers, strict=True)]

    def _message(self, prepared: Prepared, recipient: Recipient) -> bytes:
        values = recipient.values()
        own = recipient_headers(prepared.letter, recipient, prepared.mailto)
        headers = prepared.shared_headers + [{"Name": name, "Value": value} for name, value in own.items()]
        metadata = f'{{"delivery_id": "{recipient.delivery_id}"{prepared.metadata}'
        return b"".join((
            prepared.head,
            b'"To":', json.dumps(display_address(recipient.email, recipient.name)).encode("ascii"),
            b',"HtmlBody":"', _fill(prepared.html, values, escape=True),
            b'","TextBody":"', _fill(prepared.text, values, escape=False),
            b'","Headers":', json.dumps(headers).encode("ascii"),
            b',"Metadata":', metadata.encode("ascii"), b"}",
        ))

    def recipient_fault(self, error: Rejected) -> bool:
        """A call-level 422 blaming an address (ErrorCode 300/406): narrow the batch down."""
        try:
            code = int(json.loads(error.body).get("ErrorCode"))
        except (ValueError, TypeError, AttributeError):
            return False
        error.bounce = code in BOUNCE_CODES
        return code in RECIPIENT_CODES


def _pieces(template: str) -> Pieces:
    return [part[0] if isinstance(part, tuple) else _encode(part) for part in split(template)]


def _fill(pieces: Pieces, values: dict[str, str], *, escape: bool) -> bytes:
    out = []
    for piece in pieces:
        if isinstance(piece, bytes):
            out.append(piece)
        else:
            value = values[piece]
            out.append(_encode(html_escape(value) if escape else value))
    return b"".join(out)


def _encode(text: str) -> bytes:
    """``text`` as the inside of a JSON string (escaping is per character, so pieces concatenate)."""
    return json.dumps(text).encode("ascii")[1:-1]


def _result(recipient: Recipient, answer: Any) -> Result:
    answer = answer if isinstance(answer, dict) else {}
    code = answer.get("ErrorCode", -1)
    if code == 0:
        return Result(recipient.delivery_id, "sent", provider_id=answer.get("MessageID"))
    reason = f"postmark {code} {clean(str(answer.get('Message', '')))[:200]}"
    if code in TRANSIENT_CODES:
        return Result(recipient.delivery_id, "deferred", reason)
    return Result(recipient.delivery_id, "failed", reason, bounce=code in BOUNCE_CODES)
