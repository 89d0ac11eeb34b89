"""The subscriber web service: sign-up with double opt-in, unsubscribe, preferences (``publisher serve``).

Starlette on uvicorn.  :func:`publisher.web.app.create_app` builds the app and
:mod:`publisher.web.server` runs it (``serve`` blocking, ``start_in_thread`` for the
daemon and the tests).  Every route is mounted under the *path* of
``config.web_url`` (``https://example.org/newsletter/`` -> ``/newsletter/``), so the
links in emails work whether the app is reached directly or through a proxy that
passes the path through.

Modules: ``context`` (:class:`WebContext`), ``templates`` (the Jinja environment),
``security`` (headers, CSRF, body limit), ``ratelimit``, ``accesslog``, ``mailer``
(confirmation mails), ``pages`` (index, static files, errors), ``subscribe``,
``confirm``, ``unsubscribe``, ``preferences``.

Optional route modules (other engineers)
----------------------------------------
``create_app`` imports ``publisher.web.webhooks``, ``publisher.web.archive`` and
``publisher.web.feeds`` when present (an ImportError of the module itself is
skipped) and mounts what their ``routes(ctx)`` return (lists of
``starlette.routing.Route``/``Mount``).  Webhooks and archive paths are *relative
to the base path* (``Route("/archive/{list_name}", ...)`` answers
``/newsletter/archive/weekly``); the feeds' paths are absolute (the path of
``feeds.url``) and are mounted after everything else.  The name of each module
loaded is added to ``ctx.features`` (``"archive"`` makes the index page link to
``archive/<list>``).

The ``ctx`` object (:class:`publisher.web.context.WebContext`)
----------------------------------------------------------------
- ``ctx.config``: :class:`publisher.config.Config`; ``ctx.store``: the migrated
  :class:`publisher.state.Store`; ``ctx.clock``; ``ctx.environ`` (a Mapping, for
  secrets named in config, e.g. ``ctx.environ.get(ctx.config.web.mailgun_signing_key_env)``).
- ``ctx.signer``: :class:`publisher.tokens.Signer` with the server secret;
  ``ctx.verify(token, purpose) -> (subscriber_id, list_name)`` (TokenError otherwise).
- ``ctx.subscribers``: :class:`publisher.subscribers.Subscribers` on the store.
- ``ctx.templates``: the page Jinja environment (autoescape for ``*.html.j2``,
  StrictUndefined; ``web/x.html.j2`` and ``x.html.j2`` name the same file); search path ``config.web.templates``, then ``<d>/web`` for each
  of ``config.template_dirs``, then the built-in ``templates/web/``.  Pages
  ``{% extends "base.html.j2" %}`` and fill ``{% block title %}`` and
  ``{% block content %}``.
- ``ctx.page(request, "name.html.j2", {...}, status=200, headers=None)``: an
  HTMLResponse with the shared context (``site``, ``base`` (the base path),
  ``lists``, ``features``, ``csrf`` (the form token; the cookie is set as needed),
  ``static_url(name)``, ``now``).  ``ctx.error(request, status, title, message)``:
  the plain error page.
- ``ctx.limiter``: :class:`publisher.web.ratelimit.RateLimiter`
  (``hit(key, limit) -> bool``, sliding one-hour window, clock injected).
- ``ctx.url(path)``: the public absolute URL (``config.web_url + path``);
  ``ctx.path(path)``: the site-relative one (base path + path).
- ``ctx.client_ip(request)``: the client address (X-Forwarded-For is honoured
  only from ``web.forwarded_allow_ips``, applied before the app sees the request).
- ``ctx.features``: set of optional module names mounted.

Security applies to every route: the headers (CSP and the rest) are added to
every response that does not set its own (the archive sends a CSP allowing its
inline styles by hash); ``Cache-Control: no-store`` is the default for every
response that does not set its own Cache-Control (feeds and archives set theirs);
bodies over ``web.max_body`` get 413 before the app reads them.  CSRF is *not*
middleware: form handlers call ``await ctx.form(request)`` (which checks the
token) so that webhooks and the RFC 8058 one-click POST need none.
"""
