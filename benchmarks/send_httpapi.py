"""A minimal, fast local server answering the mail APIs' success responses, run in its own process.

It exists so the HTTP benchmark measures *our* client path, not a test server:
it reads each request body, counts the recipients in it with a cheap byte
search, and answers as the service does when everything is accepted:

- Mailgun ``POST /v3/<domain>/messages``: 200 ``{"id": "<...>", "message": "Queued. Thank you."}``
- SendGrid ``POST /v3/mail/send``: 202, empty body, ``X-Message-Id``
- Postmark ``POST /email/batch``: 200, one ``{"ErrorCode": 0, ...}`` per message

``GET /_stats`` answers ``{"requests": N, "recipients": N, "bytes": N}`` and
``POST /_reset`` zeroes them.  Run ``python send_httpapi.py [--port N]``: it
prints ``listening PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAILGUN = re.compile(r"^/(?:.*/)?v3/[^/]+/messages$")
SENDGRID = re.compile(r"^/(?:.*/)?v3/mail/send$")
POSTMARK = re.compile(r"^/(?:.*/)?email/batch$")


def count_recipients(kind: str, body: bytes, content_type: str) -> int:
    """Recipients in one API call, found without parsing the whole body."""
    if kind == "mailgun":
        if content_type.startswith("multipart/"):
            return body.count(b'name="to"')
        return len(re.findall(rb"(?:^|&)to=", body))
    if kind == "sendgrid":
        return body.count(b'"to"')
    return body.count(b'"To"')


def route(path: str) -> str | None:
    path = path.split("?", 1)[0]
    for kind, pattern in (("mailgun", MAILGUN), ("sendgrid", SENDGRID), ("postmark", POSTMARK)):
        if pattern.match(path):
            return kind
    return None


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = self.recipients = self.bytes = 0

    def add(self, recipients: int, size: int) -> int:
        with self.lock:
            self.requests += 1
            self.recipients += recipients
            self.bytes += size
            return self.requests

    def as_json(self) -> bytes:
        with self.lock:
            return json.dumps({"requests": self.requests, "recipients": self.recipients, "bytes": self.bytes}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection serves many calls, as with a real API
    disable_nagle_algorithm = True  # else Nagle + delayed ACK cost 40 ms a call
    stats: Stats

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if self.path == "/_stats":
            self._answer(200, self.stats.as_json())
        else:
            self._answer(404, b'{"message": "not found"}')

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_reset":
            self.stats.__init__()  # type: ignore[misc]
            self._answer(200, b"{}")
            return
        kind = route(self.path)
        if kind is None:
            self._answer(404, b'{"message": "no such endpoint"}')
            return
        recipients = count_recipients(kind, body, self.headers.get("Content-Type", ""))
        number = self.stats.add(recipients, len(body))
        getattr(self, f"_{kind}")(number, body)

    def _mailgun(self, number: int, body: bytes) -> None:
        self._answer(200, json.dumps({"id": f"<bench.{number}@sandbox.example.org>",
                                      "message": "Queued. Thank you."}).encode())

    def _sendgrid(self, number: int, body: bytes) -> None:
        self._answer(202, b"", {"X-Message-Id": f"bench{number:012d}"})

    def _postmark(self, number: int, body: bytes) -> None:
        messages = json.loads(body)
        answers = [{"ErrorCode": 0, "Message": "OK", "MessageID": f"{number:08d}-{index:04d}-bench",
                    "SubmittedAt": "2026-01-05T09:00:50Z", "To": message.get("To", "")}
                   for index, message in enumerate(messages)]
        self._answer(200, json.dumps(answers).encode())

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self._headers_buffer.append(b"\r\n" + body)  # headers and body in one write
        self.flush_headers()


def serve(port: int) -> None:
    Handler.stats = Stats()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


class ApiServer:
    """The server as a child process (so it never competes with the measured client for the GIL)."""

    name = "send_httpapi.py"
    mailgun_domain: str | None = None  # None: any domain is accepted
    keys: dict[str, str] = {}  # provider type -> API key it wants; {}: any

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    def command(self) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--port", "0"]

    def start(self) -> ApiServer:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                        cwd=Path(__file__).resolve().parents[1])
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.port = self.parse_port(line)
        return self

    def parse_port(self, line: str) -> int:
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the local mail API server did not start: {line!r}")
        return int(line.split()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stats(self) -> dict[str, int]:
        import urllib.request

        with urllib.request.urlopen(self.url + "_stats", timeout=10) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(self.url + "_reset", data=b"", method="POST"), timeout=10).close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MailApiServer(ApiServer):
    """The tests' fault-injecting server (``tests/servers/mailapi.py --count``) in a child process.

    It checks each API's key and Mailgun's domain, parses every call, and keeps no counts another process
    can read: :meth:`stats` is None, so the recipient counts are not cross-checked.
    """

    name = "tests.servers.mailapi"

    def __init__(self) -> None:
        super().__init__()
        from tests.servers import mailapi

        self.mailgun_domain = mailapi.DOMAIN
        self.keys = dict(mailapi.KEYS)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tests.servers.mailapi", "--count"]

    def parse_port(self, line: str) -> int:
        match = re.match(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            self.stop()
            raise RuntimeError(f"tests.servers.mailapi did not start: {line!r}")
        return int(match.group(1))

    def stats(self) -> dict[str, int] | None:  # type: ignore[override]
        return None

    def reset(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    serve(parser.parse_args(argv).port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
