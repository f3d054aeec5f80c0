"""Rate limiting on the `limits` library: sliding-window counters in Redis or in memory.

Why sliding window counter: a fixed window lets a client spend its whole quota at the end
of one window and again at the start of the next (2x burst); a moving window (a log of
every hit) is exact but costs memory per hit. The sliding-window counter weights the
previous window's count by how much of it still overlaps, which bounds bursts closely for
two counters per key, and in Redis each decision is one atomic Lua script.

With `REDIS_URL` set the counters live in Redis and every API process on every machine
shares them; without it they live in this process's memory (the embedded mode).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from coderoom.infra.keys import RedisNames

log = structlog.get_logger(__name__)


class RateLimiterUnavailable(RuntimeError):
    """The shared counter store did not answer."""


@dataclass(frozen=True)
class Quota:
    """A named limit, e.g. `Quota.parse("auth", "5/15minutes")`."""

    name: str
    item: RateLimitItem

    @classmethod
    def parse(cls, name: str, spec: str) -> Quota:
        return cls(name=name, item=parse(spec))

    @property
    def amount(self) -> int:
        return int(self.item.amount)

    @property
    def window_seconds(self) -> int:
        return int(self.item.get_expiry())

    def describe(self) -> str:
        return f"{self.amount} per {self.item.multiples} {self.item.GRANULARITY.name}(s)"


@dataclass(frozen=True)
class Decision:
    quota: Quota
    allowed: bool
    remaining: int
    reset_after: int  # seconds until a request would be allowed again / the window eases


def _storage_for(redis_url: str | None, names: RedisNames) -> Storage:
    if redis_url is None:
        return MemoryStorage()
    return RedisStorage(
        f"async+{redis_url}",
        implementation="redispy",
        key_prefix=names.ratelimit,
        wrap_exceptions=True,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
    )


class RateLimiter:
    """Takes hits against quotas for a key (a client IP, an account…)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    @classmethod
    def create(cls, redis_url: str | None, names: RedisNames) -> RateLimiter:
        return cls(_storage_for(redis_url, names))

    @property
    def shared(self) -> bool:
        return not isinstance(self.storage, MemoryStorage)

    async def hit(self, quota: Quota, key: str) -> Decision:
        """Count one request; say whether it is within the quota and what is left."""
        try:
            allowed = await self.strategy.hit(quota.item, quota.name, key)
            stats = await self.strategy.get_window_stats(quota.item, quota.name, key)
        except Exception as exc:  # limits wraps every storage failure in StorageError
            raise RateLimiterUnavailable(f"rate-limit storage failed: {exc}") from exc
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        if not allowed:
            reset_after = max(reset_after, 1)
        return Decision(
            quota=quota, allowed=allowed, remaining=stats.remaining, reset_after=reset_after
        )

    async def exhausted(self, quota: Quota, key: str) -> Decision | None:
        """Without counting: the refusal a hit would get now, or None if one more is fine."""
        try:
            within = await self.strategy.test(quota.item, quota.name, key)
            if within:
                return None
            stats = await self.strategy.get_window_stats(quota.item, quota.name, key)
        except Exception as exc:
            raise RateLimiterUnavailable(f"rate-limit storage failed: {exc}") from exc
        reset_after = max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(quota=quota, allowed=False, remaining=0, reset_after=reset_after)

    async def reset(self) -> None:
        await self.storage.reset()

    async def close(self) -> None:
        if isinstance(self.storage, RedisStorage):
            client: Any = getattr(self.storage.bridge, "storage", None)
            if client is not None:
                await client.aclose()
        elif isinstance(self.storage, MemoryStorage):
            timer = self.storage.timer  # the expiry sweeper task
            if timer is not None and not timer.done():
                timer.cancel()
