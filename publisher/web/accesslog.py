"""The access log, through :mod:`logging`, with the secret parts of URLs cut out.

Subscriber links carry their token in the path (``/newsletter/unsubscribe/<token>``):
a log line must never hold one, since anyone who reads the log could use it.  The
segment after ``unsubscribe``, ``confirm`` and ``preferences`` becomes ``…``, any
other segment that looks like a token (32 or more base64url characters) too, and
query strings are never logged.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from publisher.web.security import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("publisher.web.access")

TOKEN_SEGMENTS = frozenset({"unsubscribe", "confirm", "preferences"})
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{32,}")
REDACTED = "…"


def redact(path: str) -> str:
    """``/newsletter/unsubscribe/AbC...`` -> ``/newsletter/unsubscribe/…`` (and no query string)."""
    segments = path.split("?", 1)[0].split("/")
    out = []
    for index, segment in enumerate(segments):
        after_token_word = index > 0 and segments[index - 1] in TOKEN_SEGMENTS and segment != ""
        out.append(REDACTED if after_token_word or _TOKEN_LIKE.fullmatch(segment) else segment)
    return "/".join(out)


class AccessLog:
    """One INFO line per request: client, method, redacted path, status, bytes, milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": 0, "bytes": 0}

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info('%s "%s %s HTTP/%s" %d %d %.1fms', client[0], scope.get("method", "-"),
                     redact(scope.get("path", "")), scope.get("http_version", "1.1"), seen["status"] or 500,
                     seen["bytes"], (time.perf_counter() - started) * 1000)
