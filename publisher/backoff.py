"""When to try a deferred message again, and how fast to send while a service pushes back.

Two small, independent pieces:

- :class:`Backoff`: the delay before retry *n* of one message.  Exponential
  (``base * factor ** (n - 1)``) up to a ceiling, with jitter so a thousand
  messages deferred together do not all come back in the same second, and
  never sooner than the service asked for (``Retry-After``,
  ``X-RateLimit-Reset``, which providers turn into ``Result.retry_after``).
  The defaults (5 minutes, x3, at most 18 hours) spread 8 attempts over
  about two days, like an MTA's queue lifetime.
- :class:`RateGovernor`: the sender's pace between batches.  AIMD, as TCP
  does it: when the service throttles (SMTP 421, HTTP 429, a Retry-After),
  halve the rate and pause as asked; after each clean batch, creep the rate
  back up by a fixed step until it is unlimited again.  Time and sleeping are
  injected so tests never sleep.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_THROTTLE = re.compile(r"\b(421|429|420|454)\b|rate.?limit|too many|throttl|slow down", re.IGNORECASE)


def is_throttle(reason: str | None, retry_after: float | None = None) -> bool:
    """Whether a deferral means "you are sending too fast" (rather than "this mailbox is full")."""
    return retry_after is not None or bool(reason and _THROTTLE.search(reason))


@dataclass
class Backoff:
    """Exponential backoff with jitter; ``delay(attempts)`` is seconds until the next try."""

    base: float = 300.0
    factor: float = 3.0
    ceiling: float = 18 * 3600.0
    jitter: float = 0.2  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    longest_wait: float = 2 * 86400.0  # a Retry-After longer than this is capped (a broken header, not a plan)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th try failed (``attempts`` counts from 1)."""
        computed = min(self.base * self.factor ** max(attempts - 1, 0), self.ceiling)
        computed *= 1.0 + self.jitter * (2.0 * self.random() - 1.0)
        computed = min(computed, self.ceiling)
        if retry_after is not None:
            computed = max(computed, min(float(retry_after), self.longest_wait))
        return max(computed, 0.0)

    def schedule(self, attempts: int) -> list[float]:
        """The delays (without jitter or Retry-After) between ``attempts`` tries: for docs and tests."""
        return [min(self.base * self.factor ** n, self.ceiling) for n in range(attempts - 1)]


class RateGovernor:
    """Paces batches: unlimited until the service throttles, then AIMD.

    ``wait(n)`` is called before handing over ``n`` messages and sleeps as
    needed; ``done(n, seconds)`` after a clean batch; ``throttle(retry_after)``
    when the service pushed back.  ``rate`` is messages per second, ``None``
    while unlimited.
    """

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, floor: float = 1.0,
                 step: float = 0.05, longest_pause: float = 60.0) -> None:
        self.sleep = sleep
        self.monotonic = monotonic
        self.floor = floor  # never slower than this many messages per second
        self.step = step  # additive increase per clean batch, as a fraction of the rate before throttling
        self.longest_pause = longest_pause  # a longer Retry-After ends the run instead (the daemon retries)
        self.rate: float | None = None
        self.peak: float | None = None  # the unthrottled rate measured, messages/s
        self._next_at = 0.0
        self._paused_until = 0.0

    def wait(self, count: int) -> float:
        """Sleep until ``count`` more messages may go; returns the seconds slept."""
        now = self.monotonic()
        start = max(now, self._paused_until, self._next_at if self.rate else now)
        if self.rate:
            self._next_at = start + count / self.rate
        pause = start - now
        if pause > 0:
            self.sleep(pause)
        return pause

    def done(self, count: int, seconds: float) -> None:
        """A batch went through cleanly: learn the pace, and creep back up when throttled."""
        if self.rate is None:
            if seconds > 0 and count:
                measured = count / seconds
                self.peak = measured if self.peak is None else 0.8 * self.peak + 0.2 * measured
            return
        self.rate += self.step * (self.peak or self.rate)
        if self.peak is not None and self.rate >= self.peak:
            self.rate = None

    def throttle(self, retry_after: float | None = None) -> bool:
        """The service said slow down: halve the rate, pause as asked.  False when the pause is too long to wait here."""
        current = self.rate or self.peak or self.floor * 2
        self.rate = max(current / 2.0, self.floor)
        if self.peak is None:
            self.peak = current
        if retry_after is None:
            return True
        if retry_after > self.longest_pause:
            return False
        self._paused_until = max(self._paused_until, self.monotonic() + retry_after)
        return True
