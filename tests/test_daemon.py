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
