"""Tests of the sending benchmark's own code: Postfix tool output, ratio maths, the table, the data, the server.

Part of ``make test``; alone: ``.venv/bin/pytest benchmarks -q``.  The Postfix smoke test runs only when the tools
are already unpacked under benchmarks/work/postfix/ (the benchmark fetches them itself).
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import send_data
import send_postfix
import send_rss
import send_stages
import send_vs_smtp_source
from send_httpapi import ApiServer, count_recipients, route
from send_report import Figure, failed, missed, number, rate, ratio, skipped, table

HERE = Path(__file__).resolve().parent


# --- smtp-source and smtp-sink output ------------------------------------------------------------

def test_source_counter_is_the_last_number_of_the_carriage_return_counter():
    assert send_postfix.parse_source_counter("1\r2\r3\r1000\r") == 1000
    assert send_postfix.parse_source_counter("1\r2\r\n250\n") == 250
    assert send_postfix.parse_source_counter("") == 0


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=50))
def test_source_counter_reads_back_any_counter_sequence(values):
    assert send_postfix.parse_source_counter("\r".join(map(str, values)) + "\r") == values[-1]


def test_sink_counters_are_the_last_triple():
    output = "sess=1 quit=0 mesg=1\rsess=4 quit=3 mesg=999\rsess=5 quit=4 mesg=1000\r"
    assert send_postfix.parse_sink_counters(output) == send_postfix.SinkCounts(5, 4, 1000)
    assert send_postfix.parse_sink_counters("nothing yet") == send_postfix.SinkCounts(0, 0, 0)


def test_the_source_reuses_one_connection_per_session_and_sends_our_message(tmp_path):
    tools = send_postfix.Tools(tmp_path)
    argv = send_postfix.source_command(tools, 2525, messages=100_000, sessions=4, message_file=tmp_path / "m.eml",
                                       size=1)
    assert argv[0] == str(tmp_path / "usr" / "sbin" / "smtp-source")
    assert "-d" in argv and argv[argv.index("-s") + 1] == "4" and argv[argv.index("-m") + 1] == "100000"
    assert argv[argv.index("-F") + 1] == str(tmp_path / "m.eml") and "-l" not in argv
    assert argv[-1] == "127.0.0.1:2525"
    sized = send_postfix.source_command(tools, 2525, messages=10, sessions=1, message_file=None, size=51_200)
    assert sized[sized.index("-l") + 1] == "51200" and "-F" not in sized


def test_the_sink_drops_privileges_only_as_root(tmp_path):
    tools = send_postfix.Tools(tmp_path)
    as_root = send_postfix.sink_command(tools, 2525, as_root=True)
    assert as_root[as_root.index("-u") + 1] == "nobody"
    assert "-u" not in send_postfix.sink_command(tools, 2525, as_root=False)
    assert as_root[-2:] == ["127.0.0.1:2525", "4096"] and "-c" in as_root
    assert tools.env["LD_LIBRARY_PATH"].split(":")[0] == str(tmp_path / "usr" / "lib" / "postfix")


def test_the_message_file_has_lf_lines(tmp_path):
    path = send_postfix.write_message_file(b"Subject: x\r\n\r\n.line\r\nend\r\n", tmp_path / "m.eml")
    assert path.read_bytes() == b"Subject: x\n\n.line\nend\n"


POSTFIX = HERE / "work" / "postfix" / "root"


@pytest.mark.skipif(not (POSTFIX / "usr" / "sbin" / "smtp-sink").exists(),
                    reason="Postfix tools not unpacked yet (run benchmarks/send_vs_smtp_source.py once)")
def test_smtp_source_to_smtp_sink_counts_agree(tmp_path):
    tools = send_postfix.Tools(POSTFIX)
    message = send_postfix.write_message_file(b"Subject: hi\r\n\r\nbody\r\n", tmp_path / "m.eml")
    with send_postfix.Sink(tools) as sink:
        run = send_postfix.run_source(tools, sink.port, messages=25, sessions=2, message_file=message)
        arrived = send_stages.settled(sink)
    assert run.counted == 25
    assert arrived == 25
    assert run.rate > 0


# --- ratios and the table ------------------------------------------------------------------------

def test_rate_and_ratio():
    assert rate(1000, 0.5) == 2000
    assert rate(10, 0) == 0
    assert ratio(3000, 5000) == pytest.approx(0.6)
    assert ratio(1, 0) == float("inf")


@given(st.floats(min_value=1, max_value=1e6), st.floats(min_value=1, max_value=1e6))
def test_the_ratio_target_is_met_exactly_when_ours_is_at_least_six_tenths(ours, theirs):
    figure = Figure("SMTP", ratio(ours, theirs), "x", 0.6)
    assert figure.met == (ours / theirs >= 0.6)
    assert figure.result == ("MET" if ours / theirs >= 0.6 else "MISSED")


def test_memory_is_a_maximum():
    assert Figure("rss", 149.9, "MiB", 150, at_least=False).result == "MET"
    assert Figure("rss", 150.1, "MiB", 150, at_least=False).result == "MISSED"


def test_skipped_and_broken_stages():
    gone = skipped("SMTP", "x", "publisher.delivery not available yet", 0.6)
    broken = failed("HTTP", "recipients/s", "OSError: refused", 150_000)
    info = Figure("smtp-source", 5000, "msg/s")
    assert (gone.result, broken.result, info.result) == ("skipped", "ERROR", "info")
    assert missed([gone, broken, info, Figure("r", 0.5, "x", 0.6)]) == [broken, Figure("r", 0.5, "x", 0.6)]


def test_table_lines_up():
    figures = [Figure("SMTP ours / smtp-source", 0.612, "x", 0.6, detail="d"),
               Figure("HTTP", 151_234.4, "recipients/s", 150_000), skipped("rss", "MiB", "x", 150, False)]
    lines = table(figures).splitlines()
    assert len(lines) == 5 and set(lines[1]) <= {"-", "+"}
    assert "0.612x" in lines[2] and ">= 0.600x" in lines[2] and "MET" in lines[2]
    assert "151,234 recipients/s" in lines[3] and ">= 150,000 recipients/s" in lines[3]
    assert "<= 150.0 MiB" in lines[4] and "skipped: x" in lines[4]
    assert len({line.index("|") for line in lines if "|" in line}) == 1
    assert number(12.34, "MiB") == "12.3 MiB"


def test_guarded_stages_say_which_module_is_missing():
    def missing():
        raise ModuleNotFoundError("No module named 'publisher.delivery'", name="publisher.delivery")

    def broken():
        raise OSError("connection refused\nsecond line")

    rows = send_stages.guarded([("a", "x"), ("b", "msg/s")], missing, 0.6)
    assert [row.detail for row in rows] == ["skipped: publisher.delivery not available yet"] * 2
    assert [row.result for row in rows] == ["skipped", "skipped"]
    [row] = send_stages.guarded([("a", "x")], broken)
    assert row.result == "ERROR" and row.detail == "error: OSError: connection refused"


# --- data ----------------------------------------------------------------------------------------

def test_subscribers_are_deterministic_and_distinct():
    first = list(send_data.subscriber_rows(500))
    again = list(send_data.subscriber_rows(500))
    assert [s["secret"] for s, _ in first] == [s["secret"] for s, _ in again]
    assert len({s["email"] for s, _ in first}) == 500 and len({s["secret"] for s, _ in first}) == 500
    assert {sub["status"] for _, sub in first} == {"active"}
    assert sum(s["name"] is None for s, _ in first) == 100


def test_the_config_toml_reads_back_as_written(tmp_path):
    data = send_data.config_data(tmp_path, smtp_port=2525, pool=3, http_url="http://127.0.0.1:1/",
                                 database="sqlite:////tmp/a \"b\".db")
    assert tomllib.loads(send_data.to_toml(data)) == data


def test_the_synthetic_digest_is_digest_sized_and_has_the_placeholders():
    html, text = send_data.synthetic_digest(12, 11)
    assert 35_000 < len(html.encode()) < 102_000
    for field in ("name", "unsubscribe_url"):
        assert f"@@PUBLISHER:{field}@@" in html and f"@@PUBLISHER:{field}@@" in text


# --- the local mail API server -------------------------------------------------------------------

def test_routes_and_recipient_counts():
    assert route("/v3/bench.example.org/messages") == "mailgun"
    assert route("/v3/mail/send") == "sendgrid"
    assert route("/email/batch?x=1") == "postmark"
    assert route("/v3/other") is None
    multipart = b'--b\r\nContent-Disposition: form-data; name="to"\r\n\r\na@x\r\n' * 3
    assert count_recipients("mailgun", multipart, "multipart/form-data; boundary=b") == 3
    assert count_recipients("mailgun", b"from=x&to=a%40x&to=b%40x&subject=to%3D", "application/x-www-form-urlencoded") == 2
    body = json.dumps({"personalizations": [{"to": [{"email": "a@x"}]}, {"to": [{"email": "b@x"}]}],
                       "reply_to": {"email": "r@x"}}).encode()
    assert count_recipients("sendgrid", body, "application/json") == 2


def test_the_server_answers_like_the_services_and_counts():
    with ApiServer() as server:
        request = urllib.request.Request(server.url + "v3/d.example/messages", method="POST",
                                         data=b"to=a%40x&to=b%40x", headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200 and "Queued" in json.loads(answer.read())["message"]
        request = urllib.request.Request(server.url + "v3/mail/send", method="POST",
                                         data=b'{"personalizations": [{"to": []}]}',
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 202 and answer.headers["X-Message-Id"]
        assert server.stats() == {"requests": 2, "recipients": 3, "bytes": 17 + 34}
        server.reset()
        assert server.stats()["requests"] == 0


# --- the whole harness, tiny ---------------------------------------------------------------------

def test_a_tiny_run_prints_every_row(tmp_path, capsys):
    status = send_vs_smtp_source.main(["--subscribers", "30", "--memory-subscribers", "60", "--stages", "http,memory",
                                       "--work", str(tmp_path / "send"), "--no-fail"])
    out = capsys.readouterr().out
    assert status == 0
    for measure in ("HTTP mailgun: provider batches", "HTTP sendgrid: Sender + ledger", "peak RSS, sending to 60"):
        assert measure in out
    assert "ERROR" not in out, out
    assert os.path.exists(tmp_path / "send" / "subscribers-30-v1.db")


def test_the_rss_launcher_reports_the_childs_own_peak_not_ours():
    ballast = bytearray(200 * 1024 * 1024)  # this process now holds 200 MiB
    ballast[::4096] = b"\1" * len(ballast[::4096])
    status, output, seconds, kib = send_stages.run_child([sys.executable, "-c", "print('hello')"], 60)
    assert (status, output.strip()) == (0, "hello")
    assert kib < 100 * 1024 and seconds > 0
    assert send_rss.parse_last_line("x\nRSS 2048 3 1.500\n") == (2048, 3, 1.5)
    assert send_rss.parse_last_line("no measurement") is None
    del ballast


@pytest.mark.skipif(not (POSTFIX / "usr" / "sbin" / "smtp-sink").exists(), reason="Postfix tools not unpacked yet")
def test_the_smtp_baseline_is_measured_even_without_our_sender(tmp_path, monkeypatch):
    def no_sender(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'publisher.delivery'", name="publisher.delivery")

    prepared = send_stages.prepare(tmp_path / "send", 20)
    monkeypatch.setattr(send_stages, "send_with_sender", no_sender)
    rows = send_stages.smtp_stage(prepared, send_postfix.Tools(POSTFIX), pool=2)
    assert [row.result for row in rows[:3]] == ["info", "skipped", "skipped"]
    assert rows[0].value > 0 and "median of 2 runs" in rows[0].detail
    assert rows[1].detail == "skipped: publisher.delivery not available yet"
