"""The pages that are neither sign-up nor a subscriber link: the index, static files, health, errors."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from publisher.web.context import CsrfRejected
from publisher.web.security import BodyTooLarge

log = logging.getLogger(__name__)

STATIC_CACHE = "public, max-age=31536000, immutable"  # URLs carry a content hash (?v=...)


async def index(request: Request) -> Response:
    """Every list, with its description and a link to its sign-up form (and archive, when served)."""
    ctx = request.app.state.ctx
    return ctx.page(request, "index.html.j2")


async def static(request: Request) -> Response:
    ctx = request.app.state.ctx
    found = ctx.static.get(request.path_params["name"])
    if found is None:
        return ctx.error(request, 404, "Not found", "There is no such file.")
    return Response(found.data, media_type=found.media_type,
                    headers={"Cache-Control": STATIC_CACHE, "ETag": f'"{found.version}"'})


async def health(request: Request) -> Response:
    return PlainTextResponse("ok\n")


# -- errors ------------------------------------------------------------------------

_MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Method not allowed", "This page can't be used that way."),
    413: ("Request too large", "The request was larger than this site accepts."),
}


async def http_error(request: Request, exc: Exception) -> Response:
    ctx = request.app.state.ctx
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    title, message = _MESSAGES.get(status, ("Error", "Something went wrong."))
    response = ctx.error(request, status, title, message)
    if status == 405 and isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)
    return response


async def csrf_rejected(request: Request, exc: Exception) -> Response:
    ctx = request.app.state.ctx
    log.info("form POST refused: missing or wrong CSRF token")
    return ctx.error(request, 403, "The form expired",
                     "This form was sent without the security check it needs (cookies may be blocked, or the "
                     "page was open for a long time). Go back, reload the page and try again.")


async def server_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, BodyTooLarge):  # answered 413 by the BodyLimit middleware: not a server error
        return PlainTextResponse("Request too large.\n", status_code=413)
    log.error("%s %s failed: %s", request.method, request.scope.get("route_name", "request"), exc, exc_info=exc)
    ctx = request.app.state.ctx
    return ctx.error(request, 500, "Something went wrong", "The server could not finish this request. "
                     "Please try again later.")


def exception_handlers() -> dict[Any, Any]:
    return {HTTPException: http_error, CsrfRejected: csrf_rejected, Exception: server_error}


def routes() -> list[Route]:
    return [
        Route("/", index, methods=["GET"]),
        Route("/subscribe", index, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ]
