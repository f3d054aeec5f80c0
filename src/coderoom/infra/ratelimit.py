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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import NoScriptError

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


def _storage_for(redis_url: str | None, names: RedisNames, max_connections: int) -> Storage:
    if redis_url is None:
        return MemoryStorage()
    # Bounded like the queue's pool (REDIS_MAX_CONNECTIONS), with short timeouts: a slow
    # Redis must not hold requests, the limiter fails open or closed instead.
    pool = BlockingConnectionPool.from_url(
        redis_url,
        max_connections=max_connections,
        timeout=0.5,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
    )
    return RedisStorage(
        f"async+{redis_url}",
        implementation="redispy",
        key_prefix=names.ratelimit,
        wrap_exceptions=True,
        connection_pool=pool,  # type: ignore[arg-type]
    )


def _window_keys(storage: RedisStorage, quota: Quota, key: str) -> list[str]:
    """The two Redis keys `limits` keeps for a sliding window (as in RedisStorage)."""
    name = quota.item.key_for(quota.name, key)
    return [
        storage.bridge.prefixed_key(storage._previous_window_key(name)),
        storage.bridge.prefixed_key(storage._current_window_key(name)),
    ]


def _decision(quota: Quota, allowed: bool, window: Any, now: float) -> Decision:
    """`SlidingWindowCounterRateLimiter.get_window_stats`, on an already-read window."""
    previous, previous_ttl, current, current_ttl = (
        (
            int(window[0] or 0),
            max(0.0, float(window[1] or 0)) / 1000,
            int(window[2] or 0),
            max(0.0, float(window[3] or 0)) / 1000,
        )
        if window
        else (0, 0.0, 0, 0.0)
    )
    expiry = quota.item.get_expiry()
    weighted = previous * previous_ttl / expiry + current
    remaining = max(0, quota.amount - math.floor(weighted))
    reset_in = 0.0
    if previous or current:
        candidates = []
        if previous:
            candidates.append(previous_ttl % (expiry / previous))
        if current:
            candidates.append(current_ttl % expiry)
        reset_in = min(candidates)
    reset_after = max(0, math.ceil(reset_in + now - time.time()))
    if not allowed:
        reset_after = max(reset_after, 1)
    return Decision(quota=quota, allowed=allowed, remaining=remaining, reset_after=reset_after)


class RateLimiter:
    """Takes hits against quotas for a key (a client IP, an account…)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    @classmethod
    def create(
        cls, redis_url: str | None, names: RedisNames, *, max_connections: int = 32
    ) -> RateLimiter:
        return cls(_storage_for(redis_url, names, max_connections))

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

    async def hit_all(self, hits: Sequence[tuple[Quota, str]]) -> list[Decision]:
        """Count one request against every (quota, key), in one round trip to Redis.

        `hit` costs two round trips per quota (the library's acquire, then its window read
        for the headers); a request under three rules paid six. Here every acquire and read
        goes into one pipeline, running the library's own Lua scripts (so the counting is
        exactly `limits`' sliding window), and the window arithmetic is the library's
        `get_window_stats`, done on the pipeline's answers. In memory there is no round
        trip to save: `hit` per quota.
        """
        if not isinstance(self.storage, RedisStorage):
            return [await self.hit(quota, key) for quota, key in hits]
        storage = self.storage
        bridge: Any = storage.bridge  # the redis-py bridge: its connection and Lua scripts
        acquire, window = bridge.lua_acquire_sliding_window, bridge.lua_sliding_window
        try:
            for attempt in (1, 2):
                # EVALSHA straight into the pipeline: registering the scripts on it would
                # make redis-py send SCRIPT EXISTS first, a second round trip every time.
                pipe = bridge.get_connection().pipeline(transaction=False)
                for quota, key in hits:
                    keys = _window_keys(storage, quota, key)
                    expiry = quota.item.get_expiry()
                    pipe.evalsha(acquire.sha, 2, *keys, quota.item.amount, expiry, 1)
                    pipe.evalsha(window.sha, 2, *keys, expiry)
                try:
                    answers = await pipe.execute()
                    break
                except NoScriptError:  # a restarted Redis forgot them: load, then once more
                    if attempt == 2:
                        raise
                    for script in (acquire, window):
                        await bridge.get_connection().script_load(script.script)
        except Exception as exc:  # any Redis failure: the limiter is unavailable
            raise RateLimiterUnavailable(f"rate-limit storage failed: {exc}") from exc
        now = time.time()
        return [
            _decision(quota, bool(answers[2 * i]), answers[2 * i + 1], now)
            for i, (quota, _key) in enumerate(hits)
        ]

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
                await client.connection_pool.disconnect()
        elif isinstance(self.storage, MemoryStorage):
            timer = self.storage.timer  # the expiry sweeper task
            if timer is not None and not timer.done():
                timer.cancel()
