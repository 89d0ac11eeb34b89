"""The injection scenarios (``python -m tests.trust --only injection`` prints the same rows).

The hostile site is built, sent and served once for the module; each row is its own test.
The checks' own ability to fail is tested first: a planted secret, header or evaluated
template is found.
"""

from __future__ import annotations

import base64
import email
import email.policy
import logging
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from . import injection
from .report import Row, table


def assert_ok(row: Row) -> None:
    assert row.messages > 0, table([row])
    assert row.ok, table([row])


# -- the checks can fail --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["smtp password", "mailgun key", "server secret"])
def test_a_secret_is_found_raw_url_encoded_and_in_base64_at_any_offset(name: str) -> None:
    secret = injection.SECRETS[name]
    for prefix in (b"", b"a", b"ab", b"api:", b"user:"):
        text = "Authorization: Basic " + base64.b64encode(prefix + secret.encode()).decode()
        assert injection.find_secrets(text, "probe"), prefix
    assert injection.find_secrets(f"https://x/?k={quote_plus(secret)}", "probe")
    assert injection.find_secrets(f"error: {secret} refused", "probe")
    assert not injection.find_secrets("nothing to see here", "probe")


def test_the_capture_sees_debug_records_of_a_logger_that_does_not_propagate() -> None:
    logger = logging.getLogger("publisher.trust_probe")
    publisher = logging.getLogger("publisher")
    saved = publisher.propagate
    publisher.propagate = False  # as the CLI leaves it
    try:
        capture = injection.Capture()
        with capture.installed():
            logger.debug("the key is %s", injection.SECRETS["mailgun key"])
        assert injection.find_secrets("\n".join(capture.lines), "probe")
    finally:
        publisher.propagate = saved


def test_the_header_check_finds_an_injected_header(tmp_path: Path) -> None:
    raw = (b"From: a@inj.example.org\r\nTo: b@inj.example.org\r\nBcc: c@evil.example\r\nSubject: x\r\n"
           b"Content-Type: text/plain\r\n\r\nbody\r\n")
    mail = injection.Mail("probe", raw, email.message_from_bytes(raw, policy=email.policy.default))
    world = injection.World(tmp_path, None, mails=[mail], rejected={a: "" for a in injection.BAD_ADDRESSES})
    row = injection.check_headers(world)
    assert not row.ok and any("bcc" in note for note in row.notes)


def test_the_template_check_finds_an_evaluated_literal(tmp_path: Path) -> None:
    world = injection.World(tmp_path, None, texts={"digest probe text/plain": "ZQ149QZ1 ZQ4<class 'str'>QZ4"})
    row = injection.check_templates(world)
    assert row.errors >= 2


# -- the scenarios ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> injection.World:
    return injection.build_world(tmp_path_factory.mktemp("injection"))


def test_controls_never_make_a_header(world: injection.World) -> None:
    assert_ok(injection.check_headers(world))


def test_template_syntax_is_never_evaluated(world: injection.World) -> None:
    assert_ok(injection.check_templates(world))


def test_html_in_names_is_escaped_in_every_page_and_email(world: injection.World) -> None:
    assert_ok(injection.check_html(world))


def test_secrets_never_appear_in_logs_errors_or_output(world: injection.World, tmp_path: Path) -> None:
    texts = [*world.texts.values(), *world.pages.values(), *(m.raw.decode("utf-8", "replace") for m in world.mails)]
    assert_ok(injection.check_secrets(tmp_path, world.log.lines, texts))
