"""The SMTP provider: a pool of reused connections, STARTTLS or TLS verified by default, AUTH, a rate limit.

How a batch goes out
    ``max_batch`` is ``pool * 50``: each ``send()`` splits its batch into ``pool`` contiguous chunks,
    one per connection, each sent by its own thread (so a batch keeps every connection busy and the
    ledger records results at least every 50 messages per connection).  A connection is opened on
    first use, reused for the following messages and batches, and replaced after ``per_connection``
    messages.  ``rate`` (messages per second over the whole pool, 0 = unlimited) is a token bucket
    shared by the threads.

One message, one transaction
    ``MAIL FROM:<the letter's from_address>``, ``RCPT TO:<the recipient>``, ``DATA`` with the bytes
    of ``encoder.prepare(letter).encode(recipient)`` (or ``encoder.encode(letter, recipient)``).
    Each reply decides that recipient's Result:

    - 2xx: ``sent`` (``provider_id``: the server's queue ID when it names one);
    - 4xx (421, 450, 451, 452, 454...): ``deferred``, the reply as the reason; 421 also closes the
      connection (the next message opens a new one);
    - 5xx: ``failed``; ``bounce`` (the address is bad) when the enhanced status code is 5.1.x or
      5.2.1, or, with no enhanced code, for 550, 551 and 553.  A 5xx to MAIL FROM (sender refused, AUTH
      required) is the operator's to fix, not the recipient's: ``deferred`` with the hint, never a bounce;
    - connection lost or timed out: ``deferred``.  After the message body was sent the server may
      have taken it: the reason says "in doubt", and the resend carries the same Message-ID.  The
      connection is re-opened for the rest of the chunk.

Errors that mean nothing can be sent raise :class:`~publisher.errors.DeliveryError` with the server's
reply as ``response``: transient for refused connections, timeouts and 4xx greetings; permanent for
an untrusted certificate, a failed TLS handshake, a refused password, a server without STARTTLS or
AUTH, a missing password variable.  The password is read from the environment variable named by
``password_env``; it never appears in a log line or an error (errors name the variable).
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from publisher.errors import DeliveryError
from publisher.mail.letter import Letter, Recipient
from publisher.providers.base import Provider, Result

log = logging.getLogger(__name__)

PER_CONNECTION_BATCH = 50  # max_batch = pool * this
BOUNCE_CODES = frozenset({550, 551, 553})
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
_QUEUE_ID = re.compile(r"queued as\s+<?([\w.@-]+)>?|^(?:2\.\d{1,3}\.\d{1,3}\s+)?ok\s+<?([\w.@-]{8,})>?", re.I)

Encode = Callable[[Recipient], bytes]


class SmtpProvider(Provider):
    """Hands messages to an SMTP server (``[providers.NAME]`` with ``type = "smtp"``)."""

    type = "smtp"

    def __init__(self, config: Any, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.max_batch = config.pool * PER_CONNECTION_BATCH
        self.bucket = TokenBucket(config.rate, monotonic=monotonic, sleep=sleep) if config.rate > 0 else None
        self.connections: list[Connection] = []
        self._executor: ThreadPoolExecutor | None = None
        self._password: str | None = None
        self._context: ssl.SSLContext | None = None

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    # -- lifecycle

    def open(self) -> None:
        """Read the password, build the TLS context, connect and log in once to check it all works."""
        if self.connections:
            return
        self._password = self._read_password()
        self._context = self._tls_context() if self.config.security != "none" else None
        if self._password is not None and self.config.security == "none":
            log.warning("%s: AUTH over an unencrypted connection to %s; set security = \"starttls\" or \"tls\"",
                        self.name, self.address)
        connections = [Connection(self, number) for number in range(1, self.config.pool + 1)]
        connections[0].ensure()
        self.connections = connections
        if self.config.pool > 1:
            self._executor = ThreadPoolExecutor(self.config.pool, thread_name_prefix=f"smtp-{self.name}")

    def close(self) -> None:
        for connection in self.connections:
            connection.quit()
        self.connections = []
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- sending

    def send(self, letter: Letter, batch: Sequence[Recipient]) -> list[Result]:
        if not batch:
            return []
        if not self.connections:
            self.open()
        encode = _encoder(self.encoder, letter)
        chunks = split(batch, min(len(self.connections), len(batch)))  # a small batch uses the first connections
        jobs = list(zip(self.connections, chunks))
        if self._executor is None or len(jobs) == 1:
            outcomes = [connection.deliver_all(letter.from_address, chunk, encode) for connection, chunk in jobs]
        else:
            futures = [self._executor.submit(c.deliver_all, letter.from_address, chunk, encode) for c, chunk in jobs]
            outcomes = [future.result() for future in futures]
        return self._results(outcomes)

    def _results(self, outcomes: list[Outcome]) -> list[Result]:
        """Concatenate the chunks' results; a chunk that could not connect defers what it had left."""
        errors = [outcome.error for outcome in outcomes if outcome.error is not None]
        if errors and not any(outcome.results for outcome in outcomes):
            raise min(errors, key=lambda error: error.transient)  # a permanent error says more
        results: list[Result] = []
        for outcome in outcomes:
            results.extend(outcome.results)
            if outcome.error is not None:
                reason = _one_line(str(outcome.error))
                results.extend(Result(r.delivery_id, "deferred", reason=reason, retry_after=outcome.error.retry_after)
                               for r in outcome.left)
        return results

    def throttle(self) -> None:
        if self.bucket is not None:
            self.bucket.take()

    # -- configuration

    def _read_password(self) -> str | None:
        username, variable = self.config.username, self.config.password_env
        if username is None and variable is None:
            return None
        if variable is None:
            raise DeliveryError(self.name, "username is set but password_env is not; "
                                "set password_env to the NAME of the environment variable holding the password",
                                transient=False)
        password = self.environ.get(variable)
        if not password:
            raise DeliveryError(self.name, f"environment variable {variable} (password_env) is not set; "
                                "export it with the SMTP password", transient=False)
        if username is None:
            raise DeliveryError(self.name, "password_env is set but username is not; set username", transient=False)
        return password

    def _tls_context(self) -> ssl.SSLContext:
        ca_file = self._ca_file()
        try:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(self.name, f"ca_file {ca_file} can't be loaded ({exc}); "
                                "point it at a PEM file of CA certificates", transient=False) from exc
        if not self.config.verify:
            log.warning("%s: TLS certificate verification is OFF (verify = false) for %s", self.name, self.address)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _ca_file(self) -> Path | None:
        if self.config.ca_file is None:
            return None
        path = Path(self.config.ca_file)
        if not path.is_absolute() and self.base_dir is not None:
            path = Path(self.base_dir) / path
        return path

    def scrub(self, text: str) -> str:
        """``text`` with the password blotted out, should a server ever echo it."""
        if self._password and self._password in text:
            text = text.replace(self._password, "***")
        return text

    # -- connecting (called from the connection threads)

    def connect(self) -> smtplib.SMTP:
        """A ready connection: connected, TLS up, logged in; DeliveryError otherwise."""
        smtp: smtplib.SMTP | None = None
        try:
            smtp = self._dial()
            if self.config.security == "starttls":
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if self._password is not None:
                smtp.login(self.config.username, self._password)
            return smtp
        except BaseException as exc:
            if smtp is not None:
                smtp.close()
            if isinstance(exc, OSError):
                raise self._connect_error(exc) from exc
            raise

    def _dial(self) -> smtplib.SMTP:
        config = self.config
        hostname = config.local_hostname
        if config.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, hostname, timeout=config.timeout,
                                                  context=self._context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, hostname, timeout=config.timeout)
        smtp.ehlo_or_helo_if_needed()
        return smtp

    def _connect_error(self, exc: OSError) -> DeliveryError:
        reason, response, transient = describe_connect_error(exc, self.address, self.config.timeout)
        return DeliveryError(self.name, self.scrub(reason), response=self.scrub(response) if response else None,
                             transient=transient)


def describe_connect_error(exc: OSError, address: str, timeout: float) -> tuple[str, str | None, bool]:
    """(reason, server reply, transient) for a failure to connect, start TLS or log in."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS certificate of {address} not trusted ({exc.verify_message}); set ca_file to the CA that "
                "signed it, or fix the server's certificate", None, False)
    if isinstance(exc, ssl.SSLError):
        return (f"TLS with {address} failed ({exc.reason or exc}); check that security "
                "(starttls or tls) matches the port", None, False)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{address} does not support {_feature(exc)}; check security and username", None, False
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        response = reply_text(exc.smtp_code, exc.smtp_error)
        return (f"{address} refused the username or password ({response}); check username and password_env",
                response, exc.smtp_code < 500)
    if isinstance(exc, smtplib.SMTPResponseException):
        response = reply_text(exc.smtp_code, exc.smtp_error)
        return f"{address} refused the connection ({response})", response, exc.smtp_code < 500
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return f"{address} did not answer within {timeout:g}s (timeout); check host and port", None, True
    return f"cannot connect to {address}: {exc.strerror or exc}; check host and port", None, True


def _feature(exc: smtplib.SMTPNotSupportedError) -> str:
    text = str(exc)
    if "STARTTLS" in text.upper():
        return "STARTTLS (use security = \"tls\" for implicit TLS, or \"none\")"
    if "AUTH" in text.upper():
        return "AUTH (remove username and password_env?)"
    return text or "a required extension"


# ---------------------------------------------------------------- one connection


@dataclass
class Outcome:
    """What one connection did with its chunk; ``error`` stopped it before ``left`` could be sent."""

    results: list[Result] = field(default_factory=list)
    error: DeliveryError | None = None
    left: Sequence[Recipient] = ()


class Connection:
    """One SMTP connection of the pool, used by one thread at a time."""

    def __init__(self, provider: SmtpProvider, number: int) -> None:
        self.provider = provider
        self.number = number
        self.smtp: smtplib.SMTP | None = None
        self.count = 0  # messages on the current connection

    def ensure(self) -> smtplib.SMTP:
        if self.smtp is not None and self.count >= self.provider.config.per_connection:
            self.quit()
        if self.smtp is None:
            self.smtp = self.provider.connect()
            self.count = 0
            log.debug("%s: connection %d opened to %s", self.provider.name, self.number, self.provider.address)
        return self.smtp

    def quit(self) -> None:
        if self.smtp is None:
            return
        smtp, self.smtp = self.smtp, None
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def deliver_all(self, sender: str, chunk: Sequence[Recipient], encode: Encode) -> Outcome:
        outcome = Outcome()
        for index, recipient in enumerate(chunk):
            try:
                smtp = self.ensure()
            except DeliveryError as error:
                outcome.error, outcome.left = error, chunk[index:]
                return outcome
            outcome.results.append(self.deliver(smtp, sender, recipient, encode(recipient)))
        return outcome

    def deliver(self, smtp: smtplib.SMTP, sender: str, recipient: Recipient, data: bytes, *,
                retry: bool = True) -> Result:
        self.provider.throttle()
        self.count += 1
        transaction = Transaction(smtp, sender, recipient, data)
        try:
            result = transaction.run()
        except OSError as exc:  # smtplib's errors, timeouts and resets are all OSErrors
            self.drop()
            if retry and self.count > 1 and transaction.stage == "MAIL FROM":
                return self._again(sender, recipient, data, exc)
            return Result(recipient.delivery_id, "deferred", reason=self.provider.scrub(transaction.lost(exc)))
        if transaction.code == 421:
            self.drop()
        elif transaction.needs_reset:
            self._reset(smtp)
        return result

    def _again(self, sender: str, recipient: Recipient, data: bytes, exc: OSError) -> Result:
        """A reused connection the server had closed (idle timeout, restart): nothing was taken, try a new one."""
        log.debug("%s: connection %d was closed by the server (%s); reconnecting", self.provider.name, self.number,
                  exc)
        try:
            smtp = self.ensure()
        except DeliveryError as error:
            return Result(recipient.delivery_id, "deferred", reason=_one_line(str(error)), retry_after=error.retry_after)
        return self.deliver(smtp, sender, recipient, data, retry=False)

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            code, _ = smtp.rset()
        except OSError:
            code = 0
        if code != 250:
            self.drop()


# ---------------------------------------------------------------- one transaction


class Transaction:
    """MAIL, RCPT, DATA and the body for one recipient; ``run()`` returns its Result or raises OSError.

    When the server offers PIPELINING (RFC 2920) the three commands go out in one write and their
    replies are read together: two round trips per message instead of four.
    """

    def __init__(self, smtp: smtplib.SMTP, sender: str, recipient: Recipient, data: bytes) -> None:
        self.smtp, self.sender, self.recipient, self.data = smtp, sender, recipient, data
        self.stage = "MAIL FROM"
        self.code = 0
        self.needs_reset = False
        self.body_sent = False

    def run(self) -> Result:
        try:
            commands = envelope_commands(self.smtp, self.sender, self.recipient.email, self.data)
        except ValueError as exc:
            return Result(self.recipient.delivery_id, "failed", reason=f"smtp: {exc}")
        for stage, (code, reply) in zip(STAGES, self._replies(commands)):
            self.stage, self.code = stage, code
            if not (code == 354 if stage == "DATA" else 200 <= code < 300):
                return self.refused(reply)
        self.stage = "end of DATA"
        self.smtp.send(dot_stuff(self.data))
        self.body_sent = True
        self.code, reply = self.smtp.getreply()
        if 200 <= self.code < 300:
            return Result(self.recipient.delivery_id, "sent", provider_id=queue_id(reply))
        return self.refused(reply)

    def _replies(self, commands: list[bytes]) -> list[tuple[int, bytes]]:
        smtp = self.smtp
        if smtp.has_extn("pipelining"):
            smtp.send(b"".join(commands))
            replies = []
            for stage in STAGES:
                self.stage = stage
                replies.append(smtp.getreply())
                if replies[-1][0] == 421:  # the server is closing the connection: no more replies
                    break
            if replies[-1][0] == 354 and any(code >= 300 for code, _ in replies[:-1]):
                smtp.send(b".\r\n")  # a server that said go ahead anyway: end that empty message
                smtp.getreply()
            return replies
        replies = []
        for stage, command in zip(STAGES, commands):
            self.stage = stage
            smtp.send(command)
            replies.append(smtp.getreply())
            if replies[-1][0] >= 300 and stage != "DATA":
                break
        return replies

    def refused(self, reply: bytes) -> Result:
        self.needs_reset = self.stage != "end of DATA"
        return classify(self.recipient.delivery_id, self.code, reply, self.stage)

    def lost(self, exc: OSError) -> str:
        detail = _one_line(str(exc)) or type(exc).__name__
        if self.body_sent:
            return f"smtp connection lost after the message was sent, before the reply (in doubt): {detail}"
        return f"smtp connection lost at {self.stage}: {detail}"


STAGES = ("MAIL FROM", "RCPT TO", "DATA")
_BAD_ADDRESS = re.compile(r"[\x00-\x20<>\x7f]")


def envelope_commands(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> list[bytes]:
    """The MAIL, RCPT and DATA command lines; ValueError when an address can't be sent."""
    for address in (sender, recipient):
        if _BAD_ADDRESS.search(address):
            raise ValueError(f"{address!r} can't be written in an SMTP envelope")
    options = ""
    if not data.isascii() and smtp.has_extn("8bitmime"):
        options += " BODY=8BITMIME"
    if not (sender.isascii() and recipient.isascii()):
        if not smtp.has_extn("smtputf8"):
            raise ValueError("the server does not support SMTPUTF8, needed for this address")
        options += " SMTPUTF8"
    return [f"MAIL FROM:<{sender}>{options}\r\n".encode(), f"RCPT TO:<{recipient}>\r\n".encode(), b"DATA\r\n"]


def classify(delivery_id: int, code: int, reply: bytes | str, stage: str) -> Result:
    """The Result an SMTP reply means for a recipient."""
    text = reply_text(code, reply)
    reason = f"smtp {text} (at {stage})"
    if 200 <= code < 300:
        return Result(delivery_id, "sent")
    if code >= 500 and stage == "MAIL FROM":
        # The sender address is refused: the recipients are not at fault, so none is failed for it;
        # they are retried with backoff (and fail only after the ledger's last attempt) while the operator fixes it.
        hint = ("the server requires AUTH: set username and password_env" if code == 530
                else "the server refused the sender: check the list's from_address")
        log.error("smtp %s; %s (recipients are retried, not failed)", text, hint)
        return Result(delivery_id, "deferred", reason=f"{reason}: {hint}")
    if code >= 500:
        return Result(delivery_id, "failed", reason=reason, bounce=is_hard_bounce(code, text))
    return Result(delivery_id, "deferred", reason=reason if 400 <= code < 500 else f"unexpected {reason}")


def is_hard_bounce(code: int, text: str) -> bool:
    """Does a 5xx reply say the address is bad (not the message, not a policy)?"""
    enhanced = _ENHANCED.match(text.partition(" ")[2])
    if enhanced:
        return enhanced[1] == "5" and (enhanced[2] == "1" or (enhanced[2], enhanced[3]) == ("2", "1"))
    return code in BOUNCE_CODES


def reply_text(code: int, reply: bytes | str) -> str:
    """``"452 4.2.2 Mailbox full"``: one line, at most 300 characters."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return f"{code} {_one_line(reply)}"[:300]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def queue_id(reply: bytes) -> str | None:
    match = _QUEUE_ID.search(reply.decode("utf-8", "replace"))
    return (match[1] or match[2]) if match else None


def dot_stuff(data: bytes) -> bytes:
    """The DATA payload: a dot that starts a line doubled, ending in CRLF . CRLF."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def split(batch: Sequence[Recipient], parts: int) -> list[Sequence[Recipient]]:
    """``batch`` in ``parts`` contiguous chunks whose sizes differ by at most one."""
    size = len(batch)
    return [batch[i * size // parts:(i + 1) * size // parts] for i in range(parts)]


def _encoder(encoder: Any, letter: Letter) -> Encode:
    prepare = getattr(encoder, "prepare", None)
    if prepare is not None:
        return prepare(letter).encode  # type: ignore[no-any-return]
    return lambda recipient: encoder.encode(letter, recipient)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- rate limit


class TokenBucket:
    """At most ``rate`` takes per second on average, bursts of at most ``burst``; thread-safe.

    A take that finds no token reserves the next one (the bucket goes into debt) and sleeps until
    it is due, so concurrent callers queue up fairly instead of all waking at once.
    """

    def __init__(self, rate: float, *, burst: float | None = None, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else min(rate, 10.0))
        self.monotonic, self.sleep = monotonic, sleep
        self.tokens = self.burst
        self.updated = monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, sleeping until it is due; returns the seconds slept."""
        with self._lock:
            now = self.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1.0
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
        return wait
