"""Bounce, complaint and unsubscribe webhooks: ``POST /webhooks/{mailgun,postmark,sendgrid}``.

Each provider module (:mod:`.mailgun`, :mod:`.postmark`, :mod:`.sendgrid`) knows
its authentication (``verify``) and its payloads (``events``); :mod:`.apply`
changes the subscriptions.  Behaviour common to all three:

- a webhook whose secret is not in the environment (the variable named in
  ``[web]``) answers 404, with one warning in the log per provider;
- a request that fails authentication answers 401 or 403 and changes nothing;
  a body that is not the provider's format answers 400 with one line; a body over
  ``web.max_body`` answers 413;
- everything a request changes is written in one transaction, and a retry changes
  nothing more (provider event IDs, Mailgun tokens and soft-bounced messages are
  remembered for three days, see :mod:`.seen`);
- secrets are never logged, and neither are addresses (subscribers are named by ID).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from types import ModuleType
from typing import Any

from publisher.web.hooks import mailgun, postmark, sendgrid, seen
from publisher.web.hooks.apply import apply
from publisher.web.hooks.events import Event, Forbidden, HookError, Verified

log = logging.getLogger(__name__)

PROVIDERS: dict[str, ModuleType] = {module.NAME: module for module in (mailgun, postmark, sendgrid)}
PRUNE_EVERY = 3600  # seconds between clean-ups of the remembered events


class TooLarge(HookError):
    status = 413


class _Broken:
    """A secret that is set but unusable (a SendGrid key that is not a P-256 public key)."""


class Webhooks:
    """The three webhook endpoints over one web context (config, store, clock, environ)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._warned: set[str] = set()
        self._keys: dict[str, tuple[tuple[str, ...], Any]] = {}
        self._pruned_at = 0.0

    def routes(self) -> list[Any]:
        from starlette.routing import Route

        return [Route(f"/webhooks/{name}", self._endpoint(module), methods=["POST"], name=f"webhook_{name}")
                for name, module in PROVIDERS.items()]

    def _endpoint(self, module: ModuleType) -> Any:
        async def endpoint(request: Any) -> Any:
            return await self.handle(module, request)

        endpoint.__name__ = f"{module.NAME}_webhook"
        return endpoint

    async def handle(self, module: ModuleType, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse, PlainTextResponse

        key = self._key(module)
        if key is None:
            return PlainTextResponse("Not Found\n", 404)
        if isinstance(key, _Broken):
            return PlainTextResponse("webhook misconfigured; see the server log\n", 503)
        try:
            body = await _read(request, self.ctx.config.web.max_body)
            now = self.ctx.clock.now()
            verified = module.verify(key, request.headers, body, now.timestamp())
            events = module.events(verified.payload)
            counts = await run_in_threadpool(self._apply, module.NAME, verified, events, now)
        except HookError as exc:
            log.warning("%s webhook: refused with %d: %s", module.NAME, exc.status, exc.message)
            return PlainTextResponse(exc.message + "\n", exc.status, headers=exc.headers)
        return JSONResponse({"events": len(events), **counts})

    def _key(self, module: ModuleType) -> Any:
        """The provider's loaded secret; None when unconfigured (warned once), _Broken when unusable."""
        environ = self.ctx.environ
        names = module.env_names(self.ctx.config.web)
        values = tuple(environ.get(name, "") for name in names)
        if not all(values):
            if module.NAME not in self._warned:
                self._warned.add(module.NAME)
                log.warning("%s webhook: not configured (set %s); answering 404", module.NAME, " and ".join(names))
            return None
        cached = self._keys.get(module.NAME)
        if cached is None or cached[0] != values:
            cached = (values, self._load(module, names, values))
            self._keys[module.NAME] = cached
        return cached[1]

    @staticmethod
    def _load(module: ModuleType, names: tuple[str, ...], values: tuple[str, ...]) -> Any:
        try:
            return module.load(values)
        except ValueError as exc:
            log.error("%s webhook: %s holds %s; answering 503 until it is fixed", module.NAME, names[0], exc)
            return _Broken()

    def _apply(self, provider: str, verified: Verified, events: list[Event], now: datetime) -> dict[str, int]:
        from publisher.subscribers import Subscribers

        api = Subscribers(self.ctx.store, clock=self.ctx.clock)
        limit = self.ctx.config.web.soft_bounce_limit
        with self.ctx.store.begin() as conn:
            if verified.token is not None and _retried(conn, provider, verified, now):
                return {"duplicate": len(events)}
            self._prune(conn, now)
            counts = Counter(apply(conn, event, api, limit, now) for event in events)
        return dict(counts)

    def _prune(self, conn: Any, now: datetime) -> None:
        if now.timestamp() - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now.timestamp()
            seen.prune(conn, now)


def _retried(conn: Any, provider: str, verified: Verified, now: datetime) -> bool:
    """True when this signed token came before with this very body (a retry); Forbidden with another body."""
    note = seen.first_seen(conn, seen.key("token", provider, verified.token), now, verified.body_hash or "")
    if note is None:
        return False
    if note != verified.body_hash:
        raise Forbidden("this signature token was used before with another body (replay)")
    return True


async def _read(request: Any, limit: int) -> bytes:
    """The request body, or TooLarge past ``limit`` bytes (checked while reading, not only from Content-Length)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def routes(ctx: Any) -> list[Any]:
    """The webhook routes for ``create_app``."""
    return Webhooks(ctx).routes()
