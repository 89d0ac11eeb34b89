"""The bounce and complaint webhooks, over real HTTP to the web service on 127.0.0.1.

Every request is signed the way the provider signs it (HMAC for Mailgun, basic
auth for Postmark, an ECDSA P-256 key pair made here for SendGrid), or forged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from publisher.clock import FrozenClock
from publisher.config import load_config
from publisher.schema import deliveries, digests, subscribers, subscriptions
from publisher.state import Store
from publisher.subscribers import Subscribers

UTC = timezone.utc
NOW = datetime(2024, 3, 8, 12, 0, tzinfo=UTC)
MAILGUN_KEY = "mg-signing-" + "k" * 24
POSTMARK_USER, POSTMARK_PASSWORD = "hooks", "pm-password-" + "p" * 16

CONFIG = """
[site]
title = "Example Site"
url = "http://example.com/"
timezone = "Europe/London"

[posts]
root = "posts"

[feeds]
output = "public/feeds"
url = "{feeds_url}"

[state]
directory = "state"

[web]
url = "{web_url}"
soft_bounce_limit = 2

[lists.weekly]
title = "Weekly digest"
description = "Everything new, on Fridays."
schedule = "0 16 * * fri"
timezone = "Europe/London"
from_address = "news@example.com"

[lists.links]
title = "Links"
schedule = "0 9 * * mon"
from_address = "news@example.com"
"""


# -- the site, its database and its server -------------------------------------------


@dataclass
class Site:
    root: Path
    config: Any
    store: Store
    clock: FrozenClock
    environ: dict[str, str]

    def add(self, email: str, lists: tuple[str, ...] = ("weekly", "links")) -> int:
        return Subscribers(self.store, clock=self.clock).add(email, lists=lists)

    def statuses(self, subscriber_id: int) -> dict[str, tuple[str, int]]:
        """{list: (status, soft_bounces)} of a subscriber."""
        query = select(subscriptions.c.list, subscriptions.c.status, subscriptions.c.soft_bounces).where(
            subscriptions.c.subscriber_id == subscriber_id)
        with self.store.begin() as conn:
            return {row.list: (row.status, row.soft_bounces) for row in conn.execute(query)}

    def digest(self, list_name: str = "weekly", status: str = "sent", when: datetime = NOW,
               subject: str = "Weekly digest: 2 new posts", html: str = "<html><body><p>Hi</p></body></html>") -> int:
        row = {"list": list_name, "scheduled_for": when, "since": None, "cutoff": when, "post_ids": "[]",
               "subject": subject, "html": html, "text": "Hi", "summaries_only": False, "status": status,
               "recipients": 0, "created_at": when}
        with self.store.begin() as conn:
            return conn.execute(insert(digests).values(row)).inserted_primary_key[0]

    def delivery(self, digest_id: int, subscriber_id: int, email: str, state: str = "sent") -> tuple[int, str]:
        """A ledger row; returns (delivery ID, Message-ID)."""
        message_id = f"<d{digest_id}.s{subscriber_id}.abcdefgh@example.com>"
        row = {"digest_id": digest_id, "subscriber_id": subscriber_id, "email": email, "state": state,
               "attempts": 1, "message_id": message_id, "updated_at": NOW}
        with self.store.begin() as conn:
            return conn.execute(insert(deliveries).values(row)).inserted_primary_key[0], message_id


def make_site(root: Path, *, web_url: str = "http://example.com/newsletter/",
              feeds_url: str = "http://example.com/newsletter/feeds/", environ: dict[str, str] | None = None) -> Site:
    (root / "posts").mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text(CONFIG.format(web_url=web_url, feeds_url=feeds_url), encoding="utf-8")
    config = load_config(root / "config.toml")
    clock = FrozenClock(NOW)
    store = Store(config.database_url, clock=clock)
    store.migrate()
    env = {"PUBLISHER_SECRET": "s" * 32} if environ is None else environ
    return Site(root, config, store, clock, env)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    made = make_site(tmp_path, environ={
        "PUBLISHER_SECRET": "s" * 32,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "POSTMARK_WEBHOOK_USER": POSTMARK_USER,
        "POSTMARK_WEBHOOK_PASSWORD": POSTMARK_PASSWORD,
    })
    yield made
    made.store.close()


@pytest.fixture
def serve():
    """serve(site) -> an httpx client whose base URL is the running service's base path."""
    from publisher.web.server import start_in_thread

    handles, clients = [], []

    def start(site: Site) -> httpx.Client:
        handle = start_in_thread(site.config, clock=site.clock, environ=site.environ, host="127.0.0.1", port=0,
                                 store=site.store)
        handles.append(handle)
        client = httpx.Client(base_url=handle.url, timeout=10)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for handle in handles:
        handle.stop()


# -- Mailgun ---------------------------------------------------------------------------


def mailgun_body(event: dict[str, Any], *, key: str = MAILGUN_KEY, at: datetime = NOW, token: str | None = None) -> bytes:
    token = token or secrets.token_hex(25)
    timestamp = str(int(at.timestamp()))
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({"signature": {"timestamp": timestamp, "token": token, "signature": signature},
                       "event-data": event}).encode()


def mailgun_event(name: str, recipient: str, *, severity: str | None = None, reason: str | None = None,
                  delivery_id: int | None = None, event_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"event": name, "recipient": recipient, "id": event_id or secrets.token_urlsafe(16),
                             "timestamp": NOW.timestamp(), "log-level": "error",
                             "message": {"headers": {"message-id": "20240308.abc@mg.example.com"}}}
    if severity:
        event["severity"] = severity
    if reason:
        event["reason"] = reason
    if delivery_id is not None:
        event["user-variables"] = {"delivery-id": str(delivery_id), "digest-id": "1"}
    return event


def post_json(client: httpx.Client, path: str, body: bytes, **headers: str) -> httpx.Response:
    return client.post(path, content=body, headers={"Content-Type": "application/json", **headers})


def test_mailgun_signed_hard_bounce_bounces_every_list(site, serve):
    ann = site.add("ann@example.com")
    digest = site.digest()
    delivery, _ = site.delivery(digest, ann, "ann@example.com")
    client = serve(site)
    response = post_json(client, "webhooks/mailgun",
                         mailgun_body(mailgun_event("failed", "ann@example.com", severity="permanent",
                                                    reason="bounce", delivery_id=delivery)))
    assert response.status_code == 200, response.text
    assert response.json() == {"events": 1, "applied": 1}
    assert site.statuses(ann) == {"weekly": ("bounced", 0), "links": ("bounced", 0)}


def test_mailgun_forged_signature_is_refused_and_changes_nothing(site, serve, caplog):
    ann = site.add("ann@example.com")
    client = serve(site)
    body = mailgun_body(mailgun_event("complained", "ann@example.com"), key="not-the-key")
    with caplog.at_level(logging.INFO):
        response = post_json(client, "webhooks/mailgun", body)
    assert response.status_code == 403
    assert "signature" in response.text and response.text.count("\n") == 1
    assert site.statuses(ann) == {"weekly": ("active", 0), "links": ("active", 0)}
    assert MAILGUN_KEY not in caplog.text


def test_mailgun_event_data_swapped_under_a_good_signature_is_a_replay(site, serve):
    ann, bob = site.add("ann@example.com"), site.add("bob@example.com")
    client = serve(site)
    token = secrets.token_hex(25)
    first = mailgun_body(mailgun_event("delivered", "ann@example.com"), token=token)
    assert post_json(client, "webhooks/mailgun", first).status_code == 200
    forged = mailgun_body(mailgun_event("complained", "bob@example.com"), token=token)
    response = post_json(client, "webhooks/mailgun", forged)
    assert response.status_code == 403 and "replay" in response.text
    assert site.statuses(bob) == {"weekly": ("active", 0), "links": ("active", 0)}
    assert site.statuses(ann)["weekly"] == ("active", 0)


def test_mailgun_retry_of_the_same_request_is_applied_once(site, serve):
    ann = site.add("ann@example.com")
    client = serve(site)
    body = mailgun_body(mailgun_event("failed", "ann@example.com", severity="temporary", reason="generic"))
    assert post_json(client, "webhooks/mailgun", body).json() == {"events": 1, "applied": 1}
    again = post_json(client, "webhooks/mailgun", body)
    assert again.status_code == 200 and again.json() == {"events": 1, "duplicate": 1}
    assert site.statuses(ann) == {"weekly": ("active", 1), "links": ("active", 1)}


@pytest.mark.parametrize("offset", [timedelta(minutes=16), timedelta(minutes=-6)])
def test_mailgun_stale_or_future_timestamps_are_refused(site, serve, offset):
    ann = site.add("ann@example.com")
    client = serve(site)
    body = mailgun_body(mailgun_event("complained", "ann@example.com"), at=NOW - offset)
    response = post_json(client, "webhooks/mailgun", body)
    assert response.status_code == 403 and "stale" in response.text
    assert site.statuses(ann)["weekly"] == ("active", 0)


def test_mailgun_soft_bounces_count_per_message_on_the_messages_list(site, serve):
    ann = site.add("ann@example.com")
    first, second = site.digest(when=NOW - timedelta(days=7)), site.digest()
    d1, _ = site.delivery(first, ann, "ann@example.com")
    d2, _ = site.delivery(second, ann, "ann@example.com")
    client = serve(site)
    for delivery in (d1, d1):  # two temporary failures of one message count once
        event = mailgun_event("failed", "ann@example.com", severity="temporary", delivery_id=delivery)
        post_json(client, "webhooks/mailgun", mailgun_body(event))
    assert site.statuses(ann) == {"weekly": ("active", 1), "links": ("active", 0)}
    event = mailgun_event("failed", "ann@example.com", severity="permanent", reason="old", delivery_id=d2)
    assert post_json(client, "webhooks/mailgun", mailgun_body(event)).json()["applied"] == 1
    assert site.statuses(ann) == {"weekly": ("bounced", 2), "links": ("active", 0)}  # the limit is 2


@pytest.mark.parametrize(("name", "reason", "status"), [
    ("complained", None, "complained"),
    ("unsubscribed", None, "unsubscribed"),
    ("failed", "suppress-complaint", "complained"),
    ("failed", "suppress-unsubscribe", "unsubscribed"),
    ("failed", "suppress-bounce", "bounced"),
])
def test_mailgun_complaints_and_unsubscribes_stop_every_list(site, serve, name, reason, status):
    ann = site.add("ann@example.com")
    client = serve(site)
    event = mailgun_event(name, "Ann@Example.COM", severity="permanent" if reason else None, reason=reason)
    assert post_json(client, "webhooks/mailgun", mailgun_body(event)).status_code == 200
    assert site.statuses(ann) == {"weekly": (status, 0), "links": (status, 0)}


def test_mailgun_engagement_events_and_strangers_change_nothing(site, serve):
    ann = site.add("ann@example.com")
    client = serve(site)
    for event in (mailgun_event("delivered", "ann@example.com"), mailgun_event("opened", "ann@example.com")):
        assert post_json(client, "webhooks/mailgun", mailgun_body(event)).json() == {"events": 0}
    stranger = mailgun_event("complained", "nobody@example.com")
    assert post_json(client, "webhooks/mailgun", mailgun_body(stranger)).json() == {"events": 1, "unmatched": 1}
    assert site.statuses(ann) == {"weekly": ("active", 0), "links": ("active", 0)}


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", "caf\xe9".encode("latin-1")])
def test_mailgun_malformed_bodies_are_400_with_one_line(site, serve, body):
    client = serve(site)
    response = post_json(client, "webhooks/mailgun", body)
    assert response.status_code == 400
    assert response.text.endswith("\n") and response.text.count("\n") == 1


def test_mailgun_signed_body_without_event_data_is_400(site, serve):
    client = serve(site)
    body = json.loads(mailgun_body({"event": "failed"}))
    body["event-data"] = "nothing"
    raw = json.dumps(body).encode()
    response = post_json(client, "webhooks/mailgun", raw)
    assert response.status_code == 400 and "event-data" in response.text


def test_an_event_delivery_id_never_overrides_its_recipient(site, serve):
    ann, bob = site.add("ann@example.com"), site.add("bob@example.com")
    delivery, _ = site.delivery(site.digest(), ann, "ann@example.com")
    client = serve(site)
    event = mailgun_event("complained", "bob@example.com", delivery_id=delivery)  # someone else's ID
    post_json(client, "webhooks/mailgun", mailgun_body(event))
    assert site.statuses(ann)["weekly"] == ("active", 0)
    assert site.statuses(bob)["weekly"] == ("complained", 0)


def test_unconfigured_webhooks_are_404_with_one_warning(tmp_path, serve, caplog):
    bare = make_site(tmp_path)  # no webhook secrets in its environment
    client = serve(bare)
    with caplog.at_level(logging.WARNING, logger="publisher.web.hooks"):
        answers = [post_json(client, f"webhooks/{name}", b"{}").status_code
                   for name in ("mailgun", "mailgun", "postmark", "sendgrid", "sendgrid")]
    assert answers == [404] * 5
    warnings = [r.getMessage() for r in caplog.records if "not configured" in r.getMessage()]
    assert len(warnings) == 3 and any("MAILGUN_WEBHOOK_SIGNING_KEY" in w for w in warnings)
    bare.store.close()


def test_webhooks_answer_only_post(site, serve):
    client = serve(site)
    assert client.get("webhooks/mailgun").status_code == 405


# -- Postmark ----------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def postmark(client: httpx.Client, record: dict[str, Any], auth: str | None = None) -> httpx.Response:
    headers = {} if auth == "" else {"Authorization": auth or basic(POSTMARK_USER, POSTMARK_PASSWORD)}
    return post_json(client, "webhooks/postmark", json.dumps(record).encode(), **headers)


def bounce(email: str, bounce_type: str, *, record_id: int = 42, delivery_id: int | None = None) -> dict[str, Any]:
    return {"RecordType": "Bounce", "ID": record_id, "Type": bounce_type, "TypeCode": 1, "Name": bounce_type,
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "ServerID": 23, "Email": email,
            "BouncedAt": "2024-03-08T12:00:00Z", "Inactive": True, "CanActivate": True,
            "MessageStream": "broadcast", "Metadata": {} if delivery_id is None else {"delivery_id": str(delivery_id)}}


def test_postmark_hard_bounce_with_good_credentials(site, serve):
    ann = site.add("ann@example.com")
    delivery, _ = site.delivery(site.digest(), ann, "ann@example.com")
    client = serve(site)
    response = postmark(client, bounce("ann@example.com", "HardBounce", delivery_id=delivery))
    assert response.status_code == 200 and response.json()["applied"] == 1
    assert site.statuses(ann) == {"weekly": ("bounced", 0), "links": ("bounced", 0)}


@pytest.mark.parametrize("auth", ["", basic(POSTMARK_USER, "wrong"), basic("someone", POSTMARK_PASSWORD),
                                  "Basic !!!not-base64", "Bearer " + POSTMARK_PASSWORD])
def test_postmark_wrong_or_missing_credentials_are_401(site, serve, auth, caplog):
    ann = site.add("ann@example.com")
    client = serve(site)
    with caplog.at_level(logging.DEBUG):
        response = postmark(client, bounce("ann@example.com", "HardBounce"), auth=auth)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert site.statuses(ann)["weekly"] == ("active", 0)
    assert POSTMARK_PASSWORD not in caplog.text


def test_postmark_soft_bounces_count_and_a_retry_counts_once(site, serve):
    ann = site.add("ann@example.com")
    client = serve(site)
    assert postmark(client, bounce("ann@example.com", "SoftBounce", record_id=1)).json()["applied"] == 1
    assert postmark(client, bounce("ann@example.com", "SoftBounce", record_id=1)).json() == {
        "events": 1, "duplicate": 1}
    assert site.statuses(ann) == {"weekly": ("active", 1), "links": ("active", 1)}
    postmark(client, bounce("ann@example.com", "Transient", record_id=2))
    assert site.statuses(ann) == {"weekly": ("bounced", 2), "links": ("bounced", 2)}


@pytest.mark.parametrize(("record", "status"), [
    ({"RecordType": "SpamComplaint", "ID": 7, "Type": "SpamComplaint", "TypeCode": 512}, "complained"),
    ({"RecordType": "Bounce", "ID": 8, "Type": "SpamComplaint"}, "complained"),
    ({"RecordType": "Bounce", "ID": 9, "Type": "BadEmailAddress"}, "bounced"),
    ({"RecordType": "SubscriptionChange", "SuppressSending": True, "SuppressionReason": "ManualSuppression",
      "Origin": "Recipient", "ChangedAt": "2024-03-08T12:00:00Z", "MessageID": "m1"}, "unsubscribed"),
    ({"RecordType": "SubscriptionChange", "SuppressSending": True, "SuppressionReason": "HardBounce",
      "Origin": "Recipient", "ChangedAt": "2024-03-08T12:00:00Z", "MessageID": "m2"}, "bounced"),
    ({"RecordType": "SubscriptionChange", "SuppressSending": False, "SuppressionReason": "ManualSuppression",
      "Origin": "Customer", "ChangedAt": "2024-03-08T12:00:00Z", "MessageID": None}, "active"),
    ({"RecordType": "Bounce", "ID": 10, "Type": "AutoResponder"}, "active"),
    ({"RecordType": "Delivery", "MessageID": "m3", "DeliveredAt": "2024-03-08T12:00:00Z"}, "active"),
])
def test_postmark_records(site, serve, record, status):
    ann = site.add("ann@example.com")
    client = serve(site)
    field = "Recipient" if record["RecordType"] in ("SubscriptionChange", "Delivery") else "Email"
    response = postmark(client, {**record, field: "ann@example.com"})
    assert response.status_code == 200
    assert site.statuses(ann) == {"weekly": (status, 0), "links": (status, 0)}


@pytest.mark.parametrize("body", [b"[]", b"{}", b"{\"RecordType\": 3}", b"nope"])
def test_postmark_malformed_bodies_are_400(site, serve, body):
    client = serve(site)
    response = post_json(client, "webhooks/postmark", body, Authorization=basic(POSTMARK_USER, POSTMARK_PASSWORD))
    assert response.status_code == 400 and response.text.count("\n") == 1


# -- SendGrid ------------------------------------------------------------------------------


@pytest.fixture
def sendgrid_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def public_der_b64(private_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    der = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sendgrid_headers(private_key: Any, body: bytes, at: datetime = NOW) -> dict[str, str]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    timestamp = str(int(at.timestamp()))
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def sg_event(event: str, email: str, **fields: Any) -> dict[str, Any]:
    return {"email": email, "timestamp": int(NOW.timestamp()), "event": event,
            "sg_event_id": secrets.token_urlsafe(16), "sg_message_id": "filter0001.1.0", **fields}


@pytest.fixture
def sendgrid_site(site, sendgrid_key):
    site.environ["SENDGRID_WEBHOOK_VERIFICATION_KEY"] = public_der_b64(sendgrid_key)
    return site


def test_sendgrid_signed_batch_applies_each_event(sendgrid_site, sendgrid_key, serve):
    site = sendgrid_site
    people = {name: site.add(f"{name}@example.com") for name in ("ann", "bob", "cat", "dan", "eve", "fay", "gus")}
    digest = site.digest()
    ann_delivery, _ = site.delivery(digest, people["ann"], "ann@example.com")
    _, gus_message = site.delivery(digest, people["gus"], "gus@example.com")
    events = [
        sg_event("bounce", "ann@example.com", type="bounce", delivery_id=str(ann_delivery)),
        sg_event("spamreport", "bob@example.com"),
        sg_event("group_unsubscribe", "cat@example.com", asm_group_id=1),
        sg_event("bounce", "dan@example.com", type="blocked", custom_args={"delivery_id": "999"}),
        sg_event("dropped", "eve@example.com", reason="Bounced Address"),
        sg_event("delivered", "fay@example.com", response="250 OK"),
        sg_event("unsubscribe", "someone-else@example.com", **{"smtp-id": gus_message}),
    ]
    body = json.dumps(events).encode()
    client = serve(site)
    response = post_json(client, "webhooks/sendgrid", body, **sendgrid_headers(sendgrid_key, body))
    assert response.status_code == 200, response.text
    assert response.json() == {"events": 6, "applied": 5, "unmatched": 1}
    assert site.statuses(people["ann"])["links"] == ("bounced", 0)
    assert site.statuses(people["bob"])["links"] == ("complained", 0)
    assert site.statuses(people["cat"])["links"] == ("unsubscribed", 0)
    assert site.statuses(people["dan"]) == {"weekly": ("active", 1), "links": ("active", 1)}
    assert site.statuses(people["eve"])["weekly"] == ("bounced", 0)
    assert site.statuses(people["fay"])["weekly"] == ("active", 0)
    assert site.statuses(people["gus"])["weekly"] == ("active", 0)  # the Message-ID is gus's, the address is not


def test_sendgrid_message_id_finds_the_delivery(sendgrid_site, sendgrid_key, serve):
    site = sendgrid_site
    ann = site.add("ann@example.com")
    _, message_id = site.delivery(site.digest(list_name="links"), ann, "ann@example.com")
    body = json.dumps([sg_event("bounce", "ann@example.com", type="blocked", **{"smtp-id": message_id})]).encode()
    client = serve(site)
    post_json(client, "webhooks/sendgrid", body, **sendgrid_headers(sendgrid_key, body))
    assert site.statuses(ann) == {"weekly": ("active", 0), "links": ("active", 1)}


def test_sendgrid_forged_altered_or_unsigned_requests_are_403(sendgrid_site, sendgrid_key, serve):
    from cryptography.hazmat.primitives.asymmetric import ec

    site = sendgrid_site
    ann = site.add("ann@example.com")
    body = json.dumps([sg_event("spamreport", "ann@example.com")]).encode()
    other = ec.generate_private_key(ec.SECP256R1())
    client = serve(site)
    forged = post_json(client, "webhooks/sendgrid", body, **sendgrid_headers(other, body))
    altered = post_json(client, "webhooks/sendgrid", body.replace(b"spamreport", b"unsubscribe"),
                        **sendgrid_headers(sendgrid_key, body))
    unsigned = post_json(client, "webhooks/sendgrid", body)
    garbage = post_json(client, "webhooks/sendgrid", body, **{**sendgrid_headers(sendgrid_key, body),
                                                              "X-Twilio-Email-Event-Webhook-Signature": "%%%"})
    stale = post_json(client, "webhooks/sendgrid", body,
                      **sendgrid_headers(sendgrid_key, body, at=NOW - timedelta(hours=37)))
    assert [r.status_code for r in (forged, altered, unsigned, garbage, stale)] == [403] * 5
    assert "stale" in stale.text
    assert site.statuses(ann)["weekly"] == ("active", 0)


def test_sendgrid_replayed_batch_is_applied_once(sendgrid_site, sendgrid_key, serve):
    site = sendgrid_site
    ann = site.add("ann@example.com")
    body = json.dumps([sg_event("bounce", "ann@example.com", type="blocked")]).encode()
    client = serve(site)
    headers = sendgrid_headers(sendgrid_key, body)
    assert post_json(client, "webhooks/sendgrid", body, **headers).json() == {"events": 1, "applied": 1}
    assert post_json(client, "webhooks/sendgrid", body, **headers).json() == {"events": 1, "duplicate": 1}
    assert site.statuses(ann)["weekly"] == ("active", 1)


@pytest.mark.parametrize("body", [b"{}", b"[1]", b"[{\"email\": \"a@example.com\"}]", b"\xff"])
def test_sendgrid_malformed_bodies_are_400(sendgrid_site, sendgrid_key, serve, body):
    client = serve(sendgrid_site)
    response = post_json(client, "webhooks/sendgrid", body, **sendgrid_headers(sendgrid_key, body))
    assert response.status_code == 400 and response.text.count("\n") == 1


def test_sendgrid_pem_keys_work_and_a_broken_key_is_503(site, sendgrid_key, serve, caplog):
    from cryptography.hazmat.primitives import serialization

    pem = sendgrid_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    site.environ["SENDGRID_WEBHOOK_VERIFICATION_KEY"] = pem
    ann = site.add("ann@example.com")
    body = json.dumps([sg_event("unsubscribe", "ann@example.com")]).encode()
    client = serve(site)
    assert post_json(client, "webhooks/sendgrid", body, **sendgrid_headers(sendgrid_key, body)).status_code == 200
    assert site.statuses(ann)["weekly"] == ("unsubscribed", 0)
    site.environ["SENDGRID_WEBHOOK_VERIFICATION_KEY"] = "bm90IGEga2V5"  # base64 of "not a key"
    with caplog.at_level(logging.ERROR):
        broken = post_json(client, "webhooks/sendgrid", body, **sendgrid_headers(sendgrid_key, body))
    assert broken.status_code == 503
    assert "SENDGRID_WEBHOOK_VERIFICATION_KEY" in caplog.text and "bm90IGEga2V5" not in caplog.text


def test_a_forgotten_address_is_unmatched(site, serve):
    from publisher.forget import forget

    ann = site.add("ann@example.com")
    forget(site.store, site.config, "ann@example.com", clock=site.clock)
    client = serve(site)
    event = mailgun_event("complained", "ann@example.com")
    assert post_json(client, "webhooks/mailgun", mailgun_body(event)).json() == {"events": 1, "unmatched": 1}
    with site.store.begin() as conn:
        assert conn.scalar(select(subscribers.c.id).where(subscribers.c.id == ann)) is None


def test_remembered_events_are_pruned_after_three_days(site, serve):
    from publisher.schema import meta
    from publisher.web.hooks import seen

    client = serve(site)
    post_json(client, "webhooks/mailgun", mailgun_body(mailgun_event("delivered", "x@example.com")))
    with site.store.begin() as conn:
        assert conn.scalar(select(meta.c.key).where(meta.c.key.like("hook:%"))) is not None
        assert seen.prune(conn, NOW + timedelta(days=2)) == 0
        assert seen.prune(conn, NOW + timedelta(days=3, seconds=1)) == 1
