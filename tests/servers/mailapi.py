"""A local HTTP server speaking the send endpoints of Mailgun, Postmark and SendGrid.

``MailApi`` listens on 127.0.0.1 (random port) and answers like the real services:

- Mailgun ``POST /v3/{domain}/messages`` (HTTP Basic ``api:KEY``; multipart or urlencoded form;
  ``recipient-variables`` with ``%recipient.x%`` substitution in bodies, subject and ``h:`` headers;
  200 ``{"id", "message": "Queued. Thank you."}``; 400 ``{"message"}`` for a bad address; 401 ``Forbidden``;
  404 for an unknown domain);
- Postmark ``POST /email/batch`` (``X-Postmark-Server-Token``; at most 500 messages; 200 with one
  ``{"ErrorCode", "Message", "MessageID", "To", "SubmittedAt"}`` per message even when some fail;
  422 with an ErrorCode for a bad request; 401 ErrorCode 10);
- SendGrid ``POST /v3/mail/send`` (``Authorization: Bearer KEY``; at most 1,000 personalizations,
  ``substitutions`` applied to content and subject; 202 with ``X-Message-Id``; 400/401 ``{"errors": [...]}``).

Each accepted batch is expanded into one received message per recipient (substitutions applied)
for :meth:`MailApi.inbox`.  Faults on command (:meth:`MailApi.fail`): ``"429"`` (with
``retry_after=`` seconds or HTTP date and/or ``reset=`` epoch seconds), ``"500"``, ``"502"``,
``"503"``, ``"transient"`` (503), ``"stall"`` (no answer until the test ends: a client timeout),
``"drop"`` (connection closed without an answer), ``"401"``, ``"config"`` (a 4xx about the sender,
not the recipients), and ``"permanent"`` (the recipients of the next call become bad addresses).
:meth:`MailApi.reject` marks one address bad (Postmark answers it with ErrorCode 406 or 300).

With ``keep=False`` (benchmarks) nothing is stored: recipients are counted, parsing stays lean.
Run ``python -m tests.servers.mailapi --count`` to serve from another process; it prints its URL.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate, parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

KEYS = {"mailgun": "key-mailgun-test-0123456789", "postmark": "pm-server-token-test-0123456789",
        "sendgrid": "SG.sendgrid-test-key.0123456789"}
DOMAIN = "mg.example.test"
LIMITS = {"mailgun": 1000, "postmark": 500, "sendgrid": 1000}
_MAILGUN_PATH = re.compile(r"^/v3/([^/]+)/messages$")
_MAILGUN_VAR = re.compile(r"%recipient\.([^%\s]+)%")
_NAME = re.compile(rb'name="([^"]*)"')
REFUSALS = {
    406: "You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: {email}. "
         "Inactive recipients are ones that have generated a hard bounce, a spam complaint, or a manual suppression.",
    300: "Invalid 'To' address: '{to}'.",
    429: "Rate limit exceeded.",
    100: "Maintenance.",
}


@dataclass
class Fault:
    kind: str
    api: str | None = None
    times: int = 1
    retry_after: str | None = None
    reset: str | None = None


@dataclass
class Request:
    api: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class MailApi:
    """The fake service; use as a context manager or start()/stop()."""

    def __init__(self, keys: dict[str, str] | None = None, *, domain: str = DOMAIN, keep: bool = True) -> None:
        self.keys = dict(KEYS if keys is None else keys)
        self.domain = domain
        self.keep = keep
        self.requests: list[Request] = []
        self.received: list[tuple[str, str, dict[str, Any]]] = []  # (api, email, message)
        self.calls: Counter[str] = Counter()
        self.recipients: Counter[str] = Counter()
        self.rejected: dict[str, int] = {}  # address -> Postmark ErrorCode
        self._once: set[str] = set()  # rejected addresses that are refused only once
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> MailApi:
        handler = type("Handler", (_Handler,), {"service": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MailApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    # -- test controls ----------------------------------------------------------------------------------------

    def fail(self, kind: str, *, api: str | None = None, times: int = 1, retry_after: float | str | None = None,
             reset: float | None = None) -> None:
        """Make the next ``times`` calls (to ``api``, or any) fail as ``kind``."""
        with self._lock:
            self._faults.append(Fault(kind, api, times, None if retry_after is None else _header(retry_after),
                                      None if reset is None else _header(reset)))

    def reject(self, email: str, code: int = 406, *, once: bool = False) -> None:
        """Refuse ``email`` from now on, or only its next message when ``once``.

        Postmark answers that message with ErrorCode ``code`` (406 inactive recipient, 300 invalid
        request, 429 or 100 for a temporary refusal); Mailgun and SendGrid refuse the whole call (400).
        """
        with self._lock:
            self.rejected[email.lower()] = code
            if once:
                self._once.add(email.lower())

    def inbox(self, api: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """What the receiving side got: (email, {subject, html, text, headers, from, to, ...}) per recipient."""
        with self._lock:
            return [(email, message) for kind, email, message in self.received if api in (None, kind)]

    def take_fault(self, api: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.api in (None, api):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def record(self, api: str, request: Request, messages: Iterable[tuple[str, dict[str, Any]]], count: int) -> None:
        with self._lock:
            self.calls[api] += 1
            self.recipients[api] += count
            if self.keep:
                self.requests.append(request)
                self.received.extend((api, email, message) for email, message in messages)

    def is_rejected(self, email: str) -> int | None:
        if not self.rejected:
            return None
        with self._lock:
            email = email.lower()
            code = self.rejected.get(email)
            if code is not None and email in self._once:
                self._once.discard(email)
                del self.rejected[email]
            return code


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    service: MailApi

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        api, endpoint = self._route()
        if api is None or endpoint is None:
            return self._answer(Answer(404, b'{"message": "not found"}'))
        request = Request(api, self.path, headers, body)
        if not _authorised(api, headers, self.service.keys.get(api, "")):
            return self._answer(UNAUTHORISED[api])
        fault = self.service.take_fault(api)
        if fault is not None and fault.kind == "permanent":
            for email in endpoint.addresses(request):
                self.service.reject(email, 406)
        elif fault is not None:
            return self._fault(api, fault)
        self._answer(endpoint.handle(request))

    def _route(self) -> tuple[str | None, Mailgun | Postmark | Sendgrid | None]:
        if self.path == "/email/batch":
            return "postmark", Postmark(self.service)
        if self.path == "/v3/mail/send":
            return "sendgrid", Sendgrid(self.service)
        if _MAILGUN_PATH.match(self.path):
            return "mailgun", Mailgun(self.service)
        return None, None

    def _fault(self, api: str, fault: Fault) -> None:
        if fault.kind == "stall":
            self.service._release.wait(30)
            self.close_connection = True
            return
        if fault.kind == "drop":
            self.close_connection = True
            return
        self._answer(fault_answer(api, fault))

    def _answer(self, answer: Answer) -> None:
        self.send_response(answer.status)
        content_type = "text/plain" if answer.body[:1] not in (b"{", b"[") else "application/json"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)


def _authorised(api: str, headers: dict[str, str], key: str) -> bool:
    if api == "postmark":
        return headers.get("x-postmark-server-token") == key
    if api == "sendgrid":
        return headers.get("authorization") == f"Bearer {key}"
    expected = "Basic " + base64.b64encode(f"api:{key}".encode()).decode("ascii")
    return headers.get("authorization") == expected


UNAUTHORISED = {
    "mailgun": Answer(401, b"Forbidden"),
    "postmark": Answer(401, b'{"ErrorCode": 10, "Message": "Request does not contain a valid Server token."}'),
    "sendgrid": Answer(401, b'{"errors": [{"message": "The provided authorization grant is invalid, expired, '
                            b'or revoked", "field": null, "help": null}]}'),
}


def fault_answer(api: str, fault: Fault) -> Answer:
    """The answer each API gives for an injected fault."""
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    if fault.reset is not None:
        headers["X-RateLimit-Reset"] = fault.reset
    status = {"429": 429, "500": 500, "502": 502, "503": 503, "transient": 503, "401": 401}.get(fault.kind)
    if status == 401:
        return UNAUTHORISED[api]
    if status is None:  # "config": refused for a reason that is not the recipients'
        return CONFIG_ERRORS[api]
    message = "too many requests" if status == 429 else "service unavailable" if status >= 502 else "internal error"
    if api == "postmark":
        return Answer(status, _json({"ErrorCode": status if status == 429 else 100, "Message": message}), headers)
    if api == "sendgrid":
        return Answer(status, _json({"errors": [{"field": None, "message": message}]}), headers)
    return Answer(status, _json({"message": message}), headers)


CONFIG_ERRORS = {
    "mailgun": Answer(400, b'{"message": "from parameter is missing"}'),
    "postmark": Answer(422, b'{"ErrorCode": 400, "Message": "The \'From\' address you supplied is not a Sender '
                            b'Signature on your account."}'),
    "sendgrid": Answer(403, b'{"errors": [{"message": "The from address does not match a verified Sender '
                            b'Identity.", "field": "from", "help": null}]}'),
}


# -- the three APIs ------------------------------------------------------------------------------------------


class Mailgun:
    def __init__(self, service: MailApi) -> None:
        self.service = service

    def addresses(self, request: Request) -> list[str]:
        return [parseaddr(value)[1] for name, value in self.fields(request) if name == "to"]

    def handle(self, request: Request) -> Answer:
        match = _MAILGUN_PATH.match(request.path)
        if match is None or match.group(1) != self.service.domain:
            return Answer(404, _json({"message": f"Domain not found: {match.group(1) if match else ''}"}))
        if not self.service.keep and not self.service.rejected:
            count = request.body.count(b'form-data; name="to"\r\n')
            self.service.record("mailgun", request, (), count)
            return self.queued()
        return self.full(request)

    def full(self, request: Request) -> Answer:
        fields = self.fields(request)
        single = {name: value for name, value in fields}
        to = [value for name, value in fields if name == "to"]
        problem = self.problem(single, to)
        if problem:
            return Answer(400, _json({"message": problem}))
        variables = json.loads(single.get("recipient-variables") or "{}")
        messages = [self.expand(single, fields, address, variables, to) for address in to]
        self.service.record("mailgun", request, messages, len(to))
        return self.queued()

    def problem(self, single: dict[str, str], to: list[str]) -> str | None:
        for required in ("from", "to", "subject"):
            if required not in single:
                return f"{required} parameter is missing"
        if "text" not in single and "html" not in single:
            return "Need at least one of 'text' or 'html' parameters specified"
        if len(to) > LIMITS["mailgun"]:
            return f"Too many recipients: at most {LIMITS['mailgun']} per batch"
        for address in to:
            email = parseaddr(address)[1]
            if "@" not in email or self.service.is_rejected(email):
                return "'to' parameter is not a valid address. please check documentation"
        return None

    def expand(self, single: dict[str, str], fields: list[tuple[str, str]], address: str,
               variables: dict[str, Any], to: list[str]) -> tuple[str, dict[str, Any]]:
        email = parseaddr(address)[1]
        values = variables.get(email, {}) if variables else {}

        def sub(text: str) -> str:
            return _MAILGUN_VAR.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)

        message = {
            "from": single["from"], "to": address if variables else ", ".join(to), "subject": sub(single["subject"]),
            "html": sub(single.get("html", "")) or None, "text": sub(single.get("text", "")) or None,
            "headers": {name[2:]: sub(value) for name, value in fields if name.startswith("h:")},
            "variables": {name[2:]: sub(value) for name, value in fields if name.startswith("v:")},
        }
        return email, message

    def queued(self) -> Answer:
        stamp = time.strftime("%Y%m%d%H%M%S")
        return Answer(200, _json({"id": f"<{stamp}.{uuid.uuid4().hex[:12]}@{self.service.domain}>",
                                  "message": "Queued. Thank you."}))

    @staticmethod
    def fields(request: Request) -> list[tuple[str, str]]:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            return parse_qsl(request.body.decode(), keep_blank_values=True)
        boundary = content_type.partition("boundary=")[2].strip('"').encode()
        if not boundary:
            return []
        out = []
        for part in request.body.split(b"--" + boundary)[1:]:
            if part.startswith(b"--"):
                break
            head, _, value = part[2:].partition(b"\r\n\r\n")
            name = _NAME.search(head)
            if name:
                out.append((name.group(1).decode(), value[:-2].decode()))
        return out


class Postmark:
    def __init__(self, service: MailApi) -> None:
        self.service = service

    def addresses(self, request: Request) -> list[str]:
        try:
            return [parseaddr(message.get("To", ""))[1] for message in json.loads(request.body)]
        except (ValueError, AttributeError, TypeError):
            return []

    def handle(self, request: Request) -> Answer:
        if "json" not in request.headers.get("content-type", "") or "json" not in request.headers.get("accept", ""):
            return Answer(422, _json({"ErrorCode": 409, "Message": "JSON request required: set Accept and "
                                      "Content-Type to application/json."}))
        if not self.service.keep and not self.service.rejected:
            count = request.body.count(b'"MessageStream":')
            self.service.record("postmark", request, (), count)
            return Answer(200, b"[" + b",".join(self.ok("") for _ in range(count)) + b"]")
        return self.full(request)

    def full(self, request: Request) -> Answer:
        try:
            batch = json.loads(request.body)
        except ValueError:
            return Answer(422, _json({"ErrorCode": 402, "Message": "Received invalid JSON input."}))
        if not isinstance(batch, list) or not all(isinstance(message, dict) for message in batch):
            return Answer(422, _json({"ErrorCode": 403, "Message": "Incompatible JSON input."}))
        if len(batch) > LIMITS["postmark"]:
            return Answer(422, _json({"ErrorCode": 410, "Message": "Too many batch messages (at most 500)."}))
        answers, received = [], []
        for message in batch:
            answer, delivered = self.one(message)
            answers.append(answer)
            if delivered is not None:
                received.append(delivered)
        self.service.record("postmark", request, received, len(received))
        return Answer(200, b"[" + b",".join(answers) + b"]")

    def one(self, message: dict[str, Any]) -> tuple[bytes, tuple[str, dict[str, Any]] | None]:
        to = str(message.get("To") or "")
        email = parseaddr(to)[1]
        if not message.get("From"):
            return self.error(300, "Invalid 'From' address: ''.", to), None
        if "@" not in email:
            return self.error(300, f"Invalid 'To' address: '{to}'.", to), None
        if not message.get("HtmlBody") and not message.get("TextBody"):
            return self.error(300, "Provide either email TextBody or HtmlBody or both.", to), None
        code = self.service.is_rejected(email)
        if code:
            return self.error(code, REFUSALS.get(code, "Refused.").format(email=email, to=to), to), None
        headers = {item.get("Name"): item.get("Value") for item in message.get("Headers") or []}
        delivered = {"from": message["From"], "to": to, "subject": message.get("Subject"),
                     "html": message.get("HtmlBody"), "text": message.get("TextBody"), "headers": headers,
                     "variables": message.get("Metadata") or {}, "stream": message.get("MessageStream")}
        return self.ok(to), (email, delivered)

    @staticmethod
    def ok(to: str) -> bytes:
        return _json({"To": to, "SubmittedAt": "2026-01-01T00:00:00Z", "MessageID": str(uuid.uuid4()),
                      "ErrorCode": 0, "Message": "OK"})

    @staticmethod
    def error(code: int, message: str, to: str) -> bytes:
        return _json({"ErrorCode": code, "Message": message, "To": to})


class Sendgrid:
    def __init__(self, service: MailApi) -> None:
        self.service = service

    def addresses(self, request: Request) -> list[str]:
        try:
            data = json.loads(request.body)
            return [to["email"] for p in data["personalizations"] for to in p.get("to", [])]
        except (ValueError, KeyError, TypeError):
            return []

    def handle(self, request: Request) -> Answer:
        if not self.service.keep and not self.service.rejected:
            count = request.body.count(b'{"to": [')
            self.service.record("sendgrid", request, (), count)
            return self.accepted()
        return self.full(request)

    def full(self, request: Request) -> Answer:
        try:
            data = json.loads(request.body)
        except ValueError:
            return self.bad(None, "Bad Request")
        problem = self.problem(data)
        if problem:
            return self.bad(*problem)
        messages = [self.expand(data, p) for p in data["personalizations"]]
        flat = [message for group in messages for message in group]
        self.service.record("sendgrid", request, flat, len(flat))
        return self.accepted()

    def problem(self, data: Any) -> tuple[str | None, str] | None:
        if not isinstance(data, dict):
            return None, "Bad Request"
        personalizations = data.get("personalizations") or []
        if not personalizations:
            return "personalizations", "You must have at least one personalization."
        if len(personalizations) > LIMITS["sendgrid"]:
            return "personalizations", ("The personalization block is limited to 1000 personalizations per API "
                                        f"request. You have provided {len(personalizations)} personalizations.")
        if not (data.get("from") or {}).get("email"):
            return "from.email", "The from object must be provided for every email send."
        content = data.get("content") or []
        if not content or not all(isinstance(item, dict) and item.get("value") for item in content):
            return "content", "The content value must be a string at least one character in length."
        types = [item.get("type") for item in content]
        if "text/plain" in types and types[0] != "text/plain":
            return "content", "If present, text/plain must be first, followed by text/html, in the content array."
        for index, p in enumerate(personalizations):
            for position, to in enumerate(p.get("to") or [{}]):
                email = str(to.get("email") or "")
                if "@" not in email or self.service.is_rejected(email):
                    return f"personalizations.{index}.to.{position}.email", "Does not contain a valid address."
        return None

    def expand(self, data: dict[str, Any], p: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        subs = p.get("substitutions") or {}

        def sub(text: str | None) -> str | None:
            for tag, value in subs.items():
                if text is not None:
                    text = text.replace(tag, value)
            return text

        content = {item["type"]: item["value"] for item in data["content"]}
        headers = {**(data.get("headers") or {}), **(p.get("headers") or {})}
        variables = {**(data.get("custom_args") or {}), **(p.get("custom_args") or {})}
        sender = data["from"]
        out = []
        for to in p["to"]:
            subject = sub(p.get("subject", data.get("subject")))
            message = {"from": _display(sender), "to": _display(to), "subject": subject,
                       "html": sub(content.get("text/html")), "text": sub(content.get("text/plain")),
                       "headers": headers, "variables": variables,
                       "reply_to": (data.get("reply_to") or {}).get("email")}
            out.append((to["email"], message))
        return out

    @staticmethod
    def accepted() -> Answer:
        return Answer(202, b"", {"X-Message-Id": uuid.uuid4().hex[:22]})

    @staticmethod
    def bad(field_name: str | None, message: str) -> Answer:
        return Answer(400, _json({"errors": [{"message": message, "field": field_name, "help": None}]}))


def _display(address: dict[str, str]) -> str:
    return f"{address['name']} <{address['email']}>" if address.get("name") else address["email"]


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


def _header(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def main() -> None:
    """Serve until interrupted; print the URL (``--count``: keep nothing, for benchmarks)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", action="store_true", help="count recipients, keep nothing")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    service = MailApi(keep=not args.count).start(args.port)
    print(service.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        service.stop()


if __name__ == "__main__":
    main()
