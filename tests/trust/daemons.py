"""Two daemons on one database: two ``publisher run`` processes race for the same due digest; exactly one sends it.

Each trial copies a site whose list is due (an hourly slot within its grace
time) and starts two real daemons (``python -m publisher run``) on the same
config and SQLite state database at the same moment.  At start each daemon
builds, then catches up on the due slot: both compose it (one digest is
stored per list and slot) and both try to send it (one lease per digest).

The SMTP receiver holds the sending daemon mid-send (a gate after a quarter
of the messages, no sleep involved) until the other daemon has logged why it
is not sending, so the two always overlap; then it lets the send finish and
both daemons get SIGTERM.  Checked per trial:

- the receiver got exactly one copy per subscriber (no duplicates, none lost),
  each with the ledger's Message-ID; one digest, status sent;
- exactly one daemon logged messages sent; the other logged that the digest
  is "being sent by" an owner naming the first daemon's pid;
- no traceback or ERROR line in either log, and both exit 0 on SIGTERM.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.trust.harness import ROOT, CountingSmtp, LedgerView, Site, ledger, log_problems, make_site, tally
from tests.trust.report import Row

SENT = re.compile(r"digest (\d+): (\d+) sent, ")
HELD = re.compile(r"digest (\d+): being sent by (\S+) \(lease until")


@dataclass(frozen=True)
class Plan:
    subscribers: int
    trials: int
    timeout: float  # seconds for each step of a trial


FULL = Plan(subscribers=2_000, trials=10, timeout=60.0)
QUICK = Plan(subscribers=200, trials=2, timeout=40.0)


@dataclass
class Daemon:
    """A ``publisher run`` process whose stderr is copied to a log and watched, line by line."""

    process: subprocess.Popen
    log: Path
    lines: list[str] = field(default_factory=list)
    sent: int = 0  # messages its sender reported sent
    held_by: str | None = None  # the owner it reported holding the lease
    changed: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, site: Site, log: Path, condition: threading.Condition) -> Daemon:
        command = [sys.executable, "-m", "publisher", "run", "--config", str(site.config_path)]
        process = subprocess.Popen(command, cwd=ROOT, env=site.env(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        daemon = cls(process, log, changed=condition)
        daemon.reader = threading.Thread(target=daemon._read, daemon=True)
        daemon.reader.start()
        return daemon

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.log.open("w") as out:
            for line in self.process.stderr:
                out.write(line)
                out.flush()
                with self.changed:
                    self._note(line.rstrip("\n"))
                    self.changed.notify_all()

    def _note(self, line: str) -> None:
        self.lines.append(line)
        if " publisher.delivery: " not in line:  # the sender's own line (the daemon repeats it)
            return
        if (held := HELD.search(line)) is not None:
            self.held_by = held.group(2)
        elif (sent := SENT.search(line)) is not None:
            self.sent += int(sent.group(2))

    def finished(self) -> bool:
        return any(" publisher.delivery: " in line and line.endswith("; finished") for line in self.lines)

    def stop(self, timeout: float) -> int:
        """SIGTERM, wait for the exit and for the last log line; its exit status (-9 when it had to be killed)."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = -9
        if self.reader is not None:
            self.reader.join(timeout)
        return code


@dataclass
class Trial:
    messages: int = 0
    lost: int = 0
    duplicates: int = 0
    unexplained: int = 0
    sender_pid: int | None = None  # the daemon that sent
    held_line: str | None = None  # the other daemon's log line saying who holds the digest
    raced: bool = False  # both composed at once: the slot's one digest row was won by an insert
    errors: list[str] = field(default_factory=list)


def run(work: Path, *, quick: bool) -> list[Row]:
    plan = QUICK if quick else FULL
    site = make_site(work / "site", subscribers=plan.subscribers)
    row = Row("two daemons", trials=plan.trials)
    errors: list[str] = []
    raced = 0
    for number in range(1, plan.trials + 1):
        trial = one_trial(work / f"trial-{number:02d}", site, plan)
        row.messages += trial.messages
        row.lost += trial.lost
        row.duplicates += trial.duplicates
        row.unexplained += trial.unexplained
        raced += trial.raced
        errors.extend(f"trial {number}: {e}" for e in trial.errors)
    row.errors = len(errors)
    row.notes.append(f"{plan.subscribers:,} subscribers a trial, two `publisher run` daemons on one SQLite database; "
                     f"each trial one sent, the other logged the holder; in {raced} trial(s) both composed at once "
                     f"and the slot's unique digest row decided")
    row.notes.extend(errors[:3])
    return [row]


def one_trial(work: Path, site: Site, plan: Plan) -> Trial:
    copy = site.copy(work)
    trial = Trial()
    condition = threading.Condition()
    with CountingSmtp(hold_after=plan.subscribers // 4, hold_timeout=plan.timeout / 2) as receiver:
        copy.configure(receiver)
        daemons = [Daemon.start(copy, work / f"daemon-{n}.log", condition) for n in (1, 2)]
        try:
            with condition:  # the gate holds the sender until the other daemon said who holds the lease
                told = condition.wait_for(lambda: any(d.held_by for d in daemons), plan.timeout)
            receiver.release()
            with condition:
                done = condition.wait_for(lambda: any(d.finished() for d in daemons), plan.timeout)
        finally:
            codes = [d.stop(plan.timeout) for d in daemons]
        view = ledger(copy)
        counted = tally(copy, receiver, view)
    trial.messages, trial.lost, trial.duplicates = counted.messages, counted.lost, counted.duplicates
    trial.unexplained = max(counted.unexplained, counted.duplicates)  # nobody was killed: no copy is in doubt
    senders = [d for d in daemons if d.sent]
    trial.sender_pid = senders[0].process.pid if len(senders) == 1 else None
    trial.held_line = next((line for d in daemons for line in d.lines
                            if " publisher.delivery: " in line and HELD.search(line)), None)
    trial.raced = any("was composed by another process" in line for d in daemons for line in d.lines)
    trial.errors = _judge(daemons, codes, view, told, done) + counted.problems[:2]
    return trial


def _judge(daemons: list[Daemon], codes: list[int], view: LedgerView, told: bool, done: bool) -> list[str]:
    errors = []
    if not told:
        errors.append("neither daemon logged that the other holds the digest")
    if not done:
        errors.append("the digest never finished")
    senders = [d for d in daemons if d.sent]
    waiters = [d for d in daemons if d.held_by]
    if len(senders) != 1 or len(waiters) != 1 or senders[0] is waiters[0]:
        errors.append(f"expected one sender and one waiter: sent {[d.sent for d in daemons]}, "
                      f"held by {[d.held_by for d in daemons]}")
    elif f":{senders[0].process.pid}:" not in (waiters[0].held_by or ""):
        errors.append(f"the waiter names {waiters[0].held_by}, not the sender (pid {senders[0].process.pid})")
    if len(view.digests) != 1 or view.digests[0].status != "sent" or set(view.counts) != {"sent"}:
        errors.append(f"ledger: digests {[(d.id, d.status) for d in view.digests]}, rows {view.counts}")
    errors.extend(f"daemon exited {code} on SIGTERM" for code in codes if code != 0)
    for daemon in daemons:
        errors.extend(f"{daemon.log.name}: {line}" for line in log_problems("\n".join(daemon.lines))[:2])
    return errors
