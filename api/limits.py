"""Rate limits: a token bucket per caller, in this process's memory.

Each key and each customer may make ``rate`` requests a minute, in bursts of up to
``rate``; past that the answer is 429 with ``Retry-After`` (whole seconds until a
request is allowed again). With ``--workers N`` every worker keeps its own buckets,
so a caller spread over the workers gets up to N times the rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from api.problems import Problem


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, name: str, rate_per_minute: int) -> None:
        """Spend one request of ``name``'s bucket, or raise a 429 Problem."""
        per_second = rate_per_minute / 60.0
        now = self.clock()
        with self._lock:
            tokens, when = self._buckets.get(name, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - when) * per_second)
            if tokens < 1:
                self._buckets[name] = (tokens, now)
                wait = math.ceil((1 - tokens) / per_second)
                raise Problem(
                    429,
                    "rate_limited",
                    f"Too many requests; try again in {wait} s.",
                    headers={"Retry-After": str(wait)},
                )
            self._buckets[name] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # forget the full buckets of callers gone quiet
                full = [k for k, (t, w) in self._buckets.items() if t + (now - w) * per_second >= rate_per_minute]
                for k in full:
                    del self._buckets[k]
