"""Header fields that can never be broken by the text put in them.

Every value that reaches a header goes through here: :func:`clean_header_text`
turns CR, LF and every other control character into a space, so no title, name
or address can start a header of its own; text that is not plain ASCII (or that
would read as an encoded-word) becomes RFC 2047 encoded-words; display names are
atoms, quoted strings or encoded-words (RFC 5322 3.2.5); addresses must be a
plain ``local@domain`` addr-spec, with an internationalised domain turned into
its IDNA A-label.  Lines are folded at 78 characters where a value allows it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import quote

from publisher.errors import SubscriberError

LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
WORD = 75  # RFC 2047 2: an encoded-word is at most 75 characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PRINTABLE = re.compile(r"[ -~]*")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_BYTES = [chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in range(256)]
_URL_UNSAFE = re.compile(r"[^!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]")


def clean_header_text(value: str) -> str:
    """``value`` on one line: every control character (CR, LF, TAB, C0, C1, DEL, U+2028/9, lone
    surrogates) and every other kind of whitespace (NBSP, ideographic space...) made a plain space,
    runs of spaces made one, none at either end."""
    return " ".join(_CONTROL.sub(" ", value).split())


# -- unstructured text (Subject) ---------------------------------------------------------------

def unstructured(name: str, value: str) -> str:
    """The header line ``Name: value`` (CRLF-terminated) for free text: cleaned, encoded if needed, folded."""
    text = clean_header_text(value)
    first = LINE - len(name) - 2
    if _plain(text, first):
        return f"{name}: {_fold_words(text.split(' '), first)}\r\n"
    return f"{name}: {_fold_words(encoded_words(text, first), first)}\r\n"


def _plain(text: str, first: int) -> bool:
    """Whether ``text`` can go as it is: ASCII, nothing a reader would decode, every word fits a line."""
    if not text.isascii() or "=?" in text or not _PRINTABLE.fullmatch(text):
        return False
    words = text.split(" ")
    return len(words[0]) <= first and all(len(word) < LINE for word in words)


def _fold_words(words: list[str], first: int) -> str:
    """Words joined by spaces, a fold (CRLF SP) before any word that would cross the line limit."""
    lines: list[str] = []
    line, room = "", first
    for word in words:
        if line and len(line) + 1 + len(word) > room:
            lines.append(line)
            line, room = word, LINE - 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


# -- RFC 2047 encoded-words -------------------------------------------------------------------

def encoded_words(text: str, first: int = WORD) -> list[str]:
    """``text`` as UTF-8 encoded-words (Q, readable, unless B is clearly shorter), none over 75 characters
    and the first no longer than ``first``; a character is never split across two words."""
    data = text.encode("utf-8", "surrogatepass")
    q_length = sum(len(_Q_BYTES[b]) for b in data)
    b_length = (len(data) + 2) // 3 * 4
    if q_length <= b_length * 3 // 2:  # Q stays readable; B only when clearly shorter
        return _chunks(text, first, "q", lambda chunk: "".join(_Q_BYTES[b] for b in chunk))
    return _chunks(text, first, "b", lambda chunk: base64.b64encode(chunk).decode("ascii"))


def _chunks(text: str, first: int, kind: str, encode: Callable[[bytes], str]) -> list[str]:
    words: list[str] = []
    budget = max(min(first, WORD), 24) - 12  # "=?utf-8?q?" + "?="
    chunk = b""
    for char in text:
        candidate = chunk + char.encode("utf-8", "surrogatepass")
        if chunk and len(encode(candidate)) > budget:
            words.append(f"=?utf-8?{kind}?{encode(chunk)}?=")
            chunk, budget = char.encode("utf-8", "surrogatepass"), WORD - 12
        else:
            chunk = candidate
    words.append(f"=?utf-8?{kind}?{encode(chunk)}?=")
    return words


# -- addresses --------------------------------------------------------------------------------

def addr_spec(address: str) -> str:
    """``address`` checked as a plain ``local@domain`` (dot-atom local part, ASCII) with an IDNA domain;
    SubscriberError otherwise."""
    local, at, domain = address.rpartition("@")
    if not at or len(local) > 64 or not local.isascii() or not _DOT_ATOM.fullmatch(local):
        raise SubscriberError(repr(address), "not a plain address (local@domain, ASCII local part)")
    return f"{local}@{_domain(address, domain)}"


def _domain(address: str, domain: str) -> str:
    if not domain.isascii():
        import idna

        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise SubscriberError(repr(address), f"domain is not a valid international name: {exc}") from exc
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise SubscriberError(repr(address), "domain is not a valid host name")
    return domain


def display_name(name: str | None, first: int = LINE) -> list[str]:
    """A display name as phrase words: atoms as they are, other printable ASCII as one quoted
    string, anything else (or too long to fit) as encoded-words; [] when there is no name."""
    text = clean_header_text(name or "")
    if not text:
        return []
    if "=?" not in text and len(text) + 2 <= first:
        if _ATOMS.fullmatch(text):
            return [text]
        if _PRINTABLE.fullmatch(text):
            return ['"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _mixed_phrase(text, first)


def _mixed_phrase(text: str, first: int) -> list[str]:
    """Plain atoms kept readable, each run of other words one encoded-word (split only when longer
    than one may be; CPython before gh-128110 then reads a space between the pieces)."""
    words: list[str] = []
    run: list[str] = []
    for word in text.split(" "):
        if _ATOMS.fullmatch(word) and "=?" not in word and len(word) <= 60:
            if run:
                words += encoded_words(" ".join(run), first if not words else WORD)
                run = []
            words.append(word)
        else:
            run.append(word)
    if run:
        words += encoded_words(" ".join(run), first if not words else WORD)
    return words


def address(name: str, display: str | None, email: str) -> str:
    """The header line ``Name: display <addr>`` (CRLF-terminated), folded between words."""
    spec = addr_spec(email)
    first = LINE - len(name) - 2
    words = display_name(display, first)
    if not words:
        return f"{name}: {spec}\r\n"
    return f"{name}: {_fold_words([*words, f'<{spec}>'], first)}\r\n"


def list_id(name: str, value: str) -> str:
    """The List-Id line (RFC 2919) from ``"Description <id.example.org>"``; the id keeps only
    the characters a dot-atom allows."""
    description, _, rest = value.rpartition("<")
    ident = re.sub(r"[^A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]", "", rest.partition(">")[0]).strip(".") or "list.invalid"
    first = LINE - len(name) - 2
    words = display_name(description, first)
    return f"{name}: {_fold_words([*words, f'<{ident}>'], first)}\r\n"


# -- URLs, message ids, list-unsubscribe -----------------------------------------------------

def url(value: str) -> str:
    """``value`` with anything that can't stand inside ``<...>`` in a header percent-encoded."""
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8", "surrogatepass")), value)


def message_id(value: str) -> str:
    """``<left@right>`` with no space, control or angle bracket inside."""
    inner = re.sub(r"[^!-~]|[<>]", "", value)
    return f"<{inner}>"


def list_unsubscribe(name: str, https_url: str, mailto: str | None) -> str:
    """The List-Unsubscribe line: the one-click https URL, then the mailto (RFC 2369, RFC 8058)."""
    targets = [f"<{url(https_url)}>"]
    if mailto:
        targets.append(_mailto(mailto))
    return f"{name}: " + ",\r\n ".join(targets) + "\r\n"


@lru_cache(maxsize=16)
def _mailto(address: str) -> str:
    return f"<mailto:{quote(addr_spec(address), safe='@!$*+-._~')}?subject=unsubscribe>"
