"""The contract every mail provider keeps, run over outbox, smtp and the HTTP providers.

Factories follow the protocol in ``tests/contract/__init__.py``:
``factory(tmp_path, request) -> (provider, inbox)``; ``inbox()`` lists ``(recipient email,
EmailMessage | dict)``; ``inbox.inject(kind, email)`` with ``kind`` in ``inbox.faults``
("transient", "permanent", "unavailable") makes the receiving side refuse.  The HTTP providers'
factories come from ``tests/contract/http_factories.py`` (``FACTORIES``) when it exists.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from publisher.config import OutboxProvider as OutboxConfig
from publisher.config import SmtpProvider as SmtpConfig
from publisher.errors import DeliveryError
from publisher.providers.outbox import OutboxProvider
from publisher.providers.smtp import SmtpProvider
from tests.contract import Inbox, make_letter, make_recipient, make_recipients
from tests.servers.smtp import Plan, SmtpServer, make_certificates

try:
    from tests.contract.http_factories import FACTORIES as HTTP_FACTORIES
except ImportError:
    HTTP_FACTORIES = {}

PASSWORD = "contract-pw-Zx81"


def outbox_factory(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[OutboxProvider, Inbox]:
    provider = OutboxProvider(OutboxConfig(type="outbox", directory=Path("outbox")), name="outbox", environ={},
                              base_dir=tmp_path)

    def read() -> list[tuple[str, Any]]:
        parser = BytesParser(policy=policy.default)
        messages = [parser.parsebytes(path.read_bytes()) for path in sorted((tmp_path / "outbox").rglob("*.eml"))]
        return [(message["To"].addresses[0].addr_spec, message) for message in messages]

    def inject(kind: str, email: str) -> None:  # a file where the folder should be: no write can succeed
        (tmp_path / "outbox").mkdir(exist_ok=True)
        (tmp_path / "outbox" / "7").write_text("not a folder")

    return provider, Inbox(read, inject, faults={"unavailable"})


def smtp_factory(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[SmtpProvider, Inbox]:
    certs = make_certificates(tmp_path / "certs")
    server = SmtpServer(tls="starttls", certs=certs, users={"contract": PASSWORD}, plan=Plan()).start()
    request.addfinalizer(server.stop)
    config = SmtpConfig(type="smtp", host=server.host, port=server.port, security="starttls", ca_file=certs.ca_file,
                        username="contract", password_env="CONTRACT_SMTP_PASSWORD", pool=2, timeout=10)
    provider = SmtpProvider(config, name="smtp", environ={"CONTRACT_SMTP_PASSWORD": PASSWORD})

    def inject(kind: str, email: str) -> None:
        if kind == "unavailable":
            server.stop()
        else:
            server.plan.on("rcpt", 451 if kind == "transient" else 550, to=email)

    return provider, Inbox(server.inbox, inject, faults={"transient", "permanent", "unavailable"})


outbox_factory.faults = {"unavailable"}  # type: ignore[attr-defined]
smtp_factory.faults = {"transient", "permanent", "unavailable"}  # type: ignore[attr-defined]
FACTORIES = {"outbox": outbox_factory, "smtp": smtp_factory, **HTTP_FACTORIES}
# Per-recipient refusals only where the receiving side has them (an outbox folder refuses no one;
# Mailgun and SendGrid have no per-recipient temporary refusal): generated, not skipped.
REFUSALS = [(name, kind, outcome) for name in sorted(FACTORIES)
            for kind, outcome in (("transient", "deferred"), ("permanent", "failed"))
            if kind in getattr(FACTORIES[name], "faults", ())]


@pytest.fixture(params=sorted(FACTORIES))
def service(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Inbox]:
    return FACTORIES[request.param](tmp_path, request)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- reading what arrived


@dataclass
class Seen:
    """One received message, whatever form the receiving side keeps it in."""

    rcpt: str
    to: str | None
    subject: str
    message_id: str
    list_unsubscribe: str
    html: str
    text: str


def seen(rcpt: str, message: EmailMessage | dict[str, Any]) -> Seen:
    if isinstance(message, dict):
        headers = {key.lower(): str(value) for key, value in message.get("headers", {}).items()}
        return Seen(rcpt, headers.get("to"), message["subject"], headers["message-id"], headers["list-unsubscribe"],
                    message["html"], message["text"])
    assert message.get_content_type() == "multipart/alternative"
    html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
    assert html_part is not None and text_part is not None, "both an HTML and a text part"
    return Seen(rcpt, message["To"].addresses[0].addr_spec, str(message["Subject"]), str(message["Message-ID"]),
                str(message["List-Unsubscribe"]), html_part.get_content(), text_part.get_content())


def arrived(inbox: Inbox) -> list[Seen]:
    return [seen(rcpt, message) for rcpt, message in inbox()]


def by_rcpt(messages: list[Seen]) -> dict[str, list[Seen]]:
    grouped: dict[str, list[Seen]] = {}
    for message in messages:
        grouped.setdefault(message.rcpt.lower(), []).append(message)
    return grouped


# ---------------------------------------------------------------- the contract


def test_a_batch_arrives_once_each_with_its_headers_and_both_parts(service: tuple[Any, Inbox]) -> None:
    provider, inbox = service
    letter, batch = make_letter(), make_recipients(7)
    with provider:
        results = provider.send(letter, batch)

    assert [r.delivery_id for r in results] == [r.delivery_id for r in batch]
    assert [r.outcome for r in results] == ["sent"] * len(batch)
    received = by_rcpt(arrived(inbox))
    assert sorted(received) == sorted(r.email for r in batch)
    for recipient in batch:
        [message] = received[recipient.email]
        assert message.to in (None, recipient.email)
        assert message.subject == letter.subject
        assert message.message_id == recipient.message_id
        assert recipient.unsubscribe_url in message.list_unsubscribe
        assert "Three new posts this week \u2603" in message.text
        assert "caf\u00e9 &amp; cr\u00e8me" in message.html


def test_each_recipient_sees_their_own_name_and_unsubscribe_link(service: tuple[Any, Inbox]) -> None:
    provider, inbox = service
    batch = make_recipients(3) + [make_recipient(4, name="Zo\u00eb \u00c5kesson")]
    with provider:
        provider.send(make_letter(), batch)

    received = by_rcpt(arrived(inbox))
    for recipient in batch:
        [message] = received[recipient.email]
        others = [r for r in batch if r is not recipient]
        for part in (message.html, message.text):
            assert f"Hello {recipient.name}," in part
            assert recipient.unsubscribe_url in part
            assert not any(other.unsubscribe_url in part for other in others)


def test_names_are_escaped_in_the_html_part_only(service: tuple[Any, Inbox]) -> None:
    provider, inbox = service
    name = 'Ann <b>"Bold"</b> & Co'
    recipient = make_recipient(1, name=name)
    with provider:
        [result] = provider.send(make_letter(), [recipient])

    assert result.outcome == "sent"
    [message] = arrived(inbox)
    assert f"Hello {html.escape(name)}," in message.html
    assert "<b>" not in message.html
    assert f"Hello {name}," in message.text


def test_a_resend_keeps_the_message_id(service: tuple[Any, Inbox]) -> None:
    provider, inbox = service
    letter, batch = make_letter(), make_recipients(2)
    with provider:
        first = provider.send(letter, batch)
        again = provider.send(letter, batch[:1])

    assert [r.outcome for r in first + again] == ["sent"] * 3
    received = by_rcpt(arrived(inbox))
    copies = received[batch[0].email]
    assert copies, "the resent recipient got the message"
    assert {message.message_id for message in copies} == {batch[0].message_id}
    assert [message.message_id for message in received[batch[1].email]] == [batch[1].message_id]


@pytest.mark.parametrize(("name", "kind", "outcome"), REFUSALS)
def test_a_refused_recipient_is_reported_alone(name: str, kind: str, outcome: str, tmp_path: Path,
                                               request: pytest.FixtureRequest) -> None:
    provider, inbox = FACTORIES[name](tmp_path, request)
    assert kind in inbox.faults
    batch = make_recipients(3)
    inbox.inject(kind, batch[1].email)
    with provider:
        results = provider.send(make_letter(), batch)

    assert [r.delivery_id for r in results] == [r.delivery_id for r in batch]
    assert [r.outcome for r in results] == ["sent", outcome, "sent"]
    assert results[1].reason
    assert sorted(by_rcpt(arrived(inbox))) == sorted([batch[0].email, batch[2].email])


def test_an_unavailable_service_defers_everything(service: tuple[Any, Inbox]) -> None:
    provider, inbox = service
    if "unavailable" not in inbox.faults:
        pytest.skip(f"{provider.type}: its receiving side can't be made unavailable")
    batch = make_recipients(3)
    inbox.inject("unavailable")
    try:
        with provider:
            results = provider.send(make_letter(), batch)
    except DeliveryError as error:
        assert error.transient, str(error)
        assert str(error).startswith(f"provider {provider.name}: ")
    else:
        assert [(r.delivery_id, r.outcome) for r in results] == [(r.delivery_id, "deferred") for r in batch]
    assert arrived(inbox) == []
