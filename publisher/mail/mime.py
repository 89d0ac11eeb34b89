"""MIME encoding of a letter: render once, personalise cheaply.

:meth:`MimeEncoder.prepare` encodes everything a digest's copies share once: the
shared header lines, and the text and HTML bodies as quoted-printable segments
between the per-recipient placeholders (see :func:`publisher.mail.letter.split`).
:meth:`Prepared.encode` then only encodes each recipient's own values (name,
address, unsubscribe URL, Message-ID) and splices them in.

The splice is exact because every piece of a body is made of whole lines: a
pre-encoded segment or an encoded value that does not end at a line break is
closed with a quoted-printable soft line break (``=`` CRLF), so the next piece
starts a fresh line, no line grows past 76 characters and decoding the joined
body gives exactly the filled text (with CRLF line breaks, the canonical form of
``text/*``).  Whole-line pieces also make DKIM's relaxed body canonicalization
piecewise, so the shared segments are canonicalized once per letter.

The boundary is random per letter and starts with ``=_``, which quoted-printable
never produces, so no body can contain it (checked anyway).
"""

from __future__ import annotations

import binascii
import hashlib
import html
import secrets
from datetime import datetime, timezone
from collections.abc import Sequence
from typing import TYPE_CHECKING

from publisher.mail import headers
from publisher.mail.letter import Letter, Recipient, split

if TYPE_CHECKING:
    from publisher.mail.dkim import DkimSigner, Stamp

Slot = tuple[str, bool]  # (field, html-escaped)
Piece = bytes | Slot
PER_RECIPIENT = ("To", "Message-ID", "List-Unsubscribe")
PRECEDENCE = "bulk"  # RFC 3834 auto-responders (vacation, sieve) stay quiet; harmless where ignored


class MimeEncoder:
    """Turns (letter, recipient) into RFC 5322 bytes with CRLF line endings, DKIM-signed when a signer is given.

    ``signer`` may also be a sequence of signers (say RSA and Ed25519, "dual signing"): the body hash is
    computed once and each adds its own DKIM-Signature, the first one on top."""

    def __init__(self, signer: DkimSigner | Sequence[DkimSigner] | None = None) -> None:
        self.signer = signer
        self._last: Prepared | None = None

    def prepare(self, letter: Letter) -> Prepared:
        """Encode what every copy of ``letter`` shares, once."""
        return Prepared(letter, self.signer)

    def encode(self, letter: Letter, recipient: Recipient) -> bytes:
        """One recipient's message; the letter's shared parts are prepared once and kept for the next call."""
        last = self._last
        if last is None or (last.letter is not letter and last.letter != letter):
            last = self._last = self.prepare(letter)
        return last.encode(recipient)


class Prepared:
    """A letter with its shared header lines and body segments encoded; :meth:`encode` fills one recipient."""

    def __init__(self, letter: Letter, signer: DkimSigner | Sequence[DkimSigner] | None = None) -> None:
        self.letter = letter
        text = _template(letter.text, escape=False)
        html_ = _template(letter.html, escape=True)
        self.boundary = _boundary([p for p in text + html_ if isinstance(p, bytes)])
        self._headers = _shared_headers(letter, self.boundary)
        self._body = _merge(_body(self.boundary, text, html_))
        self._slots = {p for p in self._body if isinstance(p, tuple)}
        signers = [] if signer is None else list(signer) if isinstance(signer, Sequence) else [signer]
        names = [name for name, _ in self._headers]
        self._stamps: list[Stamp] = [s.stamp(names, int(letter.date.timestamp())) for s in signers]
        if self._stamps:
            self._canonical_headers = {name.lower(): _canonical_header(line) for name, line in self._headers if line}
            self._canonical_body = [_canonical_lines(p) if isinstance(p, bytes) else p for p in self._body]

    def encode(self, recipient: Recipient) -> bytes:
        """The complete message for ``recipient``: shared parts as prepared, its own values spliced in."""
        own = self._own_headers(recipient)
        values = _values(recipient, self._slots)
        head = b"".join(line or own[name] for name, line in self._headers)
        body = b"".join(p if isinstance(p, bytes) else values[p] for p in self._body)
        if not self._stamps:
            return head + b"\r\n" + body
        return self._signature(own, values) + head + b"\r\n" + body

    def _own_headers(self, recipient: Recipient) -> dict[str, bytes]:
        letter = self.letter
        return {
            "To": headers.address("To", recipient.name, recipient.email).encode("ascii"),
            "Message-ID": f"Message-ID: {headers.message_id(recipient.message_id)}\r\n".encode("ascii"),
            "List-Unsubscribe": headers.list_unsubscribe(
                "List-Unsubscribe", recipient.unsubscribe_url, letter.unsubscribe_mailto).encode("ascii"),
        }

    def _signature(self, own: dict[str, bytes], values: dict[Slot, bytes]) -> bytes:
        canonical = self._canonical_headers | {name.lower(): _canonical_header(line) for name, line in own.items()}
        digest = hashlib.sha256()
        for piece in self._canonical_body:
            digest.update(piece if isinstance(piece, bytes) else _canonical_lines(values[piece]))
        body_hash = digest.digest()
        return b"".join(stamp.header(canonical, body_hash) for stamp in self._stamps)


# -- headers ----------------------------------------------------------------------------------

def _shared_headers(letter: Letter, boundary: str) -> list[tuple[str, bytes | None]]:
    """Every header line in order; ``None`` marks a per-recipient line."""
    lines: list[tuple[str, str | None]] = [
        ("From", headers.address("From", letter.from_name, letter.from_address)),
        ("To", None),
        ("Subject", headers.unstructured("Subject", letter.subject)),
        ("Date", f"Date: {rfc5322_date(letter.date)}\r\n"),
        ("Message-ID", None),
        ("MIME-Version", "MIME-Version: 1.0\r\n"),
        ("List-Id", headers.list_id("List-Id", letter.list_id)),
        ("List-Unsubscribe", None),
        ("List-Unsubscribe-Post", "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
    ]
    if letter.reply_to:
        lines.append(("Reply-To", headers.address("Reply-To", None, letter.reply_to)))
    lines.append(("Precedence", f"Precedence: {PRECEDENCE}\r\n"))
    lines.append(("Content-Type", f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'))
    return [(name, None if line is None else line.encode("ascii")) for name, line in lines]


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc5322_date(moment: datetime) -> str:
    """``Fri, 03 May 2024 16:00:00 +0100`` (a naive time is taken as UTC, an offset with seconds, like
    old local mean times, is given in UTC); no locale, no email.utils import."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = int(moment.utcoffset().total_seconds())  # type: ignore[union-attr]
    if seconds % 60:
        moment, seconds = moment.astimezone(timezone.utc), 0
    offset = seconds // 60
    sign, offset = ("-", -offset) if offset < 0 else ("+", offset)
    return (f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year:04d} "
            f"{moment:%H:%M:%S} {sign}{offset // 60:02d}{offset % 60:02d}")


def _canonical_header(line: bytes) -> bytes:
    from publisher.mail.dkim import relaxed_header

    return relaxed_header(line)


# -- bodies -----------------------------------------------------------------------------------

def _template(source: str, *, escape: bool) -> list[Piece]:
    """A body as closed quoted-printable segments and (field, escape) slots."""
    pieces: list[Piece] = []
    for part in split(_crlf(source)):
        pieces.append((part[0], escape) if isinstance(part, tuple) else _qp(part.encode("utf-8", "replace")))
    return pieces


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _qp(data: bytes, *, istext: bool = True) -> bytes:
    """``data`` quoted-printable with CRLF line ends, closed so that the next piece starts a new line."""
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=istext, header=False)
    encoded = encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return _close(_rewrap(encoded))


def _rewrap(encoded: bytes) -> bytes:
    """Soft-break any line longer than 76 characters: binascii.b2a_qp can emit 77 when it encodes a
    line's trailing space as ``=20`` right at the limit."""
    lines = encoded.split(b"\r\n")
    if all(len(line) <= 76 for line in lines):
        return encoded
    out: list[bytes] = []
    for line in lines:
        while len(line) > 76:
            cut = 75
            while line[cut - 1] == 0x3D or line[cut - 2] == 0x3D:  # never inside an "=XX" escape
                cut -= 1
            out.append(line[:cut] + b"=")
            line = line[cut:]
        out.append(line)
    return b"\r\n".join(out)


def _close(encoded: bytes) -> bytes:
    """End ``encoded`` at a line break: a soft break after its last line, split first when that line
    has no room for the ``=`` (never inside an ``=XX`` escape)."""
    if not encoded or encoded.endswith(b"\r\n"):
        return encoded
    start = encoded.rfind(b"\n") + 1
    if len(encoded) - start > 75:
        cut = start + 75
        while encoded[cut - 1] == 0x3D or encoded[cut - 2] == 0x3D:  # "="
            cut -= 1
        encoded = encoded[:cut] + b"=\r\n" + encoded[cut:]
    return encoded + b"=\r\n"


def _body(boundary: str, text: list[Piece], html_: list[Piece]) -> list[Piece]:
    def part(subtype: str) -> bytes:
        return (f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii")

    return [part("plain"), *text, b"\r\n" + part("html"), *html_, f"\r\n--{boundary}--\r\n".encode("ascii")]


def _merge(pieces: list[Piece]) -> list[Piece]:
    """Adjacent byte pieces joined into one."""
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def _boundary(pieces: list[bytes]) -> str:
    while True:
        boundary = "=_" + secrets.token_hex(16)
        if not any(boundary.encode("ascii") in piece for piece in pieces):
            return boundary


def _values(recipient: Recipient, slots: set[Slot]) -> dict[Slot, bytes]:
    """Each used placeholder's value encoded for the text part or (HTML-escaped) for the HTML part."""
    own = recipient.values()
    values: dict[Slot, bytes] = {}
    for field, escape in slots:
        value = html.escape(own[field]) if escape else own[field]
        values[(field, escape)] = _qp(value.encode("utf-8", "replace"), istext=False)
    return values


def _canonical_lines(data: bytes) -> bytes:
    from publisher.mail.dkim import relaxed_lines

    return relaxed_lines(data)
