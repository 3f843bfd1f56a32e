"""Real-time pacing for sources that are not devices (demo, files)."""

from __future__ import annotations

import time


class Pacer:
    """``wait(n)`` sleeps until item ``n`` is due (``t0 + n * period``); returns its due time.

    If the caller fell behind by more than ``max_lag`` periods the schedule is re-anchored, so a
    stall never produces a burst.
    """

    def __init__(self, period: float, max_lag: int = 4) -> None:
        self.period = period
        self.max_lag = max_lag
        self.t0 = time.monotonic()
        self.n0 = 0

    def wait(self, n: int) -> float:
        due = self.t0 + (n - self.n0) * self.period
        now = time.monotonic()
        if now - due > self.max_lag * self.period:
            self.t0, self.n0 = now, n
            return now
        if due > now:
            time.sleep(due - now)
        return due
