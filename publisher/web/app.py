"""The ASGI app: :func:`create_app` wires the context, the routes and the middleware."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from publisher.clock import Clock
from publisher.config import Config
from publisher.tokens import Signer, server_secret
from publisher.web import confirm, pages, preferences, subscribe, unsubscribe
from publisher.web.accesslog import AccessLog
from publisher.web.context import WebContext
from publisher.web.ratelimit import RateLimiter
from publisher.web.security import ASGIApp, BodyLimit, Csrf, Receive, Scope, SecurityHeaders, Send
from publisher.web.templates import StaticFiles, environment

log = logging.getLogger(__name__)

UNDER_BASE = ("webhooks", "archive")  # modules of publisher.web mounted under the base path when present
AT_ROOT = ("feeds",)  # ... and those whose route paths are absolute


class WebApp:
    """The ASGI callable uvicorn runs: the Starlette app inside the security middleware."""

    def __init__(self, asgi: ASGIApp, ctx: WebContext, starlette: Starlette, owns_store: bool) -> None:
        self.asgi = asgi
        self.ctx = ctx
        self.starlette = starlette
        self._owns_store = owns_store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.asgi(scope, receive, send)

    def close(self) -> None:
        """Release the database connections (when :func:`create_app` opened the store)."""
        if self._owns_store:
            self.ctx.store.close()


def create_app(config: Config, *, store: Any = None, clock: Clock | None = None,
               environ: Mapping[str, str] | None = None, limiter: RateLimiter | None = None) -> WebApp:
    """The subscriber web service for ``config`` (opens and migrates the state database unless given ``store``)."""
    clock = clock or Clock()
    environ = os.environ if environ is None else environ
    owns_store = store is None
    if store is None:
        from publisher.state import Store

        store = Store(config.database_url, clock=clock)
        store.migrate()
    ctx = make_context(config, store, clock, environ, limiter)
    starlette = Starlette(routes=_mounted(ctx), exception_handlers=pages.exception_handlers())
    starlette.router.redirect_slashes = False  # no redirects built from the request's Host header
    starlette.state.ctx = ctx
    return WebApp(_middleware(starlette, ctx), ctx, starlette, owns_store)


def make_context(config: Config, store: Any, clock: Clock, environ: Mapping[str, str],
                 limiter: RateLimiter | None = None) -> WebContext:
    secret = server_secret(config, environ)
    csrf = Csrf(secret, https=config.web_url.startswith("https:"), path=urlsplit(config.web_url).path or "/")
    return WebContext(config=config, store=store, clock=clock, environ=environ, signer=Signer(secret),
                      templates=environment(config), limiter=limiter or RateLimiter(clock), csrf=csrf,
                      static=StaticFiles(config))


def _own_routes() -> list[BaseRoute]:
    return [*pages.routes(), *subscribe.routes(), *confirm.routes(), *unsubscribe.routes(), *preferences.routes()]


def _optional_routes(ctx: WebContext, names: tuple[str, ...]) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for name in names:
        module = _optional(name)
        if module is not None:
            routes.extend(module.routes(ctx))
            ctx.features.add(name)
            log.debug("web: mounted the %s routes", name)
    return routes


def _optional(name: str) -> Any:
    qualified = f"publisher.web.{name}"
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name == qualified:
            return None
        raise


def _mounted(ctx: WebContext) -> list[BaseRoute]:
    """The routes under the base path (``/newsletter/``; the bare ``/newsletter`` shows the index too) and
    the feeds, whose routes carry their own absolute path (that of ``feeds.url``): before the base Mount
    when they have a path of their own (it may lie under the base path), last when they sit at ``/``."""
    routes = [*_own_routes(), *_optional_routes(ctx, UNDER_BASE)]
    base = ctx.base_path.rstrip("/")
    if base:
        routes = [Route(base, pages.index, methods=["GET"]), Mount(base, routes=routes)]
    absolute = _optional_routes(ctx, AT_ROOT)
    first = [route for route in absolute if not getattr(route, "path", "").startswith("/{")]
    last = [route for route in absolute if route not in first]
    return [*first, *routes, *last]


def _middleware(app: ASGIApp, ctx: WebContext) -> ASGIApp:
    """Outermost first: trusted proxy headers, the access log, security headers, the body limit."""
    wrapped: ASGIApp = BodyLimit(app, limit=ctx.config.web.max_body)
    wrapped = SecurityHeaders(wrapped, https=ctx.https)
    wrapped = AccessLog(wrapped)
    if ctx.config.web.forwarded_allow_ips:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        wrapped = ProxyHeadersMiddleware(wrapped, trusted_hosts=list(ctx.config.web.forwarded_allow_ips))
    return wrapped
