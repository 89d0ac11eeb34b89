"""Security for every response and every form: headers, the request size limit, CSRF.

- :class:`SecurityHeaders` (ASGI middleware) adds the CSP and the other headers to
  every response that did not set its own, ``Cache-Control: no-store`` likewise,
  and HSTS when the public URL is https.
- :class:`BodyLimit` (ASGI middleware) answers 413 to a request whose
  Content-Length, or whose streamed body, exceeds the limit.
- :class:`Csrf`: a random session value in a cookie (HttpOnly, SameSite=Lax, Secure
  and ``__Host-`` on https) and, in each form, an HMAC of it keyed by the server
  secret.  A cross-site page can neither read the cookie nor compute the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from collections.abc import Awaitable, Callable, MutableMapping

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
PERMISSIONS = ("accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
               "payment=(), usb=(), interest-cohort=(), browsing-topics=()")
HSTS = "max-age=31536000"
CSRF_FIELD = "csrf"


def security_headers(https: bool) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (name lower-case, as ASGI wants)."""
    headers = [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("permissions-policy", PERMISSIONS),
    ]
    if https:
        headers.append(("strict-transport-security", HSTS))
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


class SecurityHeaders:
    """Adds each of :func:`security_headers` the response lacks, and a default ``Cache-Control: no-store``.

    A route may set its own value of any of them (the archive sends a CSP that allows
    its own inline styles by hash, feeds their own caching); everything else gets these.
    """

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._merge(list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _merge(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        present = {name.lower() for name, _ in headers}
        if b"cache-control" not in present:
            headers.append((b"cache-control", b"no-store"))
        return headers + [(name, value) for name, value in self.headers if name not in present]


class BodyTooLarge(Exception):
    """Raised from ``receive`` when the streamed body passes the limit."""


class BodyLimit:
    """413 for bodies over ``limit`` bytes, by Content-Length or by counting what arrives."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _content_length(scope) > self.limit:
            await _too_large(send, self.limit)
            return
        state = {"received": 0, "started": False, "too_large": False}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.limit:
                    state["too_large"] = True
                    raise BodyTooLarge()
            return message

        async def watching_send(message: Message) -> None:
            if state["too_large"]:
                return  # whatever the app answers to the exception, the client gets the 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            pass
        if state["too_large"] and not state["started"]:
            await _too_large(send, self.limit)


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _too_large(send: Send, limit: int) -> None:
    body = f"Request too large: at most {limit} bytes are accepted.\n".encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# -- CSRF ------------------------------------------------------------------------


class Csrf:
    """Double-submit with a signed token: the cookie holds a random value, the form its HMAC."""

    def __init__(self, server_secret: bytes, *, https: bool, path: str) -> None:
        self._key = hmac.new(server_secret, b"publisher-csrf-key", hashlib.sha256).digest()
        self.https = https
        self.cookie_name = "__Host-publisher_csrf" if https else "publisher_csrf"
        self.cookie_path = "/" if https else path

    def session(self, cookies: dict[str, str]) -> tuple[str, bool]:
        """The session value from ``cookies`` (request cookies), or a new one; and whether it is new."""
        value = cookies.get(self.cookie_name, "")
        if _well_formed(value):
            return value, False
        return secrets.token_urlsafe(32), True

    def token(self, session: str) -> str:
        mac = hmac.new(self._key, session.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def valid(self, cookies: dict[str, str], submitted: object) -> bool:
        """Whether the form's token matches the request's cookie."""
        value = cookies.get(self.cookie_name, "")
        if not _well_formed(value) or not isinstance(submitted, str):
            return False
        return hmac.compare_digest(self.token(value), submitted)

    def set_cookie(self, response: Any, session: str) -> None:
        """Set the session cookie on a Starlette response (a browser session cookie: no Max-Age)."""
        response.set_cookie(self.cookie_name, session, path=self.cookie_path, secure=self.https, httponly=True,
                            samesite="lax")


def _well_formed(value: str) -> bool:
    return 40 <= len(value) <= 64 and all(ch.isalnum() or ch in "-_" for ch in value) and value.isascii()
