"""Helper processes (publisher.forked) make a build faster, never different: each use gives, row for row, byte for
byte and warning for warning, what the build gives without it, and a helper that fails changes nothing either."""

from __future__ import annotations

import gc
import logging
import marshal
import os
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from publisher import build as build_module
from publisher import forked, prerender, quickbuild, sync
from publisher.build import Builder
from publisher.clock import FrozenClock
from publisher.config import load_config

from .test_fastpath import NOW, edit, make_site, outputs, rows

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="helpers are forked processes")


# -- the helper itself ----------------------------------------------------------------------------

def test_a_helper_returns_what_its_work_returns():
    with forked.Helper(lambda: {"rows": [(1, "a", None, True)], "pid": os.getpid()}) as helper:
        result = helper.result()
    assert result["rows"] == [(1, "a", None, True)] and result["pid"] not in (os.getpid(), None)


@pytest.mark.parametrize("work", [lambda: 1 / 0, lambda: object(), lambda: os._exit(3)],
                         ids=["raises", "unmarshallable", "exits"])
def test_a_failed_helper_returns_none(work):
    with forked.Helper(work) as helper:
        assert helper.result() is None


def test_a_helper_left_early_is_killed_and_reaped():
    release = os.pipe()
    with forked.Helper(lambda: os.read(release[0], 1)) as helper:  # blocks until killed
        pid = helper.pid
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no such child
    for fd in release:
        os.close(fd)


def test_a_generator_helper_sends_each_value_as_it_yields_it():
    release = os.pipe()

    def work():
        yield "first"
        os.read(release[0], 1)  # the parent has the first message before this returns
        yield "second"
        yield "last"

    with forked.Helper(work) as helper:
        assert helper.receive() == "first"
        os.write(release[1], b"x")
        assert helper.result() == "last"
        assert helper.receive() is None  # reaped: nothing more
    for fd in release:
        os.close(fd)


def test_a_helper_with_an_inbox_answers_each_request():
    def work():
        yield "ready"
        for request in forked.requests():
            yield request * 2

    with forked.Helper(work, inbox=True) as helper:
        assert helper.receive() == "ready"
        assert helper.send(21) and helper.receive() == 42
        assert helper.send("ab") and helper.receive() == "abab"
        assert not helper.send(object())  # marshal does not write it: not sent, and the helper goes on
        assert helper.send([1]) and helper.receive() == [1, 1]
    assert not helper.send(1)  # stopped
    with forked.Helper(lambda: 1) as plain:
        assert not plain.send(1)  # no inbox
        assert plain.result() == 1
    assert list(forked.requests()) == []  # not in a helper: no requests


def test_a_helper_that_cannot_start_returns_none(monkeypatch):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    helper = forked.Helper(lambda: 1)
    assert helper.result() is None
    helper.stop()
    assert gc.get_freeze_count() == 0  # nothing left out of the collector's reach


def test_objects_are_collectable_again_once_a_helper_is_done():
    with forked.Helper(lambda: 1) as helper:
        assert gc.get_freeze_count() > 0
        assert helper.result() == 1
    assert gc.get_freeze_count() == 0


def test_no_helper_beside_another_thread():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert forked.worth_forking() is False
    finally:
        stop.set()
        thread.join()


# -- helpers forced on the fixture site: the same build --------------------------------------------

def use_helpers(monkeypatch) -> list[int]:
    """Helpers used from the first file, on any machine; the list of the helpers started."""
    started = []

    class Counted(forked.Helper):
        def __init__(self, work, **options):
            super().__init__(work, **options)
            started.append(self.pid)

    monkeypatch.setattr(forked, "worth_forking", lambda: True)
    monkeypatch.setattr(forked, "Helper", Counted)
    monkeypatch.setattr(sync, "PARALLEL_FROM", 1)
    monkeypatch.setattr(sync, "CHUNK", 2)  # a helper's part comes in several chunks
    monkeypatch.setattr(prerender, "PRERENDER_FROM", 1)
    return started


def build(site: Path, clock: FrozenClock, caplog, read_ahead: sync.ReadAhead | None = None) -> tuple[str, list[str]]:
    caplog.clear()
    builder = Builder(load_config(site / "config.toml"), clock=clock, read_ahead=read_ahead)
    try:
        with caplog.at_level(logging.INFO, logger="publisher"):
            report = builder.build()
    finally:
        builder.close()
    logged = [f"{r.levelname} {r.name} {r.getMessage()}".replace(str(site), "SITE") for r in caplog.records]
    return report.line().rsplit(" in ", 1)[0], logged


def add_newest_post_with_an_unknown_helper(site: Path) -> None:
    post = site / "posts/blog/newest.snip.markdown"
    post.write_text("Hello <%= mystery_helper('x') %> and <%= by('rowan-ash') %>.\n\n:kind: blog\n:erb: true\n"
                    ":author: rowan-ash\n:created_at: 2024-03-31 08:00:00 +00:00\n")
    os.utime(post, ns=(0, 1_700_000_000 * 10**9))


def touch_all(site: Path) -> None:
    """Every file touched (read again, not parsed again) and the last one changed."""
    files = sorted((site / "posts").rglob("*.*"))
    files[-1].write_text(files[-1].read_text() + "\nOne more line.\n")
    for path in files:
        os.utime(path, ns=(0, 1_700_000_500 * 10**9))


def test_helpers_build_what_one_process_builds(tmp_path, monkeypatch, caplog):
    plain, helped = make_site(tmp_path / "plain"), make_site(tmp_path / "helped")
    for site in (plain, helped):
        add_newest_post_with_an_unknown_helper(site)
    clocks = FrozenClock(NOW), FrozenClock(NOW)
    results = {"plain": [build(plain, clocks[0], caplog)]}
    started = use_helpers(monkeypatch)
    results["helped"] = [build(helped, clocks[1], caplog)]
    assert len(started) == 2  # a reader and a renderer
    for step in ("touch", 1, 2, 3, 4):
        for site, clock in zip((plain, helped), clocks):
            touch_all(site) if step == "touch" else edit(site, step)
            clock.advance(hours=1)
        with monkeypatch.context() as patched:
            patched.setattr(sync, "PARALLEL_FROM", 10**9)
            patched.setattr(prerender, "PRERENDER_FROM", 10**9)
            results["plain"].append(build(plain, clocks[0], caplog))
        results["helped"].append(build(helped, clocks[1], caplog))
        assert rows(helped) == rows(plain), step
        assert outputs(helped) == outputs(plain), step
    assert results["helped"] == results["plain"]
    assert any("mystery_helper" in line for line in results["plain"][0][1])  # a render's warning, logged alike
    assert any("not a real date" in line for line in results["plain"][0][1])  # a read's warning, logged alike
    assert len(started) > 2  # later builds read their changed files with a helper too


def test_the_renders_taken_from_the_helper_are_not_made_again(tmp_path, monkeypatch, caplog):
    site = make_site(tmp_path)
    add_newest_post_with_an_unknown_helper(site)
    use_helpers(monkeypatch)
    rendered_here = record_renders_here(monkeypatch)
    build(site, FrozenClock(NOW), caplog)
    assert_main_feed_not_rendered_here(site, rendered_here)


def record_renders_here(monkeypatch) -> list[str]:
    """The paths of the posts rendered in this process (a helper's renders fill the helper's own copy)."""
    rendered_here: list[str] = []
    real = Builder.rendered_html
    monkeypatch.setattr(Builder, "rendered_html", lambda self, post, url: rendered_here.append(post.path) or
                        real(self, post, url))
    return rendered_here


def assert_main_feed_not_rendered_here(site: Path, rendered_here: list[str]) -> None:
    with sqlite3.connect(site / "state/publisher.db") as db:
        main_feed = {path for (path,) in db.execute(
            "SELECT path FROM posts WHERE entry_id IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 5")}
    assert "blog/newest.snip.markdown" in main_feed and len(main_feed) == 5
    assert not set(rendered_here) & main_feed, rendered_here


def test_a_helper_that_fails_changes_nothing(tmp_path, monkeypatch, caplog):
    plain, helped = make_site(tmp_path / "plain"), make_site(tmp_path / "helped")
    want = build(plain, FrozenClock(NOW), caplog)
    started = use_helpers(monkeypatch)
    monkeypatch.setattr(sync, "_helper_part", lambda *args: 1 / 0)  # raises in the reading helper
    monkeypatch.setattr(prerender, "_render_all", lambda *args: os._exit(1))  # the rendering helper dies
    assert build(helped, FrozenClock(NOW), caplog) == want
    assert len(started) == 2
    assert rows(helped) == rows(plain) and outputs(helped) == outputs(plain)


@pytest.mark.parametrize("reader", ["helper", "read ahead"])
def test_a_helper_that_fails_after_some_chunks_changes_nothing(tmp_path, monkeypatch, caplog, reader):
    plain, helped = make_site(tmp_path / "plain"), make_site(tmp_path / "helped")
    want = build_with(plain, caplog, None)
    use_helpers(monkeypatch)
    monkeypatch.setattr(sync, "CHUNK", 1)  # three chunks or more
    real_part, calls = sync._helper_part, []

    def part(*args):
        calls.append(1)  # the helper's own copy: counts the chunks it read
        return real_part(*args) if len(calls) < 3 else 1 / 0

    monkeypatch.setattr(sync, "_helper_part", part)
    config = load_config(helped / "config.toml")
    ahead = sync.ReadAhead(config.posts_root, config.posts.folders, config.site.tz) if reader == "read ahead" else None
    merged = []
    real_merge = sync._merge
    monkeypatch.setattr(sync, "_merge", lambda packed, *args: merged.append(1) or real_merge(packed, *args))
    assert build_with(helped, caplog, ahead) == want
    assert rows(helped) == rows(plain) and outputs(helped) == outputs(plain)
    assert len(merged) == 2  # two chunks came from the helper, the rest was read here


def test_rows_cross_from_the_helper_unchanged_in_value():
    when = datetime(2024, 3, 1, 17, 2, 11, 123456, tzinfo=timezone.utc)
    local = when.astimezone(load_config(Path(__file__).parent / "fixtures/site/config.toml").site.tz)
    row = {"path": "a", "size": 3, "draft": False, "error": None, "created_at": local, "updated_at": when}
    back = sync._rows(marshal.loads(marshal.dumps(sync._rows_bytes([row]), 2)))[0]
    assert back == row and list(back) == list(row)
    assert back["created_at"].utcoffset() == local.utcoffset() and back["updated_at"].tzinfo is timezone.utc


# -- a first build's posts read ahead, while the config is validated ------------------------------

def build_with(site: Path, caplog, read_ahead: sync.ReadAhead | None) -> tuple[str, list[str]]:
    return build(site, FrozenClock(NOW), caplog, read_ahead)


@pytest.mark.parametrize("guess", ["right", "wrong time zone", "wrong folder"])
def test_a_read_ahead_is_used_only_when_it_read_what_the_build_reads(tmp_path, monkeypatch, caplog, guess):
    plain, ahead = make_site(tmp_path / "plain"), make_site(tmp_path / "ahead")
    want = build_with(plain, caplog, None)
    started = use_helpers(monkeypatch)
    monkeypatch.setattr(prerender, "PRERENDER_FROM", 10**9)
    taken = []
    real_chunks = sync.ReadAhead.chunks

    def chunks(self, *args):
        for n, packed in enumerate(real_chunks(self, *args)):
            if n == 0:
                taken.append(packed)
            yield packed

    monkeypatch.setattr(sync.ReadAhead, "chunks", chunks)
    config = load_config(ahead / "config.toml")
    tz = ZoneInfo("Asia/Tokyo") if guess == "wrong time zone" else config.site.tz
    root = config.posts_root.parent if guess == "wrong folder" else config.posts_root
    assert build_with(ahead, caplog, sync.ReadAhead(root, config.posts.folders, tz)) == want
    assert rows(ahead) == rows(plain) and outputs(ahead) == outputs(plain)
    assert len(started) == 1 and len(taken) == 1  # the read ahead, and no other helper
    assert (taken[0] is not None) == (guess == "right")


def test_a_read_ahead_unused_is_stopped(tmp_path, monkeypatch, caplog):
    site = make_site(tmp_path)
    build_with(site, caplog, None)  # not a first build any more: the index is not empty
    use_helpers(monkeypatch)
    edit(site, 2)
    config = load_config(site / "config.toml")
    ahead = sync.ReadAhead(config.posts_root, config.posts.folders, config.site.tz)
    pid = ahead._helper.pid
    build_with(site, caplog, ahead)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_the_quick_path_guesses_what_the_config_validates_to(tmp_path, monkeypatch):
    use_helpers(monkeypatch)
    site = make_site(tmp_path)
    config = load_config(site / "config.toml")
    ahead = quickbuild._read_ahead(site / "config.toml")
    try:
        assert (ahead.root, str(ahead.tz)) == (str(config.posts_root), str(config.site.tz))
    finally:
        ahead.close()
    (site / "state").mkdir()
    (site / "state" / "publisher.db").write_bytes(b"")
    assert quickbuild._read_ahead(site / "config.toml") is None  # a database already: not a first build
    (site / "config.toml").write_text("[posts\nbroken")
    assert quickbuild._read_ahead(site / "config.toml") is None  # no guess from a config TOML can't read


def test_a_read_ahead_gives_the_build_its_scan_and_renders_the_newest_posts(tmp_path, monkeypatch, caplog):
    plain, ahead = make_site(tmp_path / "plain"), make_site(tmp_path / "ahead")
    for site in (plain, ahead):
        add_newest_post_with_an_unknown_helper(site)
    want = build_with(plain, caplog, None)
    started = use_helpers(monkeypatch)
    scanned_here, rendered_here = [], record_renders_here(monkeypatch)
    real_scan = build_module.scan_posts
    monkeypatch.setattr(build_module, "scan_posts", lambda *args: scanned_here.append(args) or real_scan(*args))
    config = load_config(ahead / "config.toml")
    read_ahead = sync.ReadAhead(config.posts_root, config.posts.folders, config.site.tz, prerender.Renders())
    assert build_with(ahead, caplog, read_ahead) == want  # its render's warnings too, logged alike
    assert rows(ahead) == rows(plain) and outputs(ahead) == outputs(plain)
    assert len(started) == 1  # the read ahead rendered: no other helper
    assert scanned_here == []  # the build took the helper's scan
    assert_main_feed_not_rendered_here(ahead, rendered_here)


def test_a_read_ahead_that_fails_to_render_changes_nothing(tmp_path, monkeypatch, caplog):
    plain, ahead = make_site(tmp_path / "plain"), make_site(tmp_path / "ahead")
    want = build_with(plain, caplog, None)
    use_helpers(monkeypatch)
    monkeypatch.setattr(prerender.Renders, "__call__", lambda self, request, rows: os._exit(1))
    config = load_config(ahead / "config.toml")
    read_ahead = sync.ReadAhead(config.posts_root, config.posts.folders, config.site.tz, prerender.Renders())
    assert build_with(ahead, caplog, read_ahead) == want
    assert rows(ahead) == rows(plain) and outputs(ahead) == outputs(plain)
