"""The double opt-in link: GET shows a button (link scanners follow GETs), its POST activates.

An expired, altered or forged link gets the plain error page and changes
nothing.  Confirming twice is harmless.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from publisher.errors import TokenError
from publisher.web import actions
from publisher.web.mailer import preferences_url

log = logging.getLogger(__name__)


def bad_link(ctx: Any, request: Request, exc: TokenError) -> Response:
    """The page for a link that does not work (400): says why, changes nothing."""
    return ctx.error(request, 400, "This link doesn't work", f"{exc.reason[:1].upper()}{exc.reason[1:]}.")


def _checked(ctx: Any, request: Request) -> tuple[int, str, Any]:
    """``(subscriber_id, list_name, subscriber row)`` of the request's confirm token; TokenError otherwise."""
    subscriber_id, list_name = ctx.verify(request.path_params["token"], "confirm")
    if list_name not in ctx.config.lists:
        raise TokenError("that list no longer exists")
    row = actions.subscriber(ctx, subscriber_id)
    if row is None:
        raise TokenError("no such subscriber (the address may have been removed)")
    return subscriber_id, list_name, row


async def confirm_page(request: Request) -> Response:
    ctx = request.app.state.ctx
    try:
        _, list_name, row = await run_in_threadpool(_checked, ctx, request)
    except TokenError as exc:
        return bad_link(ctx, request, exc)
    context = {"list_name": list_name, "list": ctx.config.lists[list_name], "email": row.email,
               "action": ctx.path("confirm/" + request.path_params["token"])}
    return ctx.page(request, "confirm.html.j2", context)


async def confirm_post(request: Request) -> Response:
    ctx = request.app.state.ctx
    await ctx.form(request)
    try:
        subscriber_id, list_name, row = await run_in_threadpool(_checked, ctx, request)
    except TokenError as exc:
        return bad_link(ctx, request, exc)
    if await run_in_threadpool(actions.activate, ctx, subscriber_id, list_name):
        log.info("list %s: subscriber %d confirmed", list_name, subscriber_id)
    context = {"list_name": list_name, "list": ctx.config.lists[list_name], "email": row.email,
               "preferences_url": preferences_url(ctx, subscriber_id, row.secret)}
    return ctx.page(request, "confirmed.html.j2", context)


def routes() -> list[Route]:
    return [
        Route("/confirm/{token}", confirm_page, methods=["GET"]),
        Route("/confirm/{token}", confirm_post, methods=["POST"]),
    ]
