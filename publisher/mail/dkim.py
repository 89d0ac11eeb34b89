"""DKIM signing (RFC 6376) with rsa-sha256 or ed25519-sha256 (RFC 8463), relaxed/relaxed.

Signing uses the ``cryptography`` package directly.  :meth:`DkimSigner.stamp`
fixes the tags that are the same for every copy of a letter (algorithm, domain,
selector, signed header names, timestamp), so a prepared letter only
canonicalizes its per-recipient header lines, hashes its body and signs.

Signed headers (``h=``), in this order when present: From, To, Subject, Date,
Message-ID, List-Id, List-Unsubscribe, List-Unsubscribe-Post, MIME-Version,
Content-Type, Reply-To; From is listed once more than it occurs ("oversigned"),
so a From added in transit breaks the signature.  Signatures are deterministic
(PKCS#1 v1.5 and Ed25519 are): a resent message is byte-for-byte the same.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from publisher.errors import ConfigError

SIGNED = ("from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe",
          "list-unsubscribe-post", "mime-version", "content-type", "reply-to")
OVERSIGNED = ("from",)
MIN_RSA_BITS = 1024  # RFC 8301: verifiers reject smaller keys; 2048 is what to generate
_WSP = re.compile(rb"[ \t]+")
_LABELS = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*")


class DkimKeyError(ValueError):
    """A DKIM setting can't be used; ``field`` names it (key_file, selector, domain)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(reason)


# -- canonicalization (RFC 6376 3.4.2 and 3.4.4) ------------------------------------------------

def relaxed_header(field: bytes) -> bytes:
    """One header field (``Name: value`` with its folds and CRLF) in relaxed form, CRLF-terminated."""
    name, _, value = field.partition(b":")
    value = _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"


def relaxed_lines(data: bytes) -> bytes:
    """Whole CRLF-terminated body lines in relaxed form: WSP runs made one space, none at line ends."""
    return _WSP.sub(b" ", data).replace(b" \r\n", b"\r\n")


def relaxed_body(body: bytes) -> bytes:
    """A whole body in relaxed form: :func:`relaxed_lines`, trailing empty lines dropped, CRLF-ended."""
    canonical = relaxed_lines(body).rstrip(b" ").rstrip(b"\r\n")
    return canonical + b"\r\n" if canonical else b""


# -- the signer -------------------------------------------------------------------------------

class DkimSigner:
    """Signs messages for ``domain`` with the key published at ``selector._domainkey.domain``."""

    def __init__(self, selector: str, domain: str, private_key_pem: bytes) -> None:
        self.selector = _dns_name("selector", selector)
        self.domain = _dns_name("domain", domain)
        self._key, self.algorithm = _load_key(private_key_pem)
        if self.algorithm == "rsa-sha256":
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            self._pad, self._hash = padding.PKCS1v15(), hashes.SHA256()

    def sign(self, message: bytes, timestamp: int | None = None) -> bytes:
        """``message`` (CRLF line ends enforced) with a DKIM-Signature header field prepended."""
        message = re.sub(rb"\r?\n", b"\r\n", message)
        head, blank, body = message.partition(b"\r\n\r\n")
        fields = _fields(head + b"\r\n" if blank else head)
        instances: dict[str, list[bytes]] = {}
        for field in fields:
            name = field.partition(b":")[0].strip().lower().decode("ascii", "replace")
            instances.setdefault(name, []).append(relaxed_header(field))
        names = [name for name, found in instances.items() for _ in found]
        stamp = self.stamp(names, timestamp)
        return stamp.header(instances, hashlib.sha256(relaxed_body(body)).digest()) + message

    def stamp(self, names: Iterable[str], timestamp: int | None = None) -> Stamp:
        """The signature tags for messages carrying the header fields ``names`` (repeat a name per instance)."""
        counts: dict[str, int] = {}
        for name in names:
            counts[name.lower()] = counts.get(name.lower(), 0) + 1
        signed = [name for name in SIGNED for _ in range(counts.get(name, 0))] + list(OVERSIGNED)
        return Stamp(self, signed, timestamp)

    def public_record(self) -> str:
        """The TXT record to publish at ``{selector}._domainkey.{domain}``."""
        from cryptography.hazmat.primitives import serialization as s

        if self.algorithm == "ed25519-sha256":
            raw = self._key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"
        der = self._key.public_key().public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"

    def signature(self, data: bytes) -> bytes:
        """The raw signature of ``data`` (RFC 8463: Ed25519 signs the SHA-256 digest of the data)."""
        if self.algorithm == "ed25519-sha256":
            return self._key.sign(hashlib.sha256(data).digest())
        return self._key.sign(data, self._pad, self._hash)


class Stamp:
    """The DKIM-Signature tags fixed for one shape of message; :meth:`header` adds bh= and b=."""

    def __init__(self, signer: DkimSigner, names: Sequence[str], timestamp: int | None = None) -> None:
        self._signer = signer
        self.names = list(names)
        tags = f"v=1; a={signer.algorithm}; c=relaxed/relaxed; d={signer.domain};\r\n s={signer.selector};"
        if timestamp is not None:
            tags += f" t={int(timestamp)};"
        self._raw = f"DKIM-Signature: {tags}\r\n h={_fold_names(self.names)};\r\n bh=".encode("ascii")
        self._canonical = relaxed_header(self._raw + b"\r\n")[:-2]

    def header(self, canonical: Mapping[str, bytes | list[bytes]], body_hash: bytes) -> bytes:
        """The DKIM-Signature field (CRLF-terminated) over the relaxed header fields ``canonical``
        (by lower-case name: one field, or every instance in message order) and ``body_hash``."""
        bh = base64.b64encode(body_hash)
        data = b"".join(_selected(self.names, canonical)) + self._canonical + bh + b"; b="
        signature = base64.b64encode(self._signer.signature(data))
        folded = b"\r\n  ".join(signature[i:i + 72] for i in range(0, len(signature), 72))
        return self._raw + bh + b";\r\n b=" + folded + b"\r\n"


def _selected(names: Sequence[str], canonical: Mapping[str, bytes | list[bytes]]) -> list[bytes]:
    """The canonical fields ``names`` picks, each repeated name taking the next instance from the bottom
    (RFC 6376 5.4.2); a name with no instance left contributes nothing."""
    used: dict[str, int] = {}
    picked = []
    for name in names:
        found = canonical.get(name, ())
        instances = [found] if isinstance(found, bytes) else found
        k = used[name] = used.get(name, 0) + 1
        if k <= len(instances):
            picked.append(instances[-k])
    return picked


def _fold_names(names: Sequence[str]) -> str:
    lines, line = [], ""
    for name in names:
        if line and len(line) + len(name) > 70:
            lines.append(line)
            line = ""
        line += name + ":"
    lines.append(line)
    return "\r\n ".join(lines).rstrip(":")


def _fields(head: bytes) -> list[bytes]:
    """The header fields of a CRLF header block, each with its folds and final CRLF."""
    fields: list[bytes] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields


def _dns_name(field: str, value: str) -> str:
    try:
        name = value.encode("idna").decode("ascii") if not value.isascii() else value
    except UnicodeError as exc:
        raise DkimKeyError(field, f"{value!r} is not a valid DNS name") from exc
    if not _LABELS.fullmatch(name):
        raise DkimKeyError(field, f"{value!r} is not a valid DNS name")
    return name


def _load_key(pem: bytes) -> tuple[Any, str]:
    """The private key in ``pem`` and its DKIM algorithm, or a DkimKeyError saying what is wrong."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password=None)
    except TypeError as exc:
        raise DkimKeyError("key_file", "the key is encrypted: store it without a passphrase") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DkimKeyError("key_file", "not a PEM private key (expected '-----BEGIN PRIVATE KEY-----')") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key, "ed25519-sha256"
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise DkimKeyError("key_file", f"RSA key of {key.key_size} bits is too small: use 2048 bits")
        return key, "rsa-sha256"
    raise DkimKeyError("key_file", f"unsupported key type {type(key).__name__}: use an RSA (2048-bit) or Ed25519 key")


def load_signer(config: Any) -> DkimSigner | None:
    """The signer configured in ``[mail.dkim]``, None when there is none; ConfigError when it can't be used."""
    settings = config.mail.dkim
    if settings is None:
        return None
    path = config.resolve(settings.key_file)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(config.path, [f"mail.dkim.key_file: can't read {path}: {reason}"]) from exc
    try:
        return DkimSigner(settings.selector, settings.domain, pem)
    except DkimKeyError as exc:
        where = f"{path}: " if exc.field == "key_file" else ""
        raise ConfigError(config.path, [f"mail.dkim.{exc.field}: {where}{exc.reason}"]) from exc
