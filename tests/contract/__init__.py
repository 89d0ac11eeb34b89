"""The provider contract suite: the same tests run over every mail provider.

Every provider module contributes *factories*; ``test_provider_contract.py`` runs each contract
test once per factory.  Outbox and SMTP factories live in ``test_provider_contract.py``; the HTTP
providers' factories live in ``tests/contract/http_factories.py`` as a dict ``FACTORIES``
(``{"mailgun": make_mailgun, ...}``), which the suite imports when that module exists.

The factory protocol
--------------------
A factory is a plain callable, called from inside a test (so it can use pytest's tools)::

    factory(tmp_path: pathlib.Path, request: pytest.FixtureRequest) -> tuple[Provider, Inbox]

- It starts whatever the receiving side needs (a local server on 127.0.0.1, a folder under
  ``tmp_path``) and registers its clean-up with ``request.addfinalizer``.
- It returns the provider *unopened* (the test uses ``with provider:``), built the way
  ``publisher.providers.make_provider`` builds it (config section, ``name=``, ``environ=`` holding
  any secret the config names).  Its ``max_batch`` must be at least 8 (the suite's batches).
- ``inbox()`` returns a list with one item per message the receiving side accepted, in any
  order: ``(recipient_email, message)`` where ``message`` is either

  * an ``email.message.EmailMessage`` parsed with ``email.policy.default`` (SMTP, outbox), or
  * a ``dict`` for HTTP APIs: ``{"subject": str, "html": str, "text": str, "headers": {name: value}}``
    holding what the recipient would see, i.e. AFTER the service's own substitution of
    recipient variables; ``headers`` carries at least ``Message-ID`` and ``List-Unsubscribe``
    (names compared case-insensitively), and ``To`` when the API lets the sender set it.

- Fault injection (optional): ``inbox.inject(kind, email)`` makes the receiving side refuse the
  NEXT message to ``email`` with a per-recipient failure, where ``kind`` is

  * ``"transient"``: a temporary refusal (SMTP 451/452, HTTP 429 or a per-message 5xx...), which
    the provider must report as a ``deferred`` Result for that recipient only;
  * ``"permanent"``: a permanent refusal of that address (SMTP 550 5.1.1, a per-message 4xx such as
    Postmark's ErrorCode 300/406...), which must come back ``failed`` for that recipient only.

  ``inbox.faults`` is the set of kinds ``inject`` supports (a factory without ``inject`` supports
  none; those tests are skipped for it, with the reason).  A refused message never shows up in
  ``inbox()``; the other recipients of the same batch must still arrive and be ``sent``.

:class:`Inbox` below is a ready-made implementation: wrap a function that lists the messages,
optionally with an ``inject`` function and the kinds it supports.  A factory may also support the
kind ``"unavailable"``: the whole service is down from then on (server stopped, every call 503...);
``send`` must then raise a transient DeliveryError or return every recipient ``deferred``.

:func:`make_letter` and :func:`make_recipients` build the test letters (placeholders included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from publisher.mail.letter import Letter, Recipient

KINDS = ("transient", "permanent", "unavailable")


class Inbox:
    """What a factory returns beside the provider: call it for the received messages."""

    def __init__(self, read: Callable[[], list[tuple[str, Any]]], inject: Callable[[str, str], None] | None = None,
                 faults: Iterable[str] = ()) -> None:
        self._read = read
        self._inject = inject
        self.faults = frozenset(faults) if inject is not None else frozenset()

    def __call__(self) -> list[tuple[str, Any]]:
        return self._read()

    def inject(self, kind: str, email: str = "") -> None:
        if kind not in self.faults or self._inject is None:
            raise NotImplementedError(f"this receiving side can't inject {kind!r} faults")
        self._inject(kind, email)


HTML = (
    '<!doctype html><html><body><p>Hello @@PUBLISHER:name@@,</p>\n'
    "<p>Three new posts this week \u2603 \u2014 caf\u00e9 &amp; cr\u00e8me.</p>\n"
    '<p><a href="@@PUBLISHER:unsubscribe_url@@">Unsubscribe</a> (@@PUBLISHER:email@@)</p></body></html>\n'
)
TEXT = (
    "Hello @@PUBLISHER:name@@,\n\n"
    "Three new posts this week \u2603 \u2014 caf\u00e9 & cr\u00e8me.\n"
    ".a line that starts with a dot\n\n"
    "Unsubscribe: @@PUBLISHER:unsubscribe_url@@\n"
)


def make_letter(*, digest_id: int | None = 7, subject: str = "Weekly news: 3 new posts \u2603",
                from_address: str = "news@example.org", html: str = HTML, text: str = TEXT) -> Letter:
    return Letter(
        subject=subject,
        from_address=from_address,
        from_name="Example News",
        reply_to="editor@example.org",
        list_id="Weekly news <weekly.example.org>",
        list_name="weekly",
        unsubscribe_mailto="unsubscribe@example.org",
        date=datetime(2024, 5, 17, 15, 0, tzinfo=timezone.utc),
        html=html,
        text=text,
        digest_id=digest_id,
    )


def make_recipient(number: int, *, digest_id: int | None = 7, name: str | None = None,
                   email: str | None = None) -> Recipient:
    return Recipient(
        delivery_id=1000 + number,
        subscriber_id=number,
        email=email or f"reader{number}@example.net",
        name=name if name is not None else f"Reader {number}",
        message_id=f"<digest-{digest_id}.subscriber-{number}@example.org>",
        unsubscribe_url=f"https://example.org/newsletter/unsubscribe/token-{number}",
    )


def make_recipients(count: int, *, start: int = 1, digest_id: int | None = 7) -> list[Recipient]:
    return [make_recipient(number, digest_id=digest_id) for number in range(start, start + count)]
