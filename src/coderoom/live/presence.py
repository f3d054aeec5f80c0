"""Who is connected to each session now, across instances.

Locally a count of connections per (session, user). With Redis, each instance also keeps a
sorted set `P:live:presence:<session>` of `<instance>:<user>` members scored by an expiry
time, refreshed while the connection lasts: an instance that dies stops refreshing and its
users drop out within PRESENCE_TTL_SECONDS.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from coderoom.infra.keys import RedisNames

log = structlog.get_logger(__name__)

PRESENCE_TTL_SECONDS = 15.0


class Presence:
    def __init__(self, redis: Redis | None, names: RedisNames) -> None:
        self.redis = redis
        self.names = names
        self.instance = uuid.uuid4().hex
        self.local: dict[uuid.UUID, Counter[uuid.UUID]] = {}

    def _key(self, session_id: uuid.UUID) -> str:
        return self.names.key("live", "presence", str(session_id))

    def _member(self, user_id: uuid.UUID) -> str:
        return f"{self.instance}:{user_id}"

    def connections(self, session_id: uuid.UUID) -> int:
        return sum(self.local.get(session_id, Counter()).values())

    def user_connections(self, user_id: uuid.UUID) -> int:
        return sum(counts[user_id] for counts in self.local.values())

    async def joined(self, session_id: uuid.UUID, user_id: uuid.UUID) -> None:
        counts = self.local.setdefault(session_id, Counter())
        counts[user_id] += 1
        if counts[user_id] == 1:
            await self._mark(session_id, [user_id])

    async def left(self, session_id: uuid.UUID, user_id: uuid.UUID) -> None:
        counts = self.local.get(session_id)
        if counts is None:
            return
        counts[user_id] -= 1
        if counts[user_id] <= 0:
            del counts[user_id]
            if not counts:
                del self.local[session_id]
            if self.redis is not None:
                try:
                    await self.redis.zrem(self._key(session_id), self._member(user_id))
                except (RedisError, OSError) as exc:
                    log.warning("live.presence_failed", error=str(exc))

    async def _mark(self, session_id: uuid.UUID, user_ids: list[uuid.UUID]) -> None:
        if self.redis is None or not user_ids:
            return
        expiry = time.time() + PRESENCE_TTL_SECONDS
        key = self._key(session_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {self._member(u): expiry for u in user_ids})
                pipe.expire(key, int(PRESENCE_TTL_SECONDS * 2))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("live.presence_failed", error=str(exc))

    async def refresh(self) -> None:
        for session_id, counts in list(self.local.items()):
            await self._mark(session_id, list(counts))

    async def present(self, session_id: uuid.UUID) -> list[uuid.UUID]:
        users = set(self.local.get(session_id, Counter()))
        if self.redis is not None:
            try:
                members = await self.redis.zrangebyscore(self._key(session_id), time.time(), "+inf")
            except (RedisError, OSError) as exc:
                log.warning("live.presence_failed", error=str(exc))
                members = []
            for member in members:
                text = member.decode() if isinstance(member, bytes) else str(member)
                users.add(uuid.UUID(text.rsplit(":", 1)[1]))
        return sorted(users, key=str)
