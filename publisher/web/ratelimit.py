"""An in-memory sliding-window rate limiter (per process; the clock is injected, so tests never sleep).

Each key (``"client:203.0.113.5"``, ``"address:ann@example.org"``) keeps the times
of its recent hits; a hit is allowed while fewer than ``limit`` fall inside the
window.  A refused hit is not recorded, so a client that keeps trying is let in
again once its old hits age out.  Expired keys are swept every :data:`SWEEP`
hits, and at most :data:`MAX_KEYS` keys are kept (the stalest go first), so a
flood of distinct keys can't grow memory without bound.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime

from publisher.clock import Clock

WINDOW = 3600.0  # seconds: the config's limits are "per hour"
SWEEP = 1000
MAX_KEYS = 100_000


class RateLimiter:
    """Sliding-window counts per key; thread-safe."""

    def __init__(self, clock: Clock | None = None, window: float = WINDOW, max_keys: int = MAX_KEYS) -> None:
        self.clock = clock or Clock()
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def _now(self) -> float:
        moment: datetime = self.clock.now()
        return moment.timestamp()

    def hit(self, key: str, limit: int) -> bool:
        """Record a hit for ``key`` and return True, or return False (recording nothing) when at ``limit``."""
        now = self._now()
        with self._lock:
            self._maybe_sweep(now)
            hits = self._recent(key, now)
            if len(hits) >= limit:
                return False
            hits.append(now)
            self._hits.pop(key, None)
            self._hits[key] = hits  # most recently used last: the eviction order
            return True

    def retry_after(self, key: str, limit: int) -> int:
        """Seconds until ``key`` may hit again (0 when it may now)."""
        now = self._now()
        with self._lock:
            hits = self._recent(key, now)
            if len(hits) < limit:
                return 0
            return max(1, int(hits[len(hits) - limit] + self.window - now + 0.999))

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def _maybe_sweep(self, now: float) -> None:
        self._calls += 1
        if self._calls % SWEEP == 0:
            for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
                del self._hits[key]
        while len(self._hits) >= self.max_keys:
            del self._hits[next(iter(self._hits))]

    def __len__(self) -> int:
        return len(self._hits)
