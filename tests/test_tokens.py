"""Signed subscriber-link tokens and the server secret."""

from __future__ import annotations

import logging
import re
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from publisher.config import load_config
from publisher.errors import ConfigError, TokenError
from publisher.tokens import SECRET_FILE, Signer, server_secret, unsubscribe_url

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=timezone.utc)
SIGNER = Signer(b"server-secret-for-tests-0123456789")
SECRETS = {7: "a" * 32, 8: "b" * 32}
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

ids = st.integers(min_value=0, max_value=2**63)
list_names = st.text(max_size=100)
purposes = st.sampled_from(["unsubscribe", "confirm", "manage"])


def verify(token: str, purpose: str = "unsubscribe", secrets: dict[int, str] = SECRETS, now: datetime = NOW):
    return SIGNER.verify(token, purpose, secrets.get, now)


@given(ids, list_names, purposes, st.text(min_size=1, max_size=64))
def test_any_subscriber_and_list_round_trip(subscriber_id, list_name, purpose, subscriber_secret):
    token = SIGNER.token(subscriber_id, subscriber_secret, list_name, purpose)
    assert URL_SAFE.fullmatch(token)
    assert SIGNER.verify(token, purpose, {subscriber_id: subscriber_secret}.get, NOW) == (subscriber_id, list_name)


def _alter(token: str, data: st.DataObject) -> str:
    edit = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate", "append", "last"]))
    at = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    char = data.draw(st.sampled_from(BASE64URL) | st.characters(codec="utf-8") | st.sampled_from("=+/."))
    if edit == "last":  # the spare low bits of the last character: base64 decoders ignore them
        return token[:-1] + char
    if edit == "replace":
        return token[:at] + char + token[at + 1:]
    if edit == "insert":
        return token[:at] + char + token[at:]
    if edit == "delete":
        return token[:at] + token[at + 1:]
    if edit == "truncate":
        return token[:at]
    return token + char


@given(st.sampled_from(sorted(SECRETS)), list_names, st.data())
def test_any_altered_token_is_rejected(subscriber_id, list_name, data):
    token = SIGNER.token(subscriber_id, SECRETS[subscriber_id], list_name)
    altered = _alter(token, data)
    assume(altered != token)
    with pytest.raises(TokenError) as info:
        verify(altered)
    assert "\n" not in str(info.value)


def test_the_spare_bits_of_the_last_character_are_not_ignored():
    token = SIGNER.token(7, SECRETS[7], "news")  # 1 + 32 + 7 bytes: the last character carries 4 spare bits
    assert len(token) % 4 == 2
    twin = token[:-1] + BASE64URL[BASE64URL.index(token[-1]) ^ 1]
    with pytest.raises(TokenError, match="canonical"):
        verify(twin)


@given(st.text(max_size=300))
def test_garbage_is_a_token_error_never_a_crash(text):
    with pytest.raises(TokenError):
        verify(text)


def test_a_token_is_bound_to_its_purpose_subscriber_and_secrets():
    token = SIGNER.token(7, SECRETS[7], "news")
    assert verify(token) == (7, "news")
    with pytest.raises(TokenError, match="signature"):
        verify(token, purpose="confirm")
    with pytest.raises(TokenError, match="signature"):
        verify(token, secrets={7: "a new secret after a reset"})
    with pytest.raises(TokenError, match="signature"):
        Signer(b"another server's secret").verify(token, "unsubscribe", SECRETS.get, NOW)
    with pytest.raises(TokenError, match="no such subscriber"):
        verify(token, secrets={})


def test_a_token_for_one_subscriber_cannot_be_rebound_to_another():
    token = SIGNER.token(7, SECRETS[7], "news")
    forged = SIGNER.token(8, SECRETS[7], "news")  # made with the wrong subscriber's secret
    assert verify(token) == (7, "news")
    with pytest.raises(TokenError):
        verify(forged)


def test_expiry_is_checked_after_the_signature():
    token = SIGNER.token(7, SECRETS[7], "news", "confirm", expires_at=NOW + timedelta(hours=1))
    assert verify(token, "confirm", now=NOW + timedelta(minutes=59, seconds=59)) == (7, "news")
    for later in (timedelta(hours=1), timedelta(days=30)):
        with pytest.raises(TokenError, match="expired"):
            verify(token, "confirm", now=NOW + later)
    with pytest.raises(TokenError, match="signature"):
        verify(token, "confirm", secrets={7: "other"}, now=NOW + timedelta(days=30))


def test_expiry_needs_an_aware_time():
    with pytest.raises(ValueError):
        SIGNER.token(7, SECRETS[7], "news", expires_at=datetime(2025, 1, 1))


def config_stub(tmp_path: Path, env: str = "PUBLISHER_SECRET") -> SimpleNamespace:
    return SimpleNamespace(mail=SimpleNamespace(secret_env=env), state_dir=tmp_path / "state")


def test_server_secret_comes_from_the_environment_when_set(tmp_path):
    config = config_stub(tmp_path, "MY_SECRET")
    assert server_secret(config, {"MY_SECRET": "ünïcode secret, long enough"}) == "ünïcode secret, long enough".encode()
    assert not (tmp_path / "state" / SECRET_FILE).exists()


def test_server_secret_key_file_is_made_once_private_and_reused(tmp_path, caplog):
    config = config_stub(tmp_path)
    with caplog.at_level(logging.INFO, logger="publisher.tokens"):
        first = server_secret(config, {})
        second = server_secret(config, {"PUBLISHER_SECRET": ""})
    path = tmp_path / "state" / SECRET_FILE
    assert first == second == path.read_bytes()
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(caplog.records) == 1 and str(path) in caplog.records[0].getMessage()
    assert sorted(p.name for p in path.parent.iterdir()) == [SECRET_FILE]  # no temporary left behind


def test_a_truncated_key_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "state" / SECRET_FILE
    path.parent.mkdir()
    path.write_bytes(b"short")
    with pytest.raises(ConfigError) as info:
        server_secret(config_stub(tmp_path), {})
    assert str(path) in str(info.value) and "PUBLISHER_SECRET" in str(info.value)
    assert path.read_bytes() == b"short"  # never silently replaced: that would break every link sent


def test_unsubscribe_url_is_under_the_web_url(tmp_path):
    (tmp_path / "config.toml").write_text('[site]\ntitle = "T"\nurl = "https://example.org"\n[posts]\nroot = "posts"\n')
    config = load_config(tmp_path / "config.toml")
    url = unsubscribe_url(config, SIGNER, 7, SECRETS[7], "news")
    prefix = "https://example.org/newsletter/unsubscribe/"
    assert url.startswith(prefix)
    assert verify(url.removeprefix(prefix)) == (7, "news")


# -- the construction and the batch API ------------------------------------------------------------


def _unpadded_b64decode(token: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_the_mac_is_one_hmac_sha256_keyed_by_the_server_secret_over_both_secrets_and_the_payload():
    import hmac

    server = b"server-secret-for-tests-0123456789"
    expires = NOW + timedelta(days=2)
    raw = _unpadded_b64decode(Signer(server).token(7, "sécret", "news", "confirm", expires_at=expires))
    payload = f"7:{int(expires.timestamp())}:news".encode()
    message = b"publisher-token-v2\0" + b"7:confirm" + "6:sécret".encode() + payload
    assert raw[0] == 2 and raw[33:] == payload
    assert raw[1:33] == hmac.digest(server, message, "sha256")


def test_a_version_one_token_is_no_longer_accepted():
    import base64
    import hashlib
    import hmac

    server, payload = b"server-secret-for-tests-0123456789", b"7::news"
    key = hmac.new(server, b"publisher-subscriber-key\0" + SECRETS[7].encode(), hashlib.sha256).digest()
    mac = hmac.new(key, b"publisher-token-v1\0unsubscribe\0" + payload, hashlib.sha256).digest()
    old = base64.urlsafe_b64encode(b"\x01" + mac + payload).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="older version"):
        verify(old)


def test_text_cannot_move_between_purpose_secret_and_payload():
    """The purpose and the secret are length-prefixed: the same bytes split differently sign differently."""
    token = SIGNER.token(7, "ab", "news", purpose="confirm")
    assert SIGNER.verify(token, "confirm", {7: "ab"}.get, NOW) == (7, "news")
    for purpose, secret in (("confirma", "b"), ("confir", "mab"), ("confirm", "a")):
        with pytest.raises(TokenError, match="signature"):
            SIGNER.verify(token, purpose, {7: secret}.get, NOW)


@given(st.lists(st.tuples(ids, st.text(min_size=1, max_size=40)), max_size=20), list_names, purposes,
       st.sampled_from(["", "https://example.org/newsletter/unsubscribe/"]))
def test_the_batch_makes_exactly_the_tokens_made_one_by_one(rows, list_name, purpose, prefix):
    made = SIGNER.tokens(rows, list_name, purpose, prefix=prefix)
    assert made == [prefix + SIGNER.token(i, secret, list_name, purpose) for i, secret in rows]
    for (subscriber_id, secret), url in zip(rows, made):
        token = url.removeprefix(prefix)
        assert SIGNER.verify(token, purpose, {subscriber_id: secret}.get, NOW) == (subscriber_id, list_name)


def test_the_batch_rejects_a_negative_subscriber_id():
    with pytest.raises(ValueError):
        SIGNER.tokens([(1, "a"), (-1, "b")], "news")
