"""The daemon: APScheduler runs the build on an interval or a cron schedule, and each list's digest on its cron.

A first build runs at start; each build logs one line with its counts and
time; SIGTERM and SIGINT stop the scheduler cleanly after the job in flight.
A failed build logs one error line and is retried at the next run.

Digests run in their own one-thread executor, so a long send never delays
the feeds.  A digest job carries only its list's name and reads everything
else when it runs: it builds first (so the posts written just before the
slot are in), then composes and sends the slot's digest.  At start the daemon
catches up: a slot missed while it was down within the list's grace time is
sent once (a digest is stored once per list and slot).  A sweep every minute
carries on with digests that have retries due or whose sender died.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import datetime, timedelta
from typing import Any

from publisher.build import Builder
from publisher.clock import Clock
from publisher.config import Config
from publisher.errors import PublisherError

log = logging.getLogger(__name__)

RESUME_EVERY = 60  # seconds between sweeps for digests with retries due or abandoned by a dead sender


class Daemon:
    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.builder = Builder(config, clock=self.clock)
        self.scheduler: Any = None
        self._build_lock = threading.Lock()
        self._newsletter: Any = None

    def build_job(self) -> bool:
        """One scheduled build; True when it succeeded."""
        try:
            with self._build_lock:
                report = self.builder.build()
        except PublisherError as exc:
            log.error("build failed: %s; retrying at the next run", exc)
            return False
        log.info("%s", report.line())
        return True

    @property
    def newsletter(self) -> Any:
        if self._newsletter is None:
            from publisher.newsletter import Newsletter
            from publisher.state import Store

            self._newsletter = Newsletter(self.config, Store(self.config.database_url, clock=self.clock),
                                          clock=self.clock, environ=os.environ)
        return self._newsletter

    def digest_job(self, list_name: str) -> bool:
        """A list's scheduled digest: build, then compose and send the due slot; True when nothing failed."""
        self.build_job()
        try:
            outcome = self.newsletter.run_due(list_name)
        except PublisherError as exc:
            log.error("digest for list %s failed: %s; the next sweep retries it", list_name, exc)
            return False
        log.info("%s", outcome.line())
        return True

    def catch_up_job(self) -> None:
        """At start: each list's latest slot within its grace time goes out once, if it has not."""
        for list_name in self.config.lists:
            self.digest_job(list_name)

    def resume_job(self) -> bool:
        """Carry on with digests that have retries due or whose sender's lease ran out."""
        try:
            for report in self.newsletter.resume():
                log.info("%s", report.line())
        except PublisherError as exc:
            log.error("resuming digests failed: %s; retrying in %ss", exc, RESUME_EVERY)
            return False
        return True

    def trigger(self) -> Any:
        schedule = self.config.schedule
        timezone = schedule.timezone or self.config.site.timezone
        if schedule.build_cron:
            from apscheduler.triggers.cron import CronTrigger

            return CronTrigger.from_crontab(schedule.build_cron, timezone=timezone)
        from apscheduler.triggers.interval import IntervalTrigger

        return IntervalTrigger(seconds=self.config.build_interval, timezone=timezone)

    def make_scheduler(self) -> Any:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(executors={"default": ThreadPoolExecutor(1), "mail": ThreadPoolExecutor(1)},
                                      job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
                                      timezone=self.config.site.timezone)
        first: datetime = self.clock.now()
        scheduler.add_job(self.build_job, self.trigger(), id="build", name="build feeds", next_run_time=first)
        self._add_digest_jobs(scheduler, first)
        return scheduler

    def _add_digest_jobs(self, scheduler: Any, first: datetime) -> None:
        if not self.config.lists:
            return
        from apscheduler.triggers.interval import IntervalTrigger

        from publisher.digest.select import list_trigger

        for name, mailing_list in self.config.lists.items():
            scheduler.add_job(self.digest_job, list_trigger(mailing_list), args=[name], id=f"digest:{name}",
                              name=f"digest for list {name}", executor="mail", misfire_grace_time=mailing_list.grace)
        scheduler.add_job(self.catch_up_job, "date", run_date=first, id="catch-up", name="missed digests",
                          executor="mail")
        scheduler.add_job(self.resume_job, IntervalTrigger(seconds=RESUME_EVERY),
                          next_run_time=first + timedelta(seconds=RESUME_EVERY), id="resume",
                          name="retries and abandoned sends", executor="mail")

    def run(self) -> None:
        """Run until SIGTERM or SIGINT."""
        self.scheduler = self.make_scheduler()
        web = self._start_web()
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("publisher daemon started: posts in %s, feeds to %s, %s", self.config.posts_root,
                 self.config.output_dir, self.describe_schedule())
        try:
            self.scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if web is not None:
                web.stop()
            self.builder.close()
            if self._newsletter is not None:
                self._newsletter.store.close()
        log.info("publisher daemon stopped")

    def _start_web(self) -> Any:
        """With ``[web] serve = true``, the subscriber pages run in this process too."""
        if not self.config.web.serve:
            return None
        from publisher.web.server import start_in_thread

        return start_in_thread(self.config, clock=self.clock, environ=os.environ)

    def describe_schedule(self) -> str:
        if self.config.schedule.build_cron:
            text = f"building on cron '{self.config.schedule.build_cron}'"
        else:
            text = f"building every {self.config.build_interval}s"
        for name, mailing_list in self.config.lists.items():
            text += f"; list {name} on cron '{mailing_list.schedule}' ({mailing_list.timezone})"
        return text

    def _stop(self, signum: int, _frame: object) -> None:
        log.info("received %s: stopping after the build in progress", signal.Signals(signum).name)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
