"""Unsubscribe: the page behind the digest's link, its button, and the RFC 8058 one-click POST.

- ``GET unsubscribe/<token>`` shows one button and never changes anything (link
  scanners and previews follow GETs).
- ``POST unsubscribe/<token>`` from that page (CSRF-checked) unsubscribes at once.
- ``POST unsubscribe/<token>`` with the body ``List-Unsubscribe=One-Click``
  (url-encoded or multipart; RFC 8058, sent by mailbox providers) unsubscribes
  with no cookie and no page: 200, plain text.
- ``GET unsubscribe`` (no token: the web copy of a digest) explains where the
  personal link is.

Both POSTs are idempotent; a bad token gets a 400 and changes nothing.  The
token is the authority: it is signed for this subscriber and list.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from publisher.errors import TokenError
from publisher.web import actions
from publisher.web.confirm import bad_link
from publisher.web.mailer import preferences_url

log = logging.getLogger(__name__)

ONE_CLICK = "One-Click"


def _checked(ctx: Any, token: str) -> tuple[int, str, Any]:
    subscriber_id, list_name = ctx.verify(token, "unsubscribe")
    row = actions.subscriber(ctx, subscriber_id)
    if row is None:
        raise TokenError("no such subscriber (the address may have been removed)")
    return subscriber_id, list_name, row


def _unsubscribe(ctx: Any, token: str, how: str) -> tuple[int, str, Any]:
    subscriber_id, list_name, row = _checked(ctx, token)
    if actions.unsubscribe(ctx, subscriber_id, list_name):
        log.info("list %s: subscriber %d unsubscribed (%s)", list_name, subscriber_id, how)
    return subscriber_id, list_name, row


def _context(ctx: Any, list_name: str, row: Any) -> dict[str, Any]:
    mailing_list = ctx.config.lists.get(list_name)
    return {"list_name": list_name, "list_title": mailing_list.title if mailing_list else list_name, "email": row.email}


async def help_page(request: Request) -> Response:
    ctx = request.app.state.ctx
    return ctx.page(request, "unsubscribe-help.html.j2")


async def unsubscribe_page(request: Request) -> Response:
    ctx = request.app.state.ctx
    try:
        subscriber_id, list_name, row = await run_in_threadpool(_checked, ctx, request.path_params["token"])
    except TokenError as exc:
        return bad_link(ctx, request, exc)
    current = await run_in_threadpool(actions.status, ctx, subscriber_id, list_name)
    context = {**_context(ctx, list_name, row), "status": current,
               "action": ctx.path("unsubscribe/" + request.path_params["token"])}
    return ctx.page(request, "unsubscribe.html.j2", context)


async def unsubscribe_post(request: Request) -> Response:
    ctx = request.app.state.ctx
    token = request.path_params["token"]
    if await _is_one_click(ctx, request):
        return await _one_click(ctx, token)
    await ctx.form(request)
    try:
        subscriber_id, list_name, row = await run_in_threadpool(_unsubscribe, ctx, token, "page")
    except TokenError as exc:
        return bad_link(ctx, request, exc)
    context = {**_context(ctx, list_name, row), "preferences_url": preferences_url(ctx, subscriber_id, row.secret)}
    return ctx.page(request, "unsubscribed.html.j2", context)


async def _one_click(ctx: Any, token: str) -> Response:
    try:
        await run_in_threadpool(_unsubscribe, ctx, token, "one-click")
    except TokenError as exc:
        return PlainTextResponse(f"This link doesn't work: {exc.reason}.\n", status_code=400)
    return PlainTextResponse("Unsubscribed.\n")


async def _is_one_click(ctx: Any, request: Request) -> bool:
    """Whether the body is RFC 8058's ``List-Unsubscribe=One-Click`` (form-encoded, multipart or bare)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await ctx.raw_form(request)
        return form.get("List-Unsubscribe") == ONE_CLICK
    body = await request.body()
    return body.strip() == b"List-Unsubscribe=" + ONE_CLICK.encode()


def routes() -> list[Route]:
    return [
        Route("/unsubscribe", help_page, methods=["GET"]),
        Route("/unsubscribe/", help_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
    ]
