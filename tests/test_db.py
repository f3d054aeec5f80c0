"""The database layer: engine settings per backend, UTC timestamps, start-up retry."""

from __future__ import annotations

import ssl
import subprocess
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select, text
from sqlalchemy.pool import QueuePool

from coderoom.auth.models import User
from coderoom.config import Settings
from coderoom.infra.db import (
    DatabaseUnavailableError,
    _ssl_context,
    create_engine,
    create_sessionmaker,
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
        with structlog.testing.capture_logs() as logs, pytest.raises(DatabaseUnavailableError):
            await wait_for_database(engine, attempts=3, interval=0)
    finally:
        await engine.dispose()
    failures = [entry for entry in logs if entry["event"] == "database.connect_failed"]
    assert [entry["attempt"] for entry in failures] == [1, 2, 3]
