"""The bounce and complaint webhooks' routes (the code is in :mod:`publisher.web.hooks`)."""

from __future__ import annotations

from typing import Any

from publisher.web.hooks import PROVIDERS, Webhooks


def routes(ctx: Any) -> list[Any]:
    """``POST /webhooks/mailgun``, ``/webhooks/postmark`` and ``/webhooks/sendgrid``."""
    return Webhooks(ctx).routes()


__all__ = ["PROVIDERS", "Webhooks", "routes"]
