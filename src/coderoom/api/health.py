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
from coderoom.executions.queue_backend import QueueBackend
from coderoom.infra.db import ping

router = APIRouter(prefix="/health", tags=["health"])


class ServiceHealth(BaseModel):
    status: Literal["up", "down", "disabled"]
    latency_ms: float | None = None
    error: str | None = None


class QueueHealth(BaseModel):
    status: Literal["up", "down", "disabled"]
    depth: int | None = None
    workers: int | None = None
    error: str | None = None


class Services(BaseModel):
    database: ServiceHealth
    redis: ServiceHealth
    sandbox: ServiceHealth
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
    backend = state.backend
    if not isinstance(backend, QueueBackend):
        return QueueHealth(status="disabled", depth=await backend.depth())
    try:
        async with asyncio.timeout(limit):
            depth, workers = await backend.depth(), await backend.live_workers()
    except Exception as exc:  # noqa: BLE001 - Redis down or slow: report, never raise
        return QueueHealth(status="down", error=type(exc).__name__)
    # No live worker means accepted executions would wait forever: degraded.
    status: Literal["up", "down"] = "up" if workers > 0 else "down"
    error = None if workers else "no live worker"
    return QueueHealth(status=status, depth=depth, workers=workers, error=error)


async def check_health(state: State) -> Health:
    timeout = state.settings.health_probe_timeout_seconds
    redis = state.redis
    database_check = _probe(lambda: ping(state.engine), timeout)
    if redis is None:
        database = await database_check
        redis_health = ServiceHealth(status="disabled")
    else:
        database, redis_health = await asyncio.gather(
            database_check, _probe(lambda: redis.ping(), timeout)
        )
    queue = await _queue_health(state, timeout)
    problem = state.executions.sandbox_problem
    sandbox = ServiceHealth(status="down", error=problem) if problem else ServiceHealth(status="up")
    degraded = "down" in (database.status, redis_health.status, sandbox.status, queue.status)
    return Health(
        status="degraded" if degraded else "ok",
        version=__version__,
        environment=state.settings.environment.value,
        uptime_seconds=round(state.uptime_seconds, 3),
        services=Services(database=database, redis=redis_health, sandbox=sandbox, queue=queue),
    )


_DEGRADED = {503: {"model": Health, "description": "A configured service is down."}}


@router.get("", response_model=Health, response_model_exclude_none=True, responses=_DEGRADED)  # type: ignore[arg-type]
async def health(state: State, response: Response) -> Health:
    """Database and Redis status, uptime, environment and version; 503 when degraded."""
    result = await check_health(state)
    if result.status == "degraded":
        response.status_code = 503
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
