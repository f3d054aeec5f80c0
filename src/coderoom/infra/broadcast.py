"""Fire-and-forget messages to every process on one Redis channel (pub/sub).

Pub/sub delivers only to who is subscribed at that moment: a subscriber that was
disconnected may have missed messages, so `listen` calls `on_gap` each time it
(re)subscribes, and users of this module must have a fallback (a TTL) for lost messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

RECONNECT_SECONDS = 1.0


class Broadcast:
    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel

    async def publish(self, message: str) -> None:
        """Send; a failure is logged, never raised (the receivers' TTL covers it)."""
        try:
            await self.redis.publish(self.channel, message)
        except (RedisError, OSError) as exc:
            log.error("broadcast.publish_failed", channel=self.channel, error=str(exc))

    async def listen(
        self,
        on_message: Callable[[str], None],
        *,
        on_gap: Callable[[], None],
        stop: asyncio.Event | None = None,
    ) -> None:
        """Call `on_message` for each message until `stop` is set (or the task is
        cancelled), reconnecting as needed.

        Stop with the event, not (only) with a cancel: redis-py's `get_message(timeout=)`
        can swallow a cancellation that lands as its own timeout fires, and the loop then
        polls on forever; the event is checked at least once a second."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                on_gap()
                while not stop.is_set():
                    # A short wait, not a blocking read: the client's socket timeout would
                    # otherwise cut an idle subscription and clear caches for nothing.
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        data = message["data"]
                        on_message(data.decode() if isinstance(data, bytes) else str(data))
            except (RedisError, OSError) as exc:
                log.warning("broadcast.disconnected", channel=self.channel, error=str(exc))
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RECONNECT_SECONDS)
