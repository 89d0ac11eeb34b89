"""Sending one digest: take the lease, queue its recipients, then claim -> hand over -> record until nothing is due.

:class:`Sender` is what the daemon's digest jobs and ``publisher digest send``
call.  One call of :meth:`Sender.send` is one *run*:

1. take the digest's lease (another live sender holds it: report who, until
   when, and send nothing);
2. put rows a dead sender left in ``sending`` back to queued: they are *in
   doubt* and are resent with the same Message-ID (see :mod:`publisher.ledger`);
3. queue the list's active subscribers if the digest has no rows yet;
4. loop: claim a batch (committed), build the recipients, hand them to the
   provider, record the results (committed); renew the lease as it goes;
5. when nothing is left queued, sending or deferred the digest is ``sent``;
   when deferred rows remain it stays ``sending`` and the report's
   ``next_retry_at`` says when the daemon should run again.

Transient trouble: a deferred result gets a backoff (honouring Retry-After);
a throttling answer (421, 429, Retry-After) also slows the sender down
(:class:`~publisher.backoff.RateGovernor`).  A :class:`DeliveryError` for a
whole batch: transient -> its rows are deferred with backoff (after
``MAX_BATCH_FAILURES`` in a row, or a Retry-After too long to wait here, the run
stops and the rest waits in the queue); permanent (bad credentials, bad
config) -> the rows go back to queued, the run stops and the error is raised.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from publisher.backoff import Backoff, RateGovernor, is_throttle
from publisher.clock import Clock
from publisher.errors import DeliveryError, DigestError
from publisher.ledger import MAX_ATTEMPTS, Claimed, Ledger

log = logging.getLogger(__name__)

LEASE_SECONDS = 300.0  # renewed every third of it; a dead sender's digest is picked up this long after
CLAIM_SIZE = 500  # rows per claim (a multiple of the provider's max_batch): the ledger's commits per message
MAX_BATCH_FAILURES = 3  # whole-batch transient failures in a row that end a run


@dataclass(frozen=True, slots=True)
class SendReport:
    """One run of one digest.  ``sent``/``failed``: in this run; ``deferred``/``queued``: rows waiting at its end."""

    digest_id: int
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    in_doubt: int = 0
    elapsed: float = 0.0
    next_retry_at: datetime | None = None
    queued: int = 0
    finished: bool = False  # the digest is sent: nothing left queued, sending or deferred
    held_by: str | None = None  # another sender's lease: this run sent nothing
    held_until: datetime | None = None

    def line(self) -> str:
        if self.held_by is not None:
            until = self.held_until.isoformat() if self.held_until else "?"
            return f"digest {self.digest_id}: being sent by {self.held_by} (lease until {until}); nothing sent here"
        text = (f"digest {self.digest_id}: {self.sent} sent, {self.failed} failed, {self.deferred} deferred, "
                f"{self.in_doubt} in doubt in {self.elapsed:.1f}s")
        if self.finished:
            return text + "; finished"
        if self.next_retry_at is not None:
            return text + f"; {self.queued + self.deferred} waiting, next try at {self.next_retry_at.isoformat()}"
        return text + f"; {self.queued} left queued"


@dataclass
class _Run:
    sent: int = 0
    failed: int = 0
    batch_failures: int = 0
    resume_at: datetime | None = None  # set when the run stopped early and rows wait in the queue
    paused_until: datetime | None = None  # the service asked for a pause longer than this run waits
    lost_lease: bool = False


class Sender:
    """Sends digests through their list's provider, recording every hand-off in the ledger."""

    def __init__(self, config: Any, store: Any, clock: Clock | None = None, environ: Mapping[str, str] = os.environ,
                 provider: Any = None, sleep: Callable[[float], None] = time.sleep, *,
                 backoff: Backoff | None = None, max_attempts: int = MAX_ATTEMPTS, lease_seconds: float = LEASE_SECONDS,
                 claim_size: int = CLAIM_SIZE, owner: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.store = store
        self.clock = clock or getattr(store, "clock", None) or Clock()
        self.environ = environ
        self.provider = provider  # injected: used as given (the caller opens and closes it)
        self.sleep = sleep
        self.monotonic = monotonic
        self.backoff = backoff or Backoff()
        self.ledger = Ledger(store, self.clock, backoff=self.backoff, max_attempts=max_attempts)
        self.lease_seconds = lease_seconds
        self.claim_size = claim_size
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.governor = RateGovernor(sleep=sleep, monotonic=monotonic)
        self._renew_at: datetime | None = None
        self._paused_until: datetime | None = None

    # -- one run ------------------------------------------------------------------

    def send(self, digest_id: int, progress: Any = None) -> SendReport:
        """Send what is due of ``digest_id`` (see the module docstring); ``progress.update(n)`` after each batch."""
        started = self.monotonic()
        digest = self.ledger.digest(digest_id)
        if digest is None:
            raise DigestError("?", f"no digest {digest_id} in the state database")
        if digest.status == "sent":
            return SendReport(digest_id, elapsed=self.monotonic() - started, finished=True)
        if not (self.ledger.acquire(digest_id, self.owner, self.lease_seconds) or self._take_from_dead(digest_id)):
            return self._held(digest_id, started)
        self._paused_until = None
        try:
            return self._run(digest, progress, started)
        finally:
            self._leave(digest_id)

    def _leave(self, digest_id: int) -> None:
        """Release the lease, or keep it through a pause the service asked for, so that no sender
        (this daemon's next sweep, another daemon) calls the service before the pause ends."""
        pause = self._paused_until
        now = self.clock.now()
        if pause is not None and pause > now and self.ledger.renew(digest_id, self.owner, (pause - now).total_seconds()):
            log.info("digest %d: holding the digest until %s, as the provider asked", digest_id, pause.isoformat())
            return
        self.ledger.release(digest_id, self.owner)

    def _take_from_dead(self, digest_id: int) -> bool:
        """A lease held by a process of this host that no longer exists (kill -9) is taken over at once."""
        holder = self.ledger.holder(digest_id)
        if holder is None or holder.owner is None or not owner_is_dead(holder.owner):
            return False
        if not self.ledger.take_over(digest_id, holder.owner, self.owner, self.lease_seconds):
            return False
        log.warning("digest %d: its sender %s is no longer running; taking over its lease", digest_id, holder.owner)
        return True

    def _held(self, digest_id: int, started: float) -> SendReport:
        holder = self.ledger.holder(digest_id)
        owner, until = (holder.owner, holder.lease_until) if holder else ("?", None)
        report = SendReport(digest_id, elapsed=self.monotonic() - started, held_by=owner, held_until=until)
        log.info("%s", report.line())
        return report

    def _run(self, digest: Any, progress: Any, started: float) -> SendReport:
        self._renew_at = self.clock.now() + timedelta(seconds=self.lease_seconds / 3)
        in_doubt = self.ledger.reclaim_in_doubt(digest.id)
        if not self.ledger.has_deliveries(digest.id):
            self.ledger.enqueue(digest.id, digest.list, self.config.message_id_domain)
        self.ledger.start(digest.id)
        run = _Run()
        batch: list[_Batch] = []  # made when the first rows are claimed; closed at the end
        try:
            self._loop(digest, run, batch, _Progress(progress, self.ledger.counts(digest.id)))
        finally:
            if batch:
                batch[0].close()
        report = self._report(digest.id, run, in_doubt, started)
        log.info("%s", report.line())
        return report

    def _loop(self, digest: Any, run: _Run, batch: list[_Batch], progress: _Progress) -> None:
        provider = self._provider(digest.list)
        size = _claim_size(provider.max_batch, self.claim_size)
        while self._keep_lease(digest.id, run):
            claimed = self.ledger.claim(digest.id, size)
            if not claimed:
                return
            if not batch:
                try:
                    batch.append(_Batch(self, digest, provider, owned=self.provider is None))
                except BaseException:
                    self.ledger.requeue([c.delivery_id for c in claimed])  # nothing was handed over
                    raise
            stop = batch[0].send(claimed, run)
            progress.update(len(claimed))
            if stop:
                return

    def _keep_lease(self, digest_id: int, run: _Run) -> bool:
        now = self.clock.now()
        if self._renew_at is not None and now < self._renew_at:
            return True
        if not self.ledger.renew(digest_id, self.owner, self.lease_seconds):
            log.warning("digest %d: lease lost to another sender; stopping this run", digest_id)
            run.lost_lease = True
            return False
        self._renew_at = now + timedelta(seconds=self.lease_seconds / 3)
        return True

    def _report(self, digest_id: int, run: _Run, in_doubt: int, started: float) -> SendReport:
        self._paused_until = run.paused_until
        finished = not run.lost_lease and self.ledger.finish(digest_id, self.owner)
        counts = self.ledger.counts(digest_id)
        next_retry = None if finished else self._next_retry(digest_id, counts, run)
        return SendReport(digest_id, run.sent, run.failed, counts["deferred"], in_doubt, self.monotonic() - started,
                          next_retry, counts["queued"], finished)

    def _next_retry(self, digest_id: int, counts: dict[str, int], run: _Run) -> datetime | None:
        times = [self.ledger.next_retry_at(digest_id)] if counts["deferred"] else []
        if counts["queued"] and run.resume_at is not None:
            times.append(run.resume_at)
        times = [t for t in times if t is not None]
        if not times:
            return None
        return max(min(times), run.paused_until) if run.paused_until else min(times)  # never inside a pause

    # -- collaborators (imported when first needed) ------------------------------

    def _provider(self, list_name: str) -> Any:
        if self.provider is not None:
            return self.provider
        from publisher.providers import provider_for

        return provider_for(self.config, self.config.mailing_list(list_name).provider, environ=self.environ,
                            clock=self.clock)

    def _letter(self, digest_id: int) -> Any:
        from publisher.digest.compose import Composer

        return Composer(self.config, self.store, clock=self.clock).letter(digest_id)

    def _signer(self) -> Any:
        """The link signer (server secret from the environment or the state folder)."""
        from publisher.tokens import Signer, server_secret

        return Signer(server_secret(self.config, self.environ))


class _Batch:
    """What every batch of one run shares: the letter, the URL maker, the open provider."""

    def __init__(self, sender: Sender, digest: Any, provider: Any, owned: bool) -> None:
        self.sender = sender
        self.ledger = sender.ledger
        self.governor = sender.governor
        self.digest = digest
        self.provider = provider
        self.letter = sender._letter(digest.id)
        self.signer = sender._signer()
        self.link_prefix = sender.config.web_url + "unsubscribe/"  # what tokens.unsubscribe_url makes, batched
        self.owned = owned
        if owned:
            provider.open()

    def close(self) -> None:
        if self.owned:
            self.provider.close()

    def recipients(self, claimed: Sequence[Claimed]) -> list[Any]:
        """A Recipient per claimed row, its unsubscribe link signed (one batch call for all the links)."""
        from publisher.mail.letter import Recipient

        urls = self.signer.tokens([(c[1], c[4]) for c in claimed], self.digest.list, prefix=self.link_prefix)
        # Claimed order: delivery_id, subscriber_id, email, name, secret, message_id, attempts
        return [Recipient(c[0], c[1], c[2], c[3], c[5], url) for c, url in zip(claimed, urls)]

    def send(self, claimed: Sequence[Claimed], run: _Run) -> bool:
        """Hand ``claimed`` over in slices of max_batch, record the results; True when the run must stop."""
        try:
            recipients = self.recipients(claimed)
        except BaseException:
            self.ledger.requeue([c.delivery_id for c in claimed])  # nothing was handed over
            raise
        results: list[Any] = []
        step = max(1, int(self.provider.max_batch))
        for start in range(0, len(recipients), step):
            part = recipients[start:start + step]
            try:
                got = self._hand_over(part)
            except DeliveryError as exc:
                rest = [r.delivery_id for r in recipients[start + step:]]
                return self._batch_failed(exc, results, part, rest, run)
            except BaseException:
                self._record(results, run)  # this slice stays in `sending`: in doubt for the next run
                self.ledger.requeue([r.delivery_id for r in recipients[start + step:]])
                raise
            results.extend(got)
            if _pushed_back(got):  # slow down before the next slice, not after the whole claim
                stop, results = self._record(results, run), []
                if stop:
                    self.ledger.requeue([r.delivery_id for r in recipients[start + step:]])
                    return True
        run.batch_failures = 0
        return self._record(results, run) if results else False

    def _hand_over(self, part: Sequence[Any]) -> list[Any]:
        self.governor.wait(len(part))
        began = self.sender.monotonic()
        results = self.provider.send(self.letter, part)
        if len(results) != len(part):
            log.error("digest %d: provider %s answered %d results for %d messages; the rest stay in doubt",
                      self.digest.id, self.provider.name, len(results), len(part))
        elif not any(r.outcome == "deferred" for r in results):
            self.governor.done(len(part), self.sender.monotonic() - began)
        return results

    def _record(self, results: list[Any], run: _Run) -> bool:
        recorded = self.ledger.record(results)
        run.sent += recorded.sent
        run.failed += recorded.failed
        if recorded.throttled:
            return self._throttle(recorded.retry_after, run)
        return False

    def _batch_failed(self, exc: DeliveryError, results: list[Any], part: Sequence[Any], rest: list[int],
                      run: _Run) -> bool:
        if not exc.transient:
            self._record(results, run)
            self.ledger.requeue([r.delivery_id for r in part] + rest)
            log.error("digest %d: %s; stopping, the unsent messages stay queued", self.digest.id, exc)
            raise exc
        from publisher.providers.base import Result

        reason = exc.reason if exc.response is None else f"{exc.reason} ({exc.response})"
        deferred = [Result(r.delivery_id, "deferred", reason=reason, retry_after=exc.retry_after) for r in part]
        self.ledger.requeue(rest)
        stop = self._record(results + deferred, run)
        run.batch_failures += 1
        log.warning("digest %d: %s; %d message(s) deferred (failure %d in a row)", self.digest.id, exc, len(part),
                    run.batch_failures)
        if not stop and (is_throttle(exc.reason, exc.retry_after) or exc.response and is_throttle(exc.response)):
            stop = self._throttle(exc.retry_after, run)
        if run.batch_failures >= MAX_BATCH_FAILURES:
            stop = True
            run.resume_at = run.resume_at or self.sender.clock.now() + timedelta(
                seconds=self.sender.backoff.delay(1, exc.retry_after))
        return stop

    def _throttle(self, retry_after: float | None, run: _Run) -> bool:
        """Slow down; True (stop the run) when the service asked for a longer pause than is worth waiting here."""
        if self.governor.throttle(retry_after):
            log.info("digest %d: the provider pushes back; slowing to %.1f messages/s", self.digest.id,
                     self.governor.rate or 0.0)
            return False
        run.resume_at = self.sender.clock.now() + timedelta(seconds=retry_after or 0.0)
        run.paused_until = max(run.paused_until or run.resume_at, run.resume_at)
        log.warning("digest %d: the provider asked to wait %.0fs; stopping this run", self.digest.id, retry_after or 0)
        return True


class _Progress:
    """Calls ``progress.update(n)`` when a progress object was given; sets its ``length`` when it has one."""

    def __init__(self, progress: Any, counts: dict[str, int]) -> None:
        self.progress = progress
        if progress is not None and hasattr(progress, "length"):
            try:
                progress.length = counts["queued"] + counts["deferred"]
            except (AttributeError, TypeError):
                pass

    def update(self, count: int) -> None:
        if self.progress is not None:
            self.progress.update(count)


def _pushed_back(results: Sequence[Any]) -> bool:
    """Did the service ask us to slow down (429, 421, Retry-After) for any message of this slice?"""
    return any(r.outcome == "deferred" and is_throttle(r.reason, r.retry_after) for r in results)


def owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` ("host:pid:nonce") names a process of THIS host that has exited.

    Only a same-host owner can be checked; any other owner is presumed alive
    until its lease runs out.  A recycled PID makes a dead owner look alive,
    which only means waiting for the lease: never two senders at once.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _claim_size(max_batch: int, wanted: int) -> int:
    """``wanted`` rounded up to a whole number of provider batches (at least one)."""
    step = max(1, int(max_batch))
    return max(step, -(-wanted // step) * step)
