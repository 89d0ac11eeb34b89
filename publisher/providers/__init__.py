"""Mail providers: one small base class (:mod:`.base`), one module per provider."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from publisher.providers.base import Provider

MODULES = {
    "outbox": ("publisher.providers.outbox", "OutboxProvider"),
    "smtp": ("publisher.providers.smtp", "SmtpProvider"),
    "mailgun": ("publisher.providers.mailgun", "MailgunProvider"),
    "postmark": ("publisher.providers.postmark", "PostmarkProvider"),
    "sendgrid": ("publisher.providers.sendgrid", "SendgridProvider"),
}


def provider_class(kind: str) -> type[Provider]:
    module, name = MODULES[kind]
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def make_provider(name: str, config: Any, *, environ: Mapping[str, str], **kwargs: Any) -> Provider:
    """The provider configured as ``[providers.<name>]`` (its section is ``config``)."""
    return provider_class(config.type)(config, name=name, environ=environ, **kwargs)


_NOT_GIVEN: Any = object()


def provider_for(config: Any, name: str, *, environ: Mapping[str, str], clock: Any = None,
                 signer: Any = _NOT_GIVEN) -> Provider:
    """The provider ``[providers.<name>]`` as every sender uses it: MIME from the shared encoder,
    DKIM-signed when ``[mail.dkim]`` is set (``signer`` passes one already loaded, or None)."""
    from publisher.mail.mime import MimeEncoder

    if signer is _NOT_GIVEN:
        from publisher.mail.dkim import load_signer

        signer = load_signer(config)
    return make_provider(name, config.providers[name], environ=environ, encoder=MimeEncoder(signer), clock=clock,
                         base_dir=config.base_dir)
