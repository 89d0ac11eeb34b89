"""Contract-suite factories for the HTTP providers: each against its own local ``MailApi`` server.

Mailgun and SendGrid refuse a whole call for one bad address (the provider then narrows the batch
down), so they support ``"permanent"`` and ``"unavailable"``; Postmark answers per message, so it
also supports a per-recipient ``"transient"`` refusal (ErrorCode 429 inside the batch's 200).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from publisher import config as cfg
from publisher.providers import make_provider
from publisher.providers.base import Provider
from tests.contract import Inbox
from tests.servers.mailapi import DOMAIN, KEYS, MailApi

ENV = {"MAILGUN_API_KEY": KEYS["mailgun"], "POSTMARK_SERVER_TOKEN": KEYS["postmark"],
       "SENDGRID_API_KEY": KEYS["sendgrid"]}


def _factory(kind: str, faults: set[str], **section: Any) -> Any:
    def factory(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Provider, Inbox]:
        server = MailApi().start()
        request.addfinalizer(server.stop)
        config = getattr(cfg, f"{kind.capitalize()}Provider")(type=kind, base_url=server.url, timeout=5, **section)
        provider = make_provider(kind, config, environ=ENV)

        def inject(fault: str, email: str = "") -> None:
            if fault == "unavailable":
                server.stop()
            else:
                server.reject(email, 406 if fault == "permanent" else 429, once=fault == "transient")

        return provider, Inbox(lambda: server.inbox(kind), inject, faults=faults)

    factory.__name__ = f"{kind}_factory"
    factory.faults = faults  # type: ignore[attr-defined]  # what the contract suite may inject, known before collection
    return factory


FACTORIES = {
    "mailgun": _factory("mailgun", {"permanent", "unavailable"}, domain=DOMAIN),
    "postmark": _factory("postmark", {"transient", "permanent", "unavailable"}),
    "sendgrid": _factory("sendgrid", {"permanent", "unavailable"}),
}
