"""The database engine: one async engine per process, created in the app's lifespan.

The same code serves PostgreSQL (asyncpg, bounded pool, optional SSL) and the embedded
SQLite file (aiosqlite, WAL, foreign keys on).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from coderoom.config import DatabaseSSL, Settings

log = structlog.get_logger(__name__)


class DatabaseUnavailableError(RuntimeError):
    """The database did not answer within the configured start-up attempts."""


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    mode = settings.resolved_database_ssl
    if mode is DatabaseSSL.DISABLE:
        return None
    if mode is DatabaseSSL.REQUIRE:
        # libpq's "require": encrypt, but do not check the certificate.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    ca = settings.database_ssl_ca_file
    return ssl.create_default_context(cafile=str(ca) if ca else None)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module, which never opens a transaction
    # before DDL; `_on_sqlite_begin` emits BEGIN instead, so migrations are transactional too.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_sqlite_begin(connection: Any) -> None:
    # IMMEDIATE: take the write lock up front. A deferred transaction that reads and then
    # writes can find another writer ahead of it and fail with "database is locked"
    # instead of waiting; this way writers queue on busy_timeout. SQLite serialises
    # writers anyway; WAL keeps readers outside transactions unblocked.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the engine for the configured database. Opens no connection yet."""
    url = settings.sqlalchemy_url
    if settings.is_sqlite:
        database = url.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {"timeout": settings.database_pool_timeout_seconds}
    context = _ssl_context(settings)
    if context is not None:
        connect_args["ssl"] = context
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        pool_recycle=settings.database_pool_recycle_seconds,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_args=connect_args,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def wait_for_database(engine: AsyncEngine, *, attempts: int, interval: float) -> None:
    """Try to reach the database `attempts` times, `interval` seconds apart, logging each try."""
    for attempt in range(1, attempts + 1):
        try:
            await ping(engine)
        except Exception as exc:
            log.warning(
                "database.connect_failed",
                attempt=attempt,
                attempts=attempts,
                error=f"{type(exc).__name__}: {exc}",
            )
            if attempt == attempts:
                raise DatabaseUnavailableError(
                    f"database unreachable after {attempts} attempts: {type(exc).__name__}: {exc}"
                ) from exc
            await asyncio.sleep(interval)
        else:
            log.info("database.connected", attempt=attempt)
            return


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A unit of work: commit when the block succeeds, roll back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


__all__ = [
    "AsyncConnection",
    "DatabaseUnavailableError",
    "create_engine",
    "create_sessionmaker",
    "ping",
    "session_scope",
    "wait_for_database",
]
