"""The application factory and its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.middleware.cors import CORSMiddleware

from coderoom import __version__, bootstrap
from coderoom.api import health
from coderoom.api import metrics as metrics_endpoint
from coderoom.api.docs import install_docs
from coderoom.api.errors import install_error_handlers
from coderoom.api.lifecycle import shutdown_on_signals
from coderoom.api.middleware import (
    CORRELATION_HEADER,
    BodyGuardMiddleware,
    ErrorBoundaryMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    WebSocketOriginMiddleware,
)
from coderoom.api.openapi import install_openapi
from coderoom.api.ratelimit import RateLimitMiddleware, rules_from_settings
from coderoom.api.state import AppState
from coderoom.api.webapp import install_webapp
from coderoom.auth import admin_endpoints
from coderoom.auth import endpoints as auth_endpoints
from coderoom.auth.service import AuthConfig
from coderoom.auth.tickets import RedisTickets
from coderoom.config import Settings
from coderoom.executions import endpoints as executions_endpoints
from coderoom.executions import live_endpoints as execution_live_endpoints
from coderoom.executions.deps import ConnectionSlots, ExecutionsContext, StreamPolicy
from coderoom.executions.service import ExecutionPolicy
from coderoom.infra import metrics
from coderoom.infra import sentry as monitoring
from coderoom.infra.broadcast import Broadcast
from coderoom.infra.db import DatabaseUnavailable
from coderoom.infra.keys import RedisNames
from coderoom.infra.lifecycle import Shutdown
from coderoom.infra.ratelimit import Quota
from coderoom.live import endpoints as live_endpoints
from coderoom.live.bus import Bus, LocalBus, RedisBus
from coderoom.live.documents import LiveDocuments
from coderoom.live.hub import Hub
from coderoom.live.limits import LiveLimits
from coderoom.live.presence import Presence
from coderoom.sandbox import LanguageRegistry
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
    shutdown = Shutdown(settings.shutdown_grace_seconds)
    try:
        async with bootstrap.api_services(settings) as services:
            with shutdown_on_signals(shutdown):
                await _serve(app, settings, services, shutdown)
                yield
                # Runs after the server has drained in-flight requests (graceful shutdown).
                await _stop(app, shutdown)
    except DatabaseUnavailable:
        log.critical("app.startup_failed", reason="database unreachable")
        raise
    finally:
        metrics.process_exited()
        monitoring.flush()
    log.info("app.stopped")


async def _serve(
    app: FastAPI, settings: Settings, services: bootstrap.ApiServices, shutdown: Shutdown
) -> None:
    database = services.database
    languages = services.sandbox.registry
    redis = services.queue.redis if services.queue else None
    names = RedisNames.of(settings)
    # Revoking a user or key here tells every other process sharing Redis at once.
    revocations = Broadcast(redis, names.channel("auth:invalidate")) if redis else None
    # A ticket issued by one instance must open a socket on any other.
    tickets = RedisTickets(redis, names.key("ws-ticket")) if redis else None
    auth = AuthConfig.from_settings(settings, services.rate_limiter, revocations, tickets)
    await auth.revocations.start()
    live = _live_hub(settings, database.sessionmaker, redis, names, languages)
    documents = LiveDocuments(live, live.entry_name)
    app.state.coderoom = AppState(
        settings=settings,
        engine=database.engine,
        sessionmaker=database.sessionmaker,
        redis=redis,
        rate_limiter=services.rate_limiter,
        auth=auth,
        languages=languages,
        executions=ExecutionsContext(
            policy=ExecutionPolicy(
                languages=languages,
                max_active_per_user=settings.execution_max_active_per_user,
                max_source_bytes=settings.execution_max_source_bytes,
            ),
            backend=services.backend,
            sessionmaker=database.sessionmaker,
            wait_seconds=settings.execution_wait_seconds,
            shutdown=shutdown,
            documents=documents,
            live=services.live,
            streams=StreamPolicy(
                idle_seconds=settings.stream_idle_seconds,
                max_seconds=settings.stream_max_connection_seconds,
                keepalive_seconds=settings.stream_keepalive_seconds,
                max_per_user=settings.stream_max_connections_per_user,
            ),
            slots=ConnectionSlots(settings.stream_max_connections_per_user),
        ),
        shutdown=shutdown,
        live=live,
        documents=documents,
    )
    await services.backend.start()
    await live.start(shutdown.wait_begun())
    if settings.run_worker and settings.redis_url is not None:
        # `serve --with-worker`: one process runs the API and a queue worker.
        stop = asyncio.Event()
        app.state.worker = (
            stop,
            asyncio.create_task(run_worker(settings, stop=stop, handle_signals=False)),
        )
    log.info(
        "app.started",
        version=__version__,
        environment=settings.environment.value,
        database=settings.sqlalchemy_url.get_backend_name(),
        redis="on" if services.queue else "off",
    )


async def _stop(app: FastAPI, shutdown: Shutdown) -> None:
    state: AppState = app.state.coderoom
    shutdown.begin()  # the signal handler did, under uvicorn; now at the latest
    worker = getattr(app.state, "worker", None)
    if worker is not None:
        stop, task = worker
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
    deadline = shutdown.deadline
    assert deadline is not None
    await state.live.stop()
    await state.executions.backend.stop(deadline=deadline)
    await state.auth.revocations.stop()


def _live_hub(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis | None,
    names: RedisNames,
    languages: LanguageRegistry,
) -> Hub:
    def entry_name(language: str, source: str) -> str:
        found = languages.get(language)
        return found.entry_name(source) if found is not None else "main"

    bus: Bus = RedisBus(redis, names) if redis is not None else LocalBus()
    return Hub(
        sessionmaker=sessionmaker,
        bus=bus,
        presence=Presence(redis, names),
        limits=LiveLimits(
            max_file_bytes=settings.live_max_file_bytes,
            max_document_bytes=settings.live_max_document_bytes,
            max_message_bytes=settings.live_max_message_bytes,
            updates_per_second=settings.live_updates_per_second,
            update_burst=settings.live_update_burst,
            max_connections_per_user=settings.live_max_connections_per_user,
            max_connections_per_session=settings.live_max_connections_per_session,
            idle_seconds=settings.live_idle_seconds,
            compact_every=settings.live_compact_every,
        ),
        entry_name=entry_name,
        languages=frozenset(languages.ids()),
    )


def _choices(app: FastAPI) -> dict[str, list[str]]:
    """Values this server fixes at start-up, for the OpenAPI document (`x-choices`)."""
    state = getattr(app.state, "coderoom", None)
    if not isinstance(state, AppState):
        return {}  # the document built before start-up says less, but nothing false
    languages = list(state.languages)
    return {
        "language-ids": [language.id for language in languages],
        "language-names": sorted({n for lang in languages for n in (lang.id, *lang.aliases)}),
    }


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
    api.include_router(live_endpoints.router, prefix="/sessions")
    api.include_router(executions_endpoints.router)
    api.include_router(execution_live_endpoints.router)
    app.include_router(api)
    app.include_router(metrics_endpoint.router)
    install_docs(app, prefix=API_PREFIX, openapi_url=openapi_url)
    install_webapp(app, dist=settings.web_dist_dir)  # last: its page fallback matches late
    install_error_handlers(app)
    # The document declares 429 wherever a rule could refuse, enabled here or not.
    rules = rules_from_settings(settings, API_PREFIX)
    install_openapi(
        app,
        rate_limited=lambda path: any(rule.path.fullmatch(path) for rule in rules),
        choices=lambda: _choices(app),
    )

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
    app.add_middleware(WebSocketOriginMiddleware, allowed_origins=settings.cors_origins)
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
