"""MIME encoding: headers nothing can break, bodies spliced per recipient and read back exactly."""

from __future__ import annotations

import email
import email.policy
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.errors import SubscriberError
from publisher.mail import headers
from publisher.mail.headers import clean_header_text
from publisher.mail.letter import Letter, Recipient
from publisher.mail.mime import MimeEncoder

GOLDEN = Path(__file__).parent / "fixtures" / "mail"
REGEN = os.environ.get("PUBLISHER_REGEN_GOLDEN") == "1"
EXPECTED_HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "List-Id", "List-Unsubscribe",
                    "List-Unsubscribe-Post", "Reply-To", "Precedence", "Content-Type"]

HTML = """<!doctype html>
<html><body>
  <p class="preheader" style="display:none">Three new posts this week</p>
  <p>Hello @@PUBLISHER:name@@,</p>
  <table role="presentation" width="600"><tr><td style="padding: 0 16px; color: #222">
    <h2><a href="https://example.org/blog/2024/05/01/caf\u00e9-notes">Caf\u00e9 notes &amp; other things</a></h2>
    <p>A paragraph long enough to need a soft line break somewhere in the middle, with an em dash \u2014 and
    a trailing space at the end of this line \n\tand a tab-indented line.</p>
  </td></tr></table>
  <p>Sent to @@PUBLISHER:email@@. <a href="@@PUBLISHER:unsubscribe_url@@">Unsubscribe</a></p>
</body></html>
"""

TEXT = """Hello @@PUBLISHER:name@@,

Caf\u00e9 notes & other things
https://example.org/blog/2024/05/01/caf\u00e9-notes

A paragraph long enough to need a soft line break somewhere in the middle, with an em dash \u2014 and a
trailing space at the end of this line \n.
From here on: a line that starts with From and a lone dot above.

Unsubscribe: @@PUBLISHER:unsubscribe_url@@"""


def make_letter(**changes: object) -> Letter:
    values: dict[str, object] = dict(
        subject="Weekly news: 3 new posts", from_address="news@example.org", from_name="Example Co-op",
        reply_to="hello@example.org", list_id="Weekly news <weekly.example.org>", list_name="weekly",
        unsubscribe_mailto="unsubscribe@example.org", date=datetime(2024, 5, 3, 15, 0, tzinfo=timezone.utc),
        html=HTML, text=TEXT, digest_id=7,
    )
    values.update(changes)
    return Letter(**values)  # type: ignore[arg-type]


def make_recipient(**changes: object) -> Recipient:
    values: dict[str, object] = dict(
        delivery_id=1, subscriber_id=2, email="alice@example.net", name="Alice Example",
        message_id="<digest-7.sub-2@example.org>",
        unsubscribe_url="https://example.org/newsletter/unsubscribe/AbC_dEf-123",
    )
    values.update(changes)
    return Recipient(**values)  # type: ignore[arg-type]


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def lines(text: str) -> str:
    """Line breaks made LF: a text/* part travels with CRLF, its canonical form."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_rfc2047(data: bytes) -> email.message.EmailMessage:
    """Parsed after applying RFC 2047 6.2 (white space between adjacent encoded-words is not text),
    which CPython's address parser misses in display names before gh-128110."""
    head, _, body = data.partition(b"\r\n\r\n")
    return parse(re.sub(rb"\?=\r\n[ \t]+=\?", b"?==?", head) + b"\r\n\r\n" + body)


def header_names(data: bytes) -> list[str]:
    head = data.partition(b"\r\n\r\n")[0].decode("ascii")
    return [line.partition(":")[0] for line in head.split("\r\n") if not line.startswith((" ", "\t"))]


def bodies(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# -- the whole message --------------------------------------------------------------------------

def test_golden_message(tmp_path: Path) -> None:
    prepared = MimeEncoder().prepare(make_letter())
    data = prepared.encode(make_recipient(name="Zoë O'Brien", email="zoe@b\u00fccher.example"))
    normalised = data.replace(prepared.boundary.encode("ascii"), b"BOUNDARY")
    golden = GOLDEN / "digest.eml"
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(normalised)
    assert golden.exists(), f"no golden file: run PUBLISHER_REGEN_GOLDEN=1 pytest {__file__}"
    assert normalised == golden.read_bytes()


def test_headers_and_parts_read_back_with_the_stdlib_parser() -> None:
    letter, recipient = make_letter(), make_recipient()
    data = MimeEncoder().encode(letter, recipient)
    message = parse(data)
    assert header_names(data) == EXPECTED_HEADERS
    assert message["From"].addresses[0].display_name == "Example Co-op"
    assert message["From"].addresses[0].addr_spec == "news@example.org"
    assert message["To"].addresses[0].addr_spec == "alice@example.net"
    assert message["Subject"] == "Weekly news: 3 new posts"
    assert message["Date"].datetime == letter.date
    assert message["Message-ID"] == "<digest-7.sub-2@example.org>"
    assert message["List-Id"] == "Weekly news <weekly.example.org>"
    assert message["List-Unsubscribe"] == ("<https://example.org/newsletter/unsubscribe/AbC_dEf-123>, "
                                           "<mailto:unsubscribe@example.org?subject=unsubscribe>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Reply-To"].addresses[0].addr_spec == "hello@example.org"
    assert message["Precedence"] == "bulk"
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in parts)
    text, html = bodies(message)
    assert lines(text) == letter.text_for(recipient)
    assert lines(html) == letter.html_for(recipient)
    assert not message.defects and not any(p.defects for p in parts)


def test_the_message_is_7bit_crlf_with_short_lines() -> None:
    data = MimeEncoder().encode(make_letter(), make_recipient(name="Zoë"))
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    head, _, body = data.partition(b"\r\n\r\n")
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


@given(st.datetimes(timezones=st.timezones()))
def test_date_header_matches_the_stdlib_format(moment: datetime) -> None:
    from email.utils import format_datetime

    from publisher.mail.mime import rfc5322_date

    offset = moment.utcoffset()
    assert offset is not None
    if offset.total_seconds() % 60 == 0:
        assert rfc5322_date(moment) == format_datetime(moment)
    else:  # RFC 5322 zones are whole minutes: old local mean times go out in UTC
        assert rfc5322_date(moment) == format_datetime(moment.astimezone(timezone.utc))


def test_optional_headers_are_left_out_when_unset() -> None:
    letter = make_letter(reply_to=None, unsubscribe_mailto=None)
    data = MimeEncoder().encode(letter, make_recipient(name=None))
    message = parse(data)
    assert "Reply-To" not in header_names(data)
    assert message["List-Unsubscribe"] == "<https://example.org/newsletter/unsubscribe/AbC_dEf-123>"
    assert message["To"].addresses[0].display_name == ""
    assert re.search(rb"^To: alice@example.net\r$", data, re.M)


def test_copies_differ_only_in_what_belongs_to_the_recipient() -> None:
    prepared = MimeEncoder().prepare(make_letter())
    first = prepared.encode(make_recipient())
    again = prepared.encode(make_recipient())
    other = prepared.encode(make_recipient(email="bob@example.net", name="Bob", subscriber_id=3,
                                           message_id="<digest-7.sub-3@example.org>",
                                           unsubscribe_url="https://example.org/newsletter/unsubscribe/XyZ"))
    assert first == again  # a resend is byte-for-byte the same message
    assert parse(other)["To"].addresses[0].addr_spec == "bob@example.net"
    assert parse(other)["Message-ID"] == "<digest-7.sub-3@example.org>"
    assert b"XyZ" in other and b"AbC_dEf-123" not in other
    assert parse(first)["Subject"] == parse(other)["Subject"]


def test_encode_prepares_each_letter_once() -> None:
    encoder = MimeEncoder()
    letter = make_letter()
    boundary = parse(encoder.encode(letter, make_recipient())).get_boundary()
    assert parse(encoder.encode(letter, make_recipient(email="b@example.net"))).get_boundary() == boundary
    changed = make_letter(subject="Another digest")
    assert parse(encoder.encode(changed, make_recipient())).get_boundary() != boundary


def test_the_boundary_is_random_and_never_inside_a_body() -> None:
    letter = make_letter(text="--=_ starts like a boundary\n" + TEXT)
    boundaries = {MimeEncoder().prepare(letter).boundary for _ in range(5)}
    assert len(boundaries) == 5
    for boundary in boundaries:
        assert boundary.startswith("=_")
        assert boundary not in letter.text and boundary not in letter.html


def test_a_value_next_to_a_full_line_keeps_every_line_within_76() -> None:
    letter = make_letter(text=("x" * 75 + "@@PUBLISHER:name@@" + "=" * 80 + "\n") * 3,
                         html="\u00e9" * 40 + "@@PUBLISHER:unsubscribe_url@@")
    recipient = make_recipient(name="\u00e9" * 60, unsubscribe_url="https://example.org/" + "u" * 150)
    data = MimeEncoder().encode(letter, recipient)
    body = data.partition(b"\r\n\r\n")[2]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    text, html = bodies(parse(data))
    assert lines(text) == letter.text_for(recipient)
    assert lines(html) == letter.html_for(recipient)


def test_header_injection_in_every_field_stays_inside_its_header() -> None:
    evil = "Hi\r\nBcc: victim@example.com\r\n\r\nbody"
    letter = make_letter(subject=evil, from_name=evil, list_id=evil + " <weekly.example.org>")
    data = MimeEncoder().encode(letter, make_recipient(name=evil))
    assert header_names(data) == EXPECTED_HEADERS
    assert parse(data)["Subject"] == "Hi Bcc: victim@example.com body"
    with pytest.raises(SubscriberError):
        MimeEncoder().encode(letter, make_recipient(email="a@example.net\r\nBcc: victim@example.com"))


# -- Hypothesis: anything in a subject or name ----------------------------------------------------

@settings(max_examples=300)
@given(subject=st.text(), name=st.text(), from_name=st.text())
def test_arbitrary_subject_and_names_never_add_a_header_and_read_back_exactly(subject, name, from_name) -> None:
    letter = make_letter(subject=subject, from_name=from_name)
    data = MimeEncoder().encode(letter, make_recipient(name=name))
    assert header_names(data) == EXPECTED_HEADERS
    head = data.partition(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-Unsubscribe:"))
    message = parse(data)
    assert message["Subject"] == clean_header_text(subject)
    assert not any(message[field].defects for field in ("Subject", "To", "From"))
    joined = parse_rfc2047(data)
    assert joined["To"].addresses[0].display_name == clean_header_text(name)
    assert joined["From"].addresses[0].display_name == clean_header_text(from_name)
    assert joined["To"].addresses[0].addr_spec == "alice@example.net"


@settings(max_examples=200)
@given(address=st.emails())
def test_any_plain_address_reads_back(address: str) -> None:
    data = MimeEncoder().encode(make_letter(), make_recipient(email=address))
    assert parse(data)["To"].addresses[0].addr_spec == headers.addr_spec(address)


FIELD = st.sampled_from(["@@PUBLISHER:name@@", "@@PUBLISHER:email@@", "@@PUBLISHER:unsubscribe_url@@"])
CHUNK = st.one_of(st.text(max_size=120), st.sampled_from(["\n", "\r\n", "\r", " \n", "\t\n", ".", "=", "=\n",
                                                          "x" * 76, "\u00e9" * 30, "@@PUBLISHER:bogus@@"]), FIELD)


# Per-recipient values are single-line: names are cleaned of control characters when stored
# (subscribers.clean_name), addresses and URLs never hold one.  A line break split between the
# letter and a value ("\r" + "\n") is not a case the encoder has to join.  No lone surrogates either: every
# value was decoded from UTF-8 (config, CSV, form data), which never gives one.
ONE_LINE = st.text(alphabet=st.characters(blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
                                          blacklist_categories=("Cs",)))


@settings(max_examples=300)
@given(text=st.lists(CHUNK, max_size=12).map("".join), html=st.lists(CHUNK, max_size=12).map("".join),
       name=ONE_LINE.filter(lambda v: len(v) <= 80), url=ONE_LINE.filter(lambda v: len(v) <= 120))
def test_bodies_decode_to_exactly_the_filled_letter(text: str, html: str, name: str, url: str) -> None:
    letter = make_letter(text=text, html=html)
    recipient = make_recipient(name=name, unsubscribe_url=url)
    data = MimeEncoder().encode(letter, recipient)
    body = data.partition(b"\r\n\r\n")[2]
    assert data.isascii()
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    plain, rich = bodies(parse(data))
    assert lines(plain) == lines(letter.text_for(recipient))
    assert lines(rich) == lines(letter.html_for(recipient))


@pytest.mark.parametrize("name", ["", "Ann"])
def test_a_bare_cr_before_a_placeholder_is_a_line_break_whatever_fills_it(name: str) -> None:
    letter = make_letter(text="Hi\r@@PUBLISHER:name@@\nbye", html="<p>\r@@PUBLISHER:name@@\n</p>")
    recipient = make_recipient(name=name)
    plain, rich = bodies(parse(MimeEncoder().encode(letter, recipient)))
    assert lines(plain) == letter.text_for(recipient) == f"Hi\n{name}\nbye"
    assert lines(rich) == letter.html_for(recipient) == f"<p>\n{name}\n</p>"


# -- headers.py -------------------------------------------------------------------------------

@given(st.text())
def test_clean_header_text_leaves_no_control_character(value: str) -> None:
    cleaned = clean_header_text(value)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", cleaned)
    assert all(char == " " or not char.isspace() for char in cleaned)
    assert "  " not in cleaned and cleaned == cleaned.strip(" ")
    assert clean_header_text(cleaned) == cleaned


@pytest.mark.parametrize("text", ["caf\u00e9 " * 30, "\u4f60\u597d\u4e16\u754c" * 20, "\U0001f600" * 25, "a" * 200])
def test_encoded_words_stay_within_75_characters_and_whole_characters(text: str) -> None:
    words = headers.encoded_words(text)
    assert all(len(word) <= 75 for word in words)
    assert str(email.header.make_header(email.header.decode_header(" ".join(words)))) == text


@pytest.mark.parametrize(("name", "expected"), [
    ("Zo\u00eb \u00dcnal Smith", "To: =?utf-8?q?Zo=C3=AB_=C3=9Cnal?= Smith <a@example.org>\r\n"),
    ("Alice Example", "To: Alice Example <a@example.org>\r\n"),
    ("Example, Inc.", 'To: "Example, Inc." <a@example.org>\r\n'),
    ('Say "hi" \\ bye', 'To: "Say \\"hi\\" \\\\ bye" <a@example.org>\r\n'),
    ("=?utf-8?q?x?=", "To: =?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3F=3D?= <a@example.org>\r\n"),
    ("  \r\n ", "To: a@example.org\r\n"),
    ("caf\u00e9", "To: =?utf-8?q?caf=C3=A9?= <a@example.org>\r\n"),
])
def test_display_names_are_atoms_quoted_or_encoded(name: str, expected: str) -> None:
    assert headers.address("To", name, "a@example.org") == expected


@pytest.mark.parametrize("address", ["no-at-sign", "a b@example.org", "a@b@example.org", "\u00e9@example.org",
                                     "a@example", "a@-bad-.org", "a..b@example.org", "a@exa mple.org", "",
                                     "a@example.org>", "x" * 65 + "@example.org"])
def test_addresses_that_are_not_plain_are_refused(address: str) -> None:
    with pytest.raises(SubscriberError):
        headers.addr_spec(address)


def test_international_domains_become_a_labels() -> None:
    assert headers.addr_spec("anna@b\u00fccher.example") == "anna@xn--bcher-kva.example"
    assert headers.addr_spec("O'Neil+news@Example.ORG") == "O'Neil+news@Example.ORG"


def test_url_and_message_id_cannot_carry_spaces_or_brackets() -> None:
    assert headers.url("https://x.org/a b>\r\nc\u00e9") == "https://x.org/a%20b%3E%0D%0Ac%C3%A9"
    assert headers.message_id("<a b\r\n>c@x.org>") == "<abc@x.org>"


def test_a_trailing_space_at_the_line_limit_still_gives_lines_of_at_most_76():
    # binascii.b2a_qp makes a 77-character line of this (the trailing space becomes "=20" at the limit)
    html = "00\x80\x80\x80\U00010000\U00010000" + "0" * 30 + " \n"
    letter = make_letter(text="", html=html)
    data = MimeEncoder().encode(letter, make_recipient())
    assert max(len(line) for line in data.partition(b"\r\n\r\n")[2].split(b"\r\n")) <= 76
    assert lines(bodies(parse(data))[1]) == lines(letter.html_for(make_recipient()))
