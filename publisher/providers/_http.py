"""What the HTTP mail APIs (Mailgun, Postmark, SendGrid) share.

One keep-alive :class:`httpx.Client` per provider (timeouts from config,
``User-Agent: publisher/<version>``), the API key read from the environment
variable named in config, and one mapping from what the service answered to
:class:`~publisher.providers.base.Result`:

- a transport error or timeout, HTTP 408/420/425/429 or any 5xx: every recipient
  of the call is ``deferred``, with ``retry_after`` from ``Retry-After`` (seconds or
  an HTTP date) or ``X-RateLimit-Reset`` (epoch seconds);
- 401/403 (and 404, a wrong domain or base URL): :class:`DeliveryError` with
  ``transient=False`` and the response's first line, for the whole send;
- another 4xx that the provider says concerns recipients: the batch is split in
  halves until the bad recipients are alone, and those are ``failed`` (nothing in a
  rejected call was accepted, so resending the halves is safe); any other 4xx is a
  misconfiguration (unverified sender, ...) and raises :class:`DeliveryError`.

Per-recipient values are never rendered per recipient where the API substitutes
(Mailgun, SendGrid): the letter's placeholders become the API's own syntax, with
separate HTML-escaped and raw variables for the HTML and text parts.

Keys never appear in logs, errors or reprs: they live only in the client's
default headers.
"""

from __future__ import annotations

import html
import logging
import re
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from json.encoder import encode_basestring_ascii as jstr  # a str as a JSON string literal (C, ASCII-only)
from typing import Any, ClassVar

from publisher.errors import DeliveryError
from publisher.mail.letter import FIELDS, Letter, Recipient, placeholder
from publisher.providers.base import Provider, Result

log = logging.getLogger(__name__)

TRANSIENT_STATUS = frozenset({408, 420, 425, 429})  # plus every 5xx; 420 is Mailgun's old "enhance your calm"
FATAL_STATUS = frozenset({401, 403, 404})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


class Deferred(Exception):
    """The whole call may be retried later (transport error, timeout, 429, 5xx)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Rejected(Exception):
    """The service refused the call with a 4xx that is neither auth nor throttling."""

    def __init__(self, status: int, line: str, body: bytes) -> None:
        super().__init__(f"http {status} {line}")
        self.status = status
        self.line = line
        self.body = body
        self.bounce = False  # a provider's recipient_fault() sets it when the address itself is bad


class HttpProvider(Provider):
    """Base of the HTTP API providers: subclasses build the request and read the answer."""

    key_env_attr: ClassVar[str] = "api_key_env"  # the config field naming the key's environment variable

    def __init__(self, config: Any, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.max_batch = config.batch
        self._client: Any = None
        self._prepared: tuple[Letter, Any] | None = None
        self._last_call = 0.0
        self.sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.config.base_url}>"

    @property
    def key_env(self) -> str:
        return str(getattr(self.config, self.key_env_attr))

    def api_key(self) -> str:
        """The key from the environment; DeliveryError naming the variable when it is missing."""
        value = self.environ.get(self.key_env, "").strip()
        if not value:
            raise DeliveryError(self.name, f"environment variable {self.key_env} is not set: put the API key there",
                                transient=False)
        return value

    @abstractmethod
    def auth_headers(self, key: str) -> dict[str, str]:
        """The HTTP headers that carry ``key``."""

    def open(self) -> None:
        if self._client is not None:
            return
        import httpx

        from publisher import __version__

        headers = {"User-Agent": f"publisher/{__version__}", "Accept": "application/json"}
        headers.update(self.auth_headers(self.api_key()))
        self._client = httpx.Client(
            base_url=self.config.base_url, headers=headers, timeout=self.config.timeout, verify=_tls_context(),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=60.0),
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- sending ---------------------------------------------------------------------------------------------

    def send(self, letter: Letter, batch: Sequence[Recipient]) -> list[Result]:
        self.open()
        prepared = self.prepared(letter)
        results: list[Result] = []
        for chunk in chunks(batch, self.max_batch):
            results.extend(self._send_chunk(prepared, chunk) if not _pause(results)
                           else _defer_like(_pause(results), chunk))
        return results

    def prepared(self, letter: Letter) -> Any:
        """What the provider pre-computes once per letter (cached for the last letter)."""
        if self._prepared is None or not (self._prepared[0] is letter or self._prepared[0] == letter):
            self._prepared = (letter, self.prepare(letter))
        return self._prepared[1]

    @abstractmethod
    def prepare(self, letter: Letter) -> Any:
        """Pre-encode everything the batches of ``letter`` share."""

    @abstractmethod
    def deliver(self, prepared: Any, batch: Sequence[Recipient]) -> list[Result]:
        """One API call for ``batch``; raises Deferred or Rejected for a call-level answer."""

    def recipient_fault(self, error: Rejected) -> bool:
        """Whether a rejected call blames its recipients (then the batch is narrowed down)."""
        return False

    def _send_chunk(self, prepared: Any, batch: Sequence[Recipient]) -> list[Result]:
        try:
            return self.deliver(prepared, batch)
        except Deferred as exc:
            log.info("%s: %d recipients deferred: %s", self.name, len(batch), exc.reason)
            return [Result(r.delivery_id, "deferred", exc.reason, exc.retry_after) for r in batch]
        except Rejected as exc:
            if not self.recipient_fault(exc):
                raise DeliveryError(self.name, f"the service refused the request: {exc}", response=str(exc),
                                    transient=False) from None
            if len(batch) == 1:
                return [Result(batch[0].delivery_id, "failed", str(exc), bounce=exc.bounce)]
            half = len(batch) // 2
            log.info("%s: %s for %d recipients; retrying in halves", self.name, exc, len(batch))
            first = self._send_chunk(prepared, batch[:half])
            pause = _pause(first)  # the service asked for a pause: don't call it again in this send
            return first + (_defer_like(pause, batch[half:]) if pause else self._send_chunk(prepared, batch[half:]))

    def post(self, path: str, body: bytes, content_type: str) -> Any:
        """POST ``body``; a 2xx response, or Deferred / Rejected / DeliveryError."""
        import httpx

        self._pace()
        started = time.perf_counter()
        try:
            response = self._client.post(path, content=body, headers={"Content-Type": content_type})
        except httpx.TimeoutException as exc:
            raise Deferred(f"timeout after {self.config.timeout:g}s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Deferred(f"connection failed: {type(exc).__name__}: {_first_line(str(exc))}") from None
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: POST %s (%d bytes) -> %d in %.1f ms", self.name, path, len(body),
                      response.status_code, (time.perf_counter() - started) * 1000)
        return self.check(response)

    def check(self, response: Any) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            return response
        line = _first_line(response.text) or response.reason_phrase
        if status in FATAL_STATUS:
            what = "refused the key in" if status != 404 else "does not know this path; check base_url and"
            raise DeliveryError(self.name, f"the service {what} {self.key_env} (http {status}): {line}",
                                response=f"{status} {line}", transient=False)
        if status in TRANSIENT_STATUS or status >= 500:
            raise Deferred(f"http {status} {line}", retry_after(response.headers, self.clock.now()))
        raise Rejected(status, line, response.content)

    def _pace(self) -> None:
        rate = getattr(self.config, "rate", 0.0)
        if rate > 0:
            wait = self._last_call + 1.0 / rate - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            self._last_call = time.monotonic()


# -- helpers shared by the three providers ---------------------------------------------------------------------

_TLS: list[Any] = []  # the process's verifying SSL context, made once


def _tls_context() -> Any:
    """httpx's default verifying SSL context, shared by every client of this process.

    Loading the CA bundle takes 20-40 ms, which each send paid again when it opened its provider.
    """
    if not _TLS:
        import httpx

        _TLS.append(httpx.create_ssl_context())
    return _TLS[0]



def chunks(batch: Sequence[Recipient], size: int) -> Iterator[Sequence[Recipient]]:
    for start in range(0, len(batch), size):
        yield batch[start : start + size]


def retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``X-RateLimit-Reset`` (epoch seconds)."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
            except (TypeError, ValueError):
                pass
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            seconds = float(reset)
        except ValueError:
            return None
        return max(0.0, seconds - now.timestamp()) if seconds > 1e9 else max(0.0, seconds)
    return None


def used_fields(template: str) -> list[str]:
    """The placeholder fields that occur in ``template``."""
    return [field for field in FIELDS if placeholder(field) in template]


def convert(template: str, syntax: Callable[[str], str]) -> str:
    """``template`` with each placeholder replaced by the API's substitution tag ``syntax(field)``."""
    for field in FIELDS:
        template = template.replace(placeholder(field), syntax(field))
    return template


class Variables:
    """The per-recipient values a letter needs, under the API's variable names.

    Raw values for the text part, HTML-escaped ones for the HTML part, each only
    when the part uses the field (``extra`` adds raw fields used elsewhere, e.g. in
    a header template).
    """

    def __init__(self, letter: Letter, text_name: Callable[[str], str], html_name: Callable[[str], str],
                 extra: Sequence[str] = ()) -> None:
        text = used_fields(letter.text) + [field for field in extra if field not in used_fields(letter.text)]
        self.text = [(field, text_name(field)) for field in text]
        self.html = [(field, html_name(field)) for field in used_fields(letter.html)]
        self._text_json = [(field, jstr(name) + ": ") for field, name in self.text]
        self._html_json = [(field, jstr(name) + ": ") for field, name in self.html]

    def of(self, recipient: Recipient) -> dict[str, str]:
        values = recipient.values()
        out = {name: values[field] for field, name in self.text}
        for field, name in self.html:
            out[name] = escape(values[field])
        return out

    def json(self, recipient: Recipient) -> str:
        """``json.dumps(self.of(recipient))`` without the members' braces, built about twice as fast."""
        values = recipient.values()
        members = [key + jstr(values[field]) for field, key in self._text_json]
        members += [key + jstr(escape(values[field])) for field, key in self._html_json]
        return ", ".join(members)


def escape(value: str) -> str:
    """``html.escape`` (quotes too), skipped when nothing needs escaping (the common case, and 10x cheaper)."""
    if "&" in value or "<" in value or ">" in value or '"' in value or "'" in value:
        return html.escape(value)
    return value


def clean(value: str) -> str:
    """A header value with no CR, LF or other control character."""
    return value if value.isprintable() else _CONTROL.sub(" ", value).strip()


def one_line(value: str) -> str:
    """``value`` unchanged unless it holds a line break (cheap check for values we generated ourselves)."""
    return clean(value) if "\r" in value or "\n" in value else value


def display_address(email: str, name: str | None) -> str:
    """``Name <email>`` (name quoted when needed, never able to break the header) or the bare address."""
    if not name:
        return email
    name = clean(name)
    if _SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{email}>" if name else email


def unsubscribe_mailto(letter: Letter) -> str:
    """The mailto part of List-Unsubscribe (with its leading ", "), or ""."""
    if not letter.unsubscribe_mailto:
        return ""
    return f", <mailto:{clean(letter.unsubscribe_mailto)}?subject=unsubscribe>"


def list_unsubscribe(letter: Letter, recipient: Recipient, mailto: str | None = None) -> str:
    mailto = unsubscribe_mailto(letter) if mailto is None else mailto
    return f"<{one_line(recipient.unsubscribe_url)}>{mailto}"


def recipient_headers(letter: Letter, recipient: Recipient, mailto: str | None = None) -> dict[str, str]:
    """The headers that differ per recipient."""
    return {"List-Unsubscribe": list_unsubscribe(letter, recipient, mailto),
            "Message-ID": one_line(recipient.message_id)}


def shared_headers(letter: Letter) -> dict[str, str]:
    return {"List-Id": clean(letter.list_id), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return clean(line)[:200]
    return ""


def _pause(results: Sequence[Result]) -> Result | None:
    """The first deferral that carries a Retry-After (the service asked to wait), if any."""
    return next((r for r in results if r.outcome == "deferred" and r.retry_after is not None), None)


def _defer_like(pause: Result, batch: Sequence[Recipient]) -> list[Result]:
    return [Result(r.delivery_id, "deferred", pause.reason, pause.retry_after) for r in batch]
