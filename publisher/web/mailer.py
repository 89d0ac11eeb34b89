"""The mails the web service sends itself: "confirm your subscription" and "you're already subscribed".

Each goes through the list's own provider (so it comes from the list's address,
DKIM-signed like the digests) and is rendered from templates in ``templates/web/``:
``<kind>-email.html.j2``, ``<kind>-email.txt.j2`` and ``<kind>-email-subject.txt.j2``.
Nothing the visitor typed goes into the mail except the address itself (which
email-validator accepted): not their name, so a sign-up form can't be used to
send someone else a message of the visitor's making.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any, Literal

from publisher.errors import DeliveryError
from publisher.mail.letter import Letter, Recipient
from publisher.tokens import unsubscribe_url

log = logging.getLogger(__name__)

Kind = Literal["confirm", "already-subscribed"]


def confirm_url(ctx: Any, subscriber_id: int, secret: str, list_name: str) -> str:
    """The double opt-in link, valid for ``web.confirm_within`` seconds."""
    expires = ctx.clock.now() + timedelta(seconds=ctx.config.web.confirm_within)
    return ctx.url("confirm/" + ctx.signer.token(subscriber_id, secret, list_name, "confirm", expires))


def preferences_url(ctx: Any, subscriber_id: int, secret: str, *, expires: bool = True) -> str:
    """The preferences link (all lists); by default it expires like a confirmation link."""
    until = ctx.clock.now() + timedelta(seconds=ctx.config.web.confirm_within) if expires else None
    return ctx.url("preferences/" + ctx.signer.token(subscriber_id, secret, "*", "preferences", until))


def send_notice(ctx: Any, kind: Kind, subscriber: Any, list_name: str) -> None:
    """Mail ``subscriber`` (a row with id, email, secret) about ``list_name``; DeliveryError when not sent."""
    mailing_list = ctx.config.mailing_list(list_name)
    recipient = Recipient(0, subscriber.id, subscriber.email, None, _message_id(ctx, kind),
                          unsubscribe_url(ctx.config, ctx.signer, subscriber.id, subscriber.secret, list_name))
    values = {"site": ctx.config.site, "list": mailing_list, "list_name": list_name, "email": subscriber.email,
              "confirm_url": confirm_url(ctx, subscriber.id, subscriber.secret, list_name) if kind == "confirm" else "",
              "preferences_url": preferences_url(ctx, subscriber.id, subscriber.secret),
              "unsubscribe_url": recipient.unsubscribe_url, "valid_hours": ctx.config.web.confirm_within // 3600}
    letter = _letter(ctx, kind, list_name, mailing_list, values)
    _send(ctx, mailing_list.provider, letter, recipient)
    log.info("list %s: sent a %s mail to subscriber %d", list_name, kind, subscriber.id)


def _letter(ctx: Any, kind: Kind, list_name: str, mailing_list: Any, values: dict[str, Any]) -> Letter:
    render = lambda suffix: ctx.templates.get_template(f"{kind}-email{suffix}").render(values)  # noqa: E731
    subject = " ".join(render("-subject.txt.j2").split())
    return Letter(subject=subject, from_address=mailing_list.from_address, from_name=mailing_list.from_name,
                  reply_to=mailing_list.reply_to,
                  list_id=f"{mailing_list.title} <{list_name}.{ctx.config.message_id_domain}>",
                  list_name=list_name, unsubscribe_mailto=ctx.config.mail.unsubscribe_mailto, date=ctx.clock.now(),
                  html=render(".html.j2"), text=render(".txt.j2"), digest_id=None)


def _message_id(ctx: Any, kind: str) -> str:
    return f"<{kind}.{secrets.token_hex(12)}@{ctx.config.message_id_domain}>"


def _send(ctx: Any, provider_name: str, letter: Letter, recipient: Recipient) -> None:
    from publisher.providers import provider_for

    provider = provider_for(ctx.config, provider_name, environ=ctx.environ, clock=ctx.clock, signer=ctx.dkim())
    with provider:
        (result,) = provider.send(letter, [recipient])
    if result.outcome != "sent":
        raise DeliveryError(provider_name, f"{letter.list_name}: mail not sent: {result.reason}",
                            transient=result.outcome == "deferred")
