"""``serve`` and ``start_in_thread``: listening, a clean stop on SIGTERM/SIGINT, errors at start."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from publisher.config import load_config
from publisher.errors import ConfigError
from publisher.web.server import bind, start_in_thread
from tests.test_web_app import SECRET, write_config

SERVE = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
from publisher.config import load_config
from publisher.web.server import serve
serve(load_config(sys.argv[1]), environ={"PUBLISHER_SECRET": "a-test-secret-of-enough-length-0123456789"})
print("returned", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_then_stops_cleanly_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    with bind("127.0.0.1", 0) as probe:  # a port that was free a moment ago
        port = probe.getsockname()[1]
    config = write_config(tmp_path, extra=f"port = {port}")
    process = subprocess.Popen([sys.executable, "-c", SERVE, str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        for line in process.stderr:  # the socket listens before this line is logged
            if "serving the subscriber pages" in line:
                break
        response = httpx.get(f"http://127.0.0.1:{port}/newsletter/healthz", timeout=10)
        assert response.status_code == 200 and response.text == "ok\n"
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "returned" in out and "web service stopped" in err
    assert "Traceback" not in err


def test_start_in_thread_reports_a_busy_port_as_a_config_error(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    with bind("127.0.0.1", 0) as busy:
        with pytest.raises(ConfigError, match="can't listen on 127.0.0.1"):
            start_in_thread(config, environ=SECRET, port=busy.getsockname()[1])


def test_a_stopped_server_refuses_connections_and_closes_its_database(tmp_path: Path) -> None:
    handle = start_in_thread(load_config(write_config(tmp_path)), environ=SECRET, port=0)
    url = handle.url
    assert httpx.get(url + "healthz").status_code == 200
    handle.stop()
    assert not handle.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "healthz", timeout=5)
