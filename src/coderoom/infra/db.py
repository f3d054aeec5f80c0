"""The database engine: one async engine per process, created by the composition root.

The same code serves PostgreSQL (asyncpg, bounded pool, optional SSL) and the embedded
SQLite file (aiosqlite, WAL, foreign keys on).

Units of work (`session_scope`) own their transaction and the work that must only happen
once it is committed: services register it with `after_commit(db, work)`; the scope runs it
after the commit and drops it on rollback (Polar's job-queue manager, bound to the session
instead of a context variable, so a job can never leak into another unit of work). A lost
database connection, in any unit of work, surfaces as `DatabaseUnavailable` (503), never as
the driver's own exception.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from coderoom.config import DatabaseSSL, Settings
from coderoom.core.errors import ServiceUnavailableError

log = structlog.get_logger(__name__)

#: Seconds a client is told to wait before retrying while the database is away.
RETRY_AFTER_SECONDS = 2
_AFTER_COMMIT = "coderoom.after_commit"
AfterCommit = Callable[[], Awaitable[None]]


class DatabaseUnavailable(ServiceUnavailableError):
    """The database cannot be reached (down, restarting, refusing connections, pool timed
    out). A 503 with Retry-After for clients; the start-up wait raises it too."""

    code = "database_unavailable"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail or "The database is unavailable; try again shortly.", **kwargs)
        self.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))


_DRIVER_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite")


def _raised_by_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


# SQLSTATEs of a server that is not there for us: connection exceptions (08…), the server
# shutting down or starting (57P01-57P03), too many connections (53300).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _unavailable_state(exc: BaseException) -> bool:
    """asyncpg wraps e.g. "the database system is shutting down" in a plain DBAPIError;
    its SQLSTATE tells it apart from a bad query."""
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES)


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` means the database is out of reach (as opposed to a bug in a query).

    SQLAlchemy's OperationalError covers refused and dropped connections and SQLite's busy
    database, InterfaceError a connection closed under us, its TimeoutError a pool with no
    free connection. Connecting is not wrapped by the driver: a refused TCP connect arrives
    as a bare OSError (ConnectionRefusedError, TimeoutError) and PostgreSQL starting or
    stopping as asyncpg's CannotConnectNowError; those count only when raised from inside
    the database stack, so an unrelated timeout in our own code is not mistaken for one.
    """
    if isinstance(exc, sa_exc.DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or any(_unavailable_state(cause) for cause in _causes(exc.orig))
        )
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if isinstance(
        exc,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.InterfaceError,
    ):
        return _raised_by_driver(exc)
    return False


@contextmanager
def translate_connection_errors() -> Iterator[None]:
    """Re-raise a lost connection as DatabaseUnavailable; leave every other error alone."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        if connection_lost(exc):
            raise DatabaseUnavailable() from exc
        raise


def after_commit(db: AsyncSession, work: AfterCommit) -> None:
    """Run `work` once this session's transaction has committed; never if it rolls back."""
    db.info.setdefault(_AFTER_COMMIT, []).append(work)


async def _run_after_commit(db: AsyncSession) -> None:
    pending: list[AfterCommit] = db.info.pop(_AFTER_COMMIT, [])
    for work in pending:
        try:
            await work()
        except Exception:
            # The transaction is committed: failing now would turn an accepted write into an
            # error the client retries (a duplicate). What the work does must be recoverable
            # from the database alone (executions: the reconciler re-enqueues queued rows).
            log.exception("after_commit.failed", work=getattr(work, "__qualname__", repr(work)))


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
        # hide_parameters: SQLAlchemy puts bound values (program source, stdin, hashes) into
        # its exceptions' text, and so into any log line or Sentry event that quotes one.
        engine = create_async_engine(url, connect_args={"timeout": 15}, hide_parameters=True)
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
        hide_parameters=True,
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
                raise DatabaseUnavailable(
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
    """A unit of work: commit when the block succeeds, then run its after-commit work; roll
    back (and drop that work) when it raises. Lost connections become DatabaseUnavailable."""
    with translate_connection_errors():
        async with sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                session.info.pop(_AFTER_COMMIT, None)
                with translate_connection_errors():
                    await session.rollback()
                raise
    await _run_after_commit(session)


__all__ = [
    "AsyncConnection",
    "DatabaseUnavailable",
    "after_commit",
    "connection_lost",
    "create_engine",
    "create_sessionmaker",
    "ping",
    "session_scope",
    "translate_connection_errors",
    "wait_for_database",
]
