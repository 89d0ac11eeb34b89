"""Running the web service on uvicorn: :func:`serve` (blocking) and :func:`start_in_thread`.

uvicorn is told to leave logging alone (``log_config=None``: publisher configures
the handlers), to write no access log of its own (:mod:`publisher.web.accesslog`
writes one with the tokens cut out) and not to read proxy headers itself: the
app applies X-Forwarded-For and X-Forwarded-Proto only from
``web.forwarded_allow_ips`` (:func:`publisher.web.app.create_app`).

:func:`serve` stops cleanly on SIGTERM or SIGINT: it finishes the requests in
flight (up to :data:`GRACE` seconds), closes the database and returns; a second
SIGINT forces the stop.  Unlike plain uvicorn it does not re-raise the signal
afterwards, so ``publisher serve`` exits with status 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from publisher.clock import Clock
from publisher.config import Config
from publisher.errors import ConfigError

log = logging.getLogger(__name__)

GRACE = 10.0  # seconds given to requests in flight at a stop
STARTUP_TIMEOUT = 30.0


def _uvicorn_config(app: Any) -> Any:
    import uvicorn

    return uvicorn.Config(app, log_config=None, access_log=False, proxy_headers=False, server_header=False,
                          lifespan="on", timeout_graceful_shutdown=GRACE, limit_concurrency=1000,
                          timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024)


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server that reports when it listens and does not re-raise the signal that stopped it."""

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.ready = threading.Event()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            self.ready.set()

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one.  ConfigError when it can't."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError("web", [f"web.host/web.port: can't listen on {host}:{port}: {exc.strerror or exc}; "
                                  "choose another port or stop what is using it"]) from exc
    sock.set_inheritable(True)
    return sock


def serve(config: Config, *, clock: Clock | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Serve on ``web.host:web.port`` until SIGTERM or SIGINT (blocking); then stop cleanly."""
    from publisher.web.app import create_app

    sock = bind(config.web.host, config.web.port)
    app = create_app(config, clock=clock, environ=environ)
    server = _server_class()(_uvicorn_config(app))
    log.info("serving the subscriber pages on http://%s:%d%s (public URL %s)", _host(config.web.host),
             sock.getsockname()[1], app.ctx.base_path, config.web_url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        app.close()
    log.info("web service stopped")


@dataclass
class ServerHandle:
    """A server running in a background thread: ``url`` is where it listens (its base path included)."""

    app: Any  # publisher.web.app.WebApp
    host: str
    port: int
    server: Any = field(repr=False)
    thread: threading.Thread = field(repr=False)
    sock: socket.socket = field(repr=False)

    @property
    def ctx(self) -> Any:
        return self.app.ctx

    @property
    def url(self) -> str:
        return f"http://{_host(self.host)}:{self.port}{self.app.ctx.base_path}"

    def stop(self, timeout: float = GRACE + 5) -> None:
        """Stop serving, wait for the thread, close the database."""
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)
        self.sock.close()
        self.app.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(config: Config, *, clock: Clock | None = None, environ: Mapping[str, str] | None = None,
                    host: str | None = None, port: int | None = None, store: Any = None,
                    **app_options: Any) -> ServerHandle:
    """Serve in a daemon thread (for ``publisher run`` and the tests); returns once it accepts connections.

    ``host``/``port`` override ``web.host``/``web.port`` (port 0: a free port, see ``handle.port``).
    """
    from publisher.web.app import create_app

    host = config.web.host if host is None else host
    sock = bind(host, config.web.port if port is None else port)
    try:
        app = create_app(config, clock=clock, environ=environ, store=store, **app_options)
    except BaseException:
        sock.close()
        raise
    server = _server_class()(_uvicorn_config(app))
    thread = threading.Thread(target=_run, args=(server, sock), name="publisher-web", daemon=True)
    thread.start()
    handle = ServerHandle(app, host, sock.getsockname()[1], server, thread, sock)
    _wait_ready(handle)
    log.info("serving the subscriber pages on %s", handle.url)
    return handle


def _run(server: Any, sock: socket.socket) -> None:
    try:
        server.run(sockets=[sock])
    except BaseException:  # noqa: BLE001 - a thread must not die silently
        log.exception("the web service stopped with an error")


def _wait_ready(handle: ServerHandle) -> None:
    """Return once uvicorn listens; stop and raise ConfigError when it died or took too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not handle.server.ready.wait(0.05):
        if not handle.thread.is_alive() or time.monotonic() > deadline:
            handle.stop()
            raise ConfigError("web", ["the web service failed to start; see the log above"])


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
