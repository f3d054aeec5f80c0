"""The composition root: the one place where the process's long-lived objects are built.

    Settings ──▶ open_database ──▶ AsyncEngine (after the start-up wait) + sessionmaker
             ──▶ open_sandbox  ──▶ LanguageRegistry (probed off the loop) + sandbox Engine
             ──▶ open_redis    ──▶ one bounded Redis client + the SAQ queue on it
             ──▶ rate_limiter  ──▶ RateLimiter (Redis or memory)
             ──▶ live_runs     ──▶ LiveRuns on RedisLogs (Streams) or MemoryLogs
             ──▶ execution_backend ──▶ EmbeddedBackend | QueueBackend

`api_services` (the API lifespan), `worker_services` (`coderoom worker`, and the worker
inside `serve --with-worker`), `sandbox_engine` (`coderoom run`) and `open_database`
(`coderoom migrate`) compose these; nothing else creates an engine, a client or a queue.
Everything opened here is closed here, in reverse order, when the context exits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from saq.queue.redis import RedisQueue
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from coderoom.config import Settings
from coderoom.executions.backend import ExecutionBackend
from coderoom.executions.embedded import EmbeddedBackend
from coderoom.executions.live import LiveRuns
from coderoom.executions.queue_backend import QueueBackend
from coderoom.infra import metrics
from coderoom.infra.db import create_engine, create_sessionmaker, wait_for_database
from coderoom.infra.eventlog import Logs, MemoryLogs, RedisLogs
from coderoom.infra.keys import RedisNames
from coderoom.infra.queue import make_queue, make_redis
from coderoom.infra.ratelimit import RateLimiter
from coderoom.sandbox import Engine, LanguageRegistry


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Queue:
    redis: Redis
    queue: RedisQueue


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The engine, once the database answers (raises DatabaseUnavailable if it never does)."""
    engine = create_engine(settings)
    try:
        await wait_for_database(
            engine,
            attempts=settings.database_connect_attempts,
            interval=settings.database_connect_interval_seconds,
        )
        metrics.instrument_pool(
            engine, capacity=settings.database_pool_size + settings.database_max_overflow
        )
        yield Database(engine, create_sessionmaker(engine))
    finally:
        await engine.dispose()


def sandbox_engine(settings: Settings, concurrency: int | None = None) -> Engine:
    """The sandbox with this machine's languages, as LANGUAGES / LANGUAGES_FILE offer them
    (probing them runs a few processes), its runs under the SANDBOX_UID_* range."""
    return Engine(
        registry=LanguageRegistry.default(settings.languages, settings.language_files),
        concurrency=concurrency,
        uid_base=settings.sandbox_uid_base,
        uid_count=settings.sandbox_uid_count,
    )


@asynccontextmanager
async def open_sandbox(settings: Settings, concurrency: int | None) -> AsyncIterator[Engine]:
    engine = await asyncio.to_thread(sandbox_engine, settings, concurrency)
    try:
        yield engine
    finally:
        await engine.close()  # background clean-up finished, this process's cgroups gone


@asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[Queue | None]:
    """The Redis client (bounded pool) and the SAQ queue on it; None without REDIS_URL."""
    if settings.redis_url is None:
        yield None
        return
    redis = make_redis(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        pool_timeout=settings.redis_pool_timeout_seconds,
    )
    try:
        yield Queue(redis, make_queue(redis, RedisNames.of(settings)))
    finally:
        await redis.aclose()


def rate_limiter(settings: Settings) -> RateLimiter:
    return RateLimiter.create(
        settings.redis_url,
        RedisNames.of(settings),
        max_connections=settings.redis_max_connections,
    )


@asynccontextmanager
async def live_runs(settings: Settings, queue: Queue | None) -> AsyncIterator[LiveRuns]:
    """Runs' events and commands: Redis Streams with Redis (any process reads what any
    other wrote), else in this process."""
    logs: Logs
    if queue is not None:
        logs = RedisLogs(
            queue.redis,
            maxlen=settings.stream_max_entries,
            retain_seconds=settings.stream_retain_seconds,
        )
    else:
        logs = MemoryLogs(
            maxlen=settings.stream_max_entries, retain_seconds=settings.stream_retain_seconds
        )
    try:
        yield LiveRuns(logs, RedisNames.of(settings))
    finally:
        await logs.close()  # what was published is written out first


def execution_backend(
    settings: Settings, database: Database, sandbox: Engine, queue: Queue | None, live: LiveRuns
) -> ExecutionBackend:
    """The queue when Redis is configured (workers run the code), else the embedded pool."""
    if queue is not None:
        return QueueBackend(
            queue.queue,
            heartbeat_seconds=settings.worker_heartbeat_seconds,
            max_depth=settings.queue_max_depth,
            live=live,
        )
    return EmbeddedBackend(
        database.sessionmaker, sandbox, max_depth=settings.queue_max_depth, live=live
    )


@dataclass(frozen=True)
class ApiServices:
    database: Database
    sandbox: Engine
    queue: Queue | None
    rate_limiter: RateLimiter
    backend: ExecutionBackend
    live: LiveRuns


@asynccontextmanager
async def api_services(settings: Settings) -> AsyncIterator[ApiServices]:
    """Everything the API process holds, open (the caller starts and stops the backend)."""
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(open_database(settings))
        sandbox = await stack.enter_async_context(
            open_sandbox(settings, settings.execution_concurrency)
        )
        queue = await stack.enter_async_context(open_redis(settings))
        limiter = rate_limiter(settings)
        stack.push_async_callback(limiter.close)
        live = await stack.enter_async_context(live_runs(settings, queue))
        backend = execution_backend(settings, database, sandbox, queue, live)
        yield ApiServices(database, sandbox, queue, limiter, backend, live)


@dataclass(frozen=True)
class WorkerServices:
    database: Database
    sandbox: Engine
    queue: Queue
    live: LiveRuns


@asynccontextmanager
async def worker_services(settings: Settings) -> AsyncIterator[WorkerServices]:
    """What a queue worker holds: the database, a checked sandbox and the queue."""
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(open_database(settings))
        sandbox = await stack.enter_async_context(
            open_sandbox(settings, settings.worker_concurrency)
        )
        await asyncio.to_thread(sandbox.check)  # a worker that cannot sandbox takes no job
        queue = await stack.enter_async_context(open_redis(settings))
        if queue is None:
            raise RuntimeError("REDIS_URL is not set: a worker needs the Redis queue")
        live = await stack.enter_async_context(live_runs(settings, queue))
        yield WorkerServices(database, sandbox, queue, live)
