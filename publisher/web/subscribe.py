"""Sign-up: the form per list, the JSON endpoint, and the double opt-in request behind both.

Every sign-up gets the same answer whatever the address's state, so no response
tells whether someone is subscribed:

- new to the list (or a new address): a pending subscription and a confirmation mail;
- pending, unsubscribed, bounced or complained: a confirmation mail; the status
  changes only when the link is followed (consent is shown by confirming);
- already active: a "you're already subscribed" mail with a preferences link;
- over a rate limit (per client IP, per address), suppressed (forgotten) or a bot
  (the hidden honeypot field filled): no mail.  The form shows the neutral page;
  the JSON API answers 429 for a rate limit (also regardless of the address).

The name typed into the form is stored for a *new* address only: a stranger
can't rename an existing subscriber.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from publisher.errors import PublisherError, SubscriberError
from publisher.subscribers import clean_name, normalise_email
from publisher.web import actions
from publisher.web.mailer import send_notice

log = logging.getLogger(__name__)

HONEYPOT = "website"
Outcome = Literal["sent", "quiet", "limited", "failed"]


@dataclass(frozen=True, slots=True)
class Signup:
    outcome: Outcome
    retry_after: int = 0


def request_subscription(ctx: Any, list_name: str, address: str, name: str | None, client: str) -> Signup:
    """Rate-limit, record a pending subscription if needed, and mail the confirmation (or the notice)."""
    web = ctx.config.web
    for key, limit in ((f"client:{client}", web.signups_per_client), (f"address:{address}", web.signups_per_address)):
        if not ctx.limiter.hit(key, limit):
            log.info("list %s: sign-up refused by the rate limit on %s", list_name, key.split(":")[0])
            return Signup("limited", ctx.limiter.retry_after(key, limit))
    if _suppressed(ctx, address):
        log.info("list %s: sign-up for a suppressed (forgotten) address; no mail sent", list_name)
        return Signup("quiet")
    return _mail(ctx, list_name, address, name)


def _mail(ctx: Any, list_name: str, address: str, name: str | None) -> Signup:
    row = actions.by_email(ctx, address)
    current = None if row is None else actions.status(ctx, row.id, list_name)
    if current is None:
        ctx.subscribers.add(address, name if row is None else None, [list_name], status="pending")
        row = actions.by_email(ctx, address)
    try:
        send_notice(ctx, "already-subscribed" if current == "active" else "confirm", row, list_name)
    except PublisherError as exc:
        log.error("list %s: confirmation mail not sent: %s", list_name, exc)
        return Signup("failed")
    return Signup("sent")


def _suppressed(ctx: Any, address: str) -> bool:
    try:
        from publisher.suppress import is_suppressed
    except ImportError:
        return False
    with ctx.store.begin() as conn:
        return bool(is_suppressed(conn, address))


# -- the form -----------------------------------------------------------------------


async def form_page(request: Request) -> Response:
    ctx = request.app.state.ctx
    list_name = request.path_params["list_name"]
    if list_name not in ctx.config.lists:
        return _no_list(ctx, request)
    return _form(ctx, request, list_name, {"email": "", "name": ""}, None)


async def form_post(request: Request) -> Response:
    ctx = request.app.state.ctx
    list_name = request.path_params["list_name"]
    if list_name not in ctx.config.lists:
        return _no_list(ctx, request)
    form = await ctx.form(request)
    values = {"email": str(form.get("email", ""))[:320], "name": str(form.get("name", ""))[:200]}
    try:
        address = normalise_email(values["email"])
    except SubscriberError as exc:
        return _form(ctx, request, list_name, values, exc.reason, status=400)
    if form.get(HONEYPOT):
        log.info("list %s: sign-up with the honeypot field filled; ignored", list_name)
        return _sent(ctx, request, list_name)
    signup = await run_in_threadpool(request_subscription, ctx, list_name, address, clean_name(values["name"]),
                                     ctx.client_ip(request))
    if signup.outcome == "failed":
        return ctx.error(request, 503, "We couldn't send the email",
                         "Sending the confirmation email failed just now. Please try again in a little while.")
    return _sent(ctx, request, list_name)


def _form(ctx: Any, request: Request, list_name: str, values: dict[str, str], error: str | None, *,
          status: int = 200) -> Response:
    context = {"list_name": list_name, "list": ctx.config.lists[list_name], "values": values, "error": error,
               "honeypot": HONEYPOT, "action": ctx.path("subscribe/" + list_name)}
    return ctx.page(request, "subscribe.html.j2", context, status=status)


def _sent(ctx: Any, request: Request, list_name: str) -> Response:
    context = {"list_name": list_name, "list": ctx.config.lists[list_name],
               "valid_hours": ctx.config.web.confirm_within // 3600}
    return ctx.page(request, "check-inbox.html.j2", context)


def _no_list(ctx: Any, request: Request) -> Response:
    return ctx.error(request, 404, "No such list", "There is no mailing list at this address.")


# -- the JSON API -------------------------------------------------------------------


async def api_subscribe(request: Request) -> Response:
    """POST ``api/lists/<list>/subscribe`` with ``{"email": ..., "name": ...}`` -> 202 (always the same body)."""
    ctx = request.app.state.ctx
    list_name = request.path_params["list_name"]
    if list_name not in ctx.config.lists:
        return _json_error(404, f"no list called {list_name!r}")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return _json_error(415, "send the request as application/json")
    parsed = _json_body(await request.body())
    if isinstance(parsed, str):
        return _json_error(400, parsed)
    address, name = parsed
    signup = await run_in_threadpool(request_subscription, ctx, list_name, address, name, ctx.client_ip(request))
    if signup.outcome == "limited":
        return _json_error(429, "too many sign-ups; try again later", {"Retry-After": str(signup.retry_after)})
    if signup.outcome == "failed":
        return _json_error(503, "the confirmation email could not be sent; try again later")
    return JSONResponse({"status": "accepted", "message": "If the address can be subscribed, a confirmation "
                         "email is on its way; the subscription starts when its link is followed."}, status_code=202)


def _json_body(body: bytes) -> tuple[str, str | None] | str:
    """``(address, name)`` from the request body, or what is wrong with it."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "the body is not JSON"
    if not isinstance(data, dict) or not isinstance(data.get("email"), str):
        return 'send an object with "email" (a string) and optionally "name"'
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        return '"name" must be a string'
    try:
        return normalise_email(data["email"][:320]), clean_name(name[:200] if name else None)
    except SubscriberError as exc:
        return f"email: {exc.reason}"


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def routes() -> list[Route]:
    return [
        Route("/subscribe/{list_name}", form_page, methods=["GET"]),
        Route("/subscribe/{list_name}", form_post, methods=["POST"]),
        Route("/api/lists/{list_name}/subscribe", api_subscribe, methods=["POST"]),
    ]
