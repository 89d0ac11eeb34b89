"""DKIM: our signatures verify with dkimpy (its DNS lookups answered locally), tampering breaks them."""

from __future__ import annotations

import random
import re
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.config import load_config
from publisher.errors import ConfigError
from publisher.mail.dkim import DkimSigner, load_signer, relaxed_body, relaxed_header
from publisher.mail.mime import MimeEncoder
from tests.test_mime import make_letter, make_recipient

SIGNED = ["from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe", "list-unsubscribe-post",
          "mime-version", "content-type", "reply-to", "from"]


def pem(key: object) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ed_pem() -> bytes:
    return pem(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="module", params=["rsa", "ed25519"])
def signer(request: pytest.FixtureRequest, rsa_pem: bytes, ed_pem: bytes) -> DkimSigner:
    return DkimSigner("sel2024", "example.org", rsa_pem if request.param == "rsa" else ed_pem)


def verify(message: bytes, signer: DkimSigner) -> bool:
    """dkimpy's verdict, its TXT lookup answered with ``signer``'s public record (no DNS traffic)."""
    record = signer.public_record().encode("ascii")

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sel2024._domainkey.example.org."
        return record

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


def tags(message: bytes) -> dict[str, str]:
    field = re.match(rb"DKIM-Signature:(.*?)\r\n(?![ \t])", message, re.S)
    assert field is not None
    value = re.sub(r"\s+", "", field.group(1).decode("ascii"))
    return dict(tag.split("=", 1) for tag in value.strip(";").split(";"))


# -- canonicalization: RFC 6376 3.4.5's example -------------------------------------------------

def test_relaxed_canonicalization_matches_the_rfc_example() -> None:
    assert relaxed_header(b"A: X\r\n") == b"a:X\r\n"
    assert relaxed_header(b"B : Y\t\r\n\tZ  \r\n") == b"b:Y Z\r\n"
    assert relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert relaxed_body(b"") == b"" and relaxed_body(b"\r\n\r\n") == b""


# -- signing prepared messages --------------------------------------------------------------------

def test_prepared_messages_verify_with_dkimpy(signer: DkimSigner) -> None:
    prepared = MimeEncoder(signer).prepare(make_letter())
    for recipient in (make_recipient(), make_recipient(email="b@b\u00fccher.example", name="Bj\u00f6rn",
                                                       unsubscribe_url="https://example.org/u/other")):
        message = prepared.encode(recipient)
        assert message.startswith(b"DKIM-Signature: ")
        assert verify(message, signer)
        found = tags(message)
        assert found["a"] == signer.algorithm and found["c"] == "relaxed/relaxed"
        assert found["d"] == "example.org" and found["s"] == "sel2024"
        assert found["h"].split(":") == SIGNED
        assert found["t"] == str(int(make_letter().date.timestamp()))


def test_dual_signing_adds_one_verifiable_signature_per_key(rsa_pem: bytes, ed_pem: bytes) -> None:
    signers = [DkimSigner("rsa2024", "example.org", rsa_pem), DkimSigner("ed2024", "example.org", ed_pem)]
    records = {f"{s.selector}._domainkey.example.org.".encode(): s.public_record().encode() for s in signers}
    message = MimeEncoder(signers).encode(make_letter(), make_recipient())
    assert message.count(b"DKIM-Signature: ") == 2
    checked = dkim.DKIM(message)
    assert checked.verify(idx=0, dnsfunc=lambda name, timeout=5: records[name])
    assert checked.verify(idx=1, dnsfunc=lambda name, timeout=5: records[name])
    assert re.findall(rb"a=([a-z0-9-]+);", message) == [b"rsa-sha256", b"ed25519-sha256"]


def test_body_hash_agrees_with_dkimpy(signer: DkimSigner, rsa_pem: bytes) -> None:
    message = MimeEncoder(signer).encode(make_letter(), make_recipient(name="Zo\u00eb"))
    unsigned = message[message.index(b"From:"):]
    theirs = dkim.sign(unsigned, b"other", b"example.org", rsa_pem, canonicalize=(b"relaxed", b"relaxed"),
                       include_headers=[b"from"])
    assert tags(theirs)["bh"] == tags(message)["bh"]


def test_signing_is_deterministic_so_a_resend_is_the_same_message(signer: DkimSigner) -> None:
    prepared = MimeEncoder(signer).prepare(make_letter())
    assert prepared.encode(make_recipient()) == prepared.encode(make_recipient())


@pytest.mark.parametrize("tamper", [
    lambda m: m.replace(b"To: Alice Example <alice@example.net>", b"To: Alice Example <mallory@example.net>"),
    lambda m: m.replace(b"unsubscribe/AbC_dEf-123", b"unsubscribe/EvIl_dEf-123"),
    lambda m: m.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b""),
    lambda m: m.replace(b"Subject: Weekly news", b"Subject: Weekly NEWS"),
    lambda m: m.replace(b"Caf=C3=A9 notes", b"Cafe notes"),
    lambda m: m.replace(b"\r\nFrom: ", b"\r\nFrom: Mallory <m@evil.example>\r\nFrom: ", 1),
], ids=["to", "unsubscribe-url", "one-click", "subject", "body", "second-from"])
def test_tampering_breaks_the_signature(signer: DkimSigner, tamper) -> None:
    message = MimeEncoder(signer).encode(make_letter(), make_recipient())
    changed = tamper(message)
    assert changed != message
    assert not verify(changed, signer)


def test_relaxed_canonicalization_survives_refolding_and_spacing(signer: DkimSigner) -> None:
    message = MimeEncoder(signer).encode(make_letter(), make_recipient())
    refolded = message.replace(b"Subject: Weekly news: 3 new posts", b"Subject:  Weekly   news:\r\n\t3 new posts")
    assert refolded != message and verify(refolded, signer)


@settings(max_examples=40)
@given(subject=st.text(max_size=120), name=st.text(max_size=60), url=st.text(max_size=80))
def test_anything_in_subject_name_or_url_still_verifies(ed_pem: bytes, subject: str, name: str, url: str) -> None:
    signer = DkimSigner("sel2024", "example.org", ed_pem)
    message = MimeEncoder(signer).encode(make_letter(subject=subject), make_recipient(name=name, unsubscribe_url=url))
    assert verify(message, signer)


# -- signing any message --------------------------------------------------------------------------

def test_sign_any_message_with_lf_line_ends(signer: DkimSigner) -> None:
    message = (b"From: A <a@example.org>\nTo: b@example.net\nSubject: hello\n"
               b"Subject: second instance\nX-Other: not signed\n\nbody  line \t\n\n\n")
    signed = signer.sign(message, timestamp=1700000000)
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert verify(signed, signer)
    assert tags(signed)["h"].split(":") == ["from", "to", "subject", "subject", "from"]
    assert not verify(signed.replace(b"second instance", b"2nd instance"), signer)


def test_sign_a_message_without_a_body(signer: DkimSigner) -> None:
    assert verify(signer.sign(b"From: a@example.org\r\nSubject: x\r\n"), signer)


# -- keys and configuration -----------------------------------------------------------------------

def test_the_algorithm_follows_the_key(rsa_pem: bytes, ed_pem: bytes) -> None:
    assert DkimSigner("s", "example.org", rsa_pem).algorithm == "rsa-sha256"
    assert DkimSigner("s", "example.org", ed_pem).algorithm == "ed25519-sha256"
    assert DkimSigner("s", "b\u00fccher.example", ed_pem).domain == "xn--bcher-kva.example"
    assert DkimSigner("s", "example.org", ed_pem).public_record().startswith("v=DKIM1; k=ed25519; p=")


MINIMAL = """
[site]
title = "T"
url = "https://example.org"

[posts]
root = "posts"
"""


def config_with(tmp_path: Path, key: bytes | None, *, selector: str = "sel2024", key_file: str = "dkim.pem"):
    if key is not None:
        (tmp_path / "dkim.pem").write_bytes(key)
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + f'\n[mail.dkim]\nselector = "{selector}"\ndomain = "example.org"\nkey_file = "{key_file}"\n')
    return load_config(path)


def test_load_signer_reads_the_key_file_relative_to_the_config(tmp_path: Path, ed_pem: bytes) -> None:
    signer = load_signer(config_with(tmp_path, ed_pem))
    assert signer is not None and signer.algorithm == "ed25519-sha256"
    message = MimeEncoder(signer).encode(make_letter(), make_recipient())
    assert verify(message, signer)


def test_no_dkim_section_means_no_signer(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL)
    assert load_signer(load_config(path)) is None


def small_rsa_key(bits: int = 512) -> bytes:
    """An RSA key below the minimum (cryptography only generates 1024 bits and up)."""
    rng = random.Random(bits)

    def prime() -> int:
        while True:
            n = rng.getrandbits(bits // 2) | (1 << (bits // 2 - 1)) | 1
            if all(pow(a, n - 1, n) == 1 for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)):
                return n

    p, q = prime(), prime()
    d = pow(65537, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                    rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(65537, p * q))
    return pem(numbers.private_key(unsafe_skip_rsa_key_validation=True))


@pytest.mark.parametrize(("key", "expected"), [
    (None, "can't read"),
    (b"not a key", "not a PEM private key"),
    (pem(ec.generate_private_key(ec.SECP256R1())), "unsupported key type"),
    (ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")), "encrypted"),
    (small_rsa_key(), "too small"),
], ids=["missing", "garbage", "ec", "encrypted", "rsa-512"])
def test_unusable_keys_are_one_line_config_errors(tmp_path: Path, key: bytes | None, expected: str) -> None:
    config = config_with(tmp_path, key)
    with pytest.raises(ConfigError) as info:
        load_signer(config)
    message = str(info.value)
    assert message.startswith(f"{config.path}: mail.dkim.key_file: ")
    assert expected in message and "\n" not in message


def test_a_folder_as_key_file_and_a_bad_selector_are_config_errors(tmp_path: Path, ed_pem: bytes) -> None:
    with pytest.raises(ConfigError, match="mail.dkim.key_file: can't read"):
        load_signer(config_with(tmp_path, None, key_file="."))
    with pytest.raises(ConfigError, match="mail.dkim.selector: 'bad selector' is not a valid DNS name"):
        load_signer(config_with(tmp_path, ed_pem, selector="bad selector"))
