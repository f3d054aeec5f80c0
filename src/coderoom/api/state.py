"""What the lifespan opens and the requests share: engine, sessions, Redis, clock."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from coderoom.auth.service import AuthConfig
from coderoom.config import Settings
from coderoom.executions.deps import ExecutionsContext
from coderoom.infra.lifecycle import Shutdown
from coderoom.infra.ratelimit import RateLimiter
from coderoom.live.documents import LiveDocuments
from coderoom.live.hub import Hub
from coderoom.sandbox import LanguageRegistry


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    rate_limiter: RateLimiter
    auth: AuthConfig
    languages: LanguageRegistry
    executions: ExecutionsContext
    shutdown: Shutdown
    live: Hub
    documents: LiveDocuments
    started_at: float = field(default_factory=time.monotonic)

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at
