"""The plan: sizes and time window of a demo."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

HISTORY_DAYS = 180
UPCOMING_DAYS = 14
CHUNK_CUSTOMERS = 25_000


@dataclass(frozen=True)
class Plan:
    scale: float
    seed: int
    anchor: dt.date

    @property
    def now(self) -> np.datetime64:
        return np.datetime64(self.anchor, "D").astype("datetime64[us]")

    @property
    def start(self) -> np.datetime64:
        return self.now - np.timedelta64(HISTORY_DAYS, "D")

    @property
    def customers(self) -> int:
        return max(20, round(5000 * self.scale))

    @property
    def mechanics(self) -> int:
        return max(5, round(60 * self.scale**0.72))

    def chunks(self) -> list[tuple[int, int]]:
        """(first customer number, customers) per chunk."""
        return [(lo, min(CHUNK_CUSTOMERS, self.customers - lo)) for lo in range(0, self.customers, CHUNK_CUSTOMERS)]
