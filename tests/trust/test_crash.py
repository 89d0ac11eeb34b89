"""The crash scenario in its short form (300 subscribers, 3 trials per provider), and the checks it relies on.

Real sender processes on a real SQLite file, SIGKILLed; receivers on 127.0.0.1
in this process.  ``python -m tests.trust --only crash`` runs the full form.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trust import crash
from tests.trust.harness import (CountingSmtp, DeliveryRow, LedgerView, address, ledger, make_site, spawn_sender,
                                 tally)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    return make_site(tmp_path_factory.mktemp("crash") / "site", subscribers=crash.QUICK.subscribers)


@pytest.mark.parametrize("provider", crash.PROVIDERS)
def test_killed_twice_and_restarted_every_subscriber_gets_the_digest(site, provider: str, tmp_path: Path):
    row = crash.scenario(tmp_path, site, provider, crash.QUICK)

    assert row.scenario == f"crash {provider}"
    assert row.trials == crash.QUICK.trials
    assert row.lost == 0, row.notes
    assert row.unexplained == 0, row.notes
    assert row.errors == 0, row.notes
    assert row.ok
    # every subscriber got at least one copy; every extra copy is a resend of an in-doubt row
    assert row.messages - row.duplicates == crash.QUICK.trials * site.subscribers
    assert row.duplicates <= row.in_doubt


def test_a_kill_mid_batch_leaves_rows_in_doubt_that_are_resent_with_the_same_message_id(site, tmp_path: Path):
    copy = site.copy(tmp_path / "site")
    log = tmp_path / "driver.log"
    with CountingSmtp(hold_after=10) as receiver:  # the 11th message's "250" never comes before the kill
        copy.configure(receiver)
        first = spawn_sender(copy, lease=0.5, log=log)
        assert first.wait_started()
        assert receiver.held.wait(30)
        assert first.kill()
        caught = ledger(copy).counts
        receiver.release()
        assert spawn_sender(copy, lease=0.5, log=log).wait(60) == 0
        view = ledger(copy)
        counted = tally(copy, receiver, view)

    assert caught.get("sending", 0) > 0  # the kill really caught a batch in flight
    assert counted.in_doubt == caught["sending"]
    assert counted.lost == 0 and counted.unexplained == 0 and counted.strangers == 0, counted.problems
    assert 1 <= counted.duplicates <= counted.in_doubt  # at least the held message arrived twice
    copies = receiver.copies()
    doubled = [email for email, ids in copies.items() if len(ids) > 1]
    assert doubled and all(view.rows[email].in_doubt for email in doubled)
    assert all(len(set(copies[email])) == 1 and copies[email][0] == view.rows[email].message_id for email in doubled)
    assert view.counts == {"sent": site.subscribers}
    assert "in doubt after an interrupted send" in log.read_text()


class FakeReceiver:
    def __init__(self, copies: dict[str, list[str]]) -> None:
        self._copies = copies

    def copies(self) -> dict[str, list[str]]:
        return {email: list(ids) for email, ids in self._copies.items()}


def test_the_tally_flags_lost_subscribers_unexplained_duplicates_and_wrong_message_ids(site):
    one, two, three, four = (address(i) for i in range(1, 5))
    rows = {email: DeliveryRow("sent", f"<{email}>", False, None) for email in site.emails()}
    rows[two] = DeliveryRow("sent", f"<{two}>", True, "in doubt after interrupted send")
    copies = {email: [f"<{email}>"] for email in site.emails()}
    del copies[one]  # lost: the ledger says sent, nothing arrived
    copies[two] = [f"<{two}>", f"<{two}>"]  # a duplicate of an in-doubt row with the same Message-ID: explained
    copies[three] = [f"<{three}>", f"<{three}>"]  # a duplicate the ledger never doubted: unexplained
    copies[four] = [f"<{four}>", "<another>"]  # two different Message-IDs: unexplained
    copies["stranger@example.net"] = ["<x>"]

    counted = tally(site, FakeReceiver(copies), LedgerView(rows, [], {}))

    assert counted.lost == 1
    assert counted.duplicates == 3
    assert counted.in_doubt == 1
    assert counted.unexplained == 2
    assert counted.strangers == 1
    assert counted.messages == site.subscribers - 1 + 3 + 1


def test_after_a_kill_the_operators_own_digest_send_resumes_the_digest(site, tmp_path: Path):
    """`publisher digest send` (the real CLI, no test driver) finishes what a killed sender left."""
    import subprocess
    import sys

    copy = site.copy(tmp_path / "site")
    log = tmp_path / "driver.log"
    with CountingSmtp(hold_after=10) as receiver:
        copy.configure(receiver)
        first = spawn_sender(copy, lease=300, log=log)  # the product's own lease: the restart must not wait it out
        assert first.wait_started()
        assert receiver.held.wait(30)
        assert first.kill()
        receiver.release()
        again = subprocess.run([sys.executable, "-m", "publisher", "digest", "send", copy.list_name,
                                "--config", str(copy.config_path)], cwd=copy.root, env=copy.env(),
                               capture_output=True, text=True, timeout=120)
        view = ledger(copy)
        counted = tally(copy, receiver, view)
    assert again.returncode == 0, again.stderr
    assert "no longer running; taking over its lease" in again.stderr
    assert view.counts == {"sent": site.subscribers}
    assert counted.lost == 0 and counted.unexplained == 0 and counted.strangers == 0, counted.problems
