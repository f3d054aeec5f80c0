"""Health probes. Never rate limited, never hanging: each check has a short timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from coderoom import __version__
from coderoom.api.deps import State
from coderoom.infra.db import ping

router = APIRouter(prefix="/health", tags=["health"])


class ServiceHealth(BaseModel):
    status: Literal["up", "down", "disabled"]
    latency_ms: float | None = None
    error: str | None = None


class QueueHealth(BaseModel):
    """The execution backend: will accepted executions run?"""

    status: Literal["up", "down"]
    mode: Literal["embedded", "queue"] | None = None
    depth: int | None = None
    workers: int | None = None
    error: str | None = None


class Services(BaseModel):
    database: ServiceHealth
    redis: ServiceHealth
    queue: QueueHealth


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    environment: str
    uptime_seconds: float
    services: Services


class Liveness(BaseModel):
    status: Literal["ok"]


async def _probe(check: Callable[[], Awaitable[object]], limit: float) -> ServiceHealth:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            await check()
    except TimeoutError:
        return ServiceHealth(status="down", error=f"no answer within {limit:g}s")
    except Exception as exc:  # noqa: BLE001 - any failure of the probe means "down"
        return ServiceHealth(status="down", error=type(exc).__name__)
    return ServiceHealth(status="up", latency_ms=round((time.perf_counter() - start) * 1000, 2))


async def _queue_health(state: State, limit: float) -> QueueHealth:
    try:
        async with asyncio.timeout(limit):
            backend = await state.executions.backend.health()
    except TimeoutError:
        return QueueHealth(status="down", error=f"no answer within {limit:g}s")
    return QueueHealth(
        status=backend.status,
        mode=backend.mode,
        depth=backend.depth,
        workers=backend.workers,
        error=backend.error,
    )


async def check_health(state: State) -> Health:
    timeout = state.settings.health_probe_timeout_seconds
    redis = state.redis
    database_check = _probe(lambda: ping(state.engine), timeout)
    redis_check = _probe(lambda: redis.ping(), timeout) if redis is not None else _disabled()
    database, redis_health, queue = await asyncio.gather(
        database_check, redis_check, _queue_health(state, timeout)
    )
    degraded = "down" in (database.status, redis_health.status, queue.status)
    return Health(
        status="degraded" if degraded else "ok",
        version=__version__,
        environment=state.settings.environment.value,
        uptime_seconds=round(state.uptime_seconds, 3),
        services=Services(database=database, redis=redis_health, queue=queue),
    )


async def _disabled() -> ServiceHealth:
    return ServiceHealth(status="disabled")


_DEGRADED = {503: {"model": Health, "description": "A configured service is down."}}


@router.get("", response_model=Health, response_model_exclude_none=True, responses=_DEGRADED)  # type: ignore[arg-type]
async def health(state: State, response: Response) -> Health:
    """Database and Redis status, uptime, environment and version; 503 when degraded."""
    result = await check_health(state)
    if result.status == "degraded":
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    response.headers["Cache-Control"] = "no-store"
    return result


@router.get("/live", response_model=Liveness)
async def live() -> Liveness:
    """The process is up and serving. Touches nothing else."""
    return Liveness(status="ok")


@router.get("/ready", response_model=Health, response_model_exclude_none=True, responses=_DEGRADED)  # type: ignore[arg-type]
async def ready(state: State, response: Response) -> Health:
    """Ready for traffic: the same checks as the health route."""
    return await health(state, response)
