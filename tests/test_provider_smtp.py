"""The SMTP provider against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
import smtplib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from publisher.config import SmtpProvider as SmtpConfig
from publisher.errors import DeliveryError
from publisher.providers import make_provider
from publisher.providers.base import Result
from publisher.providers.smtp import Outcome, SmtpProvider, TokenBucket, classify, dot_stuff, is_hard_bounce, split
from tests.contract import make_letter, make_recipient, make_recipients
from tests.servers.smtp import (DROP, DROP_AFTER_ACCEPT, REPLIES, STALL, Certificates, Plan, SmtpServer,
                                make_certificates)

PASSWORD = "s3cret-Pa55-word!"  # what the tests' servers accept; must never show up in a log or an error


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(params=[True, False], ids=["pipelining", "stepwise"])
def server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """A plain server, with and without PIPELINING (the provider uses it when offered)."""
    with SmtpServer(pipelining=request.param) as running:
        yield running


def provider_for(server: SmtpServer, *, environ: dict[str, str] | None = None, **options: Any) -> SmtpProvider:
    settings: dict[str, Any] = {"type": "smtp", "host": server.host, "port": server.port, "security": "none",
                                "pool": 1, "timeout": 5}
    extra = {key: options.pop(key) for key in ("monotonic", "sleep", "encoder") if key in options}
    settings.update(options)
    return SmtpProvider(SmtpConfig(**settings), name="mail", environ=environ or {}, **extra)


def outcomes(results: list[Result]) -> list[str]:
    return [result.outcome for result in results]


class FixedEncoder:
    """Deterministic bytes with the cases DATA must carry through: 8-bit text, leading dots, a lone dot."""

    def encode(self, letter: Any, recipient: Any) -> bytes:
        return (f"From: {letter.from_address}\r\nTo: {recipient.email}\r\nMessage-ID: {recipient.message_id}\r\n"
                "Subject: test\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                f"Hallo {recipient.name} \u2603\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n").encode()


# ---------------------------------------------------------------- the transaction and connection reuse


def test_messages_arrive_byte_for_byte_with_the_right_envelope(server: SmtpServer) -> None:
    letter, batch = make_letter(), make_recipients(3) + [make_recipient(4, email="zo\u00eb@example.net")]
    encoder = FixedEncoder()
    with provider_for(server, encoder=encoder) as provider:
        results = provider.send(letter, batch)

    assert outcomes(results) == ["sent"] * 4
    assert [r.delivery_id for r in results] == [r.delivery_id for r in batch]
    assert [(m.mail_from, m.rcpt_tos) for m in server.messages] == [(letter.from_address, [r.email]) for r in batch]
    assert [m.data for m in server.messages] == [encoder.encode(letter, r) for r in batch]
    assert all(result.provider_id and result.provider_id.startswith("Q") for result in results)


def test_one_connection_carries_many_messages_and_batches(server: SmtpServer) -> None:
    letter = make_letter()
    with provider_for(server) as provider:
        first = provider.send(letter, make_recipients(20))
        second = provider.send(letter, make_recipients(5, start=21))

    assert outcomes(first + second) == ["sent"] * 25
    assert len(server.messages) == 25
    assert server.connections == 1
    assert {m.connection for m in server.messages} == {1}


def test_the_pool_splits_a_batch_over_its_connections(server: SmtpServer) -> None:
    batch = make_recipients(30)
    with provider_for(server, pool=3) as provider:
        assert provider.max_batch == 150
        results = provider.send(make_letter(), batch)

    assert [(r.delivery_id, r.outcome) for r in results] == [(r.delivery_id, "sent") for r in batch]
    assert server.connections == 3
    per_connection = sorted(sum(1 for m in server.messages if m.connection == n) for n in (1, 2, 3))
    assert per_connection == [10, 10, 10]
    chunks = [sorted(m.rcpt_tos[0] for m in server.messages if m.connection == n) for n in (1, 2, 3)]
    assert sorted(chunks) == sorted(sorted(r.email for r in batch[i:i + 10]) for i in (0, 10, 20))


def test_a_small_batch_uses_the_connections_already_open(server: SmtpServer) -> None:
    with provider_for(server, pool=4) as provider:
        provider.send(make_letter(), make_recipients(1))
        provider.send(make_letter(), make_recipients(2, start=2))
    assert server.connections == 2
    assert sorted(m.connection for m in server.messages) == [1, 1, 2]


def test_a_connection_is_replaced_after_per_connection_messages(server: SmtpServer) -> None:
    with provider_for(server, per_connection=4) as provider:
        results = provider.send(make_letter(), make_recipients(10))

    assert outcomes(results) == ["sent"] * 10
    assert server.connections == 3
    assert [m.connection for m in server.messages] == [1] * 4 + [2] * 4 + [3] * 2


def test_a_connection_the_server_closed_between_batches_is_replaced_without_a_deferral(server: SmtpServer) -> None:
    letter = make_letter()
    with provider_for(server) as provider:
        provider.send(letter, make_recipients(2))
        assert server.hang_up() == 1  # an idle timeout, a restart...
        results = provider.send(letter, make_recipients(2, start=3))
    assert outcomes(results) == ["sent", "sent"]
    assert server.connections == 2 and len(server.messages) == 4


def test_a_fresh_connection_that_drops_is_not_retried(server: SmtpServer) -> None:
    server.plan.on("mail", DROP)
    with provider_for(server) as provider:
        results = provider.send(make_letter(), make_recipients(2))
    assert outcomes(results) == ["deferred", "sent"]
    assert "at MAIL FROM" in str(results[0].reason) and "in doubt" not in str(results[0].reason)
    assert len(server.plan.log) == 1 and server.connections == 2


def test_a_reused_connection_that_drops_is_retried_once(server: SmtpServer) -> None:
    with provider_for(server) as provider:
        provider.send(make_letter(), make_recipients(1))
        server.plan.on("mail", DROP, times=2)
        results = provider.send(make_letter(), make_recipients(2, start=2))
    assert outcomes(results) == ["deferred", "sent"]
    assert len(server.plan.log) == 2 and server.connections == 3


def test_the_factory_builds_it_and_close_quits(server: SmtpServer) -> None:
    config = SmtpConfig(type="smtp", host=server.host, port=server.port, security="none", pool=2)
    provider = make_provider("relay", config, environ={})
    assert isinstance(provider, SmtpProvider) and provider.max_batch == 100
    with provider:
        provider.send(make_letter(), make_recipients(2))
    assert provider.connections == []


# ---------------------------------------------------------------- TLS


def test_starttls_fails_clearly_against_an_untrusted_certificate(certs: Certificates) -> None:
    with SmtpServer(tls="starttls", certs=certs) as server:
        provider = provider_for(server, security="starttls")
        with pytest.raises(DeliveryError) as caught:
            provider.open()
    error = caught.value
    assert not error.transient
    assert "certificate" in str(error) and "not trusted" in str(error) and "ca_file" in str(error)
    assert f"{server.host}:{server.port}" in str(error)
    assert server.messages == []


def test_starttls_with_the_ca_file_verifies_and_sends(certs: Certificates) -> None:
    with SmtpServer(tls="starttls", certs=certs) as server:
        with provider_for(server, security="starttls", ca_file=certs.ca_file) as provider:
            results = provider.send(make_letter(), make_recipients(2))
    assert outcomes(results) == ["sent", "sent"]
    assert [m.tls for m in server.messages] == [True, True]


def test_a_relative_ca_file_is_found_beside_the_config(certs: Certificates, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(certs.ca_file.read_bytes())
    with SmtpServer(tls="starttls", certs=certs) as server:
        config = SmtpConfig(type="smtp", host=server.host, port=server.port, ca_file=Path("ca.pem"), pool=1)
        with SmtpProvider(config, name="mail", environ={}, base_dir=tmp_path) as provider:
            assert outcomes(provider.send(make_letter(), make_recipients(1))) == ["sent"]


def test_verify_false_accepts_any_certificate_and_says_so(certs: Certificates, caplog: pytest.LogCaptureFixture) -> None:
    with SmtpServer(tls="starttls", certs=certs) as server:
        with provider_for(server, security="starttls", verify=False) as provider:
            assert outcomes(provider.send(make_letter(), make_recipients(1))) == ["sent"]
    assert "verification is OFF" in caplog.text


def test_implicit_tls_with_the_ca_file(certs: Certificates) -> None:
    with SmtpServer(tls="implicit", certs=certs) as server:
        with provider_for(server, security="tls", ca_file=certs.ca_file) as provider:
            assert outcomes(provider.send(make_letter(), make_recipients(2))) == ["sent", "sent"]
    assert [m.tls for m in server.messages] == [True, True]


def test_tls_against_a_plain_port_is_a_permanent_error(server: SmtpServer, certs: Certificates) -> None:
    with pytest.raises(DeliveryError, match="check that security") as caught:
        provider_for(server, security="tls", ca_file=certs.ca_file).open()
    assert not caught.value.transient


def test_starttls_against_a_server_without_it_is_a_permanent_error(server: SmtpServer) -> None:
    with pytest.raises(DeliveryError, match="does not support STARTTLS") as caught:
        provider_for(server, security="starttls").open()
    assert not caught.value.transient


# ---------------------------------------------------------------- AUTH and secrets


@pytest.fixture
def auth_server(certs: Certificates) -> Iterator[SmtpServer]:
    with SmtpServer(tls="starttls", certs=certs, users={"ann": PASSWORD}) as running:
        yield running


def test_auth_with_the_password_from_the_environment(auth_server: SmtpServer, certs: Certificates) -> None:
    provider = provider_for(auth_server, security="starttls", ca_file=certs.ca_file, username="ann",
                            password_env="SMTP_PASSWORD", environ={"SMTP_PASSWORD": PASSWORD})
    with provider:
        assert outcomes(provider.send(make_letter(), make_recipients(2))) == ["sent", "sent"]
    assert auth_server.logins == [("ann", True)]


def test_the_server_really_requires_auth(auth_server: SmtpServer, certs: Certificates) -> None:
    with provider_for(auth_server, security="starttls", ca_file=certs.ca_file) as provider:
        [result] = provider.send(make_letter(), make_recipients(1))
    assert result.outcome == "deferred" and "530" in str(result.reason) and "set username and password_env" in result.reason
    assert auth_server.messages == []


def test_a_refused_password_is_a_permanent_error_with_the_reply(auth_server: SmtpServer, certs: Certificates) -> None:
    provider = provider_for(auth_server, security="starttls", ca_file=certs.ca_file, username="ann",
                            password_env="SMTP_PASSWORD", environ={"SMTP_PASSWORD": "wrong-" + PASSWORD})
    with pytest.raises(DeliveryError, match="refused the username or password") as caught:
        provider.open()
    assert not caught.value.transient
    assert caught.value.response is not None and caught.value.response.startswith("535")
    assert "password_env" in str(caught.value)
    assert auth_server.logins and not any(ok for _, ok in auth_server.logins)


def test_a_missing_password_variable_is_named_and_nothing_is_dialled(server: SmtpServer) -> None:
    provider = provider_for(server, username="ann", password_env="SMTP_PASSWORD", environ={"OTHER": PASSWORD})
    with pytest.raises(DeliveryError, match="environment variable SMTP_PASSWORD") as caught:
        provider.open()
    assert not caught.value.transient
    assert server.connections == 0


def test_the_password_is_in_no_log_line_and_no_error(auth_server: SmtpServer, certs: Certificates,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = {PASSWORD, "wrong-" + PASSWORD}
    secrets |= {base64.b64encode(f"\0ann\0{s}".encode()).decode() for s in set(secrets)}
    secrets |= {base64.b64encode(s.encode()).decode() for s in {PASSWORD, "wrong-" + PASSWORD}}
    texts = []
    ok = provider_for(auth_server, security="starttls", ca_file=certs.ca_file, username="ann",
                      password_env="SMTP_PASSWORD", environ={"SMTP_PASSWORD": PASSWORD})
    with ok:
        auth_server.plan.on("rcpt", 550, to="reader2@example.net").on("data", DROP, to="reader3@example.net")
        texts += [str(r) for r in ok.send(make_letter(), make_recipients(3))]
    for password in ("wrong-" + PASSWORD, None):
        environ = {"SMTP_PASSWORD": password} if password else {}
        bad = provider_for(auth_server, security="starttls", ca_file=certs.ca_file, username="ann",
                           password_env="SMTP_PASSWORD", environ=environ)
        with pytest.raises(DeliveryError) as caught:
            bad.open()
        texts += [str(caught.value), repr(caught.value), str(caught.value.response), str(caught.value.__cause__)]

    assert len(texts) == 3 + 8 and caplog.records
    everything = "\n".join(texts) + "\n" + caplog.text
    assert not [secret for secret in secrets if secret in everything]


# ---------------------------------------------------------------- per-recipient replies


@pytest.mark.parametrize(
    ("stage", "reply", "outcome", "bounce"),
    [
        ("rcpt", 421, "deferred", False),
        ("rcpt", 450, "deferred", False),
        ("rcpt", 451, "deferred", False),
        ("rcpt", 452, "deferred", False),
        ("rcpt", 454, "deferred", False),
        ("rcpt", 550, "failed", True),
        ("rcpt", 551, "failed", True),
        ("rcpt", 553, "failed", True),
        ("rcpt", 554, "failed", False),
        ("rcpt", "550 5.7.1 Rejected by policy", "failed", False),
        ("rcpt", "550 Requested action not taken: mailbox unavailable", "failed", True),
        ("rcpt", "554 5.2.1 Mailbox disabled", "failed", True),
        ("data", 421, "deferred", False),
        ("data", 451, "deferred", False),
        ("data", 452, "deferred", False),
        ("data", 550, "failed", True),
        ("data", 552, "failed", False),
        ("data", 554, "failed", False),
    ],
)
def test_each_reply_maps_to_its_outcome(server: SmtpServer, stage: str, reply: int | str, outcome: str,
                                        bounce: bool) -> None:
    batch = make_recipients(3)
    server.plan.on(stage, reply, to=batch[1].email)  # type: ignore[arg-type]
    with provider_for(server) as provider:
        results = provider.send(make_letter(), batch)

    line = REPLIES[reply] if isinstance(reply, int) else reply
    assert outcomes(results) == ["sent", outcome, "sent"]
    assert results[1].bounce is bounce
    assert results[1].reason is not None and results[1].reason.startswith(f"smtp {line}")
    assert [m.rcpt_tos for m in server.messages] == [[batch[0].email], [batch[2].email]]
    assert server.connections == (2 if line.startswith("421") else 1)


def test_a_refused_sender_defers_the_recipient_without_failing_or_bouncing_it() -> None:
    result = classify(5, 550, b"5.1.8 Bad sender address", "MAIL FROM")
    assert (result.outcome, result.bounce) == ("deferred", False)
    assert "check the list's from_address" in result.reason


@pytest.mark.parametrize(
    ("code", "text", "hard"),
    [(550, "550 5.1.1 No such user", True), (550, "550 5.7.1 Spam", False), (550, "550 No such user", True),
     (554, "554 Rejected", False), (552, "552 5.2.2 Mailbox full", False), (553, "553 5.1.3 Bad address", True),
     (554, "554 5.1.0 Address rejected", True), (551, "551 5.2.1 Mailbox disabled", True)],
)
def test_hard_bounces(code: int, text: str, hard: bool) -> None:
    assert is_hard_bounce(code, text) is hard


# ---------------------------------------------------------------- lost connections and timeouts


def test_a_connection_dropped_at_data_defers_that_message_in_doubt(server: SmtpServer) -> None:
    batch = make_recipients(3)
    server.plan.on("data", DROP, to=batch[1].email)
    with provider_for(server) as provider:
        results = provider.send(make_letter(), batch)

    assert outcomes(results) == ["sent", "deferred", "sent"]
    assert "in doubt" in str(results[1].reason)
    assert [m.rcpt_tos for m in server.messages] == [[batch[0].email], [batch[2].email]]
    assert server.connections == 2


def test_a_message_accepted_before_the_drop_is_resent_with_the_same_message_id(server: SmtpServer) -> None:
    letter, batch = make_letter(), make_recipients(2)
    server.plan.on("data", DROP_AFTER_ACCEPT, to=batch[0].email)
    with provider_for(server) as provider:
        first = provider.send(letter, batch)
        again = provider.send(letter, [r for r, res in zip(batch, first) if res.outcome == "deferred"])

    assert outcomes(first) == ["deferred", "sent"] and outcomes(again) == ["sent"]
    copies = server.received_by(batch[0].email)
    assert len(copies) == 2
    assert {m.parsed()["Message-ID"] for m in copies} == {batch[0].message_id}


def test_a_connection_dropped_at_rcpt_is_not_in_doubt(server: SmtpServer) -> None:
    batch = make_recipients(2)
    server.plan.on("rcpt", DROP, to=batch[0].email)
    with provider_for(server) as provider:
        results = provider.send(make_letter(), batch)
    assert outcomes(results) == ["deferred", "sent"]
    assert "at RCPT TO" in str(results[0].reason) and "in doubt" not in str(results[0].reason)


def test_a_server_stalling_past_the_timeout_defers_in_doubt_and_the_rest_goes_on(server: SmtpServer) -> None:
    batch = make_recipients(3)
    server.plan.on("data", STALL, to=batch[1].email)
    with provider_for(server, timeout=0.4) as provider:
        results = provider.send(make_letter(), batch)
    assert outcomes(results) == ["sent", "deferred", "sent"]
    assert "in doubt" in str(results[1].reason) and "timed out" in str(results[1].reason)
    assert server.connections == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_faults_never_lose_or_duplicate_a_message(server: SmtpServer, seed: int) -> None:
    server.plan = Plan.random(seed, {451: 0.08, 550: 0.08, 421: 0.04, DROP: 0.04, DROP_AFTER_ACCEPT: 0.04})
    batch = make_recipients(60)
    with provider_for(server, pool=3) as provider:
        results = provider.send(make_letter(), batch)

    assert [r.delivery_id for r in results] == [r.delivery_id for r in batch]
    assert {r.outcome for r in results} == {"sent", "deferred", "failed"}  # the plan did bite
    for recipient, result in zip(batch, results):
        copies = len(server.received_by(recipient.email))
        if result.outcome == "sent":
            assert copies == 1, result
        elif result.outcome == "failed":
            assert copies == 0, result
        else:  # deferred: only a message whose reply was lost may have arrived (and will be resent, same Message-ID)
            assert copies <= (1 if "in doubt" in str(result.reason) else 0), result


def test_a_refused_connection_is_a_transient_error() -> None:
    with SmtpServer() as gone:
        pass  # started and stopped: nothing listens on its port any more
    with pytest.raises(DeliveryError, match="cannot connect to 127.0.0.1") as caught:
        provider_for(gone, pool=2).send(make_letter(), make_recipients(3))
    assert caught.value.transient


def test_a_chunk_that_cannot_reconnect_defers_its_rest_while_others_keep_their_results() -> None:
    provider = SmtpProvider(SmtpConfig(type="smtp", pool=2), name="mail", environ={})
    batch = make_recipients(4)
    down = DeliveryError("mail", "cannot connect to x:25: Connection refused", retry_after=30)
    outcome_ok = Outcome([Result(batch[0].delivery_id, "sent"), Result(batch[1].delivery_id, "sent")])
    outcome_down = Outcome([Result(batch[2].delivery_id, "sent")], error=down, left=batch[3:])
    results = provider._results([outcome_ok, outcome_down])
    assert [(r.delivery_id, r.outcome) for r in results] == [(r.delivery_id, o) for r, o in
                                                             zip(batch, ["sent", "sent", "sent", "deferred"])]
    assert results[3].reason == str(down) and results[3].retry_after == 30
    with pytest.raises(DeliveryError) as caught:
        provider._results([Outcome(error=down, left=batch[:2]), Outcome(error=DeliveryError("mail", "no", transient=False),
                                                                       left=batch[2:])])
    assert not caught.value.transient  # the permanent error is the one worth reporting


# ---------------------------------------------------------------- rate limit


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.now += seconds


def test_the_token_bucket_spaces_takes_and_refills_only_up_to_its_burst() -> None:
    clock = FakeTime()
    bucket = TokenBucket(4, burst=2, monotonic=clock.monotonic, sleep=clock.sleep)
    waits = [bucket.take() for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0.25, 0.25, 0.25, 0.25])
    clock.now += 60  # a long idle spell earns no more than the burst
    waits = [bucket.take() for _ in range(4)]
    assert waits == pytest.approx([0, 0, 0.25, 0.25])


def test_the_token_bucket_queues_concurrent_takers_without_handing_a_token_twice() -> None:
    bucket = TokenBucket(10, burst=1, monotonic=lambda: 0.0, sleep=lambda seconds: None)  # time stands still
    waits: list[float] = []
    lock = threading.Lock()

    def taker() -> None:
        for _ in range(5):
            wait = bucket.take()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=taker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([n / 10 for n in range(40)])


def test_the_rate_limit_holds_the_pool_to_its_rate(server: SmtpServer) -> None:
    clock = FakeTime()
    with provider_for(server, rate=20, monotonic=clock.monotonic, sleep=clock.sleep) as provider:
        results = provider.send(make_letter(), make_recipients(30))
    assert outcomes(results) == ["sent"] * 30
    burst = provider.bucket.burst  # type: ignore[union-attr]
    assert clock.now == pytest.approx((30 - burst) / 20)
    assert len(clock.slept) == 30 - burst


def test_no_rate_means_no_waiting(server: SmtpServer) -> None:
    clock = FakeTime()
    with provider_for(server, pool=2, monotonic=clock.monotonic, sleep=clock.sleep) as provider:
        provider.send(make_letter(), make_recipients(10))
    assert provider.bucket is None and clock.slept == []


# ---------------------------------------------------------------- helpers


def test_dot_stuffing() -> None:
    assert dot_stuff(b"a\r\n.b\r\n.\r\n") == b"a\r\n..b\r\n..\r\n.\r\n"
    assert dot_stuff(b".x") == b"..x\r\n.\r\n"


def test_split_keeps_order_and_balances() -> None:
    batch = make_recipients(7)
    chunks = split(batch, 3)
    assert [len(c) for c in chunks] == [2, 2, 3]
    assert [r for c in chunks for r in c] == batch
    assert [len(c) for c in split(batch[:2], 4)] == [0, 1, 0, 1]


def test_smtplib_errors_are_oserrors() -> None:  # what deliver() relies on to catch every lost connection
    assert issubclass(smtplib.SMTPServerDisconnected, OSError)
