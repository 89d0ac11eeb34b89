"""An SMTP server on 127.0.0.1 for tests: records what it gets, fails on demand.

Usage::

    with SmtpServer() as server:                       # plain, no AUTH
        ...send to ("127.0.0.1", server.port)...
        server.messages      # [Received(mail_from, rcpt_tos, data, connection)]
        server.connections   # how many TCP connections clients opened

    certs = make_certificates(tmp_path)                # a throw-away CA and a cert for 127.0.0.1
    SmtpServer(tls="starttls", certs=certs)            # STARTTLS required before MAIL
    SmtpServer(tls="implicit", certs=certs)            # TLS from the first byte (port 465 style)
    SmtpServer(users={"ann": "secret"})                # AUTH PLAIN/LOGIN required
    SmtpServer(pipelining=False)                       # don't advertise PIPELINING (it does by default)

Faults: ``server.plan`` is a :class:`Plan`; each rule fires at MAIL, RCPT or DATA, for one address
(MAIL: the sender; DATA: any recipient of the message) or any, a number of times.  An action is a
reply line (``"452 4.2.2 Mailbox full"``; one starting with 421 also closes the connection, as real
servers do), :data:`DROP` (hang up without replying: the
message is lost), :data:`DROP_AFTER_ACCEPT` (at DATA: keep the message, then hang up before the
"250": the client can't know it went through) or :data:`STALL` (say nothing until the client gives
up).  ``Plan.random(seed, {...})`` draws faults at random, reproducibly, for fault-soak suites.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import itertools
import random
import socket
import ssl
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

DROP = "drop"
DROP_AFTER_ACCEPT = "drop-after-accept"
STALL = "stall"

REPLIES = {
    421: "421 4.3.2 Service shutting down, closing transmission channel",
    450: "450 4.2.1 Mailbox busy, try again later",
    451: "451 4.3.0 Local error in processing",
    452: "452 4.2.2 Mailbox full",
    454: "454 4.7.0 Temporary service failure",  # what Amazon SES answers when throttling
    550: "550 5.1.1 No such user here",
    551: "551 5.1.6 User not local",
    552: "552 5.3.4 Message too big",
    553: "553 5.1.3 Mailbox name not allowed",
    554: "554 5.7.1 Message rejected as spam",
}

Stage = Literal["mail", "rcpt", "data"]


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificates:
    """A test CA (``ca_file``, what the client trusts) and a server cert + key it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificates(directory: Path, *, name: str = "publisher-test") -> Certificates:
    """Write a fresh CA and a server certificate for 127.0.0.1 / localhost into ``directory``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(f"{name} CA", ca_key, ca_key, issuer=None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("localhost", key, ca_key, issuer=ca)
    paths = Certificates(directory / f"{name}-ca.pem", directory / f"{name}.pem", directory / f"{name}.key")
    paths.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return paths


def _certificate(common_name, key, signing_key, *, issuer):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    is_ca = issuer is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if is_ca else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    )
    usage = dict.fromkeys(("content_commitment", "data_encipherment", "key_agreement", "crl_sign",
                           "encipher_only", "decipher_only"), False)
    if is_ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                                      key_cert_sign=True, **{**usage, "crl_sign": True}), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                                      key_cert_sign=False, **usage), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


# ---------------------------------------------------------------- fault plans


@dataclass
class Rule:
    stage: Stage
    action: str  # a reply line, DROP, DROP_AFTER_ACCEPT or STALL
    to: str | None = None  # only for this address (MAIL: the sender; RCPT: the recipient; DATA: any recipient)
    times: int | None = 1  # None: every time
    fired: int = 0

    def matches(self, stage: Stage, addresses: Iterable[str]) -> bool:
        if stage != self.stage or (self.times is not None and self.fired >= self.times):
            return False
        return self.to is None or self.to.lower() in (a.lower() for a in addresses)


@dataclass
class Plan:
    """What the server does wrong, and when: scripted rules first, then an optional random draw."""

    rules: list[Rule] = field(default_factory=list)
    chooser: Callable[[Stage, list[str]], str | None] | None = None
    log: list[tuple[Stage, str, str]] = field(default_factory=list)  # (stage, addresses, action) that fired
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on(self, stage: Stage, action: str | int, *, to: str | None = None, times: int | None = 1) -> Plan:
        """Add a rule; ``action`` may be a reply code from :data:`REPLIES`.  Returns the plan."""
        with self._lock:
            self.rules.append(Rule(stage, REPLIES[action] if isinstance(action, int) else action, to, times))
        return self

    @classmethod
    def random(cls, seed: int, weights: dict[str | int, float], *, stages: tuple[Stage, ...] = ("rcpt", "data")) -> Plan:
        """Each RCPT/DATA draws an action with the given probabilities (the rest succeeds), reproducibly."""
        rng = random.Random(seed)
        actions = [REPLIES[a] if isinstance(a, int) else a for a in weights]
        chances = list(weights.values())

        def choose(stage: Stage, addresses: list[str]) -> str | None:
            if stage not in stages:
                return None
            roll = rng.random()
            for action, chance in zip(actions, chances):
                if roll < chance:
                    return action
                roll -= chance
            return None

        return cls(chooser=choose)

    def decide(self, stage: Stage, addresses: list[str]) -> str | None:
        with self._lock:
            action = self._scripted(stage, addresses)
            if action is None and self.chooser is not None:
                action = self.chooser(stage, addresses)
            if action is not None:
                self.log.append((stage, ",".join(addresses), action))
            return action

    def _scripted(self, stage: Stage, addresses: list[str]) -> str | None:
        for rule in self.rules:
            if rule.matches(stage, addresses):
                rule.fired += 1
                return rule.action
        return None


# ---------------------------------------------------------------- the server


@dataclass(frozen=True)
class Received:
    """One accepted message: envelope and the exact bytes after DATA."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    connection: int  # 1 for the first connection a client opened, 2 for the next...
    tls: bool = False  # whether it came over TLS (STARTTLS or implicit)

    def parsed(self):  # type: ignore[no-untyped-def]
        from email import policy
        from email.parser import BytesParser

        return BytesParser(policy=policy.default).parsebytes(self.data)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self.queue_ids = itertools.count(1)

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        session.host_name = hostname
        if self.server.pipelining:  # aiosmtpd reads commands off a stream: pipelined ones just work
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, smtp, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        action = self.server.plan.decide("mail", [address])
        if action is None:
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            return "250 2.1.0 OK"
        return await self._act(smtp, action)

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        action = self.server.plan.decide("rcpt", [address])
        if action is None:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        return await self._act(smtp, action)

    async def handle_DATA(self, smtp, session, envelope):  # type: ignore[no-untyped-def]
        action = self.server.plan.decide("data", list(envelope.rcpt_tos))
        if action is None or action == DROP_AFTER_ACCEPT:
            self.server._record(envelope, smtp)
        if action is None:
            return f"250 2.0.0 Ok: queued as Q{next(self.queue_ids):05d}"
        return await self._act(smtp, action)

    async def _act(self, smtp, action: str) -> str:  # type: ignore[no-untyped-def]
        if action in (DROP, DROP_AFTER_ACCEPT):  # (before DATA there is nothing to accept)
            smtp.transport.close()
            await asyncio.Event().wait()  # cancelled by connection_lost
        if action == STALL:
            await asyncio.sleep(self.server.stall_seconds)  # cancelled when the client hangs up
            return "451 4.4.2 Stalled"
        if action.startswith("421"):
            smtp.loop.call_soon(_close, smtp)
        return action


def _close(smtp: SMTP) -> None:
    if smtp.transport is not None:
        smtp.transport.close()


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, **kwargs: object) -> None:
        super().__init__(_Handler(owner), **kwargs)  # type: ignore[arg-type]
        self.owner = owner

    def factory(self) -> SMTP:  # called once per TCP connection
        required = self.SMTP_kwargs.pop("auth_required", False)
        smtp = super().factory()  # without auth_required: spares aiosmtpd's warning about AUTH over plain text
        self.SMTP_kwargs["auth_required"] = required
        smtp._auth_required = required  # noqa: SLF001
        smtp.connection_number = self.owner._connected()  # type: ignore[attr-defined]
        self.owner._sessions.add(smtp)
        return smtp


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port, in its own thread; a context manager."""

    host = "127.0.0.1"

    def __init__(self, *, tls: Literal["none", "starttls", "implicit"] = "none", certs: Certificates | None = None,
                 users: dict[str, str] | None = None, plan: Plan | None = None, stall_seconds: float = 30.0,
                 idle_timeout: float = 30.0, pipelining: bool = True) -> None:
        if tls != "none" and certs is None:
            raise ValueError("tls needs certs=make_certificates(tmp_path)")
        self.tls, self.certs, self.users = tls, certs, users
        self.plan = plan or Plan()
        self.stall_seconds = stall_seconds
        self.pipelining = pipelining  # advertise PIPELINING (RFC 2920), as Postfix does
        self.idle_timeout = idle_timeout
        self.messages: list[Received] = []
        self.logins: list[tuple[str, bool]] = []  # (username, accepted); never the password
        self.connections = 0
        self._lock = threading.Lock()
        self._controller: _Controller | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.port = 0

    # -- lifecycle

    def start(self) -> SmtpServer:
        for _attempt in range(5):
            self.port = _free_port()
            self._controller = _Controller(self, hostname=self.host, port=self.port, **self._smtp_options())
            try:
                self._controller.start()
            except OSError:  # the port got taken between probing and binding: try another
                continue
            break
        with self._lock:
            self.connections = 0  # forget the controller's own start-up probe
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _smtp_options(self) -> dict[str, object]:
        options: dict[str, object] = {"timeout": self.idle_timeout, "auth_require_tls": self.tls == "starttls"}
        if self.tls == "starttls":
            options.update(tls_context=self.certs.server_context(), require_starttls=True)  # type: ignore[union-attr]
        elif self.tls == "implicit":
            options.update(ssl_context=self.certs.server_context())  # type: ignore[union-attr]
        if self.users is not None:
            options.update(authenticator=self._authenticate, auth_required=True)
        return options

    def hang_up(self) -> int:
        """Close every open client connection now (an idle timeout, a restart); returns how many."""
        if self._controller is None:
            return 0
        loop = self._controller.loop

        async def close_all() -> int:
            open_ones = [smtp for smtp in list(self._sessions) if smtp.transport is not None]
            for smtp in open_ones:
                smtp.transport.close()
            return len(open_ones)

        return asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=5)

    # -- callbacks from the server thread

    def _connected(self) -> int:
        with self._lock:
            self.connections += 1
            return self.connections

    def _record(self, envelope, smtp) -> None:  # type: ignore[no-untyped-def]
        tls = smtp.transport is not None and smtp.transport.get_extra_info("ssl_object") is not None
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content),
                            getattr(smtp, "connection_number", 0), tls)
        with self._lock:
            self.messages.append(received)

    def _authenticate(self, smtp, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        ok = self.users is not None and self.users.get(login, None) == auth_data.password.decode("utf-8", "replace")
        self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False)

    # -- what tests look at

    def received_by(self, address: str) -> list[Received]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    def inbox(self) -> list[tuple[str, object]]:
        """(recipient, parsed EmailMessage) for every recipient of every accepted message."""
        return [(rcpt, message.parsed()) for message in list(self.messages) for rcpt in message.rcpt_tos]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
