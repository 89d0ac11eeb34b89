"""Two ``publisher run`` daemons on one SQLite database, short form: exactly one sends, the other names the holder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trust import daemons
from tests.trust.harness import make_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    return make_site(tmp_path_factory.mktemp("daemons") / "site", subscribers=daemons.QUICK.subscribers)


def test_two_daemons_send_each_subscriber_one_copy_and_the_other_names_the_holder(site, tmp_path: Path):
    for number in range(daemons.QUICK.trials):
        trial = daemons.one_trial(tmp_path / f"trial-{number}", site, daemons.QUICK)

        assert trial.errors == []
        assert trial.messages == site.subscribers
        assert trial.lost == 0 and trial.duplicates == 0 and trial.unexplained == 0
        assert trial.sender_pid is not None
        assert trial.held_line is not None and "being sent by" in trial.held_line
        assert f":{trial.sender_pid}:" in trial.held_line  # the waiting daemon names the one sending


def test_the_row_is_ok_in_the_short_form(tmp_path: Path):
    (row,) = daemons.run(tmp_path, quick=True)

    assert row.scenario == "two daemons"
    assert row.trials == daemons.QUICK.trials
    assert row.messages == daemons.QUICK.trials * daemons.QUICK.subscribers
    assert row.ok and row.duplicates == 0, row.notes
