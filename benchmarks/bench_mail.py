"""Micro-benchmark: messages/s to encode (and DKIM-sign) one ~50 KB digest per recipient.

    .venv/bin/python benchmarks/bench_mail.py [--seconds 2] [--repeat 3]

Cases, all in the same run on the same letter and recipients:
  naive          an EmailMessage built per recipient (what the first placeholder did)
  prepared       MimeEncoder().prepare(letter) once, Prepared.encode(recipient) per copy
  + dkim rsa     the same, signed rsa-sha256 (2048-bit key) with ``cryptography``
  + dkim ed25519 the same, signed ed25519-sha256 with ``cryptography``
  + rsa+ed25519  dual signing: both signatures, one body hash
  dkimpy rsa     Prepared.encode, then dkimpy's dkim.sign (rsa-sha256 2048, relaxed/relaxed)
Each case runs for ``--seconds`` of CPU time (best of ``--repeat`` runs is reported); single core.
Rates are per CPU-second of this process (time.process_time), so other load on a shared machine
slows the run down but does not change the figures much.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from publisher.mail.dkim import DkimSigner  # noqa: E402
from publisher.mail.letter import Letter, Recipient  # noqa: E402
from publisher.mail.mime import MimeEncoder  # noqa: E402

WORDS = ("co-op weeknotes deploy lunch café garden retro pairing Ruby Rails Go feed digest "
         "newsletter server postfix queue naïve résumé update review meeting client").split()
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
          b"list-unsubscribe-post", b"mime-version", b"content-type", b"reply-to", b"from"]


def paragraph(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def digest_letter(target: int = 50_000) -> Letter:
    """A made-up digest whose HTML is about ``target`` bytes, with the usual placeholders."""
    rng = random.Random(3)
    html = ['<!doctype html><html><body><div style="display:none">This week</div>',
            "<p>Hello @@PUBLISHER:name@@,</p>"]
    text = ["Hello @@PUBLISHER:name@@,", ""]
    post = 0
    while sum(map(len, html)) < target:
        post += 1
        url = f"https://example.org/blog/2024/05/{post:02d}/post-{post}"
        body = [paragraph(rng, rng.randint(40, 90)) for _ in range(4)]
        html.append(f'  <table role="presentation" width="600"><tr><td style="padding:0 16px">\n'
                    f'    <h2><a href="{url}">Post {post}: {paragraph(rng, 5)}</a></h2>\n'
                    + "".join(f"    <p>{p}</p>\n" for p in body) + "  </td></tr></table>\n")
        text += [f"## Post {post}", url, "", *body, ""]
    html.append('<p><a href="@@PUBLISHER:unsubscribe_url@@">Unsubscribe</a> (@@PUBLISHER:email@@)</p></body></html>')
    text.append("Unsubscribe: @@PUBLISHER:unsubscribe_url@@")
    return Letter(subject=f"Weekly news: {post} new posts — café edition", from_address="news@example.org",
                  from_name="Example Co-op", reply_to="hello@example.org",
                  list_id="Weekly news <weekly.example.org>", list_name="weekly",
                  unsubscribe_mailto="unsubscribe@example.org", date=datetime(2024, 5, 3, 15, tzinfo=timezone.utc),
                  html="\n".join(html), text="\n".join(text), digest_id=1)


def recipients(count: int) -> list[Recipient]:
    return [Recipient(delivery_id=i, subscriber_id=i, email=f"reader{i}@example.net",
                      name=f"Reader Nümber {i}" if i % 3 else None, message_id=f"<d1.s{i}@example.org>",
                      unsubscribe_url=f"https://example.org/newsletter/unsubscribe/tok{i:08d}xyzABC")
            for i in range(count)]


def naive(letter: Letter, recipient: Recipient) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((letter.from_name or "", letter.from_address))
    msg["To"] = formataddr((recipient.name or "", recipient.email))
    msg["Subject"] = letter.subject
    msg["Date"] = format_datetime(letter.date)
    msg["Message-ID"] = recipient.message_id
    msg["List-Id"] = letter.list_id
    msg["List-Unsubscribe"] = (f"<{recipient.unsubscribe_url}>, "
                               f"<mailto:{letter.unsubscribe_mailto}?subject=unsubscribe>")
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Reply-To"] = letter.reply_to or ""
    msg.set_content(letter.text_for(recipient))
    msg.add_alternative(letter.html_for(recipient), subtype="html")
    return msg.as_bytes()


def keys() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    def pem(key, fmt) -> bytes:
        return key.private_bytes(s.Encoding.PEM, fmt, s.NoEncryption())

    return (pem(rsa.generate_private_key(public_exponent=65537, key_size=2048), s.PrivateFormat.TraditionalOpenSSL),
            pem(ed25519.Ed25519PrivateKey.generate(), s.PrivateFormat.PKCS8))


def cases(letter: Letter) -> list[tuple[str, Callable[[Recipient], bytes]]]:
    import dkim

    rsa_pem, ed_pem = keys()
    plain = MimeEncoder().prepare(letter)
    signed_rsa = MimeEncoder(DkimSigner("bench", "example.org", rsa_pem)).prepare(letter)
    signed_ed = MimeEncoder(DkimSigner("bench", "example.org", ed_pem)).prepare(letter)
    dual = MimeEncoder([DkimSigner("rsa", "example.org", rsa_pem), DkimSigner("ed", "example.org", ed_pem)])
    signed_both = dual.prepare(letter)

    def dkimpy(recipient: Recipient) -> bytes:
        message = plain.encode(recipient)
        return dkim.sign(message, b"bench", b"example.org", rsa_pem, canonicalize=(b"relaxed", b"relaxed"),
                         include_headers=SIGNED) + message

    return [("naive EmailMessage", lambda r: naive(letter, r)), ("prepared", plain.encode),
            ("prepared + dkim rsa-2048", signed_rsa.encode), ("prepared + dkim ed25519", signed_ed.encode),
            ("prepared + dkim rsa+ed25519", signed_both.encode),
            ("prepared + dkimpy rsa-2048", dkimpy)]


def rate(encode: Callable[[Recipient], bytes], people: list[Recipient], seconds: float) -> tuple[float, int]:
    """Messages per CPU-second over about ``seconds``, and the size of the last message."""
    done, size = 0, 0
    start = time.process_time()
    deadline = start + seconds
    while True:
        for recipient in people:
            size = len(encode(recipient))
            done += 1
            if done % 16 == 0 and time.process_time() >= deadline:
                return done / (time.process_time() - start), size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per case per run (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is reported (default 3)")
    args = parser.parse_args(argv)
    letter = digest_letter()
    people = recipients(1000)
    print(f"digest: html {len(letter.html.encode()):,} B, text {len(letter.text.encode()):,} B; "
          f"{args.repeat} x {args.seconds:g} CPU-s per case, best run")
    results = [(name, *max(rate(fn, people, args.seconds) for _ in range(args.repeat))) for name, fn in cases(letter)]
    base, prepared = results[0][1], results[1][1]
    print(f"{'case':<28} {'msg/s':>9} {'us/msg':>8} {'x naive':>8} {'x prepared':>10} {'size':>8}")
    for name, per_second, size in results:
        print(f"{name:<28} {per_second:>9,.0f} {1e6 / per_second:>8.1f} {per_second / base:>8.1f} "
              f"{per_second / prepared:>10.2f} {size:>8,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
