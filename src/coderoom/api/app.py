"""The application factory and its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware

from coderoom import __version__
from coderoom.api import health
from coderoom.api import metrics as metrics_endpoint
from coderoom.api.docs import install_docs
from coderoom.api.errors import install_error_handlers
from coderoom.api.middleware import (
    CORRELATION_HEADER,
    BodyGuardMiddleware,
    ErrorBoundaryMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from coderoom.api.ratelimit import RateLimitMiddleware, rules_from_settings
from coderoom.api.state import AppState
from coderoom.auth import admin_endpoints
from coderoom.auth import endpoints as auth_endpoints
from coderoom.auth.service import AuthConfig
from coderoom.config import Settings
from coderoom.executions import endpoints as executions_endpoints
from coderoom.executions.backend import EmbeddedBackend, ExecutionBackend
from coderoom.executions.queue_backend import QueueBackend
from coderoom.executions.service import ExecutionPolicy
from coderoom.infra import metrics
from coderoom.infra import sentry as monitoring
from coderoom.infra.broadcast import Broadcast
from coderoom.infra.db import create_engine, create_sessionmaker, wait_for_database
from coderoom.infra.keys import RedisNames
from coderoom.infra.queue import make_queue, make_redis
from coderoom.infra.ratelimit import Quota, RateLimiter
from coderoom.sandbox import Engine, LanguageRegistry, SandboxUnavailable
from coderoom.sessions import endpoints as sessions_endpoints
from coderoom.worker.main import run_worker

API_PREFIX = "/api/v1"
CORS_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Accept", CORRELATION_HEADER]
CORS_EXPOSED_HEADERS = [
    CORRELATION_HEADER,
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]

log = structlog.get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    try:
        await wait_for_database(
            engine,
            attempts=settings.database_connect_attempts,
            interval=settings.database_connect_interval_seconds,
        )
    except Exception:
        await engine.dispose()
        log.critical("app.startup_failed", reason="database unreachable")
        monitoring.flush()
        raise
    metrics.instrument_pool(
        engine, capacity=settings.database_pool_size + settings.database_max_overflow
    )
    redis = make_redis(settings.redis_url) if settings.redis_url else None
    names = RedisNames.of(settings)
    rate_limiter = RateLimiter.create(settings.redis_url, names)
    sessionmaker = create_sessionmaker(engine)
    languages = await asyncio.to_thread(
        LanguageRegistry.default, settings.languages, settings.language_files
    )
    sandbox = Engine(
        registry=languages,
        concurrency=settings.execution_concurrency,
        uid_base=settings.sandbox_uid_base,
        uid_count=settings.sandbox_uid_count,
    )
    sandbox_problem = None
    backend: ExecutionBackend
    worker: asyncio.Task[None] | None = None
    stop_worker = asyncio.Event()
    if settings.redis_url is not None:
        # Scale-out: jobs go through Redis to `coderoom worker` processes (or one in here).
        backend = QueueBackend(
            make_queue(settings.redis_url, names),
            heartbeat_seconds=settings.worker_heartbeat_seconds,
        )
        if settings.run_worker:
            worker = asyncio.create_task(
                run_worker(settings, stop=stop_worker, handle_signals=False)
            )
    else:
        try:
            await asyncio.to_thread(sandbox.check)
        except SandboxUnavailable as exc:
            sandbox_problem = str(exc)
            log.error("sandbox.unavailable", reason=sandbox_problem)
        backend = EmbeddedBackend(sessionmaker, sandbox, concurrency=sandbox.concurrency)
    auth = AuthConfig.from_settings(
        settings,
        rate_limiter,
        Broadcast(redis, names.channel("auth:invalidate")) if redis is not None else None,
    )
    await auth.revocations.start()
    app.state.coderoom = AppState(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        redis=redis,
        rate_limiter=rate_limiter,
        auth=auth,
        languages=languages,
        sandbox=sandbox,
        executions=ExecutionPolicy(
            languages=languages,
            max_active_per_user=settings.execution_max_active_per_user,
            max_source_bytes=settings.execution_max_source_bytes,
            sandbox_problem=sandbox_problem,
        ),
        backend=backend,
    )
    await backend.start()
    log.info(
        "app.started",
        version=__version__,
        environment=settings.environment.value,
        database=settings.sqlalchemy_url.get_backend_name(),
        redis="on" if redis else "off",
    )
    try:
        yield
    finally:
        # Runs after the server has drained in-flight requests (graceful shutdown).
        if worker is not None:
            stop_worker.set()
            await asyncio.gather(worker, return_exceptions=True)
        await backend.stop(settings.shutdown_grace_seconds)
        await auth.revocations.stop()
        await rate_limiter.close()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
        metrics.process_exited()
        log.info("app.stopped")
        monitoring.flush()


def create_app(settings: Settings) -> FastAPI:
    """Build the API for `settings`. Nothing is connected until the lifespan starts."""
    openapi_url = f"{API_PREFIX}/openapi.json"
    app = FastAPI(
        title="coderoom",
        version=__version__,
        summary="Live coding sessions with sandboxed code execution.",
        openapi_url=openapi_url,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(health.router)
    api.include_router(auth_endpoints.router)
    api.include_router(admin_endpoints.router)
    api.include_router(sessions_endpoints.router)
    api.include_router(executions_endpoints.router)
    app.include_router(api)
    app.include_router(metrics_endpoint.router)
    install_docs(app, prefix=API_PREFIX, openapi_url=openapi_url)
    install_error_handlers(app)

    # Added innermost first: each add_middleware wraps what is already there.
    app.add_middleware(
        BodyGuardMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        json_prefix=API_PREFIX,
    )
    app.add_middleware(ErrorBoundaryMiddleware, expose_errors=not settings.is_production)
    if settings.rate_limit_enabled:
        app.add_middleware(
            RateLimitMiddleware,
            rules=rules_from_settings(settings, API_PREFIX),
            api_key_quota=Quota.parse("api_key", settings.rate_limit_api_key),
            fail_closed=settings.rate_limit_fail_closed,
        )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=600,
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        content_security_policy=settings.content_security_policy,
        hsts=settings.is_production,
    )
    app.add_middleware(metrics_endpoint.MetricsMiddleware)
    app.add_middleware(
        RequestContextMiddleware,
        trusted_proxies=settings.trusted_proxies,
    )
    return app
