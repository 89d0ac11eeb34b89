"""The faults scenarios in their short form: each provider's digest survives its server's faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trust import faults


def test_smtp_faults_lose_nothing_and_duplicate_only_in_doubt(tmp_path: Path) -> None:
    row = faults.smtp_scenario(tmp_path, subscribers=200, seed=5)
    assert row.messages > 150
    assert (row.lost, row.unexplained, row.errors) == (0, 0, 0), row.notes
    assert row.duplicates <= row.in_doubt
    assert row.ok


@pytest.mark.parametrize("api", ["mailgun", "postmark", "sendgrid"])
def test_http_faults_lose_nothing_and_honour_retry_after(tmp_path: Path, api: str) -> None:
    row = faults.http_scenario(tmp_path, api, subscribers=200, seed=6)
    assert row.messages > 150
    assert (row.lost, row.duplicates, row.unexplained) == (0, 0, 0), row.notes
    assert row.errors == 0, row.notes  # includes requests sent inside a Retry-After pause
    assert row.ok


def test_pacing_flags_a_retry_sooner_than_asked() -> None:
    from datetime import datetime, timedelta, timezone

    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    seen = faults.Observed(results=[(t, 1, "deferred", "http 429", 400.0), (t + timedelta(seconds=300), 1, "sent", None, None)])
    early, asked, margin = faults.pacing(seen, [])
    assert (early, asked, margin) == (1, 400.0, -100.0)
    calls = [(t, "429", 30.0), (t + timedelta(seconds=10), None, None), (t + timedelta(seconds=50), None, None)]
    assert faults.pauses_broken(calls) == (1, 1, 30.0)
