"""Config for digests: lists, providers, mail and web sections, strictly checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.config import OutboxProvider, SmtpProvider, load_config
from publisher.errors import ConfigError

from .test_config import MINIMAL, problems, write

LIST = """
[lists.weekly]
title = "Weekly"
schedule = "0 16 * * fri"
timezone = "Europe/London"
from_address = "News@Example.ORG"
"""


def test_a_list_gets_defaults_and_the_built_in_outbox(tmp_path: Path):
    config = load_config(write(tmp_path, MINIMAL + LIST))
    weekly = config.lists["weekly"]
    assert weekly.from_address == "news@example.org"  # normalised by email-validator
    assert weekly.provider == "outbox" and weekly.grace == 12 * 3600 and weekly.max_posts == 20
    assert isinstance(config.providers["outbox"], OutboxProvider)
    assert config.web_url == "https://example.org/newsletter/"
    assert config.message_id_domain == "example.org"


def test_provider_sections_are_checked_by_their_type(tmp_path: Path):
    text = MINIMAL + LIST.replace('timezone', 'provider = "relay"\ntimezone') + """
[providers.relay]
type = "smtp"
host = "mail.example.org"
port = 0
password_env = "hunter2 is my password"
pool = 2
colour = "blue"
"""
    found = problems(tmp_path, text)
    assert "providers.relay.port: Input should be greater than or equal to 1" in found
    assert any(p.startswith("providers.relay.password_env:") and "NAME of an environment variable" in p for p in found)
    assert "providers.relay.colour: unknown key; remove it" in found
    assert not any("hunter2" in p and "password_env:" not in p for p in found)


def test_an_smtp_provider_verifies_certificates_by_default(tmp_path: Path):
    text = MINIMAL + LIST.replace('timezone', 'provider = "relay"\ntimezone') + """
[providers.relay]
type = "smtp"
host = "mail.example.org"
username = "me"
password_env = "SMTP_PASSWORD"
"""
    relay = load_config(write(tmp_path, text)).providers["relay"]
    assert isinstance(relay, SmtpProvider)
    assert (relay.security, relay.verify, relay.port, relay.password_env) == ("starttls", True, 587, "SMTP_PASSWORD")


@pytest.mark.parametrize(("change", "expected"), [
    (('"0 16 * * fri"', '"sometimes"'), "lists.weekly.schedule: 'sometimes' is not a cron expression"),
    (('"Europe/London"', '"Mars/Olympus"'), "lists.weekly.timezone: unknown timezone 'Mars/Olympus'"),
    (('"News@Example.ORG"', '"not an address"'), "lists.weekly.from_address: 'not an address' is not an email address"),
    (('title = "Weekly"', 'title = "Weekly\\nBcc: x@example.org"'), "lists.weekly.title: must be one line"),
    (('timezone', 'provider = "nope"\ntimezone'), "no [providers.nope] section (known: outbox)"),
    (('timezone', 'max_posts = 0\ntimezone'), "lists.weekly.max_posts: Input should be greater than or equal to 1"),
    (('timezone', 'grace = "soon"\ntimezone'), "lists.weekly.grace: 'soon' is not a duration"),
    (('[lists.weekly]', '[lists.Weekly_News]'), "lists: list name 'Weekly_News': use lower-case letters"),
])
def test_bad_list_settings_name_the_key(tmp_path: Path, change: tuple[str, str], expected: str):
    found = problems(tmp_path, MINIMAL + LIST.replace(*change))
    assert any(expected in problem for problem in found), found


def test_unknown_list_is_a_config_error_naming_the_lists(tmp_path: Path):
    config = load_config(write(tmp_path, MINIMAL + LIST))
    with pytest.raises(ConfigError, match=r"lists.daily: no such list \(known: weekly\)"):
        config.mailing_list("daily")


def test_secrets_are_named_never_given(tmp_path: Path):
    text = MINIMAL + '\n[mail]\nsecret_env = "s3cr3t value!"\n'
    assert any(p.startswith("mail.secret_env:") for p in problems(tmp_path, text))


def test_the_sample_config_has_a_working_list():
    config = load_config(Path(__file__).parent.parent / "config.toml")
    weekly = config.lists["weekly"]
    assert weekly.provider in config.providers and config.providers[weekly.provider].type == "outbox"
