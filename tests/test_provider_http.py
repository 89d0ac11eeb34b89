"""The HTTP API providers (Mailgun, Postmark, SendGrid) against the local ``MailApi`` server.

What each request looks like (fields, headers, auth), batching limits, and how every fault the
services answer with maps to a Result or a DeliveryError.  The contract suite
(tests/contract) covers what recipients receive.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from publisher import __version__
from publisher import config as cfg
from publisher.clock import FrozenClock
from publisher.errors import DeliveryError
from publisher.providers import make_provider
from publisher.providers._http import retry_after
from publisher.providers.base import Provider
from tests.contract import make_letter, make_recipient, make_recipients
from tests.servers.mailapi import DOMAIN, KEYS, MailApi

KINDS = ("mailgun", "postmark", "sendgrid")
ENV_NAMES = {"mailgun": "MAILGUN_API_KEY", "postmark": "POSTMARK_SERVER_TOKEN", "sendgrid": "SENDGRID_API_KEY"}
ENV = {ENV_NAMES[kind]: KEYS[kind] for kind in KINDS}
NOW = datetime(2026, 3, 6, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def api() -> Iterator[MailApi]:
    with MailApi() as server:
        yield server


def make(kind: str, api: MailApi, *, environ: dict[str, str] | None = None, clock: Any = None,
         **section: Any) -> Provider:
    if kind == "mailgun":
        section.setdefault("domain", DOMAIN)
    config = getattr(cfg, f"{kind.capitalize()}Provider")(type=kind, base_url=api.url, **section)
    return make_provider(kind, config, environ=ENV if environ is None else environ,
                         clock=clock or FrozenClock(NOW))


def send(provider: Provider, batch: list[Any]) -> list[Any]:
    with provider:
        return provider.send(make_letter(), batch)


def multipart(request: Any) -> list[tuple[str, str]]:
    from tests.servers.mailapi import Mailgun

    return Mailgun.fields(request)


# ---------------------------------------------------------------- request shapes


def test_mailgun_request_is_one_templated_batch_with_recipient_variables(api: MailApi) -> None:
    batch = make_recipients(2) + [make_recipient(3, name='Ann <b>"B"</b> & Co')]
    send(make("mailgun", api), batch)

    [request] = api.requests
    assert request.path == f"/v3/{DOMAIN}/messages"
    assert request.headers["authorization"].startswith("Basic ")
    assert request.headers["user-agent"] == f"publisher/{__version__}"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    fields = multipart(request)
    single = dict(fields)
    assert [value for name, value in fields if name == "to"] == [
        "Reader 1 <reader1@example.net>", "Reader 2 <reader2@example.net>",
        '"Ann <b>\\"B\\"</b> & Co" <reader3@example.net>']
    assert single["from"] == "Example News <news@example.org>"
    assert single["h:Message-Id"] == "%recipient.message_id%"
    assert single["h:List-Unsubscribe"] == (
        "<%recipient.unsubscribe_url%>, <mailto:unsubscribe@example.org?subject=unsubscribe>")
    assert single["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert single["v:delivery-id"] == "%recipient.delivery_id%" and single["v:digest-id"] == "7"
    assert "%recipient.name_html%" in single["html"] and "%recipient.name%" in single["text"]
    assert "@@PUBLISHER" not in single["html"] + single["text"]
    variables = json.loads(single["recipient-variables"])
    ann = variables["reader3@example.net"]
    assert ann["name"] == 'Ann <b>"B"</b> & Co'
    assert ann["name_html"] == "Ann &lt;b&gt;&quot;B&quot;&lt;/b&gt; &amp; Co"
    assert ann["message_id"] == batch[2].message_id and ann["delivery_id"] == str(batch[2].delivery_id)


def test_postmark_request_is_an_array_of_complete_messages(api: MailApi) -> None:
    batch = make_recipients(2)
    send(make("postmark", api, message_stream="digests"), batch)

    [request] = api.requests
    assert request.path == "/email/batch"
    assert request.headers["x-postmark-server-token"] == KEYS["postmark"]
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    messages = json.loads(request.body)
    letter = make_letter()
    for message, recipient in zip(messages, batch, strict=True):
        assert message["To"] == f"{recipient.name} <{recipient.email}>"
        assert message["MessageStream"] == "digests"
        assert message["ReplyTo"] == "editor@example.org"
        assert message["HtmlBody"] == letter.html_for(recipient)
        assert message["TextBody"] == letter.text_for(recipient)
        headers = {item["Name"]: item["Value"] for item in message["Headers"]}
        assert headers["Message-ID"] == recipient.message_id
        assert headers["List-Id"] == letter.list_id
        assert message["Metadata"] == {"delivery_id": str(recipient.delivery_id), "digest_id": "7"}


def test_sendgrid_request_has_one_personalization_per_recipient(api: MailApi) -> None:
    batch = make_recipients(2) + [make_recipient(3, name="Smith, Jo")]
    send(make("sendgrid", api), batch)

    [request] = api.requests
    assert request.path == "/v3/mail/send"
    assert request.headers["authorization"] == f"Bearer {KEYS['sendgrid']}"
    data = json.loads(request.body)
    assert [item["type"] for item in data["content"]] == ["text/plain", "text/html"]
    assert "@@PUBLISHER:name_html@@" in data["content"][1]["value"]
    assert data["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert data["custom_args"] == {"digest_id": "7"}
    [first, _, smith] = data["personalizations"]
    assert first["to"] == [{"email": "reader1@example.net", "name": "Reader 1"}]
    assert smith["to"] == [{"email": "reader3@example.net", "name": '"Smith, Jo"'}]
    assert first["substitutions"]["@@PUBLISHER:unsubscribe_url@@"] == batch[0].unsubscribe_url
    assert first["headers"]["Message-ID"] == batch[0].message_id
    assert first["custom_args"] == {"delivery_id": str(batch[0].delivery_id)}


def test_provider_ids_are_the_services_own(api: MailApi) -> None:
    results = {kind: send(make(kind, api), make_recipients(2)) for kind in KINDS}

    assert results["mailgun"][0].provider_id.endswith(f"@{DOMAIN}>")
    assert results["mailgun"][0].provider_id == results["mailgun"][1].provider_id  # one id per Mailgun call
    assert results["postmark"][0].provider_id != results["postmark"][1].provider_id  # Postmark: per message
    assert results["sendgrid"][0].provider_id  # X-Message-Id


def test_a_name_with_line_breaks_cannot_add_a_header(api: MailApi) -> None:
    evil = make_recipient(1, name="Eve\r\nBcc: all@example.com")
    for kind in KINDS:
        assert [r.outcome for r in send(make(kind, api), [evil])] == ["sent"]
    for _, message in api.inbox():
        assert "\n" not in message["to"] and "\r" not in message["to"]


# ---------------------------------------------------------------- batching


@pytest.mark.parametrize(("kind", "count", "calls"), [("mailgun", 1001, 2), ("sendgrid", 1001, 2),
                                                      ("postmark", 501, 2), ("postmark", 500, 1)])
def test_batches_respect_each_apis_limit(api: MailApi, kind: str, count: int, calls: int) -> None:
    letter = make_letter(html="<p>@@PUBLISHER:name@@</p>", text="@@PUBLISHER:name@@")
    batch = make_recipients(count)
    with make(kind, api) as provider:
        results = provider.send(letter, batch)

    assert [r.outcome for r in results] == ["sent"] * count
    assert [r.delivery_id for r in results] == [r.delivery_id for r in batch]
    assert api.calls[kind] == calls
    assert len(api.inbox(kind)) == count
    assert provider.max_batch == {"mailgun": 1000, "sendgrid": 1000, "postmark": 500}[kind]


def test_a_smaller_configured_batch_is_honoured(api: MailApi) -> None:
    send(make("mailgun", api, batch=3), make_recipients(7))
    assert api.calls["mailgun"] == 3


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["500", "502", "503"])
def test_server_errors_defer_the_whole_batch(api: MailApi, kind: str, fault: str) -> None:
    api.fail(fault)
    results = send(make(kind, api), make_recipients(3))

    assert [r.outcome for r in results] == ["deferred"] * 3
    assert all(f"http {fault}" in (r.reason or "") for r in results)
    assert api.inbox() == []


@pytest.mark.parametrize("kind", KINDS)
def test_429_retry_after_seconds_is_honoured(api: MailApi, kind: str) -> None:
    api.fail("429", retry_after=17)
    results = send(make(kind, api), make_recipients(2))

    assert [(r.outcome, r.retry_after) for r in results] == [("deferred", 17.0)] * 2
    assert "http 429" in (results[0].reason or "")


@pytest.mark.parametrize("kind", KINDS)
def test_429_retry_after_http_date_is_honoured(api: MailApi, kind: str) -> None:
    api.fail("429", retry_after=format_datetime(NOW + timedelta(seconds=90), usegmt=True))
    [result] = send(make(kind, api), make_recipients(1))
    assert (result.outcome, result.retry_after) == ("deferred", 90.0)


@pytest.mark.parametrize("kind", KINDS)
def test_429_x_ratelimit_reset_is_honoured(api: MailApi, kind: str) -> None:
    api.fail("429", reset=NOW.timestamp() + 42)
    [result] = send(make(kind, api), make_recipients(1))
    assert (result.outcome, result.retry_after) == ("deferred", 42.0)


def test_mailgun_420_is_transient(api: MailApi) -> None:
    provider = make("mailgun", api)
    with provider:
        provider.open()
        import httpx

        response = httpx.Response(420, text="Enhance your calm", headers={"Retry-After": "5"})
        from publisher.providers._http import Deferred

        with pytest.raises(Deferred) as caught:
            provider.check(response)
    assert caught.value.retry_after == 5.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["stall", "drop"])
def test_timeouts_and_dropped_connections_defer_the_whole_batch(api: MailApi, kind: str, fault: str) -> None:
    api.fail(fault)
    results = send(make(kind, api, timeout=0.3), make_recipients(2))

    assert [r.outcome for r in results] == ["deferred"] * 2
    assert ("timeout" if fault == "stall" else "connection") in (results[0].reason or "")


@pytest.mark.parametrize("kind", KINDS)
def test_refused_credentials_stop_the_send(api: MailApi, kind: str) -> None:
    wrong = {ENV_NAMES[kind]: "not-the-key-Q7"}
    with pytest.raises(DeliveryError) as caught:
        send(make(kind, api, environ=wrong), make_recipients(2))

    error = caught.value
    assert error.transient is False
    assert "http 401" in str(error) and ENV_NAMES[kind] in str(error)
    assert error.response and error.response.startswith("401 ")
    assert "\n" not in str(error)


@pytest.mark.parametrize("kind", KINDS)
def test_a_misconfiguration_is_not_blamed_on_recipients(api: MailApi, kind: str) -> None:
    api.fail("config")
    with pytest.raises(DeliveryError) as caught:
        send(make(kind, api), make_recipients(4))
    assert caught.value.transient is False
    assert api.calls[kind] == 0 and api.inbox() == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_key_names_the_variable(api: MailApi, kind: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        send(make(kind, api, environ={}), make_recipients(1))
    assert ENV_NAMES[kind] in str(caught.value) and caught.value.transient is False


def test_mailgun_400_for_one_address_fails_only_that_recipient(api: MailApi) -> None:
    batch = make_recipients(8)
    api.reject(batch[5].email)
    results = send(make("mailgun", api), batch)

    assert [r.outcome for r in results] == ["sent"] * 5 + ["failed"] + ["sent"] * 2
    assert "not a valid address" in (results[5].reason or "")
    assert sorted(email for email, _ in api.inbox()) == sorted(r.email for r in batch if r is not batch[5])
    # halves until the bad address is alone: [0:4] accepted, [4:8] refused, [4] accepted, [5] refused, [6:8] accepted
    assert api.calls["mailgun"] == 3


@pytest.mark.parametrize(("code", "bounce"), [(300, False), (406, True)])
def test_postmark_per_message_errors_inside_a_200(api: MailApi, code: int, bounce: bool) -> None:
    batch = make_recipients(3)
    api.reject(batch[0].email, code)
    results = send(make("postmark", api), batch)

    assert [r.outcome for r in results] == ["failed", "sent", "sent"]
    assert results[0].bounce is bounce and results[0].reason.startswith(f"postmark {code} ")
    assert api.calls["postmark"] == 1


def test_postmark_per_message_rate_limit_defers_that_message(api: MailApi) -> None:
    batch = make_recipients(2)
    api.reject(batch[1].email, 429, once=True)
    results = send(make("postmark", api), batch)
    assert [r.outcome for r in results] == ["sent", "deferred"]


def test_sendgrid_400_on_a_personalization_fails_only_that_recipient(api: MailApi) -> None:
    batch = make_recipients(5)
    api.reject(batch[0].email)
    results = send(make("sendgrid", api), batch)

    assert [r.outcome for r in results] == ["failed"] + ["sent"] * 4
    assert "personalizations.0.to.0.email" in (results[0].reason or "")


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize("kind", KINDS)
def test_keys_never_reach_logs_errors_or_reprs(api: MailApi, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = KEYS[kind]
    provider = make(kind, api)
    send(provider, make_recipients(2))
    api.fail("429", retry_after=1)
    send(provider, make_recipients(1))
    api.fail("401")
    with pytest.raises(DeliveryError) as caught:
        send(provider, make_recipients(1))

    assert caplog.records, "the providers and httpx log at DEBUG"
    assert key not in caplog.text
    assert key not in str(caught.value) and key not in repr(caught.value.response)
    assert key not in repr(provider)
    assert key not in repr({name: value for name, value in vars(provider).items() if name != "environ"})


# ---------------------------------------------------------------- Retry-After parsing


@given(st.integers(min_value=0, max_value=10**7))
def test_retry_after_seconds(seconds: int) -> None:
    assert retry_after({"retry-after": str(seconds)}, NOW) == float(seconds)


@given(st.integers(min_value=-10**6, max_value=10**7))
def test_retry_after_http_date_and_reset_epoch(offset: int) -> None:
    when = NOW + timedelta(seconds=offset)
    assert retry_after({"retry-after": format_datetime(when, usegmt=True)}, NOW) == max(0.0, float(offset))
    assert retry_after({"x-ratelimit-reset": str(int(when.timestamp()))}, NOW) == max(0.0, float(offset))


def test_retry_after_absent_or_garbled() -> None:
    assert retry_after({}, NOW) is None
    assert retry_after({"retry-after": "soon"}, NOW) is None
    assert retry_after({"x-ratelimit-reset": "x"}, NOW) is None
    assert retry_after({"retry-after": "soon", "x-ratelimit-reset": "30"}, NOW) == 30.0


def test_every_client_verifies_tls_with_one_shared_context(api):
    import ssl

    first, second = make("mailgun", api), make("sendgrid", api)
    with first, second:
        contexts = [provider._client._transport._pool._ssl_context for provider in (first, second)]
    assert contexts[0] is contexts[1]  # the CA bundle is loaded once per process, not once per send
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname
