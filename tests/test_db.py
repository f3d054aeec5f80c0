"""The database layer: engine settings per backend, UTC timestamps, start-up retry."""

from __future__ import annotations

import ssl
import subprocess
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest
import structlog
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from coderoom.auth.models import User
from coderoom.config import Settings
from coderoom.infra.db import (
    DatabaseUnavailable,
    _ssl_context,
    after_commit,
    connection_lost,
    create_engine,
    create_sessionmaker,
    session_scope,
    wait_for_database,
)
from tests.conftest import make_settings
from tests.support.services import free_port


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(make_settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}"))
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "db.sqlite3"
    engine = create_engine(make_settings(database_url=f"sqlite:///{path}"))
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert path.exists()


def test_postgres_pool_is_bounded_at_twenty() -> None:
    engine = create_engine(make_settings(database_url="postgresql://u@127.0.0.1/x"))
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.size() + pool._max_overflow == 20
    assert pool._pre_ping
    assert pool._recycle == 1800


def test_ssl_disable_and_require() -> None:
    assert _ssl_context(make_settings(database_ssl="disable")) is None
    required = _ssl_context(make_settings(database_ssl="require"))
    assert required is not None
    assert required.verify_mode == ssl.CERT_NONE


def test_verify_full_needs_a_ca_file() -> None:
    with pytest.raises(ValueError, match="DATABASE_SSL_CA_FILE"):
        make_settings(database_ssl="verify-full")


def test_verify_full_checks_certificate_and_host(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            str(tmp_path / "ca.key"),
            "-out",
            str(ca),
        ],
        check=True,
        capture_output=True,
    )
    context = _ssl_context(make_settings(database_ssl="verify-full", database_ssl_ca_file=ca))
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


async def test_timestamps_round_trip_as_utc(settings: Settings) -> None:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5)))
    user_id = uuid.uuid4()
    try:
        async with sessionmaker() as session:
            session.add(
                User(
                    id=user_id,
                    email=f"{user_id}@example.com",
                    password_hash="x",
                    display_name="t",
                    created_at=created,
                )
            )
            await session.commit()
        async with sessionmaker() as session:
            user = (await session.execute(select(User).where(User.id == user_id))).scalar_one()
            assert user.created_at == created
            assert user.created_at.tzinfo == UTC
            await session.delete(user)
            await session.commit()
    finally:
        await engine.dispose()


async def test_start_up_retry_logs_each_attempt_then_gives_up() -> None:
    engine = create_engine(
        make_settings(database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    )
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(DatabaseUnavailable):
            await wait_for_database(engine, attempts=3, interval=0)
    finally:
        await engine.dispose()
    failures = [entry for entry in logs if entry["event"] == "database.connect_failed"]
    assert [entry["attempt"] for entry in failures] == [1, 2, 3]


async def test_after_commit_work_runs_once_the_transaction_committed(settings: Settings) -> None:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    seen: list[bool] = []
    user_id = uuid.uuid4()

    async def visible_elsewhere() -> None:
        async with sessionmaker() as other:  # another connection sees the committed row
            seen.append(await other.get(User, user_id) is not None)

    try:
        async with session_scope(sessionmaker) as db:
            db.add(
                User(
                    id=user_id, email=f"{user_id}@example.com", password_hash="x", display_name="a"
                )
            )
            after_commit(db, visible_elsewhere)
            await db.flush()
            assert seen == []
        assert seen == [True]
    finally:
        async with session_scope(sessionmaker) as db:
            await db.delete(await db.get(User, user_id))
        await engine.dispose()


async def test_after_commit_work_is_dropped_on_rollback(settings: Settings) -> None:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    ran: list[str] = []

    async def work() -> None:
        ran.append("ran")

    async def failing_request() -> None:
        async with session_scope(sessionmaker) as db:
            after_commit(db, work)
            raise LookupError("the request failed")

    try:
        with pytest.raises(LookupError):
            await failing_request()
        async with session_scope(sessionmaker):  # a later unit of work on a pooled session
            pass
        assert ran == []
    finally:
        await engine.dispose()


async def test_failing_after_commit_work_does_not_undo_the_commit(settings: Settings) -> None:
    """The write is durable: an error now would make the client retry and duplicate it."""
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    user_id = uuid.uuid4()
    ran: list[str] = []

    async def broken() -> None:
        raise RuntimeError("queue down")

    async def next_one() -> None:
        ran.append("next")

    try:
        with structlog.testing.capture_logs() as logs:
            async with session_scope(sessionmaker) as db:
                db.add(
                    User(
                        id=user_id,
                        email=f"{user_id}@example.com",
                        password_hash="x",
                        display_name="a",
                    )
                )
                after_commit(db, broken)
                after_commit(db, next_one)
        assert ran == ["next"]
        assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == [
            "after_commit.failed"
        ]
        async with session_scope(sessionmaker) as db:
            assert await db.get(User, user_id) is not None
            await db.delete(await db.get(User, user_id))
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("orig", "lost"),
    [
        (asyncpg.CannotConnectNowError("the database system is shutting down"), True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
        (asyncpg.TooManyConnectionsError("too many clients"), True),
        (asyncpg.exceptions.UndefinedTableError('relation "x" does not exist'), False),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), False),
    ],
)
def test_a_wrapped_driver_error_is_told_apart_by_its_sqlstate(orig: Exception, lost: bool) -> None:
    """asyncpg's errors reach us as a plain DBAPIError; only its SQLSTATE says 'no server'."""
    wrapper = Exception("adapted")
    wrapper.__cause__ = orig
    assert connection_lost(DBAPIError("SELECT 1", {}, wrapper)) is lost
