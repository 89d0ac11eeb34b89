"""Crash: a digest's sending process is killed with SIGKILL twice at random moments, restarted, then let finish.

Per provider (smtp to aiosmtpd; mailgun and postmark to the local HTTP API),
each trial takes a fresh copy of one site with N active subscribers and:

1. starts a sender process (:mod:`tests.trust.send_driver`: what ``publisher
   run`` does for a due slot, with a short lease) and SIGKILLs it after a
   random delay drawn uniformly over the send's duration (measured by one
   uninterrupted calibration send per provider);
2. restarts it at once (it takes over the dead sender's lease: the sender
   detects a dead owner on this host by pid; otherwise it waits out the
   lease) and SIGKILLs it again after a random delay over the expected rest
   of the send (the rows left in ``sending`` are reclaimed as in doubt);
3. restarts it and lets it finish.

The receivers live in this process, so they outlive the kills.  Then, per
subscriber, the copies received are counted: none missing; a second copy only
for a row the ledger reports in doubt, and every copy carrying the very
Message-ID the ledger holds for that row.  Delays come from a seeded RNG
(``seed``), so a run can be repeated (the exact kill points still depend on
the machine's speed).

Why a driver and not ``publisher digest send``: restarted after a kill, that
command picks a new slot (now), finds nothing new since the interrupted digest
and says "nothing sent", leaving the interrupted digest's rows queued until the
daemon's resume sweep (every 60 s) picks them up.  The driver's short lease is
a fallback for a kill the pid check can't see (another host).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.trust.harness import (LedgerView, Site, Tally, ledger, log_problems, make_receiver, make_site, spawn_sender,
                                 tally)
from tests.trust.report import Row

PROVIDERS = ("smtp", "mailgun", "postmark")
SEED = 20240501


@dataclass(frozen=True)
class Plan:
    subscribers: int
    trials: int
    lease: float  # seconds: the driver's sending lease
    timeout: float  # seconds for the final, uninterrupted run


FULL = Plan(subscribers=10_000, trials=20, lease=2.0, timeout=300.0)
QUICK = Plan(subscribers=300, trials=3, lease=1.0, timeout=60.0)


@dataclass
class Trial:
    """One trial's outcome."""

    tally: Tally
    kills: int = 0  # SIGKILLs that hit a running process
    in_flight: int = 0  # kills that left rows in `sending` (in doubt for the next run)
    cut: int = 0  # HTTP requests the receiver saw cut off by a kill
    errors: list[str] = field(default_factory=list)


def run(work: Path, *, quick: bool, providers: tuple[str, ...] = PROVIDERS, seed: int = SEED) -> list[Row]:
    plan = QUICK if quick else FULL
    site = make_site(work / "site", subscribers=plan.subscribers)
    return [scenario(work / name, site, name, plan, seed=seed) for name in providers]


def scenario(work: Path, site: Site, provider: str, plan: Plan, *, seed: int = SEED) -> Row:
    """``plan.trials`` crash trials through ``provider``: one table row."""
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{seed}:{provider}")
    duration = calibrate(work / "calibration", site, provider, plan)
    row = Row(f"crash {provider}")
    total, kills, in_flight, cut, errors = Tally(), 0, 0, 0, []
    for number in range(1, plan.trials + 1):
        trial = one_trial(work / f"trial-{number:02d}", site, provider, plan, rng, duration)
        total.add(trial.tally)
        kills += trial.kills
        in_flight += trial.in_flight
        cut += trial.cut
        errors.extend(f"trial {number}: {e}" for e in trial.errors)
    row.trials, row.messages, row.lost = plan.trials, total.messages, total.lost
    row.duplicates, row.in_doubt, row.unexplained = total.duplicates, total.in_doubt, total.unexplained
    row.errors = len(errors) + total.strangers
    row.notes.append(f"{plan.subscribers:,} subscribers a trial; {kills} of {2 * plan.trials} SIGKILLs hit a running "
                     f"sender, {in_flight} with rows in flight; kill delays drawn over a {duration:.1f} s send "
                     f"(seed {seed}); lease {plan.lease:g} s"
                     + (f"; {cut} HTTP requests cut off mid-way" if cut else ""))
    row.notes.extend(total.problems[:3] + errors[:3])
    return row


def calibrate(work: Path, site: Site, provider: str, plan: Plan) -> float:
    """Seconds one uninterrupted send takes (from the driver's start line to its exit)."""
    copy = site.copy(work)
    with make_receiver(provider) as receiver:
        copy.configure(receiver)
        sender = spawn_sender(copy, lease=plan.lease, log=work / "driver.log")
        sender.wait_started()
        began = time.monotonic()
        code = sender.wait(plan.timeout)
        elapsed = time.monotonic() - began
    if code != 0 or receiver.count < site.subscribers:
        raise RuntimeError(f"crash {provider}: the calibration send failed (exit {code}, {receiver.count} received); "
                           f"see {work / 'driver.log'}")
    return elapsed


def one_trial(work: Path, site: Site, provider: str, plan: Plan, rng: random.Random, duration: float) -> Trial:
    copy = site.copy(work)
    log = work / "driver.log"
    trial = Trial(Tally())
    with make_receiver(provider) as receiver:
        copy.configure(receiver)
        for _kill in range(2):
            sender = spawn_sender(copy, lease=plan.lease, log=log)
            sender.wait_started()
            rest = 1.0 - ledger(copy).counts.get("sent", 0) / site.subscribers  # a restart sends only the rest
            delay = rng.uniform(0.0, duration * max(rest, 0.05))
            threading.Event().wait(delay)  # the scenario's input: a random moment, not a wait for something
            trial.kills += sender.kill()
            trial.in_flight += ledger(copy).counts.get("sending", 0) > 0
        code = spawn_sender(copy, lease=plan.lease, log=log).wait(plan.timeout)
        view = ledger(copy)
        trial.tally = tally(copy, receiver, view)
        trial.cut = getattr(receiver, "cut", 0)
    trial.errors = _errors(code, view, log.read_text(errors="replace"))
    return trial


def _errors(code: int, view: LedgerView, text: str) -> list[str]:
    errors = [f"final run exited {code}"] if code != 0 else []
    if any(d.status != "sent" for d in view.digests) or len(view.digests) != 1:
        errors.append(f"digests after the final run: {[(d.id, d.status) for d in view.digests]}")
    if set(view.counts) - {"sent"}:
        errors.append(f"ledger rows not sent after the final run: {view.counts}")
    errors.extend(f"log: {line}" for line in log_problems(text)[:3])
    return errors
