"""provider_for: the configured provider as every sender builds it, DKIM-signed when [mail.dkim] is set."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from publisher.config import load_config
from publisher.providers import provider_for
from tests.contract import make_letter, make_recipients

from .test_config import MINIMAL

OUTBOX = '\n[providers.outbox]\ntype = "outbox"\ndirectory = "out"\n'
DKIM = '\n[mail.dkim]\nselector = "s1"\ndomain = "example.org"\nkey_file = "dkim.pem"\n'


def sent(tmp_path: Path, extra: str) -> bytes:
    (tmp_path / "config.toml").write_text(MINIMAL + OUTBOX + extra)
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "dkim.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    with provider_for(load_config(tmp_path / "config.toml"), "outbox", environ={}) as provider:
        (result,) = provider.send(make_letter(), make_recipients(1))
    assert result.outcome == "sent"
    (message,) = (tmp_path / "out").rglob("*.eml")
    return message.read_bytes()


def test_messages_are_dkim_signed_when_configured(tmp_path: Path):
    data = sent(tmp_path, DKIM)
    assert data.startswith(b"DKIM-Signature:") and b"d=example.org" in data and b"s=s1" in data


def test_messages_are_unsigned_without_mail_dkim(tmp_path: Path):
    assert b"DKIM-Signature" not in sent(tmp_path, "")
