"""The daemon: APScheduler runs the build on an interval or a cron schedule.

A first build runs at start; each build logs one line with its counts and
time; SIGTERM and SIGINT stop the scheduler cleanly after the build in flight.
A failed build logs one error line and is retried at the next run.
"""

from __future__ import annotations

import logging
import signal
from datetime import datetime
from typing import Any

from publisher.build import Builder
from publisher.clock import Clock
from publisher.config import Config
from publisher.errors import PublisherError

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.builder = Builder(config, clock=self.clock)
        self.scheduler: Any = None

    def build_job(self) -> bool:
        """One scheduled build; True when it succeeded."""
        try:
            report = self.builder.build()
        except PublisherError as exc:
            log.error("build failed: %s; retrying at the next run", exc)
            return False
        log.info("%s", report.line())
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

        scheduler = BlockingScheduler(executors={"default": ThreadPoolExecutor(1)},
                                      job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
                                      timezone=self.config.site.timezone)
        first: datetime = self.clock.now()
        scheduler.add_job(self.build_job, self.trigger(), id="build", name="build feeds", next_run_time=first)
        return scheduler

    def run(self) -> None:
        """Run until SIGTERM or SIGINT."""
        self.scheduler = self.make_scheduler()
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("publisher daemon started: posts in %s, feeds to %s, %s", self.config.posts_root,
                 self.config.output_dir, self.describe_schedule())
        try:
            self.scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.builder.close()
        log.info("publisher daemon stopped")

    def describe_schedule(self) -> str:
        if self.config.schedule.build_cron:
            return f"building on cron '{self.config.schedule.build_cron}'"
        return f"building every {self.config.build_interval}s"

    def _stop(self, signum: int, _frame: object) -> None:
        log.info("received %s: stopping after the build in progress", signal.Signals(signum).name)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
