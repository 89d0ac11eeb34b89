"""What every route handler works with: :class:`WebContext` (documented in :mod:`publisher.web`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from publisher.clock import Clock
from publisher.config import Config
from publisher.subscribers import Subscribers
from publisher.tokens import Signer
from publisher.web.ratelimit import RateLimiter
from publisher.web.security import CSRF_FIELD, Csrf
from publisher.web.templates import StaticFiles

log = logging.getLogger(__name__)

MAX_FORM_FIELDS = 50


class CsrfRejected(Exception):
    """A form POST without a valid CSRF token (answered 403 by the app's handler)."""


@dataclass
class WebContext:
    config: Config
    store: Any  # publisher.state.Store
    clock: Clock
    environ: Mapping[str, str]
    signer: Signer
    templates: Any  # jinja2.Environment
    limiter: RateLimiter
    csrf: Csrf
    static: StaticFiles
    features: set[str] = field(default_factory=set)
    _dkim: Any = field(default=None, repr=False)
    _dkim_loaded: bool = field(default=False, repr=False)

    # -- URLs -----------------------------------------------------------------

    @property
    def base_path(self) -> str:
        """The path of ``config.web_url``: ``/newsletter/`` (always starts and ends with '/')."""
        return urlsplit(self.config.web_url).path or "/"

    @property
    def https(self) -> bool:
        return self.config.web_url.startswith("https:")

    def url(self, path: str) -> str:
        """The public absolute URL of ``path`` (relative to the base), for emails."""
        return self.config.web_url + path.lstrip("/")

    def path(self, path: str) -> str:
        """The site-relative URL of ``path`` (relative to the base), for links in pages."""
        return self.base_path + path.lstrip("/")

    def static_url(self, name: str) -> str:
        found = self.static.get(name)
        return self.path(f"static/{name}") + (f"?v={found.version}" if found else "")

    # -- subscribers and tokens -----------------------------------------------

    @property
    def subscribers(self) -> Subscribers:
        return Subscribers(self.store, clock=self.clock)

    def verify(self, token: str, purpose: str) -> tuple[int, str]:
        """``(subscriber_id, list_name)`` of a genuine, unexpired token; TokenError otherwise."""
        return self.signer.verify(token, purpose, self.subscribers.secret, self.clock.now())

    def client_ip(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def dkim(self) -> Any:
        """The DKIM signer from ``[mail.dkim]`` (loaded once), or None."""
        if not self._dkim_loaded:
            from publisher.mail.dkim import load_signer

            self._dkim, self._dkim_loaded = load_signer(self.config), True
        return self._dkim

    # -- forms ------------------------------------------------------------------

    async def form(self, request: Request) -> FormData:
        """The POSTed form, after checking its CSRF token against the cookie (CsrfRejected otherwise)."""
        form = await self.raw_form(request)
        if not self.csrf.valid(request.cookies, form.get(CSRF_FIELD)):
            raise CsrfRejected()
        return form

    async def raw_form(self, request: Request) -> FormData:
        """The POSTed form (url-encoded or multipart, no files), unchecked."""
        return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)

    # -- pages --------------------------------------------------------------------

    def page(self, request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
             headers: Mapping[str, str] | None = None) -> HTMLResponse:
        """Render a page with the shared context; sets the CSRF cookie when the request has none."""
        session, new = self.csrf.session(request.cookies)
        values = {**self.shared(), "csrf": self.csrf.token(session), "csrf_field": CSRF_FIELD, **(context or {})}
        html = self.templates.get_template(template).render(values)
        response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
        if new:
            self.csrf.set_cookie(response, session)
        return response

    def shared(self) -> dict[str, Any]:
        return {"site": self.config.site, "base": self.base_path, "lists": self.config.lists,
                "features": self.features, "static_url": self.static_url, "now": self.clock.now()}

    def error(self, request: Request, status: int, title: str, message: str) -> Response:
        """The plain error page (falls back to plain text if the template itself fails)."""
        try:
            return self.page(request, "error.html.j2", {"title": title, "message": message, "status": status},
                             status=status)
        except Exception:  # a broken override must not hide the original error
            log.exception("the error page template failed")
            return Response(f"{title}\n\n{message}\n", status_code=status, media_type="text/plain")
