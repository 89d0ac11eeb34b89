"""The daemon: a first build at start, scheduled builds, a clean stop on SIGTERM and SIGINT."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from publisher.clock import FrozenClock
from publisher.config import load_config
from publisher.daemon import Daemon

from .conftest import FIXTURES

NOW = datetime(2024, 4, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "site" / "posts", tmp_path / "posts")
    text = (FIXTURES / "site" / "config.toml").read_text()
    (tmp_path / "config.toml").write_text(text + '\n[schedule]\nbuild_every = "1h"\n')
    return tmp_path


def test_the_first_build_is_scheduled_at_start_then_on_the_interval(site):
    daemon = Daemon(load_config(site / "config.toml"), clock=FrozenClock(NOW))
    scheduler = daemon.make_scheduler()
    job = scheduler.get_jobs()[0]
    assert job.id == "build"
    assert job.next_run_time == NOW
    assert job.trigger.interval.total_seconds() == 3600


def test_a_cron_schedule_runs_in_its_timezone(site):
    text = (site / "config.toml").read_text().replace('build_every = "1h"', 'build_cron = "0 16 * * fri"\ntimezone = "Europe/London"')
    (site / "config.toml").write_text(text)
    daemon = Daemon(load_config(site / "config.toml"), clock=FrozenClock(NOW))
    trigger = daemon.trigger()
    fire = trigger.get_next_fire_time(None, datetime(2024, 7, 1, tzinfo=timezone.utc))
    assert (fire.weekday(), fire.hour, str(fire.tzinfo)) == (4, 16, "Europe/London")
    assert fire.astimezone(timezone.utc).hour == 15  # British Summer Time


def test_each_build_logs_one_line_with_counts_and_time(site, caplog):
    daemon = Daemon(load_config(site / "config.toml"), clock=FrozenClock(NOW))
    with caplog.at_level(logging.INFO, logger="publisher"):
        assert daemon.build_job()
        assert daemon.build_job()
    lines = [r.getMessage() for r in caplog.records if r.name == "publisher.daemon"]
    assert lines[0].startswith("build: 8 scanned, 8 new") and lines[0].endswith("s")
    assert lines[1].startswith("build: nothing changed (8 posts scanned)")
    daemon.builder.close()


def test_a_failed_build_logs_one_error_and_is_retried_later(site, caplog):
    daemon = Daemon(load_config(site / "config.toml"), clock=FrozenClock(NOW))
    shutil.rmtree(site / "posts")
    with caplog.at_level(logging.INFO, logger="publisher"):
        assert not daemon.build_job()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "posts folder not found" in errors[0] and "retrying at the next run" in errors[0]
    shutil.copytree(FIXTURES / "site" / "posts", site / "posts")
    assert daemon.build_job()
    daemon.builder.close()


def _wait_for(path: Path, process: subprocess.Popen, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_daemon_builds_at_start_and_stops_cleanly_on_a_signal(site, sig):
    process = subprocess.Popen([sys.executable, "-m", "publisher", "run", "--config", str(site / "config.toml")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(site / "state" / "build-stamp.json", process)
        process.send_signal(sig)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "publisher daemon started" in err
    assert "build: 8 scanned" in err
    assert f"received {sig.name}: stopping" in err
    assert err.rstrip().endswith("publisher daemon stopped")
    assert (site / "out" / "atom.xml").exists()


def test_each_list_gets_its_own_cron_job_in_its_timezone_with_its_grace(site):
    text = (site / "config.toml").read_text() + """
[lists.weekly]
title = "Weekly"
schedule = "0 16 * * fri"
timezone = "Europe/London"
from_address = "news@fixture.example.net"
grace = "6h"
"""
    (site / "config.toml").write_text(text)
    daemon = Daemon(load_config(site / "config.toml"), clock=FrozenClock(NOW))
    jobs = {job.id: job for job in daemon.make_scheduler().get_jobs()}
    assert set(jobs) == {"build", "digest:weekly", "catch-up", "resume"}
    digest = jobs["digest:weekly"]
    assert digest.args == ("weekly",) and digest.executor == "mail" and digest.misfire_grace_time == 6 * 3600
    fire = digest.trigger.get_next_fire_time(None, datetime(2024, 7, 1, tzinfo=timezone.utc))
    assert (fire.weekday(), fire.hour, str(fire.tzinfo)) == (4, 16, "Europe/London")
    assert jobs["catch-up"].trigger.run_date == NOW and jobs["catch-up"].executor == "mail"
    assert "list weekly on cron '0 16 * * fri' (Europe/London)" in daemon.describe_schedule()


def test_without_lists_only_the_build_is_scheduled(site):
    daemon = Daemon(load_config(site / "config.toml"), clock=FrozenClock(NOW))
    assert [job.id for job in daemon.make_scheduler().get_jobs()] == ["build"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_with_web_serve_the_daemon_also_serves_the_pages_and_stops_both(site):
    import httpx

    port = _free_port()
    text = (site / "config.toml").read_text() + f"""
[web]
url = "http://127.0.0.1:{port}/newsletter/"
host = "127.0.0.1"
port = {port}
serve = true
"""
    (site / "config.toml").write_text(text)
    process = subprocess.Popen([sys.executable, "-m", "publisher", "run", "--config", str(site / "config.toml")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**__import__("os").environ, "PUBLISHER_SECRET": "daemon-test-secret"})
    try:
        _wait_for(site / "state" / "build-stamp.json", process)
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/newsletter/unsubscribe", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert page.status_code == 200 and "content-security-policy" in page.headers
    assert process.returncode == 0, err
    assert "serving the subscriber pages" in err and err.rstrip().endswith("publisher daemon stopped")


def test_a_slot_missed_while_down_goes_out_once_at_start_within_the_grace_time(site, monkeypatch):
    from publisher.subscribers import Subscribers

    from .test_newsletter import LIST, post

    monkeypatch.setenv("PUBLISHER_SECRET", "daemon-catch-up-secret")
    (site / "config.toml").write_text((site / "config.toml").read_text() + LIST)
    clock = FrozenClock(datetime(2024, 4, 2, 10, 0, tzinfo=timezone.utc))
    post(site, "fresh-news", "2024-04-02 09:00:00 +0000", "Fresh news")
    daemon = Daemon(load_config(site / "config.toml"), clock=clock)
    assert daemon.build_job()
    Subscribers(daemon.newsletter.store, clock=clock).add("ada@example.org", lists=["weekly"])
    clock.set(datetime(2024, 4, 5, 20, 0, tzinfo=timezone.utc))  # down at Friday's 16:00 (BST) slot, back 5 hours later
    daemon.catch_up_job()
    daemon.catch_up_job()  # a second start: the slot's digest is already stored and sent
    assert len(list((site / "outbox").rglob("*.eml"))) == 1
    clock.set(datetime(2024, 4, 13, 9, 0, tzinfo=timezone.utc))  # back 18 hours after the next slot: past the grace
    post(site, "later-news", "2024-04-08 09:00:00 +0000", "Later news")
    daemon.catch_up_job()
    assert len(list((site / "outbox").rglob("*.eml"))) == 1  # skipped; the post goes out with the next digest
    daemon.builder.close()
    daemon.newsletter.store.close()
