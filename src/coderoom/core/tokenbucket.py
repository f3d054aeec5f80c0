"""A per-connection message rate limit (one client, one process: no shared storage, so
not `limits`, whose strategies count fixed or sliding windows in a storage backend)."""

from __future__ import annotations

import time


class TokenBucket:
    """`burst` messages at once, then `rate` a second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
