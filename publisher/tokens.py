"""Signed tokens for subscriber links (unsubscribe, confirm): HMAC-SHA256, URL-safe.

A token carries a subscriber ID, a list name and an optional expiry; the purpose
("unsubscribe", "confirm", ...) is not carried but is part of what is signed, so a
token made for one purpose never verifies for another.  The MAC needs the
server secret *and* the subscriber's own secret: giving a subscriber a new secret
revokes every link they were ever sent, a leaked token says nothing about
anyone else's, and a leaked server secret alone forges nothing.

Layout (before base64url without padding)::

    version (1 byte, 2) | MAC (32 bytes) | payload = "<id>:<expiry epoch or empty>:<list name UTF-8>"

    MAC = HMAC-SHA256(server secret,
                      "publisher-token-v2\\0" | "<len>:<purpose>" | "<len>:<subscriber secret>" | payload)

    (``<len>``: the length in characters, in decimal; all text is UTF-8)

One HMAC per token (a digest signs one per recipient).  Version 1 tokens (an HMAC
keyed by an HMAC of the two secrets) are no longer accepted: nothing issued them
outside development.

The decoded form must re-encode to exactly the token given, so no two strings
name the same token (base64 "malleability" is rejected, not tolerated).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from publisher.errors import ConfigError, TokenError

log = logging.getLogger(__name__)

VERSION = 2
MAC_SIZE = 32
MAX_TOKEN_LENGTH = 1024  # far beyond any real token; longer input is rejected unread
SECRET_FILE = "secret.key"
SECRET_SIZE = 32
MIN_SECRET_SIZE = 16

_PAYLOAD = re.compile(r"(0|[1-9][0-9]*):(0|[1-9][0-9]*)?:(.*)", re.DOTALL)
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_TAG = b"publisher-token-v2\0"
_HEAD = bytes([VERSION])

try:  # the C HMAC that hmac.new itself uses under CPython
    from _hashlib import hmac_new as _openssl_hmac
except ImportError:  # pragma: no cover - CPython without OpenSSL
    _openssl_hmac = None


# -- the server secret ----------------------------------------------------------


def server_secret(config: Any, environ: Mapping[str, str] | None = None) -> bytes:
    """The secret that signs links: ``$<mail.secret_env>`` when set, else ``state_dir/secret.key``.

    The key file is created (32 random bytes, mode 0600) the first time it is needed.
    """
    environ = os.environ if environ is None else environ
    name = config.mail.secret_env
    value = environ.get(name)
    if value:
        if len(value.encode("utf-8")) < MIN_SECRET_SIZE:
            log.warning("$%s is shorter than %d bytes: links signed with it are easier to forge", name, MIN_SECRET_SIZE)
        return value.encode("utf-8")
    return _key_file(Path(config.state_dir) / SECRET_FILE, name)


def _key_file(path: Path, env_name: str) -> bytes:
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = _create_key_file(path)
    except OSError as exc:
        raise ConfigError(path, [f"can't read the link-signing key: {exc.strerror}; fix it or set ${env_name}"]) from exc
    if len(secret) < MIN_SECRET_SIZE:
        raise ConfigError(path, [f"the link-signing key holds {len(secret)} bytes, fewer than {MIN_SECRET_SIZE}; "
                                 f"restore it from a backup or set ${env_name}"])
    return secret


def _create_key_file(path: Path) -> bytes:
    """Write a new key atomically: two processes racing both end up with the one that won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(SECRET_SIZE))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
            log.info("created the link-signing key %s (back it up: losing it breaks every link already sent)", path)
        except FileExistsError:
            pass
    except OSError as exc:
        raise ConfigError(path, [f"can't create the link-signing key: {exc.strerror}"]) from exc
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_bytes()


# -- tokens ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    mac: bytes
    payload: bytes
    subscriber_id: int
    expires: int | None
    list_name: str


class Signer:
    """Makes and checks tokens with one server secret.

    One HMAC per token: the HMAC's inner state after the fixed prefix (domain tag
    and purpose) is computed once per purpose and copied for each token, so a
    token costs one ``copy`` + ``update`` + ``digest`` in C.
    """

    def __init__(self, server_secret: bytes) -> None:
        if not server_secret:
            raise ValueError("Signer needs a non-empty server secret")
        self._secret = bytes(server_secret)
        self._states: dict[str, Any] = {}

    def token(self, subscriber_id: int, subscriber_secret: str, list_name: str, purpose: str = "unsubscribe",
              expires_at: datetime | None = None) -> str:
        """A URL-safe token (no padding) for this subscriber, list and purpose, valid until ``expires_at``."""
        return self.tokens(((subscriber_id, subscriber_secret),), list_name, purpose, expires_at)[0]

    def tokens(self, rows: Iterable[tuple[int, str]], list_name: str, purpose: str = "unsubscribe",
               expires_at: datetime | None = None, prefix: str = "") -> list[str]:
        """``prefix + token`` for each ``(subscriber_id, subscriber_secret)`` of ``rows``, all for one list and purpose.

        The same tokens as :meth:`token` makes one at a time, built in one tight loop (a digest signs one per
        recipient).
        """
        expires = "" if expires_at is None else str(_epoch(expires_at))
        if expires.startswith("-"):
            raise ValueError(f"token expiry before 1970: {expires_at}")
        state = self._state(purpose)
        copy, tail, head = state.copy, f":{expires}:{list_name}", _HEAD
        encode, translate = binascii.b2a_base64, bytes.translate
        out = []
        for subscriber_id, subscriber_secret in rows:
            if subscriber_id < 0:
                raise ValueError(f"subscriber ID must not be negative: {subscriber_id}")
            payload = f"{subscriber_id}{tail}".encode()
            mac = copy()
            mac.update(f"{len(subscriber_secret)}:{subscriber_secret}".encode())
            mac.update(payload)
            raw = encode(head + mac.digest() + payload, newline=False)
            out.append(prefix + translate(raw, _URLSAFE, b"=").decode("ascii"))
        return out

    def verify(self, token: str, purpose: str, secret_for: Callable[[int], str | None],
               now: datetime | None = None) -> tuple[int, str]:
        """``(subscriber_id, list_name)`` of a genuine, unexpired token; TokenError otherwise.

        ``secret_for(subscriber_id)`` returns that subscriber's secret, or None when
        there is no such subscriber.
        """
        parsed = _parse(token)
        subscriber_secret = secret_for(parsed.subscriber_id)
        if subscriber_secret is None:
            raise TokenError("no such subscriber (the address may have been removed)")
        expected = self._mac(subscriber_secret, purpose, parsed.payload)
        if not hmac.compare_digest(expected, parsed.mac):
            raise TokenError("the signature does not match (altered, forged or made for another purpose)")
        if parsed.expires is not None and _epoch(now or datetime.now(timezone.utc)) >= parsed.expires:
            raise TokenError("the link has expired; ask for a new one")
        return parsed.subscriber_id, parsed.list_name

    def _mac(self, subscriber_secret: str, purpose: str, payload: bytes) -> bytes:
        """HMAC-SHA256(server secret, tag | len(purpose):purpose | len(secret):secret | payload).

        Both lengths make the message unambiguous (a secret or purpose can't shift into
        the next field); the subscriber's secret inside the MAC'd message binds the
        token to it exactly as a key would: changing it revokes every link.
        """
        mac = self._state(purpose).copy()
        mac.update(f"{len(subscriber_secret)}:{subscriber_secret}".encode())
        mac.update(payload)
        return mac.digest()

    def _state(self, purpose: str) -> Any:
        """The HMAC keyed by the server secret, fed the tag and purpose (made once per purpose)."""
        state = self._states.get(purpose)
        if state is None:
            prefix = _TAG + f"{len(purpose)}:{purpose}".encode()
            state = self._states[purpose] = _hmac_new(self._secret, prefix)
        return state


def _hmac_new(key: bytes, message: bytes) -> Any:
    """An HMAC-SHA256 object; OpenSSL's own when available (its ``copy`` is a C call, about 2x hmac.HMAC's)."""
    if _openssl_hmac is not None:
        try:
            return _openssl_hmac(key, message, digestmod="sha256")
        except (TypeError, ValueError):  # pragma: no cover - an OpenSSL without SHA-256 HMAC
            pass
    return hmac.new(key, message, hashlib.sha256)


def _parse(token: str) -> _Parsed:
    if not isinstance(token, str) or not token:
        raise TokenError("the token is empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("the token is too long")
    raw = _b64decode(token)
    if len(raw) < 1 + MAC_SIZE or raw[0] != VERSION:
        raise TokenError("not a token this publisher makes (truncated, or made by an older version)")
    payload = raw[1 + MAC_SIZE:]
    try:
        match = _PAYLOAD.fullmatch(payload.decode("utf-8"))
    except UnicodeDecodeError:
        match = None
    if match is None:
        raise TokenError("the token's contents are malformed")
    expires = int(match[2]) if match[2] else None
    return _Parsed(raw[1:1 + MAC_SIZE], payload, int(match[1]), expires, match[3])


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE, b"=").decode("ascii")


def _b64decode(token: str) -> bytes:
    """Strict base64url: only the alphabet, and only the one canonical spelling of the bytes."""
    if not token.isascii() or not _ALPHABET.fullmatch(token):
        raise TokenError("the token holds characters a token never has (was the link cut or re-wrapped?)")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError as exc:
        raise TokenError("the token is not valid base64url (truncated?)") from exc
    if _b64encode(raw) != token:
        raise TokenError("the token is not in canonical form (altered)")
    return raw


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("token times must be timezone-aware")
    return int(moment.timestamp())


def unsubscribe_url(config: Any, signer: Signer, subscriber_id: int, subscriber_secret: str, list_name: str) -> str:
    """The one-click unsubscribe link: ``config.web_url + "unsubscribe/" + token``."""
    return config.web_url + "unsubscribe/" + signer.token(subscriber_id, subscriber_secret, list_name)
