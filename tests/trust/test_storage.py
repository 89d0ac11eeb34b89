"""The storage scenarios in their short form: locked database, full disk, vanishing posts folder."""

from __future__ import annotations

from pathlib import Path

from tests.trust import storage


def test_a_locked_database_gives_one_clear_error_and_a_retry_completes(tmp_path: Path) -> None:
    row = storage.locked_db(tmp_path, subscribers=100)
    assert row.messages == 100 and row.lost == 0 and row.duplicates == 0
    assert row.errors == 0, row.notes
    assert row.ok


def test_a_full_disk_loses_nothing_and_a_later_run_completes(tmp_path: Path) -> None:
    row = storage.full_disk(tmp_path, subscribers=30)
    assert row.messages == 30 and row.lost == 0 and row.duplicates == 0
    assert row.errors == 0, row.notes
    assert row.ok


def test_a_vanishing_posts_folder_corrupts_nothing_and_a_retry_rebuilds(tmp_path: Path) -> None:
    row = storage.posts_vanish(tmp_path)
    assert row.lost == 0, row.notes  # no post left stale or wrongly deleted after the retry
    assert row.errors == 0, row.notes
    assert row.ok


def test_one_line_error_accepts_only_the_projects_one_line_errors() -> None:
    from publisher.errors import StateError

    assert storage.one_line_error(StateError("db", "locked; it will be retried"), "db", "retried") is None
    assert storage.one_line_error(RuntimeError("x")) is not None
    assert storage.one_line_error(None) == "no error raised"
