"""Fan-out of live traffic between API instances.

Each instance publishes what its rooms accepted (already persisted) to the Redis channel
`P:live:<session id>`, and listens on the channels of the rooms it has loaded. A message is
the sender's 16-byte instance id, one kind byte (`u` update, `a` awareness) and the payload.

Pub/sub may drop messages (a listener reconnecting misses what was sent meanwhile), so
`on_resync` is called whenever a channel's subscription (re)starts: the room then re-reads
the log from the database. Updates are idempotent, so reading one twice is harmless; a
subscription that starts after an update was published finds it in the database because
updates are persisted before they are published. In embedded mode (no Redis) every room
lives in the one process and `LocalBus` carries nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from coderoom.infra.keys import RedisNames

log = structlog.get_logger(__name__)

UPDATE = b"u"
AWARENESS = b"a"
RECONNECT_SECONDS = 0.5

OnMessage = Callable[[uuid.UUID, bytes, bytes], None]
OnResync = Callable[[uuid.UUID | None], None]


class Bus(Protocol):
    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None: ...
    async def stop(self) -> None: ...
    async def subscribe(self, session_id: uuid.UUID) -> None: ...
    async def unsubscribe(self, session_id: uuid.UUID) -> None: ...
    async def publish(self, session_id: uuid.UUID, kind: bytes, payload: bytes) -> None: ...


class LocalBus:
    """Embedded mode: one process holds every room, nothing to carry."""

    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def subscribe(self, session_id: uuid.UUID) -> None:
        return None

    async def unsubscribe(self, session_id: uuid.UUID) -> None:
        return None

    async def publish(self, session_id: uuid.UUID, kind: bytes, payload: bytes) -> None:
        return None


class RedisBus:
    def __init__(self, redis: Redis, names: RedisNames) -> None:
        self.redis = redis
        self.names = names
        self.instance = uuid.uuid4().bytes
        self.channels: set[str] = set()
        self.pubsub: PubSub | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()
        self.on_message: OnMessage = lambda *_: None
        self.on_resync: OnResync = lambda _: None

    def channel(self, session_id: uuid.UUID) -> str:
        return self.names.channel(f"live:{session_id}")

    def _session(self, channel: bytes | str) -> uuid.UUID | None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        prefix = self.names.channel("live:")
        if not name.startswith(prefix):
            return None
        with contextlib.suppress(ValueError):
            return uuid.UUID(name[len(prefix) :])
        return None

    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        self.on_message, self.on_resync = on_message, on_resync
        self.task = asyncio.create_task(self._listen(), name="live.bus")

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)

    async def subscribe(self, session_id: uuid.UUID) -> None:
        channel = self.channel(session_id)
        self.channels.add(channel)
        if self.pubsub is not None:
            try:
                await self.pubsub.subscribe(channel)
            except (RedisError, OSError) as exc:
                # The listener reconnects and subscribes to every channel again.
                log.warning("live.bus_subscribe_failed", error=str(exc))

    async def unsubscribe(self, session_id: uuid.UUID) -> None:
        channel = self.channel(session_id)
        self.channels.discard(channel)
        if self.pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.pubsub.unsubscribe(channel)

    async def publish(self, session_id: uuid.UUID, kind: bytes, payload: bytes) -> None:
        try:
            await self.redis.publish(self.channel(session_id), self.instance + kind + payload)
        except (RedisError, OSError) as exc:
            # Persisted already: the other instances' resync finds it in the database.
            log.warning("live.bus_publish_failed", error=str(exc))

    def _received(self, message: dict[str, object]) -> None:
        session_id = self._session(message["channel"])  # type: ignore[arg-type]
        if session_id is None:
            return
        if message["type"] == "subscribe":
            self.on_resync(session_id)
            return
        data = message["data"]
        if message["type"] != "message" or not isinstance(data, bytes) or len(data) < 17:
            return
        if data[:16] == self.instance:
            return
        self.on_message(session_id, data[16:17], data[17:])

    async def _listen(self) -> None:
        while not self.stopping.is_set():
            pubsub = self.redis.pubsub()
            try:
                if self.channels:
                    await pubsub.subscribe(*self.channels)
                self.pubsub = pubsub
                while not self.stopping.is_set():
                    if not pubsub.subscribed:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.stopping.wait(), 0.05)
                        continue
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._received(message)
            except (RedisError, OSError) as exc:
                log.warning("live.bus_disconnected", error=str(exc))
            finally:
                self.pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            if not self.stopping.is_set():
                self.on_resync(None)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), RECONNECT_SECONDS)
