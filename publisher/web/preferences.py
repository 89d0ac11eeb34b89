"""The preferences page: a subscriber's lists, per-list unsubscribe and resubscribe, their data, erasure.

The token (purpose ``preferences``, list ``*``) comes from a mail sent to the
subscriber or from the page after an unsubscribe, so holding it shows control of
the mailbox.  Even so, only a subscription stopped by the subscriber's own choice
(``unsubscribed``) comes back at once; a list never joined, a pending one, or
one stopped by a bounce or a spam complaint needs the confirmation link mailed
again (rate-limited like a sign-up).

Actions are POSTs (CSRF-checked) with an ``action`` field: ``unsubscribe`` and
``subscribe`` (with ``list``), ``export`` (their data as a JSON download),
``delete`` (asks again) and ``delete-confirmed`` (erases them through
:func:`publisher.forget.forget`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from publisher.errors import PublisherError, TokenError
from publisher.web import actions
from publisher.web.confirm import bad_link
from publisher.web.mailer import send_notice

log = logging.getLogger(__name__)

ACTIONS = ("unsubscribe", "subscribe", "export", "delete", "delete-confirmed")


def _checked(ctx: Any, token: str) -> Any:
    subscriber_id, scope = ctx.verify(token, "preferences")
    if scope != "*":
        raise TokenError("not a preferences link")
    row = actions.subscriber(ctx, subscriber_id)
    if row is None:
        raise TokenError("no such subscriber (the address may have been removed)")
    return row


def rows(ctx: Any, subscriber_id: int) -> list[dict[str, Any]]:
    """One row per configured list (and per list they are on that is no longer configured)."""
    found = actions.statuses(ctx, subscriber_id)
    names = [*ctx.config.lists, *sorted(set(found) - set(ctx.config.lists))]
    out = []
    for name in names:
        mailing_list = ctx.config.lists.get(name)
        out.append({"name": name, "title": mailing_list.title if mailing_list else name,
                    "description": mailing_list.description if mailing_list else None,
                    "configured": mailing_list is not None, "status": found.get(name)})
    return out


def _render(ctx: Any, request: Request, row: Any, notice: str | None = None, *, status: int = 200) -> Response:
    context = {"subscriber": row, "rows": rows(ctx, row.id), "notice": notice, "action": _action(ctx, request)}
    return ctx.page(request, "preferences.html.j2", context, status=status)


async def preferences_page(request: Request) -> Response:
    ctx = request.app.state.ctx
    try:
        row = await run_in_threadpool(_checked, ctx, request.path_params["token"])
    except TokenError as exc:
        return bad_link(ctx, request, exc)
    return await run_in_threadpool(_render, ctx, request, row)


async def preferences_post(request: Request) -> Response:
    ctx = request.app.state.ctx
    form = await ctx.form(request)
    try:
        row = await run_in_threadpool(_checked, ctx, request.path_params["token"])
    except TokenError as exc:
        return bad_link(ctx, request, exc)
    action, list_name = str(form.get("action", "")), str(form.get("list", ""))
    if action not in ACTIONS:
        return ctx.error(request, 400, "Unknown request", "The form sent an action this page doesn't know.")
    return await run_in_threadpool(_HANDLERS[action], ctx, request, row, list_name)


def _unsubscribe(ctx: Any, request: Request, row: Any, list_name: str) -> Response:
    if list_name not in actions.statuses(ctx, row.id):
        return _render(ctx, request, row, "You aren't on that list.", status=400)
    if actions.unsubscribe(ctx, row.id, list_name):
        log.info("list %s: subscriber %d unsubscribed (preferences)", list_name, row.id)
    return _render(ctx, request, row, f"You're unsubscribed from {_title(ctx, list_name)}.")


def _subscribe(ctx: Any, request: Request, row: Any, list_name: str) -> Response:
    if list_name not in ctx.config.lists:
        return _render(ctx, request, row, "There is no such list.", status=400)
    current = actions.status(ctx, row.id, list_name)
    if current == "active":
        return _render(ctx, request, row, f"You're already subscribed to {_title(ctx, list_name)}.")
    if current == "unsubscribed":
        actions.activate(ctx, row.id, list_name)
        log.info("list %s: subscriber %d resubscribed (preferences)", list_name, row.id)
        return _render(ctx, request, row, f"You're subscribed to {_title(ctx, list_name)} again.")
    return _send_confirmation(ctx, request, row, list_name)


def _send_confirmation(ctx: Any, request: Request, row: Any, list_name: str) -> Response:
    web = ctx.config.web
    client = ctx.client_ip(request)
    if not (ctx.limiter.hit(f"client:{client}", web.signups_per_client)
            and ctx.limiter.hit(f"address:{row.email}", web.signups_per_address)):
        return _render(ctx, request, row, "Too many confirmation emails were asked for; please try again later.",
                       status=429)
    actions.ensure_pending(ctx, row.id, list_name)
    try:
        send_notice(ctx, "confirm", row, list_name)
    except PublisherError as exc:
        log.error("list %s: confirmation mail not sent: %s", list_name, exc)
        return _render(ctx, request, row, "Sending the confirmation email failed; please try again later.",
                       status=503)
    return _render(ctx, request, row, f"We've sent a confirmation link to {row.email}: follow it to start "
                                      f"receiving {_title(ctx, list_name)}.")


def _export(ctx: Any, request: Request, row: Any, list_name: str) -> Response:
    data = {"exported_at": ctx.clock.now().isoformat(timespec="seconds"), "subscriber": personal_data(ctx, row.id)}
    body = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return Response(body, media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="subscriber-data.json"'})


def personal_data(ctx: Any, subscriber_id: int) -> dict[str, Any]:
    """Everything stored about the subscriber (``publisher.forget.personal_data``)."""
    from publisher.forget import personal_data as collect

    with ctx.store.begin() as conn:
        return collect(conn, subscriber_id)


def _delete(ctx: Any, request: Request, row: Any, list_name: str) -> Response:
    return ctx.page(request, "delete.html.j2", {"subscriber": row, "action": _action(ctx, request)})


def _delete_confirmed(ctx: Any, request: Request, row: Any, list_name: str) -> Response:
    try:
        from publisher.forget import forget
    except ImportError:
        return ctx.error(request, 503, "Not available", "Deleting your data isn't available here; "
                         "please write to the list's address and we'll do it by hand.")
    report = forget(ctx.store, ctx.config, row.email, clock=ctx.clock)
    log.info("subscriber erased on their request from the preferences page: %s", report.line())
    return ctx.page(request, "deleted.html.j2")


def _action(ctx: Any, request: Request) -> str:
    """Where the page's forms post: this same preferences URL."""
    return ctx.path("preferences/" + request.path_params["token"])


def _title(ctx: Any, list_name: str) -> str:
    mailing_list = ctx.config.lists.get(list_name)
    return mailing_list.title if mailing_list else list_name


_HANDLERS = {"unsubscribe": _unsubscribe, "subscribe": _subscribe, "export": _export, "delete": _delete,
             "delete-confirmed": _delete_confirmed}


def routes() -> list[Route]:
    return [
        Route("/preferences/{token}", preferences_page, methods=["GET"]),
        Route("/preferences/{token}", preferences_post, methods=["POST"]),
    ]
